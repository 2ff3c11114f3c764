"""`make bench`: CloudTrail ingest and inventory figures on this machine, each a median of BENCH_RUNS runs.

    python -m bench.run [--events N] [--runs N] [--mixed-days N] [--s3-days N] [--no-s3] [--no-inventory]

Every collector run is a fresh `caa collect cloudtrail` process (under /usr/bin/time -v for CPU and peak
RSS). Every speed is also given against a floor measured in the same round on the same files: parse =
decompress + JSON-parse only (isal + msgspec, 2 processes); S3 = moto's raw GET throughput. Rounds
interleave the scenarios, so the machine's drift hits them alike. Correctness is asserted on every run:
count(*) == count(DISTINCT event_id) == the generator's ground truth.

Reads/writes data/bench/ (cached data sets, scratch stores under work/); writes data/bench/latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
from contextlib import redirect_stdout
from datetime import timedelta
from io import StringIO
from pathlib import Path

import duckdb

from bench import datasets, floors
from bench.collector import collect, events_check, freeze
from bench.s3 import MotoS3
from core import lake, store
from core.clock import utc_now

BASE = Path(__file__).resolve().parents[1] / "data" / "bench"
MB = 1e6


def machine() -> dict:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    mem = next(int(ln.split()[1]) * 1024 for ln in Path("/proc/meminfo").read_text().splitlines()
               if ln.startswith("MemTotal"))
    return {"cores": os.cpu_count(), "memory_gib": round(mem / 2**30, 1), "cpu": cpu,
            "python": platform.python_version(), "duckdb": duckdb.__version__, "platform": platform.platform(),
            "date": utc_now().strftime("%Y-%m-%dT%H:%M:%SZ"), "load_avg_at_start": os.getloadavg()}


def _point(link: Path, target: Path) -> None:
    tmp = link.with_name(link.name + ".tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target.resolve())
    os.replace(tmp, link)


def _fresh(db: Path) -> Path:
    for p in db.parent.glob(db.name + "*"):
        p.unlink()
    db.with_name(db.stem + ".read.duckdb").unlink(missing_ok=True)
    for folder in lake.folders(db):
        shutil.rmtree(folder, ignore_errors=True)
    return db


def store_bytes(db: Path) -> int:
    """The store's size: its DuckDB file and the live files of its lake (retired ones wait out their grace)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        lake_bytes = con.execute("SELECT coalesce(sum(bytes), 0) FROM lake_files WHERE retired_at IS NULL").fetchone()[0]
    finally:
        con.close()
    return db.stat().st_size + int(lake_bytes)


