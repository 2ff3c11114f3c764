"""`caa demo`: build the seeded estate, then run the *real* collectors over it into a store.

- cloudtrail reads the estate's trail directory (the same code path as a bucket);
- inventory talks to the estate through the model-validated fake CodeArtifact endpoint, once per
  historical day for the domain sizes (storage_snapshots) and once in full at the estate's end;
- cloudwatch and costs talk to a local moto server loaded with the estate's usage and costs;
- cur reads the estate's CUR 2.0 export (demo/cur.py) from `<db dir>/demo-estate/cur/`: first with the
  current month's delivery two days short, then again after AWS "re-delivers" it complete.

Writes: `<db dir>/demo-estate/` (trail files and ground_truth.json, reused when seed, size and end
match) and the store, with the dashboard's default views precomputed (ui/precompute.py). A store
that was not built by `caa demo` is never overwritten.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

from analytics import rollups
from collectors import cloudtrail, cloudwatch, costexplorer, cur, inventory
from collectors.base import RunContext, run_collectors
from core import lake, store
from core.aws import Scope
from core.clock import utc_now
from core.errors import StoreError, echo
from core.settings import load_settings
from demo import cur as demo_cur
from demo import moto_seed
from demo.estate import build_estate
from demo.fake_codeartifact import FakeCodeArtifact, FakeCodeArtifactClients
from demo.trails import write_trails
from ui import precompute


def estate_dir(db: Path) -> Path:
    return Path(db).resolve().parent / "demo-estate"


def _is_demo_store(db: Path) -> bool:
    import duckdb

    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error:
        return False
    try:
        return bool(con.execute("SELECT count(*) FROM store_meta WHERE key = 'demo_seed'").fetchone()[0])
    except duckdb.Error:
        return False
    finally:
        con.close()


def _fresh_store(db: Path) -> None:
    """Remove a previous demo store; refuse to touch a store that holds collected data."""
    if not db.exists():
        return
    if not _is_demo_store(db):
        raise StoreError(f"{db} holds collected data, not a demo estate", where=str(db),
                         fix="pass another path, e.g. `caa demo --db data/demo.duckdb`")
    for p in (db, db.with_name(db.name + ".wal"), store.snapshot_path(db)):
        p.unlink(missing_ok=True)
    for folder in lake.folders(db):
        shutil.rmtree(folder, ignore_errors=True)


def _trails(db: Path, seed: int, events: int, end: datetime) -> tuple[Path, dict]:
    out = estate_dir(db)
    truth_file = out / "ground_truth.json"
    if truth_file.exists():
        truth = json.loads(truth_file.read_text())
        if (truth.get("seed"), truth.get("target_events"), truth.get("end")[:10]) == (seed, events, f"{end:%Y-%m-%d}") \
                and "served_bytes" in truth:  # (written by a generator that knew the bill)
            echo(f"demo: reusing the trail files in {out}")
            return out, truth
    t0 = time.monotonic()
    truth = write_trails(build_estate(seed, end=end), out, target_events=events)
    echo(f"demo: wrote {truth['files']} trail files ({truth['events_unique']:,} CodeArtifact events) "
         f"in {time.monotonic() - t0:.0f}s to {out}")
    return out, truth


def _snapshot_history(ctx: RunContext, fake: FakeCodeArtifact, estate) -> int:
    """Domain sizes for every day of history, through the inventory collector's own code."""
    days = (estate.end.date() - estate.start.date()).days
    n = 0
    with ctx.progress("demo: storage history", days * len(ctx.settings.accounts)) as advance:
        for account in ctx.settings.accounts:
            for region in account.regions:
                scope = Scope(account.id, region, account.role_arn)
                client = ctx.clients.client(scope, "codeartifact")
                for i in range(days):
                    now = datetime.combine(estate.start.date() + timedelta(days=i), dtime(23, 59, 59), UTC)
                    fake.as_of = now
                    day_ctx = RunContext(settings=ctx.settings, con=ctx.con, now=now, clients=ctx.clients)
                    n += inventory.snapshot_domains(day_ctx, scope, client)
                    if region == account.regions[-1]:
                        advance(1)
    return n


