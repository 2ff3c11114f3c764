"""Shared fixtures. `demo_store(seed, events)` builds a demo estate with the real collectors once per
test session and shares it between xdist workers (file lock); tests only read it.

The clock: the whole run sees one instant. CAA_NOW (an ISO 8601 instant) pins collectors.errors.utc_now
in every process of the run (xdist workers, the dashboard servers and CLI subprocesses the tests start);
without it the run pins the minute it started. So `CAA_NOW=2026-12-01T00:05Z make test` runs the suite
on the 1st, and a run that crosses midnight still sees one day."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collectors.demo.run import run_demo
from collectors.errors import CLOCK_ENV, utc_now


def pytest_configure(config):
    # The controller runs this before it starts the xdist workers, which inherit the variable.
    if not os.environ.get(CLOCK_ENV):
        os.environ[CLOCK_ENV] = datetime.now(UTC).replace(second=0, microsecond=0).isoformat()


def pytest_report_header(config):
    return f"caa clock pinned at {utc_now():%Y-%m-%dT%H:%M:%SZ} ({CLOCK_ENV}; see tests/conftest.py)"


def _code_hash() -> str:
    top = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for p in sorted([*top.glob("collectors/**/*.py"), *top.glob("collectors/**/*.sql"), *top.glob("analytics/**/*.py"),
                     *top.glob("analytics/**/*.sql"), top / "settings.py"]):
        h.update(p.relative_to(top).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:12]


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory):
    # Shared by every xdist worker; keyed on the code that builds it, so a stale estate from an older
    # checkout is never reused.
    root = tmp_path_factory.getbasetemp().parent / f"demo-cache-{_code_hash()}-{utc_now():%Y%m%dT%H%M}"
    root.mkdir(exist_ok=True)

    def build(seed: int = 11, events: int = 20_000) -> tuple[Path, dict]:
        folder = root / f"seed{seed}-events{events}"
        folder.mkdir(exist_ok=True)
        db = folder / "caa.duckdb"
        with open(folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (folder / "ok").exists():
                assert run_demo(db, seed=seed, events=events, show_progress=False) == 0
                (folder / "ok").touch()
        return db, json.loads(db.with_name("caa.ground_truth.json").read_text())

    return build
