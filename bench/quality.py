"""Quality figures for `make bench`: the demo estates the spike figures (bench/spikes.py) and the page
timings share, the time to precompute the dashboard's default views after a collection, and each dashboard
page's load time under AppTest (cold: the page's first run in a fresh process that has done what `caa
dashboard`'s server does before it serves, ui/serve.py preload, timed as its own figure, with an empty cache,
reading the precomputed views; warm: the same page again, as after an interaction). Estates are cached under
data/bench/quality/.

Reads: the bench's demo estates and their ground truth. Writes: their page_cache (a refresh).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

SEEDS = (11, 12, 14)
COLD = "cold = the page's first run in a fresh server process, after its preload; empty cache"
EVENTS = 200_000
ROOT = Path(__file__).resolve().parents[1]

_PAGE_TIMER = """
import json, sys, time
from streamlit.testing.v1 import AppTest
t0 = time.perf_counter()
from ui.serve import preload
preload()  # what `caa dashboard`'s server process does before it serves the first page
start = time.perf_counter() - t0
page = sys.argv[1]
times = []
for _ in range(2):
    at = AppTest.from_file(sys.argv[2])
    at.query_params["page"] = page
    t0 = time.perf_counter()
    at.run(timeout=120)
    times.append(time.perf_counter() - t0)
    assert not at.exception, [e.value for e in at.exception]
print(json.dumps({"cold": times[0], "warm": times[1], "start": start}))
"""


def demo_hash() -> str:
    """Of the demo generator's code: an estate written by another version of it is not this one's."""
    h = hashlib.sha256()
    for path in sorted((ROOT / "demo").glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:10]


def demo_estate(base: Path, seed: int, events: int) -> tuple[Path, dict]:
    from demo.run import run_demo

    folder = base / "quality" / f"seed{seed}-events{events}-{demo_hash()}"  # a changed generator builds anew
    db = folder / "caa.duckdb"
    if not (folder / "ok").exists():
        folder.mkdir(parents=True, exist_ok=True)
        with redirect_stdout(StringIO()):
            if run_demo(db, seed=seed, events=events, show_progress=False) != 0:
                raise SystemExit(f"bench: building the demo estate seed={seed} failed")
        (folder / "ok").touch()
    else:
        from analytics import rollups

        rollups.upgrade(db)  # an estate cached by an older caa, as a collection would
    return db, json.loads(db.with_name("caa.ground_truth.json").read_text())


def refresh_views(db: Path) -> dict:
    """Precompute the estate's dashboard views as a collection does (`caa refresh`), with the settings the
    page processes read; returns {"views", "secs"}. The demo build refreshed already, but maybe with another
    caa.toml, or (an estate cached under data/bench/) before views were precomputed at all."""
    from analytics import rollups
    from core import store
    from core.settings import load_settings
    from ui import precompute

    settings = load_settings(Path(os.devnull), db=db)
    with rollups.writer(db) as con:
        summary = precompute.refresh(con, settings)
        store.publish_now(con)
    print(f"  {summary.line}", flush=True)  # names any view that failed (its page then computes it cold)
    return {"views": summary.views, "secs": summary.seconds}


def page_times(db: Path, pages: list[str]) -> dict[str, dict]:
    """Each page's cold and warm load, after refresh_views (under the key "refresh")."""
    env = {**os.environ, "CAA_DB": str(db), "CAA_CONFIG": os.devnull}  # defaults, whatever caa.toml is around
    out = {"refresh": refresh_views(db)}
    for page in pages:
        res = subprocess.run([sys.executable, "-c", _PAGE_TIMER, page, str(ROOT / "dashboard.py")], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=600)
        if res.returncode != 0:
            raise SystemExit(f"bench: page {page} failed: {res.stderr.strip().splitlines()[-1:]}")
        out[page] = json.loads(res.stdout.strip().splitlines()[-1])
        print(f"  page {page}: cold {out[page]['cold']:.2f} s, warm {out[page]['warm']:.2f} s (server's preload "
              f"{out[page]['start']:.2f} s)", flush=True)
    return out


def rows(pages: dict[str, dict], seed: int) -> list[dict]:
    out = []
    refresh = pages.get("refresh")
    if refresh:
        out.append({"figure": f"Dashboard views precomputed after a collection (demo estate seed "
                              f"{seed})", "value": f"{refresh['views']} views, {refresh['secs']:.1f} s",
                    "floor": "", "ratio": None, "target": "report", "ok": None})
    for page, t in pages.items():
        if page == "refresh":
            continue
        out.append({"figure": f"Dashboard page '{page}' (AppTest, demo estate seed {seed})",
                    "value": f"cold {t['cold']:.2f} s, warm {t['warm']:.2f} s (the server's preload before it: "
                    f"{t['start']:.2f} s)", "floor": "", "ratio": None, "target": f"< 1 s ({COLD})",
                    "ok": t["cold"] < 1.0})
    return out
