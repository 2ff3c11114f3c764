"""Readers and writers at once: the dashboard keeps answering during a collection, a collection never
fails because a reader is open, and a second `caa collect` exits with a clear message."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date

import pytest

from collectors import cloudtrail
from core import store
from tests.fixtures.trails import TRAIL_NOW, trail_files, unique_events, write_local
from tests.helpers import collect

SINCE = date(2026, 10, 25)


@pytest.mark.slow
def test_readers_never_fail_and_the_collection_never_fails_because_of_them(tmp_path):
    files = trail_files(n_files=400, per_file=60, seed=9)
    keys = sorted(files)
    first_half = {k: files[k] for k in keys[:100]}
    root = write_local(tmp_path / "trail", first_half)
    db = tmp_path / "caa.duckdb"
    assert collect(db, [cloudtrail.SPEC], since=SINCE, source=str(root)) == 0
    before = len(unique_events(first_half))
    write_local(root, files)  # the rest arrives

    held = store.open_reader(db)  # a dashboard session in the middle of a long query
    env = dict(os.environ, CAA_CLOUDTRAIL__BATCH_FILES="3", CAA_NOW=TRAIL_NOW.isoformat())
    cmd = [sys.executable, "-m", "cli", "collect", "cloudtrail", "--source", str(root), "--since", str(SINCE),
           "--db", str(db)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # the second collector starts once the first holds the store (its lock file names it): a fixed head start
    # was not always enough on a loaded machine, and the second then took the lock and refused the first
    deadline = time.monotonic() + 60
    while not store.lock_path(db).read_text().startswith(f"pid {proc.pid} ") and proc.poll() is None:
        assert time.monotonic() < deadline, "the first collector never took the store's lock"
        time.sleep(0.01)
    second = subprocess.run(cmd, env=env, capture_output=True, text=True)
    counts, errors = [], []
    while proc.poll() is None:
        try:
            con = store.open_reader(db)
            counts.append(con.execute("SELECT count(*) FROM events").fetchone()[0])
            con.close()
        except Exception as e:  # noqa: BLE001 - any error is what this test counts
            errors.append(repr(e))
        time.sleep(0.02)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert errors == []
    assert len(counts) > 10 and set(counts) <= {before, *counts} and min(counts) >= before
    assert held.execute("SELECT count(*) FROM events").fetchone()[0] == before  # its snapshot stays consistent
    held.close()
    con = store.open_reader(db)
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] == len(unique_events(files))
    con.close()
    # The second collector started by hand was refused with one clear line, not a traceback.
    assert second.returncode == 1
    assert "another caa process is writing" in second.stderr and "Traceback" not in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_the_dashboard_keeps_answering_during_a_collection(tmp_path, monkeypatch):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    files = trail_files(n_files=600, per_file=60, seed=13)
    keys = sorted(files)
    root = write_local(tmp_path / "trail", {k: files[k] for k in keys[:100]})
    db = tmp_path / "caa.duckdb"
    assert collect(db, [cloudtrail.SPEC], since=SINCE, source=str(root)) == 0
    write_local(root, files)
    monkeypatch.setenv("CAA_DB", str(db))
    (tmp_path / "caa.toml").write_text("")
    monkeypatch.setenv("CAA_CONFIG", str(tmp_path / "caa.toml"))
    app = str(Path(__file__).resolve().parents[2] / "dashboard.py")
    cmd = [sys.executable, "-m", "cli", "collect", "cloudtrail", "--source", str(root), "--since", str(SINCE),
           "--db", str(db)]
    proc = subprocess.Popen(cmd, env=dict(os.environ, CAA_CLOUDTRAIL__BATCH_FILES="2", CAA_NOW=TRAIL_NOW.isoformat()),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runs, during, problems = 0, 0, []
    while proc.poll() is None or runs < 2:
        for page in ("overview", "health"):
            at = AppTest.from_file(app)
            at.query_params["page"] = page
            at.run(timeout=60)
            runs += 1
            during += proc.poll() is None  # this page run finished while the collector was still writing
            problems += [e.value for e in at.exception] + [e.value for e in at.error]
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    assert during >= 1, "no page run overlapped the collection"
    assert problems == []  # zero errors shown to the reader while the collector wrote
