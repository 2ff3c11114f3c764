"""What collector_runs says about a run that ended badly: a bug under --debug is a failure with its
message (the traceback goes to the terminal), not an interruption; Ctrl+C is an interruption."""

from __future__ import annotations

import pytest

from collectors.base import CollectorSpec, Scope
from tests.helpers import collect, rows


def _spec(exc: BaseException) -> CollectorSpec:
    def boom(ctx, scope):
        raise exc

    return CollectorSpec(name="probe", collect=boom, scopes=lambda ctx: [Scope(source="probe")])


@pytest.mark.parametrize("debug", [False, True])
def test_a_bug_is_recorded_as_failed_with_or_without_debug(tmp_path, debug):
    db = tmp_path / "caa.duckdb"
    if debug:
        with pytest.raises(ZeroDivisionError):
            collect(db, [_spec(ZeroDivisionError("division by zero"))], debug=True)
    else:
        assert collect(db, [_spec(ZeroDivisionError("division by zero"))]) == 1
    (status, error), = rows(db, "SELECT status, error FROM collector_runs")
    assert status == "failed" and "ZeroDivisionError: division by zero" in error


def test_ctrl_c_is_recorded_as_interrupted(tmp_path):
    db = tmp_path / "caa.duckdb"
    with pytest.raises(KeyboardInterrupt):
        collect(db, [_spec(KeyboardInterrupt())])
    assert rows(db, "SELECT status FROM collector_runs") == [("interrupted",)]
