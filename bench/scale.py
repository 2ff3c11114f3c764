"""Scale figures for `make bench`: a one-day increment, the publish and the disk of stores of 5M, 50M and
200M events, and the dashboard's queries on each.

The stores are built straight in the storage format (core/lake.py), not through the trail generator: a
year of synthetic events (4 accounts, 16 repositories, 2,000 packages each in one repository with
steeply skewed popularity, downloads mostly of a package's newest versions, 64 CI principals, 1%
denied) with one download spike and one auth burst, written day by day into the events lake with their
rollups, then the estate's inventory (120,000 versions; its publish sizes the downloads of the transfer
rollups, as a first inventory run after a year of trail does), daily domain sizes, Cost Explorer lines, a
CUR 2.0 bill and collector runs (INVENTORY_SQL: every page's default views then run), cached under data/bench/scale/ by size and a hash of this file and core/. Then, per size, on a copy (the lake's files
are hard-linked: they are never changed):
- increment: `caa collect cloudtrail` of the 60k-event next-day trail of bench/datasets.increment, as its
  own process (wall seconds, the publish included; the median of `runs`, each on a fresh copy);
- publish: store.publish_snapshot alone (median of 3), and the snapshot's bytes;
- disk: everything the store uses (store file, snapshot, lake folders with the files retired within the
  hour) over its data (the live lake files + the store file);
- queries: bench/dashboard.query_times (every default load of every page, unfiltered and with a domain
  and 90-day filter; the slowest call of each, its median over `runs`: one run moved the slowest query of
  the same 200M store from 238 to 355 ms).
Then the trail-file ledger of a year (ledger_figure): what a publish copies with its closed months in the lake
against all of it in the store file, and one day's listing matched against it.

Run alone: `python -m bench.scale [--sizes 5000000,50000000]`. Reads and writes data/bench/scale/.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import shutil
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from analytics import cleanup, rollups
from bench import datasets
from bench.collector import collect
from core import lake, store
from core.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "data" / "bench"
SIZES = (5_000_000, 50_000_000, 200_000_000)
DAYS = 365
CHUNK_DAYS = 8
GEN_SQL = """
CREATE OR REPLACE TEMP TABLE gen AS
WITH r AS (
    SELECT i, hash(i, $seed) AS h, hash(i, $seed + 1) AS h2,
           CAST(floor(pow((hash(i, $seed + 2) % 1000003) / 1000003.0, 6) * 2000) AS BIGINT) AS p
    FROM range($first, $last) t(i)
), k AS (  -- a package lives in one repository; CI principals each serve a few repositories
    SELECT *, p % 16 AS repo, (p % 16) // 4 AS acct, (p % 16) * 4 + h2 % 4 AS who FROM r
)
SELECT 'syn-' || i AS event_id,
       $start + to_microseconds(CAST(i * $step_us AS BIGINT)) AS event_at,
       CASE WHEN h % 100 < 86 THEN 'ReadFromRepository' WHEN h % 100 < 94 THEN 'GetAuthorizationToken'
            WHEN h % 100 < 98 THEN 'ListPackageVersions' ELSE 'PublishPackageVersion' END AS event_name,
       '1111222233' || lpad(CAST(acct AS VARCHAR), 2, '0') AS account_id,
       CASE WHEN acct < 3 THEN 'us-east-1' ELSE 'eu-west-1' END AS region,
       'domain-' || acct AS domain,
       '1111222233' || lpad(CAST(acct AS VARCHAR), 2, '0') AS domain_owner,
       CASE WHEN h % 100 BETWEEN 86 AND 93 THEN NULL ELSE 'repo-' || repo END AS repository,
       ['npm', 'pypi', 'maven'][CAST(1 + p % 3 AS BIGINT)] AS format,
       CAST(NULL AS VARCHAR) AS namespace,
       CASE WHEN h % 100 BETWEEN 86 AND 93 THEN NULL ELSE 'pkg-' || p END AS package,
       CASE WHEN h % 100 < 86 THEN '1.' || CAST(floor(pow((h // 100 % 1000) / 1000.0, 5) * 12) AS BIGINT) || '.0'
       END AS version,
       CASE WHEN h % 100 < 80 THEN 'pkg.tgz' END AS asset,
       'arn:aws:sts::111122223333:assumed-role/ci-' || who || '/build' AS principal_arn,
       'AssumedRole' AS principal_type,
       '203.0.113.' || who AS source_ip,
       'npm/10.2.4 node/v20.11.0 linux x64' AS user_agent,
       CASE WHEN h // 7 % 100 = 0 THEN 'AccessDenied' END AS error_code,
       CAST(NULL AS VARCHAR) AS request_uri
FROM k
"""


# A download spike and an auth-failure burst 10 days before the end, so the spike page's details (hours,
# attribution, sessions) run too: $burst downloads of a package (some 150 a day at 200M) in two hours by 20
# new principals, and $burst / 10 denied token calls in half an hour.
BURST_SQL = """
CREATE OR REPLACE TEMP TABLE gen AS
SELECT 'burst-' || i AS event_id,
       CASE WHEN i < $burst THEN $at + to_microseconds(CAST(i * 7200000000 / $burst AS BIGINT))
            ELSE $at + to_microseconds(CAST((i - $burst) * 18000000000 / $burst AS BIGINT)) END AS event_at,
       CASE WHEN i < $burst THEN 'ReadFromRepository' ELSE 'GetAuthorizationToken' END AS event_name,
       '111122223301' AS account_id, 'us-east-1' AS region, 'domain-1' AS domain, '111122223301' AS domain_owner,
       CASE WHEN i < $burst THEN 'repo-4' END AS repository, 'maven' AS format, CAST(NULL AS VARCHAR) AS namespace,
       CASE WHEN i < $burst THEN 'pkg-500' END AS package, CASE WHEN i < $burst THEN '1.11.0' END AS version,
       CASE WHEN i < $burst THEN 'pkg.tgz' END AS asset,
       'arn:aws:sts::111122223333:assumed-role/ci-burst-' || (i % 20) || '/build' AS principal_arn,
       'AssumedRole' AS principal_type,
       '198.51.100.' || (i % 50) AS source_ip, 'Apache-Maven/3.9.6' AS user_agent,
       CASE WHEN i >= $burst THEN 'AccessDenied' END AS error_code, CAST(NULL AS VARCHAR) AS request_uri
FROM range(CAST($burst * 1.1 AS BIGINT)) t(i)
"""

# The inventory and bill of the same estate, so every page's default views run at scale (with events alone
# the cleanup, cost and bill pages stop at "no data" and 12 of their ~38 queries ran): each of the 2,000
# packages has the 12 versions the events download (1.0.0 .. 1.11.0, published over the year) and 48
# older ones nobody downloads (0.0.0 .. 0.47.0, cleanup candidates): 120,000 versions of one asset each;
# the domains' daily size; Cost Explorer's daily storage and request lines per account (priced from the
# rollups, no free tier); and one run of each collector. The same at every size: what grows is the events.
INVENTORY_SQL = [
    """CREATE OR REPLACE TEMP TABLE syn_pkg AS
       SELECT p, p % 16 AS repo, (p % 16) // 4 AS acct, 'pkg-' || p AS package,
              ['npm', 'pypi', 'maven'][CAST(1 + p % 3 AS BIGINT)] AS format,
              '1111222233' || lpad(CAST((p % 16) // 4 AS VARCHAR), 2, '0') AS account_id,
              CASE WHEN (p % 16) // 4 < 3 THEN 'us-east-1' ELSE 'eu-west-1' END AS region
       FROM range(2000) t(p)""",
    """INSERT INTO domains SELECT DISTINCT account_id, region, 'domain-' || acct, 'Active', $start - INTERVAL 3 YEAR,
              4, 0, NULL, $end FROM syn_pkg""",
    """INSERT INTO repositories SELECT DISTINCT account_id, region, 'domain-' || acct, 'repo-' || repo, account_id,
              NULL, [], [], $start - INTERVAL 3 YEAR, MAP {}, $end FROM syn_pkg""",
    """INSERT INTO packages SELECT account_id, region, 'domain-' || acct, 'repo-' || repo, format, NULL, package,
              'ALLOW', 'ALLOW', $end FROM syn_pkg""",
    """CREATE OR REPLACE TEMP TABLE syn_ver AS
       SELECT s.*, CASE WHEN k < 12 THEN '1.' || k || '.0' ELSE '0.' || (k - 12) || '.0' END AS version,
              CASE WHEN k < 12 THEN $start + to_days(CAST(k * 30 AS INTEGER))
                   ELSE $start - to_days(CAST((60 - k) * 15 AS INTEGER)) END AS published_at,
              hash(p, k, $seed) AS h
       FROM syn_pkg s, range(60) t(k)""",
    """INSERT INTO package_versions SELECT account_id, region, 'domain-' || acct, 'repo-' || repo, format, NULL,
              package, version, CASE WHEN h % 50 = 0 THEN 'Unlisted' ELSE 'Published' END, 'rev-' || (h % 100000),
              CASE WHEN h % 5 = 0 THEN 'EXTERNAL' ELSE 'INTERNAL' END, published_at, published_at, $end, NULL, NULL
       FROM syn_ver""",
    """INSERT INTO assets_rows SELECT account_id, region, 'domain-' || acct, 'repo-' || repo, format, NULL, package,
              version, 'pkg.tgz', 20000 + CAST(pow((h // 7 % 10000) / 10000.0, 4) * 20000000 AS BIGINT),
              sha256(package || '@' || version) FROM syn_ver""",
    """UPDATE domains SET asset_size_bytes = (SELECT sum(size_bytes) FROM assets a WHERE a.domain = domains.domain)""",
    """INSERT INTO storage_snapshots
       SELECT CAST($start AS DATE) + CAST(d AS INTEGER), account_id, region, domain,
              CAST(bytes * (0.7 + 0.3 * d / 365.0) AS BIGINT), $end
       FROM (SELECT account_id, region, domain, sum(size_bytes) AS bytes FROM assets GROUP BY ALL), range(366) t(d)""",
    """INSERT INTO cost_actuals
       SELECT snapshot_date, account_id, CASE region WHEN 'us-east-1' THEN 'USE1' ELSE 'EUW1' END
              || '-TimedStorage-ByteHrs', sum(asset_size_bytes) / 1e9 / 30 * 0.05, sum(asset_size_bytes) / 1e9 / 30,
              'GB-Mo'
       FROM storage_snapshots GROUP BY ALL
       UNION ALL
       SELECT day, account_id, CASE region WHEN 'us-east-1' THEN 'USE1' ELSE 'EUW1' END || '-Requests',
              sum(events) FILTER (WHERE ok) * 0.05 / 10000, sum(events) FILTER (WHERE ok), 'Requests'
       FROM event_days GROUP BY ALL""",
    # a CUR 2.0 bill (collectors/cur.py's rows): storage per domain, requests and internet transfer out per
    # repository and day (a download taken as 4 MiB), the first 100,000 requests of a month free, and a tax
    # line per account and month
    """INSERT INTO cur_line_items
       SELECT 'bench', date_trunc('month', snapshot_date), '111122223300', account_id, 'Usage',
              snapshot_date, snapshot_date + 1, snapshot_date, code || '-TimedStorage-ByteHrs', 'Storage', region,
              'arn:aws:codeartifact:' || region || ':' || account_id || ':domain/' || domain, domain, NULL,
              asset_size_bytes / 1073741824 / 30, 'GB-Mo', asset_size_bytes / 1073741824 / 30 * 0.05, NULL, 'USD',
              '$0.05 per GB-Mo of storage', MAP {}
       FROM (SELECT *, CASE region WHEN 'us-east-1' THEN 'USE1' ELSE 'EUW1' END AS code FROM storage_snapshots)""",
    """INSERT INTO cur_line_items
       SELECT 'bench', date_trunc('month', day), '111122223300', account_id, 'Usage', day, day + 1, day,
              code || ut, op, region,
              'arn:aws:codeartifact:' || region || ':' || account_id || ':repository/' || domain || '/' || repository,
              domain, repository, amount, unit, amount * rate, NULL, 'USD', ut, MAP {}
       FROM (SELECT *, CASE region WHEN 'us-east-1' THEN 'USE1' ELSE 'EUW1' END AS code,
                    sum(downloads) OVER (PARTITION BY account_id, date_trunc('month', day) ORDER BY day, region,
                                         domain, repository) AS running
             FROM (SELECT day, account_id, region, domain, repository, sum(downloads) AS downloads
                   FROM download_days GROUP BY ALL)),
            (VALUES ('-Requests', 'Requests', 'Requests'), ('-DataTransfer-Out-Bytes', 'Transfer', 'GB')) t(ut, op, unit),
            LATERAL (SELECT CASE op WHEN 'Requests' THEN downloads ELSE downloads * 4 / 1024 END AS amount,
                            CASE op WHEN 'Requests' THEN (CASE WHEN running > 100000 THEN 0.000005 ELSE 0 END)
                                 ELSE 0.09 END AS rate)""",
    """INSERT INTO cur_line_items
       SELECT 'bench', billing_period, '111122223300', account_id, 'Tax', NULL, NULL, NULL, 'Tax', '', NULL, NULL,
              NULL, NULL, 0, NULL, round(sum(unblended_cost) * 0.08, 2), NULL, 'USD',
              'Tax for product code AWSCodeArtifact', MAP {}
       FROM cur_line_items GROUP BY ALL""",
    """INSERT INTO cur_files SELECT DISTINCT 'bench', billing_period, 'BILLING_PERIOD=' || strftime(billing_period, '%Y-%m')
              || '/data.parquet', NULL, NULL, NULL, $end FROM cur_line_items""",
    """INSERT INTO collector_runs (collector, scope, started_at, finished_at, status, rows)
       SELECT c, 'bench', $end - INTERVAL 10 MINUTE, $end - INTERVAL 9 MINUTE, 'ok', 0
       FROM unnest(['cloudtrail', 'inventory', 'cloudwatch', 'costexplorer']) t(c)""",
]


def code_hash() -> str:
    """What a built store depends on: the generator, build(), the store's code and the rollups'."""
    h = hashlib.sha256(GEN_SQL.encode() + BURST_SQL.encode() + "".join(INVENTORY_SQL).encode()
                       + inspect.getsource(build).encode())
    for p in sorted([*(ROOT / "core").rglob("*.py"), *(ROOT / "core").rglob("*.sql"),
                     *(ROOT / "analytics").glob("rollups.py"), *(ROOT / "analytics" / "sql").glob("rollup_*.sql")]):
        h.update(p.read_bytes())
    return h.hexdigest()[:10]


def build(n: int, end: date, seed: int = 7) -> Path:
    """A store of `n` synthetic events over the DAYS days before `end`, cached."""
    folder = BASE / "scale" / f"e{n}-{end:%Y%m%d}-{code_hash()}"
    db = folder / "caa.duckdb"
    if (folder / "ok").exists():
        return db
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    start = datetime.combine(end - timedelta(days=DAYS), datetime.min.time(), UTC)
    step_us = DAYS * 86_400_000_000 / n
    t0 = time.monotonic()
    with rollups.writer(db) as con:
        for k in range(0, DAYS, CHUNK_DAYS):
            first, last = int(k * n / DAYS), int(min(k + CHUNK_DAYS, DAYS) * n / DAYS)
            con.execute(GEN_SQL, {"seed": seed, "first": first, "last": last, "start": start, "step_us": step_us})
            with store.transaction(con):
                lake.append(con, "gen")
                days = [(start + timedelta(days=d)).date() for d in range(k, min(k + CHUNK_DAYS, DAYS))]
                rollups.refresh(con, days)
                store.bump_version(con)
            print(f"  scale {n:,}: {last:,} events written ({time.monotonic() - t0:.0f} s)", flush=True)
        at = datetime.combine(end - timedelta(days=10), datetime.min.time(), UTC) + timedelta(hours=14)
        con.execute(BURST_SQL, {"burst": max(20_000, n // 10_000), "at": at})
        with store.transaction(con):
            lake.append(con, "gen")
            rollups.refresh(con, [at.date()])
            store.bump_version(con)
        params = {"seed": seed, "start": start, "end": datetime.combine(end, datetime.min.time(), UTC)}
        with store.transaction(con):
            for statement in INVENTORY_SQL:
                con.execute(statement, {k: v for k, v in params.items() if f"${k}" in statement})
            store.mark_inventory(con)  # as the inventory collector does: the publish sizes the downloads
            store.bump_version(con)
    (folder / "ok").write_text(json.dumps({"events": n, "secs": time.monotonic() - t0}))
    return db


def _hardlink_copy(src: Path, dst: Path) -> Path:
    """The store file copied, the lake's (immutable) files hard-linked."""
    shutil.rmtree(dst.parent, ignore_errors=True)
    dst.parent.mkdir(parents=True)
    shutil.copyfile(src, dst)
    for a, b in zip(lake.folders(src), lake.folders(dst), strict=True):
        shutil.copytree(a, b, copy_function=os.link)
    return dst


def _du(paths: list[Path]) -> int:
    total = 0
    for p in paths:
        if p.is_file():
            total += p.stat().st_size
        elif p.is_dir():
            total += sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return total


def increment_trail(events: int = 5_000_000, target: int = 60_000) -> tuple[Path, int, date]:
    """(trail folder, its events, its day): a day of the bench's pure trail, after its last day."""
    pure_dir, _ = datasets.pure(BASE, 7, events)
    trails, _, incr_events, incr_day = datasets.increment(pure_dir, target)
    return trails, incr_events, incr_day


def measure(n: int, runs: int = 3, increment: tuple[Path, int, date] | None = None) -> dict:
    from bench import dashboard

    trails, incr_events, incr_day = increment or increment_trail()
    built = build(n, incr_day)
    walls = []
    for _ in range(runs):  # one process run moved 1.2-1.7 s at 5M from run to run: the median of `runs`
        db = _hardlink_copy(built, BASE / "scale" / "work" / "caa.duckdb")
        with rollups.writer(db) as con:  # the store an hour after its build: no reader needs the retired files
            lake.sweep(con, grace=timedelta(0))
        got = collect(db, str(trails), since=incr_day.isoformat())
        walls.append(got["wall"])
    publish = []
    for _ in range(runs):
        t = time.perf_counter()
        store.publish_snapshot(db)
        publish.append(time.perf_counter() - t)
    with store.require_reader(db) as con:  # the live files; retired ones wait an hour for old readers
        lake_bytes = con.execute("SELECT sum(bytes) FROM lake_files WHERE retired_at IS NULL").fetchone()[0]
    disk = _du([db, store.snapshot_path(db), *lake.folders(db)])
    q = dashboard.query_times(db, runs=runs)["queries"]  # each query: the median over runs of its slowest call
    cleanup.forget_facts()  # the queries above judged this snapshot: time a first judging, as the CLI's
    with store.require_reader(db) as con:  # the cleanup report's judging of every version, as the page and
        t = time.perf_counter()            # `caa report cleanup` run it (Python over the query's rows)
        judged = len(cleanup.evaluate(con, load_settings(Path(os.devnull), db=db)))
        cleanup_secs = time.perf_counter() - t
    return {"events": n, "increment_events": incr_events, "increment_secs": statistics.median(walls),
            "increment_runs": walls,
            "increment_rows": got["rows"], "increment_rss": got["rss_bytes"],
            "publish_secs": statistics.median(publish), "store_bytes": db.stat().st_size,
            "snapshot_bytes": store.snapshot_path(db).stat().st_size, "lake_bytes": lake_bytes,
            "disk_bytes": disk, "disk_ratio": disk / (lake_bytes + db.stat().st_size),
            "cleanup_versions": judged, "cleanup_secs": cleanup_secs,
            "slowest_default_s": max(q["unfiltered"].values(), default=0.0),
            "slowest_filtered_s": max(q["filtered"].values(), default=0.0),
            "slowest_default_query": max(q["unfiltered"], key=q["unfiltered"].get, default=""),
            "slowest_filtered_query": max(q["filtered"], key=q["filtered"].get, default="")}


# The trail-file ledger of a year of an estate's trail: 4 account-regions, a file about every 5 minutes each
# (what CloudTrail delivers while there is activity), whatever the number of events. Its last day is mid-month,
# so the open month's rows in the store file are half a month's, a typical day.
LEDGER_FILES_PER_DAY = 4 * 288
LEDGER_LAST_DAY = date(2026, 6, 15)
LEDGER_SQL = """
INSERT INTO cloudtrail_files_rows (source, key, etag, size_bytes, events, processed_at, day)
SELECT 's3://trail', 'AWSLogs/o-a1b2c3d4e5/1111222233' || lpad(CAST(i % 4 AS VARCHAR), 2, '0') || '/CloudTrail/'
       || CASE WHEN i % 4 < 3 THEN 'us-east-1' ELSE 'eu-west-1' END || '/' || strftime(day, '%Y/%m/%d') || '/'
       || '1111222233' || lpad(CAST(i % 4 AS VARCHAR), 2, '0') || '_CloudTrail_' || strftime(day, '%Y%m%d') || 'T'
       || lpad(CAST(i // 4 % 288 AS VARCHAR), 4, '0') || 'Z_' || md5(CAST(i AS VARCHAR))[:16] || '.json.gz',
       md5('etag' || i), 20000 + hash(i) % 30000, hash(i) % 50, $processed, day
FROM (SELECT i, CAST($first AS DATE) + CAST(i // $per_day AS INTEGER) AS day FROM range($n) t(i))
"""


def ledger_figure(runs: int = 3) -> dict:
    """A year of the trail-file ledger (LEDGER_FILES_PER_DAY files a day): the store file a publish copies and
    the publish's time, with the ledger's closed months in the lake (migration 019), against the same rows all
    in the store file (as before it: a store without events has no open month, so nothing moves); and one
    day's listing matched against the ledger (trailfiles.known_files)."""
    from collectors.trailfiles import TrailObject, known_files

    first = LEDGER_LAST_DAY - timedelta(days=364)
    n = 365 * LEDGER_FILES_PER_DAY
    out: dict = {"files": n, "per_day": LEDGER_FILES_PER_DAY}
    for label, moved in (("lake", True), ("store", False)):
        folder = BASE / "scale" / "ledger" / label
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        db = folder / "caa.duckdb"
        with rollups.writer(db) as con:
            with store.transaction(con):
                con.execute(LEDGER_SQL, {"n": n, "per_day": LEDGER_FILES_PER_DAY, "first": first,
                                         "processed": datetime.combine(LEDGER_LAST_DAY, datetime.min.time(), UTC)})
                if moved:  # one event on the last day: its month is the open one
                    con.execute(f"INSERT INTO event_rows ({lake.COLUMNS}) SELECT 'e', ?, 'GetAuthorizationToken', "
                                "'111122223300', 'us-east-1', 'domain-0', " + ", ".join(["NULL"] * 13),
                                [datetime.combine(LEDGER_LAST_DAY, datetime.min.time(), UTC)])
                    store.mark_days(con, "event_rows")
                store.bump_version(con)
        publish = []
        for _ in range(runs):
            t = time.perf_counter()
            store.publish_snapshot(db)
            publish.append(time.perf_counter() - t)
        with store.require_reader(db) as con:
            in_file = con.execute("SELECT count(*) FROM cloudtrail_files_rows").fetchone()[0]
            day = LEDGER_LAST_DAY - timedelta(days=40)  # a day of a closed month, re-listed (a --since re-run)
            listed = [(TrailObject(k, 1, e), day.isoformat()) for k, e in con.execute(
                "SELECT key, etag FROM cloudtrail_files WHERE day = ?", [day]).fetchall()]
            t = time.perf_counter()
            known = known_files(con, "s3://trail", listed)
            match = time.perf_counter() - t
        assert len(known) == len(listed) == LEDGER_FILES_PER_DAY, (len(known), len(listed))
        out[label] = {"snapshot_bytes": store.snapshot_path(db).stat().st_size, "publish_secs": statistics.median(publish),
                      "rows_in_store_file": in_file, "match_secs": match}
    return out


def ledger_rows(fig: dict) -> list[dict]:
    a, b = fig["lake"], fig["store"]
    return [{"figure": f"Trail-file ledger of a year ({fig['files']:,} files: {fig['per_day']:,} a day), publish",
             "value": f"{a['publish_secs'] * 1000:.0f} ms, {a['snapshot_bytes'] / 2**20:.1f} MiB copied "
                      f"({a['rows_in_store_file']:,} rows in the store file, the open month)",
             "floor": f"all rows in the store file (before migration 019): {b['publish_secs'] * 1000:.0f} ms, "
                      f"{b['snapshot_bytes'] / 2**20:.1f} MiB", "ratio": None,
             "target": "publish does not grow with the store's age", "ok": a["rows_in_store_file"] <= 31 *
             fig["per_day"]},
            {"figure": "One day's listing (a closed month's) matched against that ledger",
             "value": f"{a['match_secs'] * 1000:.0f} ms", "floor": f"rows in the store file: {b['match_secs'] * 1000:.0f} ms",
             "ratio": None, "target": "report", "ok": None}]


def render(results: list[dict]) -> str:
    head = ("| events | increment (60k) | publish | snapshot | lake | disk / data | slowest default query | "
            "slowest filtered query | cleanup report |\n|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in results:
        lines.append(f"| {r['events']:,} | {r['increment_secs']:.2f} s | {r['publish_secs'] * 1000:.0f} ms | "
                     f"{r['snapshot_bytes'] / 2**20:.1f} MiB | {r['lake_bytes'] / 2**30:.2f} GiB | "
                     f"{r['disk_ratio']:.2f} | {r['slowest_default_s'] * 1000:.0f} ms ({r['slowest_default_query']}) | "
                     f"{r['slowest_filtered_s'] * 1000:.0f} ms ({r['slowest_filtered_query']}) | "
                     f"{r['cleanup_secs']:.1f} s ({r['cleanup_versions']:,} versions) |")
    if len(results) > 1:
        a, b = results[0], results[-1]
        lines.append(f"\nfrom {a['events']:,} to {b['events']:,} events: increment x"
                     f"{b['increment_secs'] / a['increment_secs']:.2f}, publish x{b['publish_secs'] / a['publish_secs']:.2f} "
                     "(target: within 1.5x)")
    return "\n".join(lines)


def rows(results: list[dict]) -> list[dict]:
    """make bench's report rows: per size, then the growth from the smallest to the largest."""
    out = []
    for r in results:
        out.append({"figure": f"Store of {r['events']:,} events: one-day increment ({r['increment_events']:,} events, "
                              "publish included)", "value": f"{r['increment_secs']:.2f} s", "floor": "",
                    "ratio": None, "target": "flat: within 1.5x from the smallest store", "ok": None})
        out.append({"figure": f"Store of {r['events']:,} events: publish, disk",
                    "value": f"publish {r['publish_secs'] * 1000:.0f} ms ({r['snapshot_bytes'] / 2**20:.1f} MiB copied); "
                             f"disk {r['disk_bytes'] / 2**30:.2f} GiB = {r['disk_ratio']:.2f}x the data", "floor": "",
                    "ratio": None, "target": "disk <= 1.1x the data", "ok": r["disk_ratio"] <= 1.1})
        out.append({"figure": f"Store of {r['events']:,} events: slowest dashboard query, default / filtered",
                    "value": f"{r['slowest_default_s'] * 1000:.0f} ms ({r['slowest_default_query']}) / "
                             f"{r['slowest_filtered_s'] * 1000:.0f} ms ({r['slowest_filtered_query']})", "floor": "",
                    "ratio": None, "target": "< 300 ms / < 1 s", "ok": r["slowest_default_s"] < 0.3
                    and r["slowest_filtered_s"] < 1})
        out.append({"figure": f"Store of {r['events']:,} events: the cleanup report judging every version",
                    "value": f"{r['cleanup_secs']:.1f} s ({r['cleanup_versions']:,} versions)", "floor": "",
                    "ratio": None, "target": "report", "ok": None})
    if len(results) > 1:
        a, b = results[0], results[-1]
        inc, pub = b["increment_secs"] / a["increment_secs"], b["publish_secs"] / a["publish_secs"]
        out.append({"figure": f"Growth from {a['events']:,} to {b['events']:,} events", "value":
                    f"increment x{inc:.2f}, publish x{pub:.2f}", "floor": "", "ratio": None,
                    "target": "within 1.5x", "ok": inc <= 1.5 and pub <= 1.5})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.scale")
    ap.add_argument("--sizes", default=os.environ.get("BENCH_SCALE_SIZES") or ",".join(map(str, SIZES)))
    args = ap.parse_args(argv)
    results = []
    for n in (int(s) for s in args.sizes.split(",") if s):
        print(f"bench: scale {n:,} events", flush=True)
        results.append(measure(n))
        print(render(results[-1:]), flush=True)
    print(render(results))
    for row in ledger_rows(ledger_figure()):
        print(f"{row['figure']}: {row['value']} ({row['floor']})")
    (BASE / "scale" / "latest.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
