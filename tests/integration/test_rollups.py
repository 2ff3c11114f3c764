"""Daily rollups (analytics/rollups.py): after every kind of load they equal a recomputation from
`events`, and the dashboard queries that read them answer exactly what a scan of `events` answers."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import cli
from analytics import cleanup, queries
from analytics.filters import Filters
from collectors import cloudtrail, inventory
from collectors.base import RunContext, run_collectors
from collectors.inventory_normalize import RepositoryRows
from core import store
from tests.fixtures.trails import ACCOUNT, TRAIL_NOW, record, trail_files, write_local
from tests.helpers import collect, make_settings, rows, writer

DOWNLOAD = ("event_name IN ('ReadFromRepository', 'GetPackageVersionAsset') AND error_code IS NULL "
            "AND version IS NOT NULL AND asset IS NOT NULL")
# Written here from the events columns, independently of analytics/rollups.py.
EXPECTED_EVENT_DAYS = f"""
SELECT CAST(event_at AT TIME ZONE 'UTC' AS DATE), account_id, region, domain, repository, format, event_name,
       error_code IS NULL, count(*), count(*) FILTER (WHERE {DOWNLOAD}), min(event_at), max(event_at),
       max(event_at) FILTER (WHERE {DOWNLOAD})
FROM events GROUP BY ALL ORDER BY ALL"""
EXPECTED_DOWNLOAD_DAYS = f"""
SELECT CAST(event_at AT TIME ZONE 'UTC' AS DATE), account_id, region, domain, repository, format, namespace,
       package, version, count(*), min(event_at), max(event_at)
FROM events WHERE {DOWNLOAD} GROUP BY ALL ORDER BY ALL"""

SESSION = "(principal_arn, source_ip, date_trunc('minute', event_at AT TIME ZONE 'UTC'))"
# One row per session of each level (its key, the session, its downloads), then summed per level and day. A package
# is named as CodeArtifact stores it (024: the store's namespace_key and package_key, core/schema/021_name_keys.sql).
EXPECTED_SESSION_DAYS = f"""
WITH d AS (SELECT * REPLACE (namespace_key(format, namespace) AS namespace, package_key(format, package) AS package),
                  CAST(event_at AT TIME ZONE 'UTC' AS DATE) AS day, {SESSION} AS session FROM events
           WHERE {DOWNLOAD}),
lv AS (
    SELECT day, 'package' AS level, account_id, region, domain, repository, format, namespace, package,
           NULL AS principal_arn, session, count(*) AS n FROM d GROUP BY ALL
    UNION ALL
    SELECT day, 'domain', account_id, region, domain, NULL, format, namespace, package, NULL, session, count(*)
    FROM d GROUP BY ALL
    UNION ALL
    SELECT day, 'repository', account_id, region, domain, repository, NULL, NULL, NULL, NULL, session, count(*)
    FROM d GROUP BY ALL
    UNION ALL
    SELECT day, 'principal', account_id, region, NULL, NULL, NULL, NULL, NULL, coalesce(principal_arn, 'unknown'),
           session, count(*) FROM d GROUP BY ALL
)
SELECT day, level, account_id, region, domain, repository, format, namespace, package, principal_arn,
       count(*), sum(n), sum(n * n)
FROM lv GROUP BY day, level, account_id, region, domain, repository, format, namespace, package, principal_arn
ORDER BY ALL"""
# A session is counted within its domain (core/schema/014).
EXPECTED_PRINCIPAL_HOURS = f"""
WITH s AS (SELECT date_trunc('hour', event_at) AS hour_at, account_id, region, domain,
                  coalesce(principal_arn, 'unknown') AS principal_arn, {SESSION} AS session, count(*) AS n,
                  count(*) FILTER (WHERE {DOWNLOAD}) AS d
           FROM events WHERE error_code IS NULL GROUP BY ALL)
SELECT hour_at, account_id, region, principal_arn, sum(n), sum(d), count(*), sum(n * n), domain
FROM s GROUP BY hour_at, account_id, region, domain, principal_arn ORDER BY ALL"""

EXPECTED_DOWNLOAD_MONTHS = f"""
SELECT CAST(date_trunc('month', event_at AT TIME ZONE 'UTC') AS DATE), account_id, region, domain, repository,
       format, namespace, package, version, count(*), max(event_at)
FROM events WHERE {DOWNLOAD} GROUP BY ALL ORDER BY ALL"""
EXPECTED_DOWNLOAD_PRINCIPAL_DAYS = f"""
SELECT CAST(event_at AT TIME ZONE 'UTC' AS DATE), account_id, region, domain, repository, format, namespace,
       package, version, principal_arn, count(*)
FROM events WHERE {DOWNLOAD} GROUP BY ALL ORDER BY ALL"""
# Sized from the inventory as it is (a store whose inventory never lost an asset), the names as CodeArtifact
# compares them (core/schema/021_name_keys.sql).
SIZED = f"""
(SELECT * FROM events WHERE {DOWNLOAD}) e
LEFT JOIN assets a ON e.account_id = a.account_id AND e.region = a.region AND e.domain = a.domain
 AND e.repository = a.repository AND e.format = a.format
 AND namespace_key(e.format, e.namespace) IS NOT DISTINCT FROM namespace_key(a.format, a.namespace)
 AND package_key(e.format, e.package) = package_key(a.format, a.package)
 AND version_key(e.format, e.version) = version_key(a.format, a.version)
 AND asset_key(e.format, e.asset) = asset_key(a.format, a.asset)"""
EXPECTED_DOWNLOAD_IP_DAYS = f"""
SELECT CAST(e.event_at AT TIME ZONE 'UTC' AS DATE), e.account_id, e.region, e.domain, e.repository, e.format,
       e.namespace, e.package, e.version, e.asset, e.source_ip, count(*), a.size_bytes
FROM {SIZED} GROUP BY ALL ORDER BY ALL"""
EXPECTED_TRANSFER_DAYS = f"""
SELECT CAST(e.event_at AT TIME ZONE 'UTC' AS DATE), e.account_id, e.region, e.domain, e.repository, e.format,
       e.source_ip, count(*), count(*) FILTER (WHERE a.size_bytes IS NULL), coalesce(sum(a.size_bytes), 0)
FROM {SIZED} GROUP BY ALL ORDER BY ALL"""
# Failed calls per error code, and the successful token calls with their sessions, per principal and hour.
EXPECTED_AUTH_HOURS = f"""
SELECT date_trunc('hour', event_at) AS hour_at, coalesce(principal_arn, 'unknown'), error_code, count(*),
       CASE WHEN error_code IS NULL THEN count(DISTINCT {SESSION}) ELSE 0 END, account_id, region, domain