def _collect_bill(ctx: RunContext, estate, truth: dict, root: Path) -> int:
    """Write the estate's CUR 2.0 export and collect it; then re-deliver the open month and collect again."""
    last = estate.end.date() - timedelta(days=1)
    tags = {(d.name, r.name): r.tags for d in estate.domains for r in d.repositories}
    shutil.rmtree(root, ignore_errors=True)
    cut = last - timedelta(days=2)
    first = demo_cur.bills(truth, ctx.settings.prices, estate.accounts, tags, through=cut)
    demo_cur.write(root, first)
    settings = ctx.settings.model_copy(update={"cur": ctx.settings.cur.model_copy(update={"sources": [str(root)]})})
    bill_ctx = RunContext(settings=settings, con=ctx.con, debug=ctx.debug, clients=ctx.clients,
                          show_progress=ctx.show_progress)
    code = run_collectors([cur.SPEC], bill_ctx)
    final = demo_cur.bills(truth, ctx.settings.prices, estate.accounts, tags, through=last)
    restated = sorted({(cut + timedelta(days=i)).replace(day=1) for i in range(1, (last - cut).days + 1)})
    demo_cur.write(root, final, only=restated)
    echo(f"demo: AWS re-delivered {', '.join(f'BILLING_PERIOD={p:%Y-%m}' for p in restated)} of the CUR 2.0 export")
    return max(code, run_collectors([cur.SPEC], bill_ctx))


def run_demo(db: Path, seed: int = 7, events: int = 1_000_000, debug: bool = False,
             show_progress: bool | None = None) -> int:
    """Build the demo estate into `db` with the real collectors. Returns the exit code (0 = ok)."""
    db = Path(db)
    t0 = time.monotonic()
    end = utc_now().replace(hour=0, minute=0, second=0, microsecond=0)
    _fresh_store(db)
    out, truth = _trails(db, seed, events, end)
    estate = build_estate(seed, end=end)
    server, url = moto_seed.start_moto()
    try:
        with moto_seed.demo_environment():
            settings = load_settings(
                db=db,
                accounts=[{"id": a, "role_arn": moto_seed.demo_role_arn(a), "regions": estate.regions}
                          for a in estate.accounts],
                aws={"endpoints": moto_seed.collector_endpoints(url)},
            )
            fake = FakeCodeArtifact(estate, as_of=estate.start)
            clients = FakeCodeArtifactClients(settings, fake)
            with rollups.writer(db) as con:
                con.execute("INSERT INTO store_meta VALUES ('demo_seed', ?)", [seed])
                ctx = RunContext(settings=settings, con=con, since=estate.start.date(),
                                 source=str(out / "trails"), debug=debug, clients=clients,
                                 show_progress=show_progress)
                snapshots = _snapshot_history(ctx, fake, estate)
                echo(f"demo: {snapshots} daily domain-size snapshots through the inventory collector")
                fake.as_of = estate.end
                window = costexplorer.window_for(ctx, None)
                moto_seed.seed_costs(url, truth["billing"], settings.prices, estate.accounts, window.start,
                                     window.end)
                moto_seed.seed_usage_metrics(url, truth["billing"], ctx.now)
                code = run_collectors([cloudtrail.SPEC, inventory.SPEC, cloudwatch.SPEC, costexplorer.SPEC], ctx)
                code = max(code, _collect_bill(ctx, estate, truth, out / "cur"))
                store.bump_version(con)
                echo(precompute.refresh_after_collection(con, settings))  # before the snapshot is published
    finally:
        server.stop()
    shutil.copyfile(out / "ground_truth.json", db.with_name(db.stem + ".ground_truth.json"))
    echo(f"demo: store {db} ready in {time.monotonic() - t0:.0f}s "
         f"({truth['downloads_unique']:,} downloads expected by the generator)")
    return code
