"""Dashboard figures at scale for `make bench`: every analytics query the pages run, timed on a demo estate
of 10M events, and each page's load time there.

Queries: every default load of every page (ui.precompute.default_loads) is computed live on the
reader snapshot, with no filter and again with a filter (one domain, the last 90 days), and each
`analytics.queries.run` call is timed; the figure is the slowest call. Pages: `bench.quality.page_times`
on the same estate (which first migrates it and precomputes its views, as a collection does).
The estate is built once by the demo (real collectors) and cached under data/bench/quality/.

Reads: the bench's demo estates. Writes nothing but its report rows.
"""

from __future__ import annotations

import os
import statistics
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from analytics import cleanup, queries
from analytics.filters import Filters
from bench import quality
from core import store
from core.settings import load_settings
from ui import precompute

TARGET_QUERY_S = 0.3
TARGET_PAGE_S = 1.5


@contextmanager
def timed_queries(into: dict[str, list[float]]):
    """Time every queries.run and queries.run_objects call (each analytics module imported them by name, so
    patch those too)."""
    import sys

    def timed(real):
        def run(con, name, **params):
            t = time.perf_counter()
            try:
                return real(con, name, **params)
            finally:
                into.setdefault(name, []).append(time.perf_counter() - t)
        return run

    patched = []
    for attr in ("run", "run_objects"):
        real = getattr(queries, attr)
        fake = timed(real)
        for m in list(sys.modules.values()):
            if getattr(m, "__name__", "").startswith("analytics") and getattr(m, attr, None) is real:
                setattr(m, attr, fake)
                patched.append((m, attr, real))
    try:
        yield
    finally:
        for m, attr, real in patched:
            setattr(m, attr, real)


def query_times(db: Path, runs: int = 3) -> dict:
    """{'unfiltered'|'filtered': {query: median seconds of its slowest call per run}} and the events count."""
    settings = load_settings(Path(os.devnull), db=db)  # defaults, as the page timer
    out: dict[str, dict[str, float]] = {}
    with store.open_reader(db) as con:
        events = con.execute("SELECT count(*) FROM events").fetchone()[0]
        latest = con.execute("SELECT max(event_at) FROM events").fetchone()[0].date()
        domain = con.execute("SELECT domain FROM events GROUP BY domain ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
        for label, filters in (("unfiltered", Filters()),
                               ("filtered", Filters(domains=(domain,), start=latest - timedelta(days=89),
                                                    end=latest))):
            per_run: list[dict[str, float]] = []
            for _ in range(runs):
                cleanup.forget_facts()  # every run computes every query live (a kept judging skips its reads)
                filters.apply(con)
                seen: dict[str, list[float]] = {}
                with timed_queries(seen):
                    for load, args in precompute.default_loads(con, settings):
                        load(con, settings, *args)
                per_run.append({q: max(ts) for q, ts in seen.items()})
            out[label] = {q: statistics.median(r[q] for r in per_run) for q in per_run[0]}
        Filters().apply(con)
    return {"events": events, "queries": out}


def rows(q: dict, pages: dict[str, dict]) -> list[dict]:
    out = []
    for label, times in q["queries"].items():
        slow = sorted(times.items(), key=lambda kv: -kv[1])
        over = [name for name, t in slow if t >= TARGET_QUERY_S]
        out.append({
            "figure": f"Dashboard queries at {q['events']:,} events, {label} ({len(times)} distinct queries; "
                      "every default load of every page, computed live)",
            "value": f"slowest {slow[0][0]} {slow[0][1] * 1000:.0f} ms; then "
                     + ", ".join(f"{n} {t * 1000:.0f}" for n, t in slow[1:4]) + " ms"
                     + (f"; over target: {', '.join(over)}" if over else ""),
            "floor": "", "ratio": None, "target": f"< {TARGET_QUERY_S * 1000:.0f} ms each", "ok": not over})
    for page, t in pages.items():
        if page == "refresh":
            out.append({"figure": f"Dashboard views precomputed after a collection at {q['events']:,} events",
                        "value": f"{t['views']} views, {t['secs']:.1f} s", "floor": "", "ratio": None,
                        "target": "report", "ok": None})
            continue
        out.append({"figure": f"Dashboard page '{page}' at {q['events']:,} events (AppTest)",
                    "value": f"cold {t['cold']:.2f} s, warm {t['warm']:.2f} s (the server's preload before it: "
                             f"{t['start']:.2f} s)", "floor": "", "ratio": None,
                    "target": f"< {TARGET_PAGE_S} s ({quality.COLD})",
                    "ok": t["cold"] < TARGET_PAGE_S})
    return out
