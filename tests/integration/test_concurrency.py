"""Readers and writers at once: the dashboard keeps answering during a collection, a collection never
fails because a reader is open, and a second `caa collect` exits with a clear message."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date

import pytest

from collectors import cloudtrail, store
from tests.fixtures.trails import trail_files, unique_events, write_local
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
    env = dict(os.environ, CAA_CLOUDTRAIL__BATCH_FILES="3")
    cmd = [sys.executable, "-m", "cli", "collect", "cloudtrail", "--source", str(root), "--since", str(SINCE),
           "--db", str(db)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.8)
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
