"""A damaged store or reader snapshot gets the damage named and the real fix, not disk-space advice:
a store truncated to half (a crashed copy, a full disk during a restore) and a snapshot overwritten with
garbage. `caa refresh` repairs the snapshot; the store needs its backup (README: backing up the store)."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from core import store
from tests.integration.test_cli import run_in_process
from tests.integration.test_instants import build_store

NOW = datetime(2026, 12, 15, 12, tzinfo=UTC)


def test_a_truncated_store_is_named_damaged_with_the_backup_fix(tmp_path, monkeypatch, capsys):
    db = tmp_path / "caa.duckdb"
    build_store(db, NOW)
    os.truncate(db, db.stat().st_size // 2)
    code, _, err = run_in_process(monkeypatch, capsys, "collect", "inventory", "--db", str(db))
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert f"the store {db} is damaged" in err and "restore it from a backup" in err and "caa collect" in err, err
    assert "free disk space" not in err and "internal error" not in err


def test_a_garbage_snapshot_is_named_and_caa_refresh_repairs_it(tmp_path, monkeypatch, capsys):
    db = tmp_path / "caa.duckdb"
    build_store(db, NOW)
    snapshot = store.snapshot_path(db)
    snapshot.write_bytes(os.urandom(100_000))
    code, _, err = run_in_process(monkeypatch, capsys, "sql", "SELECT count(*) FROM events", "--db", str(db))
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert f"the reader snapshot {snapshot}" in err and "damaged" in err and "caa refresh" in err, err
    assert "free disk space" not in err
    code, _, err = run_in_process(monkeypatch, capsys, "refresh", "--db", str(db))
    assert code == 0, err
    code, out, err = run_in_process(monkeypatch, capsys, "sql", "SELECT count(*) AS n FROM events", "--format", "csv",
                                    "--db", str(db))
    assert code == 0 and int(out.split()[1]) > 5000, err


def test_a_file_that_is_no_store_is_named_not_reported_as_empty(tmp_path, monkeypatch, capsys):
    """A mistyped --db (a CSV report, a folder) is said to be no store, with the --db fix: "no data yet, run
    caa collect" would send the user to collect into it."""
    report = tmp_path / "cleanup.csv"
    report.write_text("domain,repository,package,version\nacme,npm-store,left-pad,1.0.0\n")
    for wrong in (report, tmp_path):
        code, _, err = run_in_process(monkeypatch, capsys, "report", "costs", "--db", str(wrong))
        assert code == 1 and len(err.strip().splitlines()) == 1, err
        assert f"{wrong} is not a caa store" in err and "pass --db the store" in err, err
        assert "no data yet" not in err
    assert report.read_text().startswith("domain,repository")  # read, never written
    code, _, err = run_in_process(monkeypatch, capsys, "report", "costs", "--db", str(tmp_path / "new.duckdb"))
    assert code == 1 and "no data yet" in err and "caa collect" in err, err  # a path with nothing yet: collect
