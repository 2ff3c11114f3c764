"""Where a CloudTrail ingest's time goes: `python -m bench.profile <trail dir> [--since YYYY-MM-DD]`.

Runs `caa collect cloudtrail` in this process on a fresh store under data/bench/work/profile/ and prints,
for each phase, the CPU seconds of this process (all of DuckDB's threads) and the wall seconds. The
collector decodes the next batch while DuckDB loads this one; here each batch is decoded inside its
load, so each phase's CPU is its own. The parse floor (isal + msgspec on both cores, bench/floors.py) is
measured on the same files just before, for scale.

Reads: the trail directory. Writes: data/bench/work/profile/.
"""

from __future__ import annotations

import argparse
import functools
import resource
import shutil
import sys
import time
from pathlib import Path

from bench import datasets, floors

ROOT = Path(__file__).resolve().parents[1]
PHASES = [  # (module, function, label): nested phases are also counted in their parent
    ("collectors.cloudtrail_load", "decode", "inflate (isal) + decode (native), both cores"),
    ("collectors.cloudtrail_load", "commit_stage", "dedupe + lake write + ledger + commit"),
    ("core.lake", "append_events", "  of which: lake write (sort, Parquet per day, catalog)"),
    ("analytics.rollups", "refresh", "rollups of the loaded days (before each publish)"),
    ("core.lake", "replace_days", "  of which: rollup files (retire, COPY, register)"),
    ("core.lake", "_register", "    of which: catalog rows of the files written"),
    ("core.lake", "compact", "lake compaction (before each publish)"),
    ("core.store", "publish_snapshot", "publish (copy of the small tables)"),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.profile")
    ap.add_argument("trails")
    ap.add_argument("--since", default="1970-01-01")
    args = ap.parse_args(argv)
    files = datasets.trail_files(Path(args.trails))
    floor = floors.parse_floor(files)["secs"]
    import importlib

    spent: dict[str, list[float]] = {}
    for module, name, label in PHASES:
        mod = importlib.import_module(module)
        setattr(mod, name, _timed(getattr(mod, name), spent.setdefault(label, [0.0, 0.0])))
    from collectors import cloudtrail, cloudtrail_load
    from collectors.trailfiles import FileFormat

    cloudtrail.JSON_FILES = FileFormat(read_ahead=lambda files: None, close=lambda _: None,
                                       load=lambda con, files, ledger, _: cloudtrail_load.load_files(con, files, ledger),
                                       rejected_why=cloudtrail.JSON_FILES.rejected_why,
                                       max_bytes=cloudtrail.JSON_FILES.max_bytes)

    work = ROOT / "data" / "bench" / "work" / "profile"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    import cli

    cpu0, wall0 = time.process_time(), time.perf_counter()
    sys.argv = ["caa", "collect", "cloudtrail", "--source", args.trails, "--db", str(work / "caa.duckdb"),
                "--no-refresh", "--since", args.since]
    try:
        cli.main()
    except SystemExit:
        pass
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(f"\n{len(files):,} files; parse floor {floor:.1f} s wall ({2 * floor:.1f} CPU-s on 2 cores)")
    print(f"{'phase':58s} {'CPU-s':>7s} {'wall s':>7s}")
    for label, (c, w) in spent.items():
        print(f"{label:58s} {c:7.1f} {w:7.1f}")
    print(f"{'the collector process, in all':58s} {cpu:7.1f} {wall:7.1f}")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")
    return 0


def _timed(fn, acc: list[float]):
    @functools.wraps(fn)
    def run(*a, **k):
        c, w = time.process_time(), time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            acc[0] += time.process_time() - c
            acc[1] += time.perf_counter() - w
    return run


if __name__ == "__main__":
    raise SystemExit(main())
