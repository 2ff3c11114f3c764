"""Shared fixtures. `demo_store(seed, events)` builds a demo estate with the real collectors once per
test session and shares it between xdist workers (file lock); tests only read it."""

from __future__ import annotations

import fcntl
import hashlib
import json
from pathlib import Path

import pytest

from collectors.demo.run import run_demo


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
    root = tmp_path_factory.getbasetemp().parent / f"demo-cache-{_code_hash()}"
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