FROM events WHERE error_code IS NOT NULL OR event_name = 'GetAuthorizationToken'
GROUP BY 1, 2, 3, account_id, region, domain ORDER BY ALL"""


def assert_rollups_match(db):
    """Each rollup equals its recomputation, one row per key (nothing accumulated)."""
    assert rows(db, "SELECT * FROM event_days ORDER BY ALL") == rows(db, EXPECTED_EVENT_DAYS)
    assert rows(db, "SELECT * FROM download_days ORDER BY ALL") == rows(db, EXPECTED_DOWNLOAD_DAYS)
    assert rows(db, "SELECT * FROM download_sessions_days ORDER BY ALL") == rows(db, EXPECTED_SESSION_DAYS)
    assert rows(db, "SELECT * FROM principal_hours ORDER BY ALL") == rows(db, EXPECTED_PRINCIPAL_HOURS)
    assert rows(db, "SELECT * FROM download_principal_days ORDER BY ALL") == rows(db, EXPECTED_DOWNLOAD_PRINCIPAL_DAYS)
    assert rows(db, "SELECT * FROM auth_hours ORDER BY ALL") == rows(db, EXPECTED_AUTH_HOURS)
    assert rows(db, "SELECT * FROM download_months ORDER BY ALL") == rows(db, EXPECTED_DOWNLOAD_MONTHS)
    assert rows(db, "SELECT * FROM download_ip_days ORDER BY ALL") == rows(db, EXPECTED_DOWNLOAD_IP_DAYS)
    assert rows(db, "SELECT * FROM transfer_days ORDER BY ALL") == rows(db, EXPECTED_TRANSFER_DAYS)
    assert rows(db, "SELECT count(*) FROM event_days") != [(0,)]


def gz_file(recs):
    return gzip.compress(json.dumps({"Records": recs}).encode())


def test_rollups_follow_every_load_incremental_late_duplicate_and_rerun(tmp_path, rollup_connections):
    files = trail_files(n_files=24 * 4, per_file=30, dup_rate=0.1)  # four days, re-delivered events
    keys = sorted(k for k in files if "/CloudTrail/" in k)
    first, second = keys[: len(keys) // 2], keys[len(keys) // 2:]
    root = tmp_path / "trail"
    db = tmp_path / "caa.duckdb"
    settings = make_settings(db=db)

    def run():
        assert collect(db, [cloudtrail.SPEC], settings, since=date(2026, 10, 30), source=str(root)) == 0

    write_local(root, {k: files[k] for k in first})
    run()
    assert_rollups_match(db)
    write_local(root, {k: files[k] for k in second})
    run()
    assert_rollups_match(db)
    # A late file for the first day: two new events (one a failed call) and one already loaded.
    day1 = datetime(2026, 11, 1, 5, tzinfo=UTC)
    delivered = json.loads(gzip.decompress(files[first[0]]))["Records"][0]  # already loaded: a duplicate
    late = [record(900_001, day1), record(900_002, day1, errorCode="AccessDenied"), delivered]
    write_local(root, {"AWSLogs/o-a1b2c3d4e5/111122223333/CloudTrail/us-east-1/2026/11/01/late.json.gz":
                       gz_file(late)})
    before = rows(db, "SELECT sum(events) FROM event_days WHERE day = DATE '2026-11-01'")[0][0]
    run()
    assert rows(db, "SELECT sum(events) FROM event_days WHERE day = DATE '2026-11-01'")[0][0] == before + 2
    assert_rollups_match(db)
    assert rows(db, "SELECT error_code, sum(events) FROM auth_hours GROUP BY ALL") == [("AccessDenied", 1)]
    snapshot = rows(db, "SELECT * FROM event_days ORDER BY ALL")
    run()  # nothing new
    assert rows(db, "SELECT * FROM event_days ORDER BY ALL") == snapshot


def test_a_backfill_is_refreshed_in_runs_of_days_within_the_event_budget(tmp_path, rollup_connections, monkeypatch):
    """A refresh reads its days in runs of days, across months and days without events, of at most SPAN_EVENTS
    events (a day over it alone), and what it writes still equals a recomputation from `events`."""
    from analytics import rollups

    d = [date(2026, 10, 30) + timedelta(days=i) for i in range(6)]
    sizes = {d[0]: 40, d[1]: 50, d[2]: 30, d[3]: 500, d[5]: 10}
    assert rollups._spans([d[5], *d[:4]], sizes, 100) == [(d[0], d[1]), (d[2], d[2]), (d[3], d[3]), (d[5], d[5])]
    assert rollups._spans(d[:3], sizes, 10**6) == [(d[0], d[2])]  # Oct 30 .. Nov 1: one run across the month
    # across a day without events (d[4]), never across one with events it was not asked for (d[1])
    assert rollups._spans([d[3], d[5]], {d[3]: 50, d[5]: 10}, 100) == [(d[3], d[5])]
    assert rollups._spans([d[0], d[2]], sizes, 10**6) == [(d[0], d[0]), (d[2], d[2])]
    # the budget ends a run that crossed into November (Oct 30 .. Nov 1): it ends with October instead, and
    # November's days begin the next, so no closed month is written as two files
    assert rollups._spans(d[:4], {d[0]: 40, d[1]: 50, d[2]: 30, d[3]: 20}, 130) == [(d[0], d[1]), (d[2], d[3])]

    seen = []
    spans = rollups._spans
    monkeypatch.setattr(rollups, "_spans", lambda days, sizes, budget: seen.append(
        [sum(sizes.get(first + timedelta(days=i), 0) for i in range((last - first).days + 1))
         for first, last in spans(days, sizes, budget)]) or spans(days, sizes, budget))
    monkeypatch.setattr(rollups, "SPAN_EVENTS", 1500)
    db = tmp_path / "caa.duckdb"
    write_local(tmp_path / "trail", trail_files(n_files=24 * 4, per_file=30))  # ~2,700 events over four days
    assert collect(db, [cloudtrail.SPEC], make_settings(db=db), since=date(2026, 10, 30),
                   source=str(tmp_path / "trail")) == 0
    (events,), = rows(db, "SELECT count(*) FROM events")
    assert len(seen) == 1 and len(seen[0]) >= 2 and all(n <= 1500 for n in seen[0]) and sum(seen[0]) == events
    assert_rollups_match(db)


def test_a_side_by_side_refresh_that_fails_leaves_the_rollups_and_duckdbs_threads_as_they_were(tmp_path,
                                                                                                monkeypatch):
    """One of the other connections' queries fails (here: a missing table): the refresh raises in the
    writer's transaction, which rolls back to the rollups it had; DuckDB's threads are what they were; the
    files the other connections wrote are in no catalog row, and the next writer removes them."""
    from analytics import rollups
    from core import lake

    db = tmp_path / "caa.duckdb"
    write_local(tmp_path / "trail", trail_files(n_files=24 * 2, per_file=30))
    assert collect(db, [cloudtrail.SPEC], make_settings(db=db), since=date(2026, 10, 30),
                   source=str(tmp_path / "trail")) == 0
    before = {t: rows(db, f"SELECT * FROM {t} ORDER BY ALL") for t in rollups.TABLES}
    days = [d for (d,) in rows(db, "SELECT DISTINCT day FROM event_days ORDER BY 1")]
    real = rollups.sql
    monkeypatch.setattr(rollups, "ASIDE_EVENTS", 0)
    monkeypatch.setattr(rollups, "sql", lambda name: "INSERT INTO new_download_sessions_days SELECT * FROM "
                        "no_such_table" if name == "rollup_download_sessions_days" else real(name))
    with writer(db) as con:
        threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
        with pytest.raises(duckdb.CatalogException, match="no_such_table"), store.transaction(con):
            rollups.refresh(con, days)
        assert con.execute("SELECT current_setting('threads')").fetchone()[0] == threads
        folder = lake.folder_of(db, lake.ROLLUPS["event_days"])
        assert {p.relative_to(folder).as_posix() for p in folder.rglob("*.parquet")} - {f for (f,) in con.execute(
            "SELECT file FROM lake_files WHERE dataset = 'event_days'").fetchall()}  # written, never registered
    assert {t: rows(db, f"SELECT * FROM {t} ORDER BY ALL") for t in rollups.TABLES} == before
    with writer(db) as con:
        known = {f for (f,) in con.execute("SELECT file FROM lake_files WHERE dataset = 'event_days'").fetchall()}
    assert {p.relative_to(folder).as_posix() for p in folder.rglob("*.parquet")} <= known


def schema_up_to(tmp_path, last: int):
    """A copy of the migrations up to `last`, with 018, 019 and 021 (the UTC and name-key macros today's rollup
    SQL calls, and the ledger's rows table today's collector writes, which the older store gets as it is
    simulated here running today's rollups and collector): the schema of an older caa."""
    folder = tmp_path / "schema"
    folder.mkdir()
    for f in sorted(store.SCHEMA_DIR.glob("[0-9][0-9][0-9]_*.sql")):
        if int(f.name[:3]) <= last or f.name.startswith(("018_", "019_", "021_")):
            shutil.copy(f, folder / f.name)
    return folder


def test_an_older_store_gets_its_rollups_when_it_is_first_opened(tmp_path, monkeypatch):
    old_schema = tmp_path / "schema"
    old_schema.mkdir()
    for f in sorted(store.SCHEMA_DIR.glob("00[1-4]_*.sql")):  # before 005 and 007 (the rollups)
        shutil.copy(f, old_schema / f.name)
    monkeypatch.setattr(store, "SCHEMA_DIR", old_schema)  # the code before rollups existed:
    db = tmp_path / "caa.duckdb"
    with store.writer(db) as con:  # no before-publish hook, hence no rollups
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'event_days'").fetchone() == (0,)
        con.execute("INSERT INTO events (event_id, event_at, event_name, account_id, region, domain, repository, "
                    "format, package, version, asset) SELECT 'e' || i, TIMESTAMPTZ '2026-01-01 00:00:00+00' + "
                    "i * INTERVAL 7 MINUTE, 'ReadFromRepository', '111122223333', 'us-east-1', 'acme', 'npm-store', "
                    "'npm', 'p' || (i % 5), '1.0.' || (i % 3), 'p.tgz' FROM range(2000) t(i)")
    monkeypatch.undo()
    assert rows(db, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'event_days'") == [(0,)]
    cli._upgrade(db)  # what `caa dashboard` does before serving an older store
    assert rows(db, "SELECT count(*), sum(events) FROM event_days")[0][1] == 2000
    assert_rollups_match(db)
    # and its events moved into the lake (migration 011): files listed by the catalog, none left in the table
    assert rows(db, "SELECT sum(rows) FROM lake_files WHERE dataset = 'events' AND retired_at IS NULL") == [(2000,)]
    assert rows(db, "SELECT count(*) FROM event_rows") == [(0,)]


def test_a_store_from_before_the_domain_in_the_principal_rollups_is_rebuilt_with_it(tmp_path, monkeypatch):
    """Migration 014: principal_hours and auth_hours files written without the domain are retired and every
    rollup is rebuilt before the upgraded store is published (the files would not even open in the new
    view, and with the other rollups intact no heal would notice)."""
    from analytics import rollups
    from core import lake

    old_schema = schema_up_to(tmp_path, 13)
    monkeypatch.setattr(store, "SCHEMA_DIR", old_schema)  # the code of 013, as far as the rollups go:
    later = ("principal_hours", "auth_hours", "download_ip_days", "transfer_days")  # changed or added by 014-016
    monkeypatch.setattr(rollups, "TABLES", tuple(t for t in rollups.TABLES if t not in later))
    monkeypatch.setattr(rollups, "_refresh_months", lambda con, days: None)
    monkeypatch.setattr(lake, "ROLLUPS", {k: v for k, v in lake.ROLLUPS.items() if k not in (rollups.MONTHS, *later[2:])})
    monkeypatch.setattr(lake, "DATASETS", {k: v for k, v in lake.DATASETS.items() if k not in (rollups.MONTHS, *later[2:])})
    db = tmp_path / "caa.duckdb"
    with store.writer(db) as con:  # no heal (it counts download_months): the days are refreshed below
        con.execute("CREATE TEMP TABLE e AS SELECT * FROM events LIMIT 0")
        con.execute("INSERT INTO e (event_id, event_at, event_name, account_id, region, domain, repository, format, "
                    "package, version, asset, principal_arn, source_ip, error_code) SELECT 'e' || i, "
                    "TIMESTAMPTZ '2026-01-01 00:00:00+00' + i * INTERVAL 7 MINUTE, CASE WHEN i % 9 = 0 THEN "
                    "'GetAuthorizationToken' ELSE 'ReadFromRepository' END, '111122223333', 'us-east-1', "
                    "['acme', 'beta'][1 + i % 2], 'npm-store', 'npm', 'p' || (i % 5), '1.0.' || (i % 3), 'p.tgz', "
                    "'arn:aws:iam::111122223333:user/ci', '10.0.0.1', CASE WHEN i % 11 = 0 THEN 'AccessDenied' END "
                    "FROM range(2000) t(i)")
        with store.load_transaction(con):
            lake.append(con, "e")
            rollups.refresh(con, [date(2026, 1, 1) + timedelta(days=d) for d in range(10)])
            for table, values in (("principal_hours", "('2026-01-01 00:00:00+00', '111122223333', 'us-east-1', "
                                                      "'x', 1, 1, 1, 1)"),
                                  ("auth_hours", "('2026-01-01 00:00:00+00', 'x', NULL, 1, 1)")):
                con.execute(f"CREATE TEMP TABLE old_{table} AS SELECT * FROM {table}_rows LIMIT 0")  # 013's layout
                con.execute(f"INSERT INTO old_{table} VALUES {values}")
                lake.replace_days(con, lake.ROLLUPS[table], f"old_{table}", date(2026, 1, 1), date(2026, 1, 1))
    monkeypatch.undo()
    assert rows(db, "SELECT count(*) FROM lake_files WHERE dataset = 'auth_hours' AND retired_at IS NULL") == [(1,)]
    cli._upgrade(db)
    assert_rollups_match(db)
    assert rows(db, "SELECT DISTINCT domain FROM principal_hours ORDER BY 1") == [("acme",), ("beta",)]
    assert rows(db, "SELECT count(*) FROM principal_hours WHERE principal_arn = 'x'") == [(0,)]


def api_download(i: int, at: datetime, version: str = "1.0.0", **over) -> dict:
    """A generic package's asset fetched with `aws codeartifact get-package-version-asset`: CloudTrail's
    GetPackageVersionAsset record, with the API's key names."""
    return record(i, at, eventName="GetPackageVersionAsset", userAgent="aws-cli/2.15.0",
                  requestParameters={"domain": "acme", "domainOwner": ACCOUNT, "repository": "tools",
                                     "format": "generic", "namespace": "ci", "package": "runner",
                                     "packageVersion": version, "asset": "runner.tar.gz"},
                  additionalEventData={}, **over)


def test_a_get_package_version_asset_call_is_a_download_also_in_a_store_from_before_migration_023(tmp_path,
                                                                                                     monkeypatch):
    """The only way to fetch a generic package is the API's GetPackageVersionAsset: its successful calls are
    downloads (migration 023), so a generic version every build fetches counts as downloaded in the rollups the
    cleanup report, the usage tables and the spike detectors read. A store
    whose rollups were computed before 023 has those days refreshed by its next write session."""
    day = datetime(2026, 11, 3, 9, tzinfo=UTC)
    recs = [api_download(i, day + timedelta(minutes=i)) for i in range(5)]
    recs += [api_download(5, day, errorCode="AccessDenied"), record(6, day)]  # a denied call; an npm download
    key = f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/11/03/{ACCOUNT}_CloudTrail_us-east-1_20261103T0900Z_a.json.gz"
    root = write_local(tmp_path / "trail", {key: gz_file(recs)})
    db = tmp_path / "caa.duckdb"
    monkeypatch.setattr(store, "SCHEMA_DIR", schema_up_to(tmp_path, 22))  # the code of 022
    assert collect(db, [cloudtrail.SPEC], since=date(2026, 11, 1), source=str(root), now=TRAIL_NOW) == 0
    assert rows(db, "SELECT sum(downloads) FROM download_days") == [(1,)]  # the npm download alone
    monkeypatch.undo()
    cli._upgrade(db)
    assert_rollups_match(db)
    assert rows(db, "SELECT format, package, version, downloads FROM download_days ORDER BY 1") == [
        ("generic", "runner", "1.0.0", 5), ("npm", "lodash", "4.17.20", 1)]
    assert rows(db, "SELECT count(*) FROM store_meta WHERE key = 'downloads_redefined'") == [(0,)]
    # a store made today counts them from the first collection
    fresh = tmp_path / "fresh.duckdb"
    assert collect(fresh, [cloudtrail.SPEC], since=date(2026, 11, 1), source=str(root), now=TRAIL_NOW) == 0
    assert rows(fresh, "SELECT format, sum(downloads) FROM download_days GROUP BY 1 ORDER BY 1") == [
        ("generic", 5), ("npm", 1)]
    assert_rollups_match(fresh)


def pypi_download(i: int, at: datetime, package: str) -> dict:
    """pip (or another client) fetching zope.interface 5.0 under the name it was given."""
    return record(i, at, package=package, version="5.0", userAgent="pip/24.0",
                  requestParameters={"domainName": "acme", "domainOwner": ACCOUNT, "repositoryName": "pypi-store",
                                     "packageFormat": "pypi", "packageName": package, "packageVersion": "5.0"},
                  additionalEventData={"httpMethod": "GET", "requestUri":
                                       f"/pypi/pypi-store/simple/{package}/5.0/zope.interface-5.0.tar.gz"})


SPIKE_SERIES = "SELECT format, package, sessions, downloads FROM download_sessions_days WHERE level = ? ORDER BY 1, 2"


def store_of_023(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """A store that caa 023 collected and published (its download_sessions_days grouped the names as recorded):
    five downloads of zope.interface 5.0 under two clients' spellings and one npm download. Returns the store
    and the trail."""
    from analytics import rollups

    day = datetime(2026, 11, 3, 9, tzinfo=UTC)
    recs = [pypi_download(i, day + timedelta(minutes=i), ("Zope.Interface", "zope_interface")[i % 2]) for i in range(5)]
    recs.append(record(5, day))  # an npm download
    key = f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/11/03/{ACCOUNT}_CloudTrail_us-east-1_20261103T0900Z_a.json.gz"
    root = write_local(tmp_path / "trail", {key: gz_file(recs)})
    db = tmp_path / "caa.duckdb"
    monkeypatch.setattr(store, "SCHEMA_DIR", schema_up_to(tmp_path, 23))  # the code of 023
    keyed = queries.sql("rollup_download_sessions_days")
    recorded = keyed.replace("namespace_key(format, namespace) AS namespace, package_key(format, package) AS package",
                             "namespace, package")
    assert recorded != keyed
    real_sql = rollups.sql
    monkeypatch.setattr(rollups, "sql", lambda name: recorded if name == "rollup_download_sessions_days"
                        else real_sql(name))
    assert collect(db, [cloudtrail.SPEC], since=date(2026, 11, 1), source=str(root), now=TRAIL_NOW) == 0
    assert rows(db, SPIKE_SERIES, ["package"]) == [("npm", "lodash", 1, 1), *RECORDED]
    monkeypatch.undo()
    return db, root


RECORDED = [("pypi", "Zope.Interface", 3, 3), ("pypi", "zope_interface", 2, 2)]  # 023's series of one package


def test_a_store_from_before_migration_024_gets_its_spike_series_by_the_stored_name(tmp_path, monkeypatch):
    """The spike detectors' package and domain series are keyed by the name CodeArtifact stores (024): a store
    whose download_sessions_days grouped the recorded spellings (`Zope.Interface`, `zope_interface`: two series of
    one package) has it rebuilt by its next write session, and a store made today keys it from the start."""
    db, root = store_of_023(tmp_path, monkeypatch)
    cli._upgrade(db)
    assert_rollups_match(db)
    for level in ("package", "domain"):
        assert rows(db, SPIKE_SERIES, [level]) == [("npm", "lodash", 1, 1), ("pypi", "zope-interface", 5, 5)]
    assert rows(db, "SELECT count(*) FROM store_meta WHERE key LIKE 'rebuild:%'") == [(0,)]
    # a store made today keys them from the first collection
    fresh = tmp_path / "fresh.duckdb"
    assert collect(fresh, [cloudtrail.SPEC], since=date(2026, 11, 1), source=str(root), now=TRAIL_NOW) == 0
    assert rows(fresh, SPIKE_SERIES, ["package"]) == [("npm", "lodash", 1, 1), ("pypi", "zope-interface", 5, 5)]
    assert_rollups_match(fresh)


def test_a_report_on_a_store_an_older_caa_wrote_reads_it_upgraded(tmp_path, monkeypatch):
    """Every command that reads the store (`caa sql` here; the reports, `caa email send` and `caa alerts send` call
    the same cli.upgrade_to_read) first upgrades a store whose snapshot an older caa published, as `caa dashboard`
    does: its first read after installing caa has the spike series by the stored name, not half in the old layout.
    The notes go to stderr; stdout is the output alone. A store it cannot write is read as it was, with a note
    that says so; a current store is read without a write session."""
    db, _ = store_of_023(tmp_path, monkeypatch)
    query = "SELECT format, package, sessions, downloads FROM download_sessions_days WHERE level = 'package' ORDER BY 1, 2"

    def caa_sql() -> subprocess.CompletedProcess:
        out = subprocess.run([sys.executable, "-m", "cli", "sql", query, "--format", "csv", "--db", str(db)],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return out

    blocker = store.lock_path(db)
    blocker.unlink()
    blocker.mkdir()  # the lock file cannot be opened: a store this user may only read (root ignores modes)
    out = caa_sql()
    assert out.stdout.splitlines()[1:] == ["npm,lodash,1,1", *(",".join(map(str, r)) for r in RECORDED)]
    assert "older caa (schema 023, this caa" in out.stderr and "could not be upgraded" in out.stderr
    blocker.rmdir()
    out = caa_sql()
    assert out.stdout.splitlines() == ["format,package,sessions,downloads", "npm,lodash,1,1", "pypi,zope-interface,5,5"]
    assert "upgrading it first" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert store.schema_behind(db) is None
    published = store.snapshot_path(db).stat().st_mtime_ns
    out = caa_sql()
    assert out.stdout.splitlines()[-1] == "pypi,zope-interface,5,5" and out.stderr == ""
    assert store.snapshot_path(db).stat().st_mtime_ns == published


def test_a_store_from_before_the_transfer_rollup_gets_it_before_its_next_publish(tmp_path, monkeypatch):
    """Migration 015 adds download_ip_days empty; with every other rollup intact, heal notices that it does
    not count the downloads and rebuilds, so the bill page's transfer model never reads an empty rollup."""
    from analytics import rollups
    from core import lake

    old_schema = schema_up_to(tmp_path, 14)
    monkeypatch.setattr(store, "SCHEMA_DIR", old_schema)  # the code of 014
    later = ("download_ip_days", "transfer_days")  # added by 015 and 016
    monkeypatch.setattr(rollups, "TABLES", tuple(t for t in rollups.TABLES if t not in later))
    monkeypatch.setattr(lake, "ROLLUPS", {k: v for k, v in lake.ROLLUPS.items() if k not in later})
    monkeypatch.setattr(lake, "DATASETS", {k: v for k, v in lake.DATASETS.items() if k not in later})
    monkeypatch.setattr(rollups, "heal", lambda con: False)  # 014's heal did not know download_ip_days
    db = tmp_path / "caa.duckdb"
    src = write_local(tmp_path / "trail", trail_files(n_files=6, per_file=30))
    collect(db, [cloudtrail.SPEC], since=date(2026, 11, 1), source=str(src))
    monkeypatch.undo()
    (downloads,), = rows(db, "SELECT sum(downloads) FROM download_days")
    assert downloads > 0
    cli._upgrade(db)
    assert rows(db, "SELECT sum(downloads) FROM download_ip_days") == [(downloads,)]
    assert_rollups_match(db)


# What 015 rolled up: no size.
ROLLUP_IP_DAYS_015 = """
INSERT INTO new_download_ip_days
SELECT CAST(event_at AT TIME ZONE 'UTC' AS DATE) AS day, account_id, region, domain, repository, format,
       namespace, package, version, asset, source_ip, count(*) AS downloads
FROM downloads WHERE event_at >= $lo AND event_at < $hi GROUP BY ALL"""
REPO = {"account_id": ACCOUNT, "region": "us-east-1", "domain": "acme", "repository": "npm-store"}


def asset_rows(sizes: dict[str, int]) -> list[dict]:
    """An asset of version 4.17.20 (what the fixture trails download) of each package, with its size."""
    return [{**REPO, "format": "npm", "namespace": None, "package": p, "version": "4.17.20",
             "asset": f"{p}-4.17.20.tgz", "size_bytes": n, "sha256": None} for p, n in sizes.items()]


def test_a_store_from_before_the_sized_transfer_rollups_is_sized_before_its_next_publish(tmp_path, monkeypatch):
    """Migration 016: download_ip_days files written without sizes are retired, and heal rebuilds it and
    transfer_days from the events and the inventory before the upgraded store is published (the old files
    would not open in the new view)."""
    from analytics import rollups
    from core import lake

    old_schema = schema_up_to(tmp_path, 15)
    monkeypatch.setattr(store, "SCHEMA_DIR", old_schema)  # the code of 015, as far as the rollups go
    monkeypatch.setattr(rollups, "TABLES", tuple(t for t in rollups.TABLES if t != "transfer_days"))
    monkeypatch.setattr(rollups, "CHECKS", {k: v for k, v in rollups.CHECKS.items() if k != "transfer_days"})
    monkeypatch.setattr(lake, "ROLLUPS", {k: v for k, v in lake.ROLLUPS.items() if k != "transfer_days"})
    monkeypatch.setattr(lake, "DATASETS", {k: v for k, v in lake.DATASETS.items() if k != "transfer_days"})
    real_sql = rollups.sql
    monkeypatch.setattr(rollups, "sql", lambda name: ROLLUP_IP_DAYS_015 if name == "rollup_download_ip_days"
                        else real_sql(name))
    db = tmp_path / "caa.duckdb"
    collect(db, [cloudtrail.SPEC], since=date(2026, 11, 1),
            source=str(write_local(tmp_path / "trail", trail_files(n_files=30, per_file=30))))
    with store.writer(db) as con, store.transaction(con):
        store.insert_rows(con, "assets", asset_rows({f"pkg{i}": 1000 * (i + 1) for i in range(20)}),
                          inventory.COLUMNS["assets"])
        store.bump_version(con)
    monkeypatch.undo()
    assert rows(db, "SELECT count(*) FROM lake_files WHERE dataset = 'download_ip_days' AND retired_at IS NULL") != [(0,)]
    cli._upgrade(db)
    assert_rollups_match(db)
    (downloads, unsized, served), = rows(db, "SELECT sum(downloads), sum(unsized_downloads), sum(bytes) FROM transfer_days")
    assert downloads > 800 and unsized == 0
    assert served == rows(db, "SELECT sum(1000 * (CAST(substr(package, 4) AS INT) + 1)) FROM downloads")[0][0]


def test_downloads_the_inventory_could_not_size_are_sized_once_it_has_their_asset(tmp_path, rollup_connections):
    """The bill page's transfer bytes: downloads of a version the inventory has not seen yet (published and
    pulled between two inventory runs) count as unsized, and the first publish after the inventory brings
    their asset sizes them; an asset the inventory later loses (a cleanup deleted it) keeps the bytes its
    downloads served, also when a late trail file recomputes their day."""
    from analytics import transfer

    db = tmp_path / "caa.duckdb"
    src = tmp_path / "trail"
    settings = make_settings(db=db)
    write_local(src, trail_files(n_files=40, per_file=30))  # 2026-11-01 00:00 to 11-02 15:00
    assert collect(db, [cloudtrail.SPEC], settings, since=date(2026, 11, 1), source=str(src)) == 0
    size = {f"pkg{i}": 1_000_003 * (i + 1) for i in range(20)}

    def inventory_run(packages):
        with writer(db) as con:
            inventory.load_repository(con, RepositoryRows(
                {**REPO, "administrator_account": ACCOUNT, "description": None, "upstreams": [],
                 "external_connections": [], "created_at": TRAIL_NOW, "tags": {}, "last_seen_at": TRAIL_NOW},
                assets=asset_rows({p: size[p] for p in packages})))

    def shown():  # per package: (downloads, unsized downloads, bytes) over the trail's days, as the page sums
        con = store.open_reader(db)
        try:
            df = transfer.served(con, settings, date(2026, 11, 1), date(2026, 11, 2), per_day=False)
            total = transfer.served(con, settings, date(2026, 11, 1), date(2026, 11, 2), level="account")
        finally:
            con.close()
        assert total["bytes"].sum() == df["bytes"].sum()  # the account level reads transfer_days
        per = df.groupby("package")[["downloads", "unsized_downloads", "bytes"]].sum()
        return {p: (int(d), int(u), int(b)) for p, (d, u, b) in per.iterrows()}

    n = dict(rows(db, "SELECT package, count(*) FROM downloads GROUP BY 1"))
    assert len(n) == 20
    assert shown() == {p: (k, k, 0) for p, k in n.items()}  # no inventory yet
    inventory_run([p for p in size if p != "pkg19"])
    assert shown() == {p: (k, k, 0) if p == "pkg19" else (k, 0, k * size[p]) for p, k in n.items()}
    assert_rollups_match(db)
    inventory_run([p for p in size if p != "pkg0"])  # pkg0 deleted, pkg19 inventoried at last
    assert shown() == {p: (k, 0, k * size[p]) for p, k in n.items()}
    late = [record(900_001, datetime(2026, 11, 1, 5, tzinfo=UTC), package="pkg0"),
            record(900_002, datetime(2026, 11, 1, 6, tzinfo=UTC), package="pkg19")]
    write_local(src, {f"AWSLogs/o-a1b2c3d4e5/{ACCOUNT}/CloudTrail/us-east-1/2026/11/01/late.json.gz": gz_file(late)})
    assert collect(db, [cloudtrail.SPEC], settings, since=date(2026, 11, 1), source=str(src)) == 0
    n["pkg0"] += 1
    n["pkg19"] += 1
    assert shown() == {p: (k, 0, k * size[p]) for p, k in n.items()}


def test_downloads_under_a_clients_spelling_are_sized_by_the_stored_asset(tmp_path):
    """CodeArtifact stores NuGet and PyPI names normalized, and the inventory lists them so: `acme.core`
    1.0.0-Beta with asset `acme.core.1.0.0-Beta.nupkg`, `zope-interface`. A NuGet client fetches
    `.../acme.core.1.0.0-beta.nupkg` for `Acme.Core`, pip `Zope.Interface`, and CloudTrail records that. The
    inventory run that brings the assets sizes those downloads (unsized_days finds their day, the refresh
    matches them)."""
    from analytics import transfer

    db = tmp_path / "caa.duckdb"
    src = tmp_path / "trail"
    settings = make_settings(db=db)
    at = datetime(2026, 11, 1, 9, tzinfo=UTC)
    sent = [("nuget", "Acme.Core", "1.0.0-beta", "/nuget/npm-store/v3/package/acme.core/1.0.0-beta/"
             "acme.core.1.0.0-beta.nupkg"),
            ("pypi", "Zope.Interface", "5.0", "/pypi/npm-store/simple/zope-interface/zope.interface-5.0.tar.gz")]
    recs = [record(i, at + timedelta(minutes=i), package=pkg, version=v,
                   requestParameters={"domainName": "acme", "domainOwner": ACCOUNT, "repositoryName": "npm-store",
                                      "packageFormat": fmt, "packageName": pkg, "packageVersion": v},
                   additionalEventData={"requestUri": uri}) for i, (fmt, pkg, v, uri) in enumerate(sent * 3)]
    write_local(src, {f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/11/01/a.json.gz": gz_file(recs)})
    assert collect(db, [cloudtrail.SPEC], settings, since=date(2026, 11, 1), source=str(src)) == 0
    stored = [("nuget", "acme.core", "1.0.0-Beta", "acme.core.1.0.0-Beta.nupkg", 7_000_001),
              ("pypi", "zope-interface", "5.0", "zope.interface-5.0.tar.gz", 5_000_003)]
    with writer(db) as con:
        inventory.load_repository(con, RepositoryRows(
            {**REPO, "administrator_account": ACCOUNT, "description": None, "upstreams": [],
             "external_connections": [], "created_at": TRAIL_NOW, "tags": {}, "last_seen_at": TRAIL_NOW},
            assets=[{**REPO, "format": fmt, "namespace": None, "package": p, "version": v, "asset": a,
                     "size_bytes": n, "sha256": None} for fmt, p, v, a, n in stored]))
    con = store.open_reader(db)
    try:
        df = transfer.served(con, settings, date(2026, 11, 1), date(2026, 11, 1), per_day=False)
    finally:
        con.close()
    per = df.groupby("format")[["downloads", "unsized_downloads", "bytes"]].sum()
    assert {f: tuple(map(int, r)) for f, r in per.iterrows()} == {"nuget": (3, 0, 3 * 7_000_001),
                                                                  "pypi": (3, 0, 3 * 5_000_003)}
    assert_rollups_match(db)


@pytest.mark.parametrize("lost", ["principal_hours", "auth_hours", "download_sessions_days", "download_ip_days",
                                  "transfer_days", "download_days"])
def test_a_rollup_that_lost_its_rows_is_rebuilt_alone_before_the_next_publish(tmp_path, lost):
    """A rollup that does not add up to the events (emptied here; a migration adding one starts so) is rebuilt
    before the next publish, and only it: the others keep their files. Before, only the download rollups were
    checked, so an empty principal_hours, auth_hours or session rollup was published as it was (the spike
    page's principal and auth series, the session spikes empty), and any mismatch rebuilt all eight."""
    from analytics import rollups
    from core import lake

    db = tmp_path / "caa.duckdb"
    collect(db, [cloudtrail.SPEC], since=date(2026, 11, 1),
            source=str(write_local(tmp_path / "trail", trail_files(n_files=8, per_file=40))))
    with writer(db) as con:  # token calls, a third of them denied (the trail has downloads only)
        con.execute("CREATE TEMP TABLE e AS SELECT * FROM events LIMIT 0")
        con.execute("INSERT INTO e (event_id, event_at, event_name, account_id, region, domain, principal_arn, "
                    "source_ip, error_code) SELECT 't' || i, TIMESTAMPTZ '2026-11-02 00:00:00+00' + i * "
                    "INTERVAL 37 MINUTE, 'GetAuthorizationToken', '111122223333', 'us-east-1', 'acme', "
                    "'arn:aws:iam::111122223333:user/ci', '10.0.0.1', CASE WHEN i % 3 = 0 THEN 'AccessDenied' END "
                    "FROM range(60) t(i)")
        with store.transaction(con):
            lake.append(con, "e")
            store.mark_days(con, "e")
            store.bump_version(con)
    files = "SELECT dataset, file FROM lake_files WHERE dataset <> 'events' AND retired_at IS NULL ORDER BY ALL"
    before = rows(db, files)
    assert {ds for ds, _ in before} == set(lake.ROLLUPS)  # every rollup has rows (token calls, errors)
    with store.writer(db) as con, store.transaction(con):  # no hook: published as it is
        lake.clear(con, lake.ROLLUPS[lost])
        store.bump_version(con)
    assert rows(db, f"SELECT count(*) FROM {lost}") == [(0,)]
    with writer(db):  # any session: its before-publish hook heals
        pass
    rebuilt = {lost, rollups.MONTHS} if lost == "download_days" else {lost}
    rebuilt |= set(rollups.TRANSFER) if lost in rollups.TRANSFER else set()  # one is summed from the other
    after = rows(db, files)
    assert [f for f in after if f[0] not in rebuilt] == [f for f in before if f[0] not in rebuilt]
    assert {ds for ds, _ in after} == set(lake.ROLLUPS)
    assert_rollups_match(db)


def test_a_session_that_loads_events_without_the_rollups_hook_publishes_nothing(tmp_path):
    """The store's one before-publish hook cannot be forgotten silently: readers would see events
    without their rollups (a Usage page short of the newest downloads)."""
    src = write_local(tmp_path / "trail", trail_files(n_files=3, per_file=20))
    db = tmp_path / "caa.duckdb"
    with pytest.raises(store.StoreError, match="before-publish hook"), store.writer(db) as con:
        ctx = RunContext(settings=make_settings(db=db), con=con, show_progress=False, now=TRAIL_NOW,
                         since=date(2026, 11, 1), source=str(src))
        run_collectors([cloudtrail.SPEC], ctx)
    assert not store.snapshot_path(db).exists()  # committed in the store, but never shown without rollups
    collect(db, [cloudtrail.SPEC], since=date(2026, 11, 1), source=str(src))  # the next session heals them
    (events,), = rows(db, "SELECT count(*) FROM events")
    assert events > 50 and rows(db, "SELECT sum(events) FROM event_days") == [(events,)]
    assert_rollups_match(db)


def test_events_written_outside_the_loaders_are_rolled_up_when_the_session_ends(tmp_path):
    db = tmp_path / "caa.duckdb"
    with writer(db) as con:
        con.execute("INSERT INTO event_rows (event_id, event_at, event_name, account_id, domain, repository, format, "
                    "package, version, asset, error_code) VALUES "
                    "('a', TIMESTAMPTZ '2026-03-01 23:59:59+00', 'ReadFromRepository', '1', 'd', 'r', 'npm', 'x', "
                    "'1', 'x.tgz', NULL), ('b', TIMESTAMPTZ '2026-03-02 00:00:00+00', 'GetAuthorizationToken', '1', "
                    "'d', NULL, NULL, NULL, NULL, NULL, 'AccessDenied')")
    assert rows(db, "SELECT day, event_name, ok, events, downloads FROM event_days ORDER BY day") == [
        (date(2026, 3, 1), "ReadFromRepository", True, 1, 1), (date(2026, 3, 2), "GetAuthorizationToken", False, 1, 0)]
    assert_rollups_match(db)


def test_sessions_of_an_unnamed_principal_and_of_one_named_unknown_stay_apart(tmp_path):
    """The session rollup groups a session by its parts: a download whose principal CloudTrail left out and one
    by a principal literally named 'unknown', from one IP in one minute, are two sessions of the principal
    shown as 'unknown' (as session_key keeps them), and so are their token calls; a minute's downloads fall on
    that minute's UTC day."""
    db = tmp_path / "caa.duckdb"
    values = ", ".join(
        f"('{i}', TIMESTAMPTZ '{at}', 'ReadFromRepository', '1', 'r', 'd', 'repo', 'npm', 'x', '1', 'x.tgz', "
        f"{who}, '10.0.0.1')"
        for i, (at, who) in enumerate([("2026-03-01 23:59:01+00", "NULL"), ("2026-03-01 23:59:30+00", "NULL"),
                                       ("2026-03-01 23:59:40+00", "'unknown'"), ("2026-03-02 00:00:05+00", "NULL")]))
    tokens = ", ".join(f"('t{i}', TIMESTAMPTZ '2026-03-01 23:59:{i:02d}+00', 'GetAuthorizationToken', '1', 'r', 'd', "
                       f"{who}, '10.0.0.1')" for i, who in enumerate(["NULL", "NULL", "'unknown'"]))
    with writer(db) as con:
        con.execute("INSERT INTO event_rows (event_id, event_at, event_name, account_id, region, domain, repository, "
                    f"format, package, version, asset, principal_arn, source_ip) VALUES {values}")
        con.execute("INSERT INTO event_rows (event_id, event_at, event_name, account_id, region, domain, principal_arn, "
                    f"source_ip) VALUES {tokens}")
    assert rows(db, "SELECT principal_arn, events, token_sessions FROM auth_hours") == [("unknown", 3, 2)]
    assert rows(db, "SELECT day, principal_arn, sessions, downloads, downloads_sq FROM download_sessions_days "
                    "WHERE level = 'principal' ORDER BY day") == [
        (date(2026, 3, 1), "unknown", 2, 3, 2 * 2 + 1), (date(2026, 3, 2), "unknown", 1, 1, 1)]
    assert rows(db, "SELECT day, sessions, downloads FROM download_sessions_days WHERE level = 'package' "
                    "ORDER BY day") == [(date(2026, 3, 1), 2, 3), (date(2026, 3, 2), 1, 1)]
    assert_rollups_match(db)


# The reference answers, from raw events, for the queries that read rollups.
RAW_CLEANUP_DOWNLOADS = f"""
SELECT domain, repository, format, namespace, package, version, max(event_at) AS last_downloaded_at,
       count(*) FILTER (WHERE event_at > $as_of - INTERVAL 30 DAY) AS downloads_30d,
       count(*) FILTER (WHERE event_at > $as_of - INTERVAL 90 DAY) AS downloads_90d,
       count(*) FILTER (WHERE event_at > $as_of - INTERVAL 365 DAY) AS downloads_365d,
       count(*) AS downloads_total
FROM events WHERE {DOWNLOAD} AND event_at <= $as_of GROUP BY ALL"""
RAW_REQUESTED_AFTER = """
SELECT account_id, region, domain, repository, format, namespace, package, version, count(*) AS downloads_after,
       min(event_at) AS first_requested_at
FROM downloads WHERE event_at > $start_at AND event_at <= $end_at GROUP BY ALL ORDER BY ALL"""
RAW_REQUESTS = """
SELECT CAST(event_at AT TIME ZONE 'UTC' AS DATE) AS usage_date, account_id, region, count(*) AS requests
FROM events WHERE error_code IS NULL AND event_at >= $lo AND event_at < $hi GROUP BY ALL ORDER BY ALL"""


@pytest.fixture(scope="module")
def demo_reader(demo_store):
    db, _ = demo_store()
    con = store.open_reader(db)
    yield con
    con.close()



def test_the_cleanup_report_counts_the_downloads_up_to_its_as_of(demo_reader):
    """At the store's newest event the cleanup report reads that day whole from download_days; an as_of
    earlier on the same day must still leave out the downloads after it."""
    con = demo_reader
    Filters().apply(con)
    latest = con.execute("SELECT max(event_at) FROM events").fetchone()[0]
    midnight = datetime.combine(latest.astimezone(UTC).date(), datetime.min.time(), UTC)
    later = con.execute("SELECT min(event_at) FROM downloads WHERE event_at >= $m", {"m": midnight}).fetchone()[0]
    settings = make_settings()
    keys = ["domain", "repository", "format", "namespace", "package", "version"]
    cols = [*keys, "last_downloaded_at", "downloads_30d", "downloads_90d", "downloads_365d", "downloads_total"]
    # the newest event; a moment into its day with that day's later downloads left out; a day before; the
    # last instant of a day (the backtest's, read from download_days whole)
    for as_of in (latest, later, latest - timedelta(days=1, hours=3), cleanup.day_end(latest - timedelta(days=2))):
        got = cleanup.evaluate(con, settings, as_of=as_of)
        got = got[got["downloads_total"] > 0][cols].astype({"namespace": object})
        want = con.execute(f"SELECT * FROM ({RAW_CLEANUP_DOWNLOADS}) d WHERE EXISTS (SELECT 1 FROM package_versions v "
                           "WHERE v.domain = d.domain AND v.repository = d.repository AND v.format = d.format AND "
                           "v.namespace IS NOT DISTINCT FROM d.namespace AND v.package = d.package AND "
                           "v.version = d.version AND (v.published_at IS NULL OR v.published_at <= $as_of))",
                           {"as_of": as_of}).df()
        want["namespace"] = want["namespace"].astype(object).where(want["namespace"].notna(), None)
        assert len(want) > 100
        pd.testing.assert_frame_equal(got.sort_values(keys).reset_index(drop=True),
                                      want[cols].sort_values(keys).reset_index(drop=True), check_dtype=False)


@pytest.mark.parametrize("filtered", [False, True], ids=["unfiltered", "filtered"])
def test_queries_on_rollups_answer_what_a_scan_of_events_answers(demo_reader, filtered):
    con = demo_reader
    Filters().apply(con)
    # the filtered view starts 200 days before the estate's end (which follows the clock)
    end = con.execute("SELECT max(event_at) FROM events").fetchone()[0].date()
    filters = Filters(domains=("acme",), start=end - timedelta(days=200)) if filtered else Filters()
    filters.apply(con)
    try:
        latest, first = con.execute("SELECT max(event_at), min(event_at) FROM events").fetchone()
        assert queries.run(con, "as_of").iloc[0].tolist() == [
            pd.Timestamp(latest), con.execute("SELECT count(*) FROM events").fetchone()[0]]
        hist = queries.run(con, "cleanup_history").iloc[0]
        assert (hist["first_event_at"], hist["latest_event_at"]) == (pd.Timestamp(first), pd.Timestamp(latest))
        keys = ["domain", "repository", "format", "namespace", "package", "version"]
        # the newest event's day whole from download_days (as analytics/cleanup.py asks when no event is newer
        # than as_of), and read raw up to as_of, as for any as_of in the past
        # and as_ofs every other day for a month, so that each window starts on every other day of its month
        # (a first day in the month's first half reads download_months less the days up to it), whatever day
        # the estate ends
        month = [latest - timedelta(days=k, hours=5) for k in range(1, 32, 2)]
        for as_of, whole_day in ((latest, True), (latest, False), (latest - timedelta(days=3, hours=7, seconds=11), False),
                                 (latest - timedelta(days=120, hours=13), False), *((m, False) for m in month)):
            # whole months from download_months before the as-of month (only days under a date filter, as
            # analytics/cleanup.py asks)
            day = as_of.astimezone(UTC).date()
            split = date.min if filtered else day.replace(day=1)
            got = queries.run(con, "cleanup_versions", as_of=as_of, split=split,
                              days_to=day + timedelta(days=1) if whole_day else day, sized=True).dropna(subset=["last_downloaded_at"])
            want = con.execute(RAW_CLEANUP_DOWNLOADS, {"as_of": as_of}).df()
            assert not want.empty
            cols = [*keys, "last_downloaded_at", "downloads_30d", "downloads_90d", "downloads_365d",
                    "downloads_total"]
            got = got[got["downloads_total"] > 0][cols].sort_values(keys).reset_index(drop=True)
            pd.testing.assert_frame_equal(got, want[cols].sort_values(keys).reset_index(drop=True),
                                          check_dtype=False)
        last_day = latest.astimezone(UTC).date()
        start = last_day.replace(day=1) - timedelta(days=40)
        got = queries.run(con, "cost_requests_daily", start=start, end=last_day, free_requests=100)
        want = con.execute(RAW_REQUESTS, {"lo": datetime(start.year, start.month, start.day, tzinfo=UTC),
                                          "hi": datetime.combine(last_day + timedelta(days=1), datetime.min.time(),
                                                                 UTC)}).df()
        pd.testing.assert_frame_equal(got[["usage_date", "account_id", "region", "requests"]].reset_index(drop=True),
                                      want.reset_index(drop=True), check_dtype=False)
        counts = dict(queries.run(con, "health_row_counts").itertuples(index=False))
        assert counts["events"] == con.execute("SELECT count(*) FROM events").fetchone()[0]
        assert counts["downloads (view)"] == con.execute("SELECT count(*) FROM downloads").fetchone()[0]
        end_at = datetime.combine(last_day, datetime.min.time(), UTC)
        idle = queries.run(con, "usage_idle_repositories", start_at=end_at - timedelta(days=2), end_at=end_at)
        key = "account_id, region, domain, repository"  # a repository name recurs across domains
        seen = set(con.execute(
            f"SELECT DISTINCT {key} FROM events WHERE error_code IS NULL AND event_at >= $lo AND event_at < $hi",
            {"lo": end_at - timedelta(days=2), "hi": end_at}).fetchall())
        everyone = set(con.execute(f"SELECT {key} FROM repositories").fetchall())
        assert set(idle[["account_id", "region", "domain", "repository"]].itertuples(index=False, name=None)) == (
            everyone - seen)
        window = {"prev_start_at": end_at - timedelta(days=60), "start_at": end_at - timedelta(days=30),
                  "end_at": end_at}
        top = queries.run(con, "usage_top_versions", top=50, **window)
        want = con.execute(RAW_TOP_VERSIONS, {"top": 50, **window}).df()
        assert len(want) == 50 and want["principals"].gt(1).any()
        pd.testing.assert_frame_equal(top[want.columns].reset_index(drop=True), want, check_dtype=False)
        window = {"start_at": end_at - timedelta(days=30), "end_at": end_at}
        single = queries.run(con, "usage_single_consumer_versions", **window)
        want = con.execute(RAW_SINGLE_CONSUMER, window).df()
        assert not want.empty
        pd.testing.assert_frame_equal(single, want, check_dtype=False)
        midnight = datetime.combine(latest.astimezone(UTC).date(), datetime.min.time(), UTC)
        # the short window ends at the newest download, not at a fixed offset from the newest event: the demo's
        # traffic follows the clock, and on a quiet weekend (2026-12-06 00:15Z) the filtered domain had no
        # download in the 18 hours before its newest event but two hours
        last_download = con.execute("SELECT max(event_at) FROM downloads").fetchone()[0]
        for then, now in ((cleanup.day_end(latest - timedelta(days=90)), latest),  # the backtest's window
                          (latest - timedelta(days=90, hours=5, seconds=3), latest),
                          (midnight - timedelta(days=30), latest),  # from a midnight (exclusive)
                          (last_download - timedelta(hours=20), last_download)):  # within a day or two
            got = cleanup.requested_after(con, then, now, newest=latest)  # as the backtest reads it
            want = con.execute(RAW_REQUESTED_AFTER, {"start_at": then, "end_at": now}).df()
            assert not want.empty
            pd.testing.assert_frame_equal(got, want, check_dtype=False)
    finally:
        Filters().apply(con)


RAW_TOP_VERSIONS = """
SELECT format, namespace, package, version, count(*) FILTER (WHERE event_at >= $start_at) AS downloads,
       count(DISTINCT principal_arn) FILTER (WHERE event_at >= $start_at) AS principals,
       count(*) FILTER (WHERE event_at < $start_at) AS prev_downloads
FROM downloads WHERE event_at >= $prev_start_at AND event_at < $end_at
GROUP BY ALL HAVING count(*) FILTER (WHERE event_at >= $start_at) > 0
ORDER BY downloads DESC, format, namespace, package, version LIMIT $top"""

RAW_SINGLE_CONSUMER = """
SELECT account_id, region, domain, repository, format, namespace, package, version,
       any_value(principal_arn) AS principal_arn, count(*) AS downloads
FROM downloads WHERE event_at >= $start_at AND event_at < $end_at
GROUP BY account_id, region, domain, repository, format, namespace, package, version
HAVING count(DISTINCT coalesce(principal_arn, 'unknown')) = 1
ORDER BY downloads DESC, account_id, region, domain, repository, format, namespace, package, version"""


def test_a_filter_reaches_the_rollups(demo_reader):
    con = demo_reader
    every = queries.run(con, "as_of").iloc[0]["events"]
    Filters(domains=("acme",)).apply(con)
    try:
        acme = queries.run(con, "as_of").iloc[0]["events"]
        assert 0 < acme < every
        assert acme == con.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        Filters().apply(con)
    assert queries.run(con, "as_of").iloc[0]["events"] == every
    assert isinstance(con, duckdb.DuckDBPyConnection)


RAW_SPIKE_SERIES = f"""
WITH s AS (
    SELECT account_id, region,
           CASE WHEN $level <> 'principal' THEN domain END AS domain,
           CASE WHEN $level IN ('package', 'repository') THEN repository END AS repository,
           CASE WHEN $level IN ('package', 'domain') THEN format END AS format,
           CASE WHEN $level IN ('package', 'domain') THEN namespace END AS namespace,
           CASE WHEN $level IN ('package', 'domain') THEN package END AS package,
           CASE WHEN $level = 'principal' THEN coalesce(principal_arn, 'unknown') END AS principal_arn,
           date_trunc($grain, event_at AT TIME ZONE 'UTC') AS bucket_at, {SESSION} AS session, count(*) AS n
    FROM downloads WHERE event_at >= $start_at AND event_at < $end_at GROUP BY ALL
)
SELECT account_id, region, domain, repository, format, namespace, package, principal_arn, bucket_at,
       count(*) AS sessions, sum(n) AS downloads, sum(n * n) AS downloads_sq
FROM s GROUP BY account_id, region, domain, repository, format, namespace, package, principal_arn, bucket_at
ORDER BY ALL"""


@pytest.mark.parametrize("filters", [Filters(), Filters(domains=("acme",), start=date(2026, 1, 1))],
                         ids=["unfiltered", "filtered"])
@pytest.mark.parametrize("level", ["package", "domain", "repository", "principal"])
def test_spike_series_from_the_session_rollup_equal_a_scan_of_downloads(demo_reader, filters, level):
    from analytics import spikes

    con = demo_reader
    filters.apply(con)
    try:
        latest, last_download = con.execute("SELECT max(event_at), max(event_at) FILTER (WHERE "
                                            "is_download(event_name, error_code, version, asset)) FROM events"
                                            ).fetchone()
        end = latest + timedelta(minutes=3)
        windows = [(datetime(1970, 1, 1, tzinfo=UTC), end),  # whole history: rollup days + a partial last day
                   (latest - timedelta(days=40, hours=5), latest - timedelta(days=3, hours=2)),  # two partial edges
                   # within one or two days, ending just after the newest download (a fixed offset from the newest
                   # event held none on a quiet weekend: 2026-12-06 00:15Z, the filtered domain)
                   (last_download - timedelta(hours=20), last_download + timedelta(seconds=1))]
        for grain in ("day", "hour"):
            for start_at, end_at in windows:
                got = spikes.session_series(con, level, grain, start_at, end_at)  # in no order
                want = con.execute(RAW_SPIKE_SERIES, {"level": level, "grain": grain, "start_at": start_at,
                                                      "end_at": end_at}).df()
                assert len(want) > 0
                got = got.sort_values(list(got.columns), na_position="last", ignore_index=True)
                pd.testing.assert_frame_equal(got, want, check_dtype=False)
    finally:
        Filters().apply(con)


RAW_PRINCIPAL_REQUESTS = f"""
WITH s AS (
    SELECT account_id, region, domain, coalesce(principal_arn, 'unknown') AS principal_arn,
           date_trunc('hour', event_at AT TIME ZONE 'UTC') AS hour_at, {SESSION} AS session, count(*) AS n,
           count(*) FILTER (WHERE {DOWNLOAD}) AS d
    FROM events WHERE error_code IS NULL AND event_at >= $start_at AND event_at < $end_at GROUP BY ALL
)
SELECT account_id, region, principal_arn, hour_at, sum(n) AS requests, sum(d) AS downloads, count(*) AS sessions,
       sum(n * n) AS requests_sq
FROM s GROUP BY account_id, region, principal_arn, hour_at ORDER BY ALL"""


@pytest.mark.parametrize("filters", [Filters(), Filters(domains=("acme",), start=date(2026, 1, 1)),
                                     Filters(regions=("us-east-1",))], ids=["unfiltered", "domain", "region"])
def test_principal_requests_from_the_hour_rollup_equal_a_scan_of_events(demo_reader, filters):
    """The request-volume signal's series (principal_hours for whole days, raw edges; all raw under a
    domain filter, which the rollup cannot apply) equals a scan of events."""
    from analytics import spikes

    con = demo_reader
    filters.apply(con)
    try:
        latest = con.execute("SELECT max(event_at) FROM events").fetchone()[0]
        for start_at, end_at in ((latest - timedelta(days=40, hours=5), latest - timedelta(days=3, hours=2)),
                                 (latest - timedelta(hours=20), latest + timedelta(minutes=3))):
            got = spikes.principal_requests(con, start_at, end_at)  # in no order
            want = con.execute(RAW_PRINCIPAL_REQUESTS, {"start_at": start_at, "end_at": end_at}).df()
            assert len(want) > 0
            got = got.sort_values(list(got.columns), na_position="last", ignore_index=True)
            pd.testing.assert_frame_equal(got, want, check_dtype=False)
    finally:
        Filters().apply(con)


def test_a_day_loaded_in_many_batches_is_rolled_up_once_per_publish(tmp_path, monkeypatch):
    """A dense trail puts one day in many batches: its rollup is recomputed when the snapshot is published,
    not after every batch (which would re-read the day once per batch)."""
    from analytics import rollups

    files = trail_files(n_files=20, per_file=25)  # 20 hourly files of one day
    root = write_local(tmp_path / "trail", files)
    db = tmp_path / "caa.duckdb"
    settings = make_settings(db=db, cloudtrail={"batch_files": 2})  # ten batches
    calls: list[list[date]] = []
    real = rollups.refresh
    monkeypatch.setattr(rollups, "refresh", lambda con, days: (calls.append(sorted(set(days))), real(con, days))[1])
    assert collect(db, [cloudtrail.SPEC], settings, since=date(2026, 10, 30), source=str(root)) == 0
    assert calls == [[date(2026, 11, 1)]]
    assert_rollups_match(db)


@pytest.mark.parametrize("kind", ["unfiltered", "domain", "account"])
def test_auth_series_from_the_hour_rollup_equal_a_scan_of_events(demo_reader, kind, monkeypatch):
    """The auth-spike series reads auth_hours also under a domain, account or region filter (before, any
    list filter sent it to raw events: 2 s per view at 200M events); it equals the scan of events."""
    from analytics import spikes

    con = demo_reader
    Filters().apply(con)
    account, region = con.execute("SELECT account_id, region FROM events WHERE error_code IS NOT NULL "
                                  "GROUP BY ALL ORDER BY count(*) DESC LIMIT 1").fetchone()
    filters = {"unfiltered": Filters(), "domain": Filters(domains=("acme",), start=date(2026, 1, 1)),
               "account": Filters(accounts=(account,), regions=(region,))}[kind]
    filters.apply(con)
    try:
        latest = con.execute("SELECT max(event_at) FROM events").fetchone()[0]
        end_at = latest.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        start_at = end_at - timedelta(days=60)
        names = []
        real = spikes.run
        monkeypatch.setattr(spikes, "run", lambda c, name, **p: (names.append(name), real(c, name, **p))[1])
        got = spikes.auth_series(con, start_at, end_at)
        want = real(con, "spike_auth_series_events", start_at=start_at, end_at=end_at,
                    denied_codes=spikes.DENIED_CODES)
        assert names == ["spike_auth_series"]
        assert want["denied"].sum() > 0 and want["token_sessions"].sum() > 0
        pd.testing.assert_frame_equal(got, want, check_dtype=False)
    finally:
        Filters().apply(con)


def test_the_utc_macros_agree_with_at_time_zone_utc_whatever_the_session_time_zone(tmp_path):
    """Migration 018: the rollups read UTC days, hours and minutes through utc_wall and utc_instant instead
    of ICU's AT TIME ZONE 'UTC'. On instants around DST changes, day ends, the epoch and a leap day, under a
    session zone that is not UTC, each gives what AT TIME ZONE 'UTC' gives."""
    db = tmp_path / "caa.duckdb"
    with store.writer(db):
        pass
    con = duckdb.connect(str(db), read_only=True)
    con.execute("SET TimeZone = 'America/New_York'")
    instants = ["1969-12-31 23:59:59.999999+00", "1970-01-01 00:00:00+00", "2024-02-29 23:30:00.5+00",
                "2026-03-08 06:59:59.999999+00", "2026-03-08 07:00:00+00", "2026-11-01 05:30:00+00",
                "2026-11-01 06:30:00+00", "2026-12-31 23:59:59+00", "0001-01-01 00:00:01+00"]
    got = con.execute(
        "SELECT utc_wall(t) = t AT TIME ZONE 'UTC', "
        "CAST(utc_wall(t) AS DATE) = CAST(t AT TIME ZONE 'UTC' AS DATE), "
        "utc_instant(date_trunc('hour', utc_wall(t))) = date_trunc('hour', t AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', "
        "session_key('p', 'ip', t) = ('p', 'ip', date_trunc('minute', t AT TIME ZONE 'UTC')) "
        "FROM (SELECT CAST(unnest($i) AS TIMESTAMPTZ) AS t)", {"i": instants}).fetchall()
    con.close()
    assert got == [(True, True, True, True)] * len(instants)
