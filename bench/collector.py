"""Run `caa collect cloudtrail` as its own process under /usr/bin/time -v and read back what it did.

Reads and writes the store given; returns wall seconds, CPU seconds, peak RSS and the summary line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
_code = ROOT  # where `python -m cli` runs from; freeze() points it at a copy


def freeze(dest: Path) -> Path:
    """Copy the code the collector runs (cli, core/, collectors/, analytics/, ui/, demo/) to `dest` and run
    every collector from there: the whole bench measures one version, whatever changes meanwhile."""
    global _code
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for item in ROOT.iterdir():
        if item.suffix == ".py" and item.is_file():
            shutil.copy2(item, dest / item.name)
        elif item.is_dir() and item.name in ("core", "collectors", "analytics", "ui", "demo"):
            shutil.copytree(item, dest / item.name, ignore=shutil.ignore_patterns("__pycache__"))
    _code = dest
    return dest


def collect(db: Path, source: str, since: str | None = None, env: dict | None = None) -> dict:
    # --no-refresh: these figures time the collector; the dashboard views' refresh has its own figure
    # (bench/quality.py, bench/dashboard.py).
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "cli", "collect", "cloudtrail", "--source", source,
           "--db", str(db), "--no-refresh"]
    if since:
        cmd += ["--since", since]
    full_env = {k: v for k, v in os.environ.items() if k != "CAA_CONFIG"}
    full_env.update(env or {})
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=_code, env=full_env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"bench: the collector failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}")

    def num(label: str) -> float:
        m = re.search(rf"{re.escape(label)}: ([\d.]+)", proc.stderr)
        return float(m.group(1)) if m else float("nan")

    line = next((x for x in proc.stdout.splitlines() if x.startswith("collected cloudtrail")), "")
    rows = re.search(r"rows=(\d+)", line)
    return {"wall": wall, "cpu": num("User time (seconds)") + num("System time (seconds)"),
            "rss_bytes": int(num("Maximum resident set size (kbytes)") * 1024),
            "rows": int(rows.group(1)) if rows else 0, "summary": line}


def events_check(db: Path) -> tuple[int, int]:
    """(count(*), count(DISTINCT event_id)) of the store's events."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone()
    finally:
        con.close()
