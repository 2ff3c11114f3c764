"""The pure rules of `caa apply`: approvals, report time, the re-check verdicts, batches and API parameters."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from actions.plan import (
    ACTIONS,
    Row,
    batches,
    call_params,
    download_skip,
    fresh_skip,
    is_approved,
    record_response,
    report_time,
    result_path,
    rows_from_frame,
)
from core.errors import DataError

T = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


def row(version="1.0.0", package="web", **kw) -> Row:
    base = {"line": 1, "account_id": "111111111111", "domain": "corp", "repository": "app", "format": "npm",
            "namespace": None, "package": package, "version": version, "status": "Published", "region": "us-east-1",
            "action": "archive", "expected_status": "Published", "expected_revision": "r1"}
    return Row(**{**base, **kw})


@pytest.mark.parametrize("value", ["yes", " YES ", "True", "x", "X\t", True])
def test_approved_values(value):
    assert is_approved(value)


@pytest.mark.parametrize("value", ["", None, "no", "y", "1", "approve", float("nan"), False, "xx"])
def test_anything_else_is_not_approved(value):
    assert not is_approved(value)


def frame(**cols):
    base = {"account_id": ["111111111111"] * 3, "domain": ["corp"] * 3, "repository": ["app"] * 3,
            "format": ["npm"] * 3, "namespace": [None, "", float("nan")], "package": ["a", "b", "c"],
            "version": ["1", "2", "3"], "status": ["Published"] * 3, "approve": ["yes", None, " x "]}
    return pd.DataFrame({**base, **cols})


def test_only_approved_rows_are_read_and_empty_namespaces_are_none(tmp_path):
    got = rows_from_frame(frame(), tmp_path / "r.csv", select_all=False)
    assert [(r.line, r.package, r.namespace) for r in got] == [(1, "a", None), (3, "c", None)]
    assert len(rows_from_frame(frame(), tmp_path / "r.csv", select_all=True)) == 3


def test_a_report_without_the_key_columns_is_refused_in_one_line(tmp_path):
    with pytest.raises(DataError, match="lacks the column"):
        rows_from_frame(frame().drop(columns=["version"]), tmp_path / "r.csv", select_all=False)


def test_report_time_prefers_generated_at_then_the_file_name_then_mtime(tmp_path):
    path = tmp_path / "cleanup-20260110T1200Z.csv"
    path.write_text("x")
    os.utime(path, (T.timestamp() + 3600, T.timestamp() + 3600))  # saved by a reviewer an hour later
    assert report_time(path, pd.DataFrame({"generated_at": ["2026-01-09T08:00:00+00:00"]}))[0] == T - timedelta(
        hours=28)
    assert report_time(path, pd.DataFrame()) == (T, "the time in its file name")
    plain = tmp_path / "reviewed.csv"
    plain.write_text("x")
    os.utime(plain, (T.timestamp(), T.timestamp()))
    assert report_time(plain, pd.DataFrame()) == (T, "the file's modification time")


def test_a_download_after_the_report_or_one_the_report_did_not_count_skips_the_row():
    assert download_skip(row(), None, 0, T, True) is None
    assert "downloaded after the report" in download_skip(row(), T + timedelta(minutes=1), 1, T, True)
    counted = row(last_downloaded_at=T - timedelta(days=200))
    assert download_skip(counted, T - timedelta(days=200), 0, T, True) is None
    assert "did not count" in download_skip(counted, T - timedelta(days=10), 0, T, True)  # backfilled later
    assert "did not count" in download_skip(row(), T - timedelta(days=10), 0, T, True)  # report said none
    assert download_skip(row(), T - timedelta(days=10), 0, T, False) is None  # no column: the cut-off only


def test_fresh_status_and_revision_must_match():
    assert fresh_skip(row(), {"status": "Published", "revision": "r1"}, "Archived") is None
    assert "revision changed: r2 now, r1 expected" == fresh_skip(row(), {"status": "Published", "revision": "r2"},
                                                                 "Archived")
    assert "interrupted run" in fresh_skip(row(), {"status": "Archived", "revision": "r9"}, "Archived")
    assert "no longer in the repository" in fresh_skip(row(), None, "Archived")
    assert "no revision known" in fresh_skip(row(expected_revision=None), {"status": "Published"}, "Archived")


def test_batches_hold_at_most_100_versions_of_one_package_and_status():
    rows = [row(f"1.{i}") for i in range(250)] + [row("9", package="other")] + [
        row("8", expected_status="Unlisted")]
    sizes = [(b[0].package, b[0].expected_status, len(b)) for b in batches(rows)]
    assert sizes == [("web", "Published", 100), ("web", "Published", 100), ("web", "Published", 50),
                     ("other", "Published", 1), ("web", "Unlisted", 1)]


def test_call_params_follow_the_botocore_model_per_operation():
    b = [row("1", namespace="acme"), row("2", namespace="acme", expected_revision="r2")]
    assert call_params(ACTIONS["archive"], b) == {
        "domain": "corp", "domainOwner": "111111111111", "repository": "app", "format": "npm", "namespace": "acme",
        "package": "web", "versions": ["1", "2"], "expectedStatus": "Published",
        "versionRevisions": {"1": "r1", "2": "r2"}, "targetStatus": "Archived"}
    assert "targetStatus" not in call_params(ACTIONS["dispose"], b)
    delete = call_params(ACTIONS["delete"], [row()])
    assert "versionRevisions" not in delete and delete["expectedStatus"] == "Published" and "namespace" not in delete


def test_every_version_of_a_response_is_accounted_for():
    b = [row("1"), row("2"), row("3")]
    record_response(b, {"successfulVersions": {"1": {"revision": "n", "status": "Archived"}},
                        "failedVersions": {"2": {"errorCode": "MISMATCHED_REVISION", "errorMessage": "moved"}}})
    assert [(r.result, r.error_code, r.new_status) for r in b] == [
        ("ok", None, "Archived"), ("failed", "MISMATCHED_REVISION", None), ("failed", "NOT_REPORTED", None)]


def test_the_result_file_sits_beside_the_input(tmp_path):
    assert result_path(tmp_path / "cleanup-x.xlsx") == tmp_path / "cleanup-x.result.xlsx"
