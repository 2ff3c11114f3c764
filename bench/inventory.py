"""Inventory re-collection over a big unchanged estate, against the fake CodeArtifact endpoint.

The demo estate (about 5.7k versions) with every package copied under new names until it holds
about `versions` versions. The inventory collector runs twice into a fresh store; the figure is API calls
per version, which must grow with packages and pages, not with versions, on the second run.

Reads: a fake CodeArtifact endpoint. Writes: a scratch store under data/bench/.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from collectors import inventory
from collectors.base import RunContext, run_collectors
from core import store
from core.settings import load_settings
from demo.estate import build_estate
from demo.fake_codeartifact import FakeCodeArtifact, FakeCodeArtifactClients
from demo.model import Estate


def big_estate(seed: int, end, versions: int) -> Estate:
    estate = build_estate(seed, end=end)
    have = sum(len(p.versions) for d in estate.domains for r in d.repositories for p in r.packages)
    copies = max(1, -(-versions // have))
    for d in estate.domains:
        for r in d.repositories:
            r.packages = [p if k == 0 else replace(p, name=f"{p.name}-b{k}") for p in r.packages for k in range(copies)]
    return estate


def collect_twice(db: Path, estate: Estate) -> dict:
    settings = load_settings(Path("/nonexistent/caa.toml"), db=db,
                             accounts=[{"id": a, "regions": estate.regions} for a in estate.accounts])
    n_versions = sum(len(p.versions) for d in estate.domains for r in d.repositories for p in r.packages)
    n_packages = sum(len(r.packages) for d in estate.domains for r in d.repositories)
    out = {"versions": n_versions, "packages": n_packages}
    for run in ("first", "second"):
        fake = FakeCodeArtifact(estate, as_of=estate.end)
        t0 = time.monotonic()
        with store.writer(db) as con:
            ctx = RunContext(settings=settings, con=con, now=estate.end, clients=FakeCodeArtifactClients(settings, fake),
                             show_progress=False)
            code = run_collectors([inventory.SPEC], ctx)
        if code != 0:
            raise SystemExit(f"bench: the inventory collector failed on the {run} run")
        calls = sum(fake.calls.values())
        out[run] = {"secs": time.monotonic() - t0, "calls": calls, "calls_per_version": calls / n_versions,
                    "by_operation": dict(fake.calls)}
    return out