def _expect(db: Path, want: int, what: str) -> None:
    got = events_check(db)
    if got != (want, want):
        raise SystemExit(f"bench: {what}: count(*), count(DISTINCT event_id) = {got}, expected {want} of each")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench")
    ap.add_argument("--events", type=int, default=int(os.environ.get("BENCH_EVENTS") or 5_000_000))
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS") or 3))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--mixed-days", type=int, default=14)
    ap.add_argument("--s3-days", type=int, default=31)
    ap.add_argument("--no-s3", action="store_true")
    ap.add_argument("--no-inventory", action="store_true")
    ap.add_argument("--inventory-versions", type=int, default=100_000)
    ap.add_argument("--no-quality", action="store_true", help="skip spike P/R and dashboard page timings")
    ap.add_argument("--scale-sizes", default=os.environ.get("BENCH_SCALE_SIZES", "5000000,50000000,200000000"),
                    help="store sizes (events) for the increment/publish/disk/query figures; empty: skip")
    ap.add_argument("--dashboard-events", type=int, default=int(os.environ.get("BENCH_DASHBOARD_EVENTS") or 10_000_000),
                    help="time every dashboard query and page on a demo estate this big (0: skip)")
    args = ap.parse_args(argv)

    BASE.mkdir(parents=True, exist_ok=True)
    info = machine()
    pure_dir, truth = datasets.pure(BASE, args.seed, args.events)
    pure_trails = pure_dir / "trails"
    incr_target = min(60_000, max(1_000, args.events // 80))
    incr_trails, combined, incr_events, incr_day = datasets.increment(pure_dir, incr_target)
    mixed_trails, mixed_truth = datasets.mixed(BASE, pure_dir, args.mixed_days)
    small_trails, small_truth = datasets.small(BASE, pure_dir)
    pure_files, mixed_files = datasets.trail_files(pure_trails), datasets.trail_files(mixed_trails)
    small_files = datasets.trail_files(small_trails)
    s3_files = datasets.first_days(pure_trails, args.s3_days)
    start = (min(datasets.day_of(p) for p in pure_files) - timedelta(days=1)).isoformat()
    events = truth["events_unique"]

    work = BASE / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    freeze(work / "code")
    src = work / "src"  # one source path for every run, so the ledger and watermark carry over
    r: dict[str, list] = {}

    def add(key: str, value: float) -> None:
        r.setdefault(key, []).append(value)

    s3 = None if args.no_s3 else MotoS3(work / "moto.log")
    try:
        if s3:
            s3_truth = s3.upload(pure_trails, s3_files)
        for i in range(args.runs):
            print(f"bench: round {i + 1}/{args.runs}", flush=True)
            add("load_avg", os.getloadavg()[0])  # other processes on the machine (the runs use both cores)
            fl = floors.parse_floor(pure_files)
            add("floor_secs", fl["secs"])
            _point(src, pure_trails)
            db = _fresh(work / "pure" / "caa.duckdb") if (work / "pure").exists() else work / "pure" / "caa.duckdb"
            db.parent.mkdir(exist_ok=True)
            got = collect(db, str(src), since=start)
            _expect(db, events, "pure ingest")
            add("ingest_secs", got["wall"]), add("ingest_cpu", got["cpu"]), add("ingest_rss", got["rss_bytes"])
            add("store_bytes", store_bytes(db))
            print(f"  ingest {got['wall']:.1f}s ({events / got['wall']:,.0f} ev/s), floor {fl['secs']:.1f}s, "
                  f"rss {got['rss_bytes'] / 2**20:.0f} MiB", flush=True)

            again = collect(db, str(src))
            add("rerun_secs", again["wall"])
            incr_db = work / "incr.duckdb"
            _fresh(incr_db)
            store.copy_store(db, incr_db)
            _point(src, combined)
            inc = collect(incr_db, str(src))
            _point(src, pure_trails)
            _expect(incr_db, events + incr_events, "increment")
            add("incr_secs", inc["wall"]), add("incr_rows", inc["rows"])
            print(f"  re-run {again['wall']:.2f}s, increment {inc['wall']:.2f}s ({inc['rows']} rows)", flush=True)

            def other_trail(name: str, files: list[Path], trails: Path, want: int) -> dict:
                """Ingest `trails` into a fresh store, after the parse floor on its files: {floor, wall, rss}."""
                fl = floors.parse_floor(files)
                db = _fresh(work / f"{name}.duckdb")
                _point(src, trails)
                got = collect(db, str(src), since=start)
                _point(src, pure_trails)
                _expect(db, want, f"{name} ingest")
                add(f"{name}_floor_secs", fl["secs"]), add(f"{name}_secs", got["wall"])
                add(f"{name}_rss", got["rss_bytes"])
                print(f"  {name} {got['wall']:.1f}s, floor {fl['secs']:.1f}s", flush=True)
                return fl

            mfl = other_trail("mixed", mixed_files, mixed_trails, mixed_truth["events_unique"])
            sfl = other_trail("small", small_files, small_trails, small_truth["events_unique"])

            if s3:
                gfl = s3.get_floor()
                add("s3_floor_secs", gfl["secs"])
                sdb = _fresh(work / "s3.duckdb")
                got = collect(sdb, s3.source, since=start, env=s3.env)
                _expect(sdb, s3_truth["events_unique"], "S3 ingest")
                add("s3_secs", got["wall"])
                before = s3.gets()
                again = collect(sdb, s3.source, since=start, env=s3.env)
                add("s3_rerun_secs", again["wall"]), add("s3_rerun_gets", s3.gets() - before)
                print(f"  s3 {got['wall']:.1f}s, GET floor {gfl['secs']:.1f}s, re-run {again['wall']:.2f}s", flush=True)
    finally:
        if s3:
            s3.stop()
        _point(src, pure_trails)

    inv = None
    if not args.no_inventory:
        from bench import inventory

        with redirect_stdout(StringIO()):
            estate = inventory.big_estate(args.seed, datasets.END, args.inventory_versions)
            inv = inventory.collect_twice(_fresh(work / "inventory.duckdb"), estate)

    quality = None
    if not args.no_quality:
        from bench import quality as q
        from bench import spikes as spike_bench
        from dashboard import PAGES

        print("bench: spike detectors (two traffic models) and dashboard pages", flush=True)
        spike_q = spike_bench.quality(BASE, q.EVENTS)
        db, _ = q.demo_estate(BASE, q.SEEDS[0], q.EVENTS)
        quality = {"spikes": spike_q, "pages": q.page_times(db, list(PAGES))}
        if args.dashboard_events:
            from bench import dashboard as dash

            print(f"bench: dashboard queries and pages at {args.dashboard_events:,} events", flush=True)
            big, _ = q.demo_estate(BASE, q.SEEDS[0], args.dashboard_events)
            quality["scale"] = {"pages": q.page_times(big, list(PAGES)), **dash.query_times(big, args.runs)}

    scaled, ledger = [], None
    if args.scale_sizes:
        from bench import scale

        for n in (int(x) for x in args.scale_sizes.split(",") if x):
            print(f"bench: a store of {n:,} events (increment, publish, disk, queries)", flush=True)
            scaled.append(scale.measure(n, args.runs, (incr_trails, incr_events, incr_day)))
        print(scale.render(scaled), flush=True)
        print("bench: a year of the trail-file ledger (publish, listing)", flush=True)
        ledger = scale.ledger_figure(args.runs)
    med = {k: statistics.median(v) for k, v in r.items()}
    sizes = {"pure": {"files": len(pure_files), "events": events, **_bytes(fl)},
             "mixed": {"files": len(mixed_files), "events": mixed_truth["events_unique"], **_bytes(mfl)},
             "small": {"files": len(small_files), "events": small_truth["events_unique"], **_bytes(sfl)},
             "increment": {"events": incr_events, "day": str(incr_day)}}
    if s3:
        sizes["s3"] = {"files": len(s3_files), "events": s3_truth["events_unique"], "gz_bytes": s3_truth["gz_bytes"]}
    rows = table(med, sizes, inv, args)
    if quality:
        from bench import quality as q
        from bench import spikes as spike_bench

        rows += spike_bench.rows(quality["spikes"]) + q.rows(quality["pages"], q.SEEDS[0])
        if "scale" in quality:
            from bench import dashboard as dash

            rows += dash.rows(quality["scale"], quality["scale"]["pages"])
    if scaled:
        from bench import scale

        rows += scale.rows(scaled) + (scale.ledger_rows(ledger) if ledger else [])
    info["load_avg_per_round"] = r["load_avg"]
    text = render(rows, info, args)
    print(text)
    out = {"machine": info, "args": vars(args), "data": sizes, "runs": r, "median": med, "inventory": inv,
           "quality": quality, "scale": scaled, "ledger": ledger, "table": rows}
    (BASE / "latest.json").write_text(json.dumps(out, indent=2, default=str))
    print(f"bench: wrote {BASE / 'latest.json'}")
    return 0


def _bytes(fl: dict) -> dict:
    return {"records": fl["records"], "gz_bytes": fl["gz_bytes"], "raw_bytes": fl["raw_bytes"]}


def table(m: dict, d: dict, inv: dict | None, args) -> list[dict]:
    p, x = d["pure"], d["mixed"]
    ev_s = p["events"] / m["ingest_secs"]
    floor_ev_s = p["events"] / m["floor_secs"]
    rows = [
        {"figure": f"CloudTrail ingest, local, {p['events']:,} events ({p['files']:,} files, "
                   f"{p['gz_bytes'] / MB:,.0f} MB gz, {p['raw_bytes'] / MB:,.0f} MB JSON)",
         "value": f"{ev_s:,.0f} events/s ({m['ingest_secs']:.1f} s, {p['raw_bytes'] / MB / m['ingest_secs']:,.0f} MB/s, "
                  f"{m['ingest_cpu']:.0f} CPU-s)",
         "floor": f"{floor_ev_s:,.0f} events/s ({m['floor_secs']:.1f} s)",
         "ratio": ev_s / floor_ev_s, "target": ">= 150k events/s; >= 0.5 of floor",
         "ok": ev_s >= 150_000 and ev_s / floor_ev_s >= 0.5},
        {"figure": f"Mixed trail, CodeArtifact 5% of {x['records']:,} records ({x['files']:,} files, "
                   f"{x['raw_bytes'] / MB:,.0f} MB JSON)",
         "value": f"{x['raw_bytes'] / MB / m['mixed_secs']:,.0f} MB/s ({m['mixed_secs']:.1f} s; "
                  f"{x['events'] / m['mixed_secs']:,.0f} CodeArtifact events/s)",
         "floor": f"{x['raw_bytes'] / MB / m['mixed_floor_secs']:,.0f} MB/s ({m['mixed_floor_secs']:.1f} s)",
         "ratio": m["mixed_floor_secs"] / m["mixed_secs"],
         "target": f">= pure trail's {p['raw_bytes'] / MB / m['ingest_secs']:,.0f} MB/s",
         "ok": x["raw_bytes"] / m["mixed_secs"] >= p["raw_bytes"] / m["ingest_secs"]},
        {"figure": f"Small files (a quiet account's trail): {d['small']['files']:,} files of 10 records, "
                   f"{d['small']['events']:,} events ({d['small']['raw_bytes'] / MB:,.0f} MB JSON)",
         "value": f"{d['small']['events'] / m['small_secs']:,.0f} events/s ({m['small_secs']:.1f} s)",
         "floor": f"{d['small']['events'] / m['small_floor_secs']:,.0f} events/s ({m['small_floor_secs']:.1f} s)",
         "ratio": m["small_floor_secs"] / m["small_secs"], "target": "report", "ok": None},
        {"figure": f"Re-run with nothing new ({p['events']:,}-event store)", "value": f"{m['rerun_secs']:.2f} s",
         "floor": "", "ratio": None, "target": "< 2 s", "ok": m["rerun_secs"] < 2},
        {"figure": f"One day's increment ({d['increment']['events']:,} events) into that store",
         "value": f"{m['incr_secs']:.2f} s", "floor": "", "ratio": None, "target": "< 3 s", "ok": m["incr_secs"] < 3},
        {"figure": "Store size (the DuckDB file after CHECKPOINT and the live files of its lake)",
         "value": f"{m['store_bytes'] / p['events']:.1f} bytes/event ({m['store_bytes'] / MB:,.0f} MB); "
                  "count(*) = count(DISTINCT event_id) = ground truth",
         "floor": "", "ratio": None, "target": "<= 60 bytes/event", "ok": m["store_bytes"] / p["events"] <= 60},
        {"figure": f"Peak RSS of the collector, {p['events']:,}-event ingest",
         "value": f"{m['ingest_rss'] / 2**20:,.0f} MiB (mixed: {m['mixed_rss'] / 2**20:,.0f} MiB)",
         "floor": "", "ratio": None, "target": "< 1 GiB", "ok": m["ingest_rss"] < 2**30},
    ]
    if "s3" in d:
        s = d["s3"]
        rows.append({
            "figure": f"S3 source (moto server), first {args.s3_days} days: {s['events']:,} events, {s['files']:,} objects",
            "value": f"{s['events'] / m['s3_secs']:,.0f} events/s ({m['s3_secs']:.1f} s, "
                     f"{s['gz_bytes'] / MB / m['s3_secs']:,.1f} MB/s gz)",
            "floor": f"moto GET {s['gz_bytes'] / MB / m['s3_floor_secs']:,.1f} MB/s ({m['s3_floor_secs']:.1f} s)",
            "ratio": m["s3_floor_secs"] / m["s3_secs"], "target": "report; 12 GETs in flight", "ok": None})
        rows.append({"figure": "S3 re-run (ledger: known keys + ETags)",
                     "value": f"{m['s3_rerun_secs']:.2f} s, {m['s3_rerun_gets']:.0f} GETs", "floor": "",
                     "ratio": None, "target": "0 GETs", "ok": m["s3_rerun_gets"] == 0})
    if inv:
        rows.append({
            "figure": f"Inventory of an unchanged estate ({inv['versions']:,} versions, {inv['packages']:,} packages)",
            "value": f"first {inv['first']['calls_per_version']:.2f} calls/version ({inv['first']['calls']:,}, "
                     f"{inv['first']['secs']:.0f} s); second {inv['second']['calls_per_version']:.3f} "
                     f"({inv['second']['calls']:,}, {inv['second']['secs']:.0f} s)",
            "floor": "", "ratio": None, "target": "2nd run: calls grow with packages and pages",
            "ok": inv["second"]["calls"] < inv["packages"] * 3})
    return rows


def render(rows: list[dict], info: dict, args) -> str:
    head = (f"caa bench: {info['cores']} cores, {info['memory_gib']} GiB, {info['cpu']}; Python {info['python']}, "
            f"DuckDB {info['duckdb']}; {info['date']}; median of {args.runs} run(s); 1-min load average at "
            f"each round's start {', '.join(f'{x:.1f}' for x in info['load_avg_per_round'])}")
    lines = [head, "", "| figure | value | floor | vs floor | target | met |", "|---|---|---|---|---|---|"]
    for row in rows:
        ratio = "" if row["ratio"] is None else f"{row['ratio']:.2f}x"
        ok = {True: "yes", False: "NO", None: "-"}[row["ok"]]
        lines.append(f"| {row['figure']} | {row['value']} | {row['floor']} | {ratio} | {row['target']} | {ok} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
