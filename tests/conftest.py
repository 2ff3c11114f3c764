"""Shared fixtures. `demo_store(seed, events)` builds a demo estate with the real collectors once per
test session and shares it between xdist workers (file lock); tests only read it."""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import pytest

from collectors.demo.run import run_demo


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory):
    root = tmp_path_factory.getbasetemp().parent / "demo-cache"  # shared by every xdist worker
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
