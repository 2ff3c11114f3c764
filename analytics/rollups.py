"""Daily rollups of `events`: event_days and download_days (schema/005_rollups.sql), and the spike
detectors' download sessions per level, download_sessions_days (schema/007_session_rollup.sql).

`refresh(con, days)` recomputes the given UTC days from `events`. The loaders mark the days of each
batch they insert (`touch`, in the batch's transaction), and the store recomputes the marked days
(`flush`) before it publishes the reader snapshot, so readers never see events without their rollups.
`rebuild(con)` recomputes every day (after the migration that created the tables). `heal(con)`, run at
the end of every write session, rebuilds them when their event count no longer matches `events` (a
process killed before its flush, or rows written by hand). Each day is read with a range on event_at,
which DuckDB prunes by its zone maps, so refreshing a day costs about one day of events whatever the
store's size.

Reads: events (and the downloads view). Writes: event_days, download_days, download_sessions_days.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

import duckdb

from core.clock import utc_midnight

DAY = "CAST(event_at AT TIME ZONE 'UTC' AS DATE)"
DOWNLOAD = ("event_name = 'ReadFromRepository' AND error_code IS NULL AND version IS NOT NULL "
            "AND asset IS NOT NULL")  # the `downloads` view's predicate (schema/001_init.sql)

EVENT_DAYS_SQL = f"""
INSERT INTO event_days
SELECT {DAY} AS day, account_id, region, domain, repository, format, event_name, error_code IS NULL AS ok,
       count(*) AS events, count(*) FILTER (WHERE {DOWNLOAD}) AS downloads,
       min(event_at) AS first_at, max(event_at) AS last_at,
       max(event_at) FILTER (WHERE {DOWNLOAD}) AS last_download_at
FROM events
WHERE event_at >= $lo AND event_at < $hi
GROUP BY ALL
"""

DOWNLOAD_DAYS_SQL = f"""
INSERT INTO download_days
SELECT {DAY} AS day, account_id, region, domain, repository, format, namespace, package, version,
       count(*) AS downloads, min(event_at) AS first_at, max(event_at) AS last_at
FROM downloads
WHERE event_at >= $lo AND event_at < $hi
GROUP BY ALL
"""

# One statement for the three detector levels (schema/007_session_rollup.sql): the downloads are grouped once
# into (package, session) rows, from which each level counts its distinct sessions.
SESSION_DAYS_SQL = f"""
INSERT INTO download_sessions_days
WITH s AS MATERIALIZED (
    SELECT {DAY} AS day, account_id, region, domain, repository, format, namespace, package, principal_arn,
           source_ip, date_trunc('minute', event_at AT TIME ZONE 'UTC') AS minute, count(*) AS n
    FROM downloads
    WHERE event_at >= $lo AND event_at < $hi
    GROUP BY ALL
)
SELECT day, 'package', account_id, region, domain, repository, format, namespace, package, NULL, count(*), sum(n)
FROM s GROUP BY day, account_id, region, domain, repository, format, namespace, package
UNION ALL
SELECT day, 'repository', account_id, region, domain, repository, NULL, NULL, NULL, NULL,
       count(DISTINCT (principal_arn, source_ip, minute)), sum(n)
FROM s GROUP BY day, account_id, region, domain, repository
UNION ALL
SELECT day, 'principal', account_id, region, NULL, NULL, NULL, NULL, NULL, coalesce(principal_arn, 'unknown'),
       count(DISTINCT (principal_arn, source_ip, minute)), sum(n)
FROM s GROUP BY day, account_id, region, coalesce(principal_arn, 'unknown')
"""
TABLES = ("event_days", "download_days", "download_sessions_days")


def _insert_all(con: duckdb.DuckDBPyConnection, bounds: dict) -> None:
    con.execute(EVENT_DAYS_SQL, bounds)
    con.execute(DOWNLOAD_DAYS_SQL, bounds)
    con.execute(SESSION_DAYS_SQL, bounds)


SPAN_DAYS = 31  # days per refresh statement: bounds the memory of a backfill's flush


def _spans(days: Iterable[date]) -> list[tuple[date, date]]:
    """Sorted days as runs of consecutive days, at most SPAN_DAYS each: [(first, last), ...]."""
    out: list[tuple[date, date]] = []
    for d in sorted(set(days)):
        if out and d == out[-1][1] + timedelta(days=1) and (d - out[-1][0]).days < SPAN_DAYS:
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return out


def refresh(con: duckdb.DuckDBPyConnection, days: Iterable[date]) -> None:
    """Recompute the rollup rows of `days` (UTC) from `events`. Call it inside the caller's transaction."""
    for first, last in _spans(days):
        for table in TABLES:
            con.execute(f"DELETE FROM {table} WHERE day BETWEEN $first AND $last", {"first": first, "last": last})
        _insert_all(con, {"lo": utc_midnight(first), "hi": utc_midnight(last + timedelta(days=1))})


def touch(con: duckdb.DuckDBPyConnection, table: str, where: str = "TRUE") -> None:
    """Mark the UTC days of `table`'s rows (a loader's staged batch) for the next flush(). Call it in the
    transaction that inserts them: the mark is a TEMP row, committed with the batch."""
    con.execute("CREATE TEMP TABLE IF NOT EXISTS rollup_pending (day DATE NOT NULL)")
    con.execute(f"INSERT INTO rollup_pending SELECT DISTINCT {DAY} FROM {table} WHERE {where}")


def flush(con: duckdb.DuckDBPyConnection) -> None:
    """Recompute the days marked by touch(), in one transaction. The store calls it before every publish
    (core/store.py), so readers always see rollups that match their events, and a day loaded in
    many batches (a dense trail) is recomputed once per publish instead of once per batch. A process
    killed before its flush leaves the days behind its events; heal() at the next write session rebuilds."""
    if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = 'rollup_pending'"
                       ).fetchone()[0]:
        return
    con.execute("BEGIN TRANSACTION")
    try:
        refresh(con, [d for (d,) in con.execute("SELECT DISTINCT day FROM rollup_pending").fetchall()])
        con.execute("DELETE FROM rollup_pending")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def rebuild(con: duckdb.DuckDBPyConnection) -> None:
    """Recompute every day (a store whose events predate the rollups)."""
    for table in TABLES:
        con.execute(f"DELETE FROM {table}")
    lo_hi = con.execute("SELECT min(event_at), max(event_at) FROM events").fetchone()
    if lo_hi[0] is not None:
        _insert_all(con, {"lo": lo_hi[0], "hi": lo_hi[1] + timedelta(microseconds=1)})


def heal(con: duckdb.DuckDBPyConnection) -> bool:
    """Rebuild the rollups when they do not count the events `events` holds; True when it did."""
    have, summed = con.execute(
        "SELECT (SELECT count(*) FROM events), (SELECT coalesce(sum(events), 0) FROM event_days)").fetchone()
    if have == summed:
        return False
    con.execute("BEGIN TRANSACTION")
    try:
        rebuild(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return True
