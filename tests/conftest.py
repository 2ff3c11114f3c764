"""Shared fixtures. `demo_store(seed, events)` builds a demo estate with the real collectors once and
shares it between xdist workers (file lock); tests only read it. The estates live under
$TMPDIR/caa-demo-cache/<code hash>-<clock minute>/, so a run at a pinned CAA_NOW reuses what an earlier
run of the same code built. A whole-suite run with xdist builds the estates the suite uses (ESTATES)
side by side before the first test, and says how long that took: that shared setup is not any one
test's time, and the durations table then shows the tests themselves. `rollup_connections` runs a test
twice, its rollups refreshed on the writer's connection and side by side on others.

The clock: the whole run sees one instant. CAA_NOW (an ISO 8601 instant) pins core.clock.utc_now
in every process of the run (xdist workers, the dashboard servers and CLI subprocesses the tests start);
without it the run pins the minute it started. So `CAA_NOW=2026-12-01T00:05Z make test` runs the suite
on the 1st, and a run that crosses midnight still sees one day."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.clock import CLOCK_ENV, utc_now
from demo.run import run_demo


def pytest_configure(config):
    # The controller runs this before it starts the xdist workers, which inherit the variable.
    if not os.environ.get(CLOCK_ENV):
        os.environ[CLOCK_ENV] = datetime.now(UTC).replace(second=0, microsecond=0).isoformat()


def pytest_report_header(config):
    return f"caa clock pinned at {utc_now():%Y-%m-%dT%H:%M:%SZ} ({CLOCK_ENV}; see tests/conftest.py)"


PACKAGES = ("core", "collectors", "analytics", "actions", "delivery", "ui", "demo")  # what builds an estate


def _code_hash() -> str:
    """Of every file that can change what a demo estate holds (its page_cache rows included)."""
    top = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for p in sorted(p for pkg in PACKAGES for ext in ("py", "sql") for p in top.glob(f"{pkg}/**/*.{ext}")):
        h.update(p.relative_to(top).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:12]


CACHE = Path(tempfile.gettempdir()) / "caa-demo-cache"
ESTATES = ((11, 20_000), (11, 200_000))  # (seed, events) of the demo estates the suite's tests use
_prebuilt: dict[str, float] = {}


def _root() -> Path:
    # keyed on the code that builds it and the pinned clock, so a stale estate is never reused
    return CACHE / f"{_code_hash()}-{utc_now():%Y%m%dT%H%M}"


def build_demo(root: Path, seed: int, events: int) -> Path:
    """The demo estate (seed, events) under `root`, built once by whichever process gets there first."""
    folder = root / f"seed{seed}-events{events}"
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "caa.duckdb"
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "ok").exists():
            assert run_demo(db, seed=seed, events=events, show_progress=False) == 0
            (folder / "ok").touch()
    return db


def _whole_suite(config) -> bool:
    top = Path(__file__).resolve().parent
    return all(Path(a).resolve() == top for a in config.args) and bool(config.getoption("numprocesses", None))


def pytest_sessionstart(session):
    config = session.config
    if hasattr(config, "workerinput") or not _whole_suite(config):
        return
    for old in CACHE.glob("*") if CACHE.exists() else []:  # estates of other days and checkouts
        if time.time() - old.stat().st_mtime > 86_400:
            shutil.rmtree(old, ignore_errors=True)
    t0, root = time.monotonic(), _root()
    code = "import sys; from pathlib import Path; from tests.conftest import build_demo; " \
           "build_demo(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(root), str(seed), str(events)],
                              cwd=Path(__file__).resolve().parents[1], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for seed, events in ESTATES]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:  # the tests that need it build it again and fail with the reason
            print(f"demo estate prebuild failed: {err.decode()[-2000:]}", file=sys.stderr)
    _prebuilt["secs"] = time.monotonic() - t0


def pytest_terminal_summary(terminalreporter):
    if "secs" in _prebuilt:
        terminalreporter.write_line(f"demo estates {', '.join(f'{e:,} events' for _, e in ESTATES)}: built side by side "
                                    f"before the tests in {_prebuilt['secs']:.1f} s (shared setup, not in the "
                                    "durations above)")


@pytest.fixture(scope="session")
def demo_store():
    root = _root()

    def build(seed: int = 11, events: int = 20_000) -> tuple[Path, dict]:
        db = build_demo(root, seed, events)
        return db, json.loads(db.with_name("caa.ground_truth.json").read_text())

    return build


@pytest.fixture(params=["one connection", "side by side"])
def rollup_connections(request, monkeypatch):
    """Run the test twice: its rollups refreshed on the writer's connection alone, and with the rollups of
    events alone computed and written on two other connections side by side (analytics/rollups.py _aside),
    the way a refresh of ASIDE_EVENTS events or more runs; the second fails unless some were."""
    if request.param == "one connection":
        yield request.param
        return
    from analytics import rollups
    from core import lake

    write, where = lake.write_files, []

    def noted(*args, **kwargs):
        where.append(threading.current_thread() is threading.main_thread())
        return write(*args, **kwargs)

    monkeypatch.setattr(rollups, "ASIDE_EVENTS", 0)
    monkeypatch.setattr(lake, "write_files", noted)
    yield request.param
    assert False in where, "no rollup was written on another connection's thread"
