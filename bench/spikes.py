"""Spike-detector quality for `make bench` (and alone: `python -m bench.spikes`), on two traffic models:

- the demo's (demo/traffic.py): seeded estates of EVENTS events, their injected download spikes and auth
  bursts (demo/truth.py);
- an independent one (tests/fixtures/traffic2.py: another diurnal and weekly shape, holidays, packages in
  several repositories, CI loops, short bursts, repository syncs, surges spread over a domain, slow ramps
  and returning packages that are not spikes), read by the real collector.

For each: precision and recall overall, recall per injected kind, precision per signal that fired (of the
rows each signal produced, how many match a truth), and quiet-pattern alarms. Then the false alarm rate:
the independent model's 1,000-package estate without injected spikes, alarms per week. Estates are cached
under data/bench/spikes/ (traffic2) and data/bench/quality/ (demo).

Reads: the estates. Writes: their stores and trails (cached).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
import time
from datetime import date
from pathlib import Path

import pandas as pd

from bench.quality import SEEDS as DEMO_SEEDS  # the estates the page timings share

TRAFFIC2_SEEDS = (1, 2, 3, 4)
QUIET_PACKAGES = 1_000
TARGET = 0.9


def traffic2_estate(base: Path, seed: int, packages: int = 300, inject: bool = True) -> tuple[Path, dict]:
    """A traffic2 trail collected into a store by the cloudtrail collector (cached)."""
    from analytics import rollups
    from collectors import cloudtrail
    from collectors.base import RunContext, run_collectors
    from core.clock import pinned_clock
    from core.settings import load_settings
    from tests.fixtures import traffic2

    folder = base / "spikes" / f"traffic2-seed{seed}-packages{packages}-{'spikes' if inject else 'quiet'}"
    db = folder / "caa.duckdb"
    if not (folder / "ok").exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        truth = traffic2.generate(folder / "trail", seed, packages=packages, inject=inject)
        end = pd.Timestamp(truth["end"]).to_pydatetime()
        settings = load_settings(Path(os.devnull), db=db)
        with pinned_clock(end), rollups.writer(db) as con, \
                contextlib.redirect_stdout(io.StringIO()):
            ctx = RunContext(settings=settings, con=con, show_progress=False, now=end, since=date(2000, 1, 1),
                             source=str(folder / "trail"))
            if run_collectors([cloudtrail.SPEC], ctx) != 0:
                raise SystemExit(f"bench: collecting the traffic2 trail seed={seed} failed")
        shutil.rmtree(folder / "trail" / "AWSLogs")  # the store holds it now; keep truth.json
        (folder / "ok").touch()
    else:
        rollups.upgrade(db)  # a store cached by an older caa, as a collection would
    return db, json.loads((folder / "trail" / "truth.json").read_text())


def score(db: Path, truth: dict) -> dict:
    """evaluate() of detect_spikes() with default settings (precision per signal included), and its time."""
    from analytics import spike_eval, spikes
    from core import store
    from core.settings import load_settings

    with store.open_reader(db) as con:
        t0 = time.perf_counter()
        found = spikes.detect_spikes(con, load_settings(Path(os.devnull)))
        secs = time.perf_counter() - t0
    return {**spike_eval.evaluate(found, truth), "detect_secs": secs}


def quality(base: Path, demo_events: int = 200_000) -> dict:
    from bench.quality import demo_estate

    out: dict = {"demo": [], "traffic2": []}
    for seed in DEMO_SEEDS:
        db, truth = demo_estate(base, seed, demo_events)
        out["demo"].append({"seed": seed, **score(db, truth)})
        _print("demo", seed, out["demo"][-1])
    for seed in TRAFFIC2_SEEDS:
        db, truth = traffic2_estate(base, seed)
        out["traffic2"].append({"seed": seed, **score(db, truth)})
        _print("traffic2", seed, out["traffic2"][-1])
    db, truth = traffic2_estate(base, 1, packages=QUIET_PACKAGES, inject=False)
    r = score(db, truth)
    weeks = (pd.Timestamp(truth["end"]) - pd.Timestamp(truth["start"])).days / 7
    # the detector needs baseline_weeks (4) of history: it can only alarm after them
    judged = weeks - 4
    out["quiet"] = {"packages": QUIET_PACKAGES, "events": truth["events"], "weeks": judged,
                    "alarms": r["rows"], "per_week": r["rows"] / judged, "detect_secs": r["detect_secs"]}
    print(f"  spikes quiet estate ({QUIET_PACKAGES:,} packages, {truth['events']:,} events): {r['rows']} alarms "
          f"in {judged:.1f} weeks", flush=True)
    return out


def _print(model: str, seed: int, r: dict) -> None:
    kinds = ", ".join(f"{k} R {v['recall']:.2f}" for k, v in r["by_spike_kind"].items())
    print(f"  spikes {model} seed {seed}: downloads P {r['by_kind']['download']['precision']:.2f} "
          f"R {r['by_kind']['download']['recall']:.2f} ({kinds}); auth P {r['by_kind']['auth']['precision']:.2f} "
          f"R {r['by_kind']['auth']['recall']:.2f}; false alarms {r['false_alarms']}, on quiet patterns "
          f"{r['quiet_alarms']}; detect {r['detect_secs']:.1f} s", flush=True)


def rows(q: dict) -> list[dict]:
    out = []
    for model, runs in (("demo model", q["demo"]), ("independent model (traffic2)", q["traffic2"])):
        seeds = ", ".join(str(r["seed"]) for r in runs)
        low = {k: min(r["by_kind"]["download"][k] for r in runs) for k in ("precision", "recall")}
        auth = {k: min(r["by_kind"]["auth"][k] for r in runs) for k in ("precision", "recall")}
        kinds = sorted({k for r in runs for k in r["by_spike_kind"]})
        recall = {k: min(r["by_spike_kind"][k]["recall"] for r in runs if k in r["by_spike_kind"]) for k in kinds}
        signals = sorted({k for r in runs for k in r["by_signal"]})
        sig_p = {k: sum(r["by_signal"][k]["precision"] * r["by_signal"][k]["rows"] for r in runs if k in r["by_signal"])
                 / sum(r["by_signal"][k]["rows"] for r in runs if k in r["by_signal"]) for k in signals}
        value = (f"lowest over seeds: downloads P {low['precision']:.2f} R {low['recall']:.2f}"
                 + (f", auth P {auth['precision']:.2f} R {auth['recall']:.2f}" if any(
                     r["by_kind"]["auth"]["rows"] or r["by_kind"]["auth"]["fn"] for r in runs) else "")
                 + "; recall by kind: " + ", ".join(f"{k} {v:.2f}" for k, v in recall.items())
                 + "; precision by signal (pooled): " + ", ".join(f"{k} {v:.2f}" for k, v in sig_p.items()))
        worst = min([low["precision"], low["recall"], *recall.values()])
        out.append({"figure": f"Spike detectors vs injected truth, {model}, seeds {seeds}", "value": value,
                    "floor": "", "ratio": None, "target": f">= {TARGET} each", "ok": worst >= TARGET})
    quiet = q["quiet"]
    out.append({"figure": f"False alarms without injected spikes (traffic2, {quiet['packages']:,} packages, "
                          f"{quiet['events']:,} events, {quiet['weeks']:.1f} weeks judged)",
                "value": f"{quiet['alarms']} alarms, {quiet['per_week']:.2f} a week", "floor": "", "ratio": None,
                "target": "< 1 a week", "ok": quiet["per_week"] < 1})
    return out


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    base = Path(__file__).resolve().parents[1] / "data" / "bench"
    q = quality(base)
    for r in rows(q):
        print(f"{'ok ' if r['ok'] else 'MISS'} {r['figure']}: {r['value']} (target {r['target']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
