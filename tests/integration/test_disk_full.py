"""A full disk during a collection: one clear line with the fix, nothing committed is lost, and the next run
(with space again) completes without duplicates. The full disk is simulated with RLIMIT_FSIZE on the
collector's process (writes past the limit fail with EFBIG, as on a full filesystem)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from datetime import date

from collectors import cloudtrail
from tests.fixtures.trails import TRAIL_NOW, trail_files, unique_events, write_local
from tests.helpers import collect, rows

SINCE = "2026-10-25"


def caa_collect(root, db, limit_bytes=None) -> subprocess.CompletedProcess:
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write returns EFBIG instead of killing us
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run(
        [sys.executable, "-m", "cli", "collect", "cloudtrail", "--source", str(root), "--since", SINCE, "--db",
         str(db)], env={**os.environ, "CAA_CLOUDTRAIL__BATCH_FILES": "10", "CAA_NOW": TRAIL_NOW.isoformat()},
        preexec_fn=limit if limit_bytes else None, capture_output=True, text=True, timeout=300)


def test_a_full_disk_stops_with_one_line_keeps_committed_data_and_the_rerun_completes(tmp_path):
    files = trail_files(n_files=200, per_file=60, seed=3)
    keys = sorted(files)
    first = {k: files[k] for k in keys[:50]}
    root = write_local(tmp_path / "trail", first)
    db = tmp_path / "caa.duckdb"
    assert collect(db, [cloudtrail.SPEC], since=date.fromisoformat(SINCE), source=str(root)) == 0
    before = len(unique_events(first))
    write_local(root, files)

    out = caa_collect(root, db, limit_bytes=db.stat().st_size + 200_000)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "disk is full" in out.stderr and "fix: free disk space" in out.stderr

    # Readers still answer, with at least what was committed before the disk filled up.
    (seen,), = rows(db, "SELECT count(*) FROM events")
    assert seen >= before
    # With space again the next run resumes: every event exactly once.
    again = caa_collect(root, db)
    assert again.returncode == 0, again.stderr
    assert sorted(r[0] for r in rows(db, "SELECT event_id FROM events")) == sorted(unique_events(files))
