"""Rollups of `events`: event_days and download_days (core/schema/005_rollups.sql), and for the spike
detectors the download sessions per level, download_sessions_days (core/schema/007_session_rollup.sql and
009), and the billed requests per principal and hour, principal_hours (009); for the usage tables the
downloads per version and principal, download_principal_days, and for the auth-spike series the token calls
and error codes per principal and hour, auth_hours (013); for the cleanup report the downloads per version
and month, download_months (014), summed from download_days after them; for the data-transfer model the
downloads per day, asset and source IP with the asset's size, download_ip_days (015, 016), and those summed
per repository and client, transfer_days (016). Their SQL is
analytics/sql/rollup_*.sql; what a download and a session are is defined once, in
core/schema/008_definitions.sql.

`before_publish` is the store's before-publish hook (core/store.py `writer(db, before_publish=...)`):
the loaders mark the UTC days of each batch they commit (store.mark_days, in the batch's transaction),
and before every publish the store hands those days here, so readers never see events without their
rollups, and a day loaded in many batches is recomputed once per publish. Then `heal` rebuilds every
rollup when event_days no longer counts the events (a process killed between its commit and its publish,
rows written by hand, a store from before the rollups), else each rollup whose total differs from
event_days' (CHECKS; one a migration added starts empty) alone. After a session that loaded inventory,
`resize` recomputes the transfer rollups of the days whose downloads had no size and whose assets now have
one. Each span of days is read with a range on event_at over only the lake files of that span (core/lake.py
window), so refreshing a day costs about one day of events whatever the store's size. A large refresh (a
backfill) computes the rollups of events alone on two other connections side by side (_aside), and the
writer registers their files.

Reads: events (and the downloads view). Writes: event_days, download_days, download_sessions_days,
download_principal_days, principal_hours, auth_hours, download_ip_days, transfer_days, download_months (files
of the lake, core/lake.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

from analytics.queries import sql
from core import lake, store
from core.clock import utc_midnight

# each filled by analytics/sql/rollup_<table>.sql (into the TEMP table new_<table>), one row per UTC day
# (principal_hours: per hour of the day), and kept as files of the lake (core/lake.py ROLLUPS)
TABLES = ("event_days", "download_days", "download_sessions_days", "download_principal_days", "principal_hours",
          "auth_hours", "download_ip_days", "transfer_days")
MONTHS = "download_months"  # summed from download_days per month touched, after the days
# transfer_days is summed from the same refresh's new_download_ip_days: the two are always refreshed together
TRANSFER = ("download_ip_days", "transfer_days")


# Events a refresh reads per span: a backfill's days are refreshed in runs of consecutive days of at most this
# many events, across months. Longer spans mean fewer statements, and DuckDB's queries use both cores better
# (the bench trail, 4.9M events over 396 days: 8.8 s in its 13 monthly spans, 6.0-6.9 s in one or in runs of
# 2-3M events); the budget bounds the refresh's memory (peak RSS 700 MB at 3M, 870-900 MB in one span).
SPAN_EVENTS = 3_000_000


def _spans(days: Iterable[date], sizes: dict[date, int], budget: int) -> list[tuple[date, date]]:
    """Sorted days as runs of days of at most `budget` events each (`sizes`: the events of each day; a day over
    the budget is a span of its own): [(first, last), ...]. A run goes on across days without events (a
    quiet account's weekends: a span costs about 0.2 s whatever it holds, and the first 400 files of a trail
    whose downloads stop at weekends were 37 spans, 6.8 s), never across a day with events not asked for.
    Where the budget ends a run that crossed into a new month, the run ends before that month instead, and
    the month's days begin the next: a closed month cut in two is written as two files a table, which
    compaction then rewrote as one (core/lake.py compact: 0.28 s of the bench trail's backfill)."""
    out: list[tuple[date, date]] = []
    run: list[date] = []  # the asked days of the last span
    held = 0
    for d in sorted(set(days)):
        n = sizes.get(d, 0)
        gap = out and any(sizes.get(out[-1][1] + timedelta(days=i), 0) for i in range(1, (d - out[-1][1]).days))
        if out and not gap and held + n > budget and (month := [x for x in run if x >= run[-1].replace(day=1)]) != run:
            out[-1] = (run[0], run[-len(month) - 1])  # the new month's days move to the next span
            out.append((month[0], month[-1]))
            run, held = month, sum(sizes.get(x, 0) for x in month)
        if out and not gap and held + n <= budget:
            out[-1] = (out[-1][0], d)
            held += n
            run.append(d)
        else:
            out.append((d, d))
            run, held = [d], n
    return out


def _params(con: duckdb.DuckDBPyConnection, table: str, query: str, lo: datetime, hi: datetime) -> dict | None:
    """A rollup query's parameters: the span's bounds ($lo, $hi) and, where it asks ($given), whether the rollup
    already holds rows of these days: a backfill's days hold none, and joining to them anyway cost
    download_ip_days a hash table of every row it computed (0.4-0.6 of its 1.5 CPU-s on the bench trail)."""
    if "$lo" not in query:
        return None
    params = {"lo": lo, "hi": hi}
    if "$given" in query:
        ds = lake.ROLLUPS[table]
        params["given"] = bool(lake.files_between(con, (lo, hi - timedelta(microseconds=1)), ds=ds)) or bool(
            con.execute(f"SELECT count(*) FROM {ds.rows} WHERE {ds.day} >= CAST($lo AT TIME ZONE 'UTC' AS DATE) "
                        f"AND {ds.day} < CAST($hi AT TIME ZONE 'UTC' AS DATE)", {"lo": lo, "hi": hi}).fetchone()[0])
    return params


def refresh(con: duckdb.DuckDBPyConnection, days: Iterable[date], tables: Iterable[str] | None = None) -> None:
    """Recompute the rollup rows of `days` (UTC) from `events` for `tables` (default: every rollup): new
    files for those days replace the old ones. Call it inside the caller's transaction."""
    wanted = set((*TABLES, MONTHS) if tables is None else tables)
    if wanted & set(TRANSFER):
        wanted |= set(TRANSFER)
    daily = [t for t in TABLES if t in wanted]
    days = sorted(set(days))
    sizes = lake.day_sizes(con, days[0], days[-1]) if daily and days else {}
    spans = _spans(days, sizes, SPAN_EVENTS) if daily and days else []
    aside = [t for t in daily if t in EVENTS_ONLY] if sum(sizes.get(d, 0) for d in days) >= ASIDE_EVENTS and not con.execute(
        f"SELECT count(*) FROM {lake.EVENTS.rows}").fetchone()[0] else []
    open_month = lake.open_month(con)
    with _aside(con, spans, aside, open_month) as written:
        for first, last in spans:
            _refresh_span(con, first, last, [t for t in daily if t not in aside], open_month)
        files = written()
        for table in aside:  # registered a run of adjacent spans at a time (a backfill: one)
            con.execute(f"CREATE OR REPLACE TEMP TABLE new_{table} AS SELECT * FROM {lake.ROLLUPS[table].rows} "
                        "LIMIT 0")  # (for the rows of other days in a month file it retires)
            for first, last, run in _runs(spans, files):
                lake.replace_days(con, lake.ROLLUPS[table], f"new_{table}", first, last, months_before=open_month,
                                  written=[f for got in run for f in got[table]])
                con.execute(f"DELETE FROM new_{table}")
            con.execute(f"DROP TABLE new_{table}")
    if MONTHS in wanted:
        _refresh_months(con, days)


def _runs(spans: list[tuple[date, date]], got: list) -> list[tuple[date, date, list]]:
    """`spans` (sorted, disjoint) joined where one begins the day after the previous ends: (first, last, the
    items of `got` of its spans), for each run."""
    out: list[tuple[date, date, list]] = []
    for (first, last), item in zip(spans, got, strict=True):
        if out and out[-1][1] + timedelta(days=1) == first:
            out[-1] = (out[-1][0], last, [*out[-1][2], item])
        else:
            out.append((first, last, [item]))
    return out


def _refresh_span(con: duckdb.DuckDBPyConnection, first: date, last: date, tables: list[str],
                  open_month: date | None) -> None:
    """refresh of the days [first, last] for `tables`, on the writer's connection."""
    if not tables:
        return
    lo, hi = utc_midnight(first), utc_midnight(last + timedelta(days=1))
    with lake.window(con, (lo, hi)):  # read only the span's files of the events lake
        for table in tables:
            con.execute(f"CREATE OR REPLACE TEMP TABLE new_{table} AS SELECT * FROM {lake.ROLLUPS[table].rows} "
                        "LIMIT 0")
            query = sql(f"rollup_{table}")  # transfer_days' reads new_download_ip_days: no bounds
            con.execute(query, _params(con, table, query, lo, hi))
    for table in tables:
        lake.replace_days(con, lake.ROLLUPS[table], f"new_{table}", first, last, months_before=open_month)
        con.execute(f"DROP TABLE new_{table}")


# The rollups that read nothing but `events` (their SQL's only table; the others read download_ip_days, assets or
# another rollup's new rows). A refresh of at least ASIDE_EVENTS events computes them and writes their files on
# two other connections to the store, each query on one thread (DuckDB's `threads`, for the refresh), side by
# side and beside the writer's own queries; the writer then registers their files. One DuckDB query on two
# threads spent 15-20% of its CPU on the threads' merges and left a core idle in every single-threaded step: on the
# bench trail's 4.86M events the whole refresh took 5.1-5.5 s and 9.4-10.1 CPU-s against 6.2-6.7 s and 10.5-11.3
# on the writer's connection alone, the same rows. The other connections read what is committed, not the writer's open
# transaction: the span's events files are named to them (the writer's catalog), and a refresh goes this way
# only when `event_rows` holds nothing (a store from before the lake), the one events table a transaction
# could have changed unseen.
EVENTS_ONLY = ("event_days", "download_days", "download_sessions_days", "download_principal_days", "principal_hours",
               "auth_hours")
ASIDE_EVENTS = 500_000
ASIDE_FIRST = ("download_sessions_days",)  # the longest query first, so the two connections finish together


@contextmanager
def _aside(con: duckdb.DuckDBPyConnection, spans: list[tuple[date, date]], tables: list[str],
           open_month: date | None) -> Iterator[Callable[[], list[dict[str, list[tuple]]]]]:
    """Compute `tables` (EVENTS_ONLY) of every span and write their files on two other connections while the
    block runs the rest on `con`; the block calls the yielded function to wait for them: per span, each
    table's files (lake.write_files, as lake.file_stats' rows), for the block to register."""
    if not tables or not spans:
        yield lambda: [{} for _ in spans]
        return
    windows = [lake.window_sql(con, (utc_midnight(first), utc_midnight(last + timedelta(days=1))))
               for first, last in spans]
    roots = {t: lake.root_of(con, lake.ROLLUPS[t]) for t in tables}
    local, cursors, lock = threading.local(), [], threading.Lock()

    def run(i: int, table: str) -> list[tuple]:
        if not hasattr(local, "con"):
            local.con = con.cursor()
            with lock:
                cursors.append(local.con)
        side = local.con
        lo, hi = utc_midnight(spans[i][0]), utc_midnight(spans[i][1] + timedelta(days=1))
        side.execute(f"CREATE OR REPLACE TEMP VIEW events AS {windows[i]}")
        side.execute(f"CREATE OR REPLACE TEMP TABLE new_{table} AS SELECT * FROM {lake.ROLLUPS[table].rows} LIMIT 0")
        side.execute(sql(f"rollup_{table}"), {"lo": lo, "hi": hi})
        files = lake.write_files(side, f"new_{table}", lake.ROLLUPS[table], open_month, roots[table])
        side.execute(f"DROP TABLE new_{table}")
        return lake.file_stats(side, lake.ROLLUPS[table], files) if files else []

    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    con.execute("SET threads = 1")
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            jobs = {(i, table): pool.submit(run, i, table)
                    for table in sorted(tables, key=lambda t: t not in ASIDE_FIRST) for i in range(len(spans))}
            try:
                yield lambda: [{table: jobs[i, table].result() for table in tables} for i in range(len(spans))]
            except BaseException:  # the block failed (the writer rolls back): stop the others' work
                for job in jobs.values():
                    job.cancel()
                with lock:
                    for side in cursors:
                        side.interrupt()
                raise
    finally:
        for side in cursors:
            side.close()
        con.execute(f"SET threads = {threads}")


def _refresh_months(con: duckdb.DuckDBPyConnection, days: Iterable[date]) -> None:
    """download_months of each month touched by `days`, from its download_days (already refreshed): one
    query and one replace_days per run of consecutive months (a backfill's year: one, not twelve)."""
    months = sorted({d.replace(day=1) for d in days})
    runs: list[list[date]] = []
    for month in months:
        if runs and (runs[-1][-1] + timedelta(days=32)).replace(day=1) == month:
            runs[-1].append(month)
        else:
            runs.append([month])
    for run in runs:
        con.execute(f"CREATE OR REPLACE TEMP TABLE new_{MONTHS} AS SELECT * FROM {lake.ROLLUPS[MONTHS].rows} LIMIT 0")
        con.execute(sql(f"rollup_{MONTHS}"), {"first": run[0], "last": run[-1]})
        lake.replace_days(con, lake.ROLLUPS[MONTHS], f"new_{MONTHS}", run[0], run[-1])
        con.execute(f"DROP TABLE new_{MONTHS}")


def rebuild(con: duckdb.DuckDBPyConnection, tables: Iterable[str] | None = None) -> None:
    """Recompute every day of `tables` (default: every rollup; a store whose events predate the rollups,
    rollups that lost count, a rollup a migration added)."""
    tables = [*TABLES, MONTHS] if tables is None else list(tables)
    for table in tables:
        lake.clear(con, lake.ROLLUPS[table])
    lo_hi = con.execute(f"SELECT min({lake.DAY_SQL}), max({lake.DAY_SQL}) FROM events").fetchone()
    if lo_hi[0] is not None:
        refresh(con, [lo_hi[0] + timedelta(days=i) for i in range((lo_hi[1] - lo_hi[0]).days + 1)], tables)


# What each rollup must add up to, as a figure of event_days: (its sum, the figure). event_days itself must
# count the events the lake holds.
CHECKS = {
    "download_days": ("sum(downloads)", "downloads"),
    "download_sessions_days": ("sum(downloads) FILTER (WHERE level = 'package')", "downloads"),
    "download_principal_days": ("sum(downloads)", "downloads"),
    "principal_hours": ("sum(requests)", "ok"),  # the billed requests: error_code IS NULL
    "auth_hours": ("sum(events)", "auth"),  # token calls and failed calls
    "download_ip_days": ("sum(downloads)", "downloads"),
    "transfer_days": ("sum(downloads)", "downloads"),
    MONTHS: ("sum(downloads)", "downloads"),
}
FIGURES = {"events": "sum(events)", "downloads": "sum(downloads)", "ok": "sum(events) FILTER (WHERE ok)",
           "auth": "sum(events) FILTER (WHERE NOT ok OR event_name = 'GetAuthorizationToken')"}


def stale(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The rollups that do not add up to what `events` holds: every one when event_days does not count the
    events (it is the others' reference), else each whose sum differs from event_days' (one a migration
    added starts empty), with download_months when download_days is rebuilt (it is summed from it)."""
    figures = dict(zip(FIGURES, con.execute(
        "SELECT " + ", ".join(f"coalesce({f}, 0)" for f in FIGURES.values()) + " FROM event_days").fetchone(),
        strict=True))
    if figures["events"] != lake.count(con):
        return [*TABLES, MONTHS]
    sums = con.execute("SELECT " + ", ".join(f"(SELECT coalesce({expr}, 0) FROM {table})"
                                             for table, (expr, _) in CHECKS.items())).fetchone()
    out = [table for (table, (_, figure)), got in zip(CHECKS.items(), sums, strict=True) if got != figures[figure]]
    if "download_days" in out and MONTHS not in out:
        out.append(MONTHS)
    if set(TRANSFER) & set(out):
        out += [t for t in TRANSFER if t not in out]
    return out


# store_meta's flag of a migration that changed what a download is (023: GetPackageVersionAsset calls too)
REDEFINED = "downloads_redefined"
REDEFINED_DAYS = "SELECT DISTINCT day FROM event_days WHERE ok AND event_name = 'GetPackageVersionAsset' ORDER BY day"
# store_meta's 'rebuild:<rollup>' rows: a migration changed how that rollup groups its rows (024), which leaves
# its sums as they were, so stale() cannot see it
REBUILD = "rebuild:"
MARKS = "key = ? OR starts_with(key, ?)"  # the store_meta rows of both (REDEFINED, REBUILD)


def heal(con: duckdb.DuckDBPyConnection) -> bool:
    """Rebuild the rollups that do not add up to the events `events` holds (stale) and those a migration marked
    (REBUILD), and refresh the days whose rollups counted downloads by an older definition (REDEFINED: the days
    with successful GetPackageVersionAsset calls); True when it did any."""
    tables = stale(con)
    marks = [key for (key,) in con.execute(f"SELECT key FROM store_meta WHERE {MARKS}", [REDEFINED, REBUILD]).fetchall()]
    tables += [t for t in (key.removeprefix(REBUILD) for key in marks if key.startswith(REBUILD))
               if t in (*TABLES, MONTHS) and t not in tables]
    if not tables and not marks:
        return False
    days = [d for (d,) in con.execute(REDEFINED_DAYS).fetchall()] if REDEFINED in marks else []
    with store.transaction(con):
        if tables:
            rebuild(con, tables)
        if days and not set(tables) >= {*TABLES, MONTHS}:  # (a rebuild of every rollup has them already)
            refresh(con, days)
        con.execute(f"DELETE FROM store_meta WHERE {MARKS}", [REDEFINED, REBUILD])
    return bool(days) or bool(tables and lake.count(con))  # (a new store's marks change nothing)


def unsized_days(con: duckdb.DuckDBPyConnection) -> list[date]:
    """The days of download_ip_days with downloads it could not size whose asset the inventory now sizes
    (matched as sql/rollup_download_ip_days.sql matches them: the names as CodeArtifact compares them)."""
    return [d for (d,) in con.execute(
        "SELECT DISTINCT d.day FROM download_ip_days AS d WHERE d.size_bytes IS NULL AND EXISTS ("
        "SELECT 1 FROM assets AS a WHERE a.size_bytes IS NOT NULL AND a.account_id = d.account_id "
        "AND a.region = d.region AND a.domain = d.domain AND a.repository = d.repository AND a.format = d.format "
        "AND namespace_key(a.format, a.namespace) IS NOT DISTINCT FROM namespace_key(d.format, d.namespace) "
        "AND package_key(a.format, a.package) = package_key(d.format, d.package) "
        "AND version_key(a.format, a.version) = version_key(d.format, d.version) "
        "AND asset_key(a.format, a.asset) = asset_key(d.format, d.asset)) ORDER BY 1").fetchall()]


def resize(con: duckdb.DuckDBPyConnection) -> bool:
    """Recompute the transfer rollups (TRANSFER) of unsized_days, in one transaction: downloads of an asset
    the inventory did not have when their day was rolled up (a version downloaded before the inventory's
    next run) get its size. True when it changed any."""
    days = unsized_days(con)
    if days:
        with store.transaction(con):
            refresh(con, days, TRANSFER)
    return bool(days)


def before_publish(con: duckdb.DuckDBPyConnection, days: list[date]) -> bool:
    """The store's hook: recompute the marked `days` in one transaction; after a session that loaded
    inventory (store.mark_inventory), size what it newly can (resize); then heal. True when it changed data
    that was already committed and published (a resize, a heal), so the store version must move."""
    if days:
        with store.transaction(con):
            refresh(con, days)
    resized = store.take_inventory_mark(con) and resize(con)
    return heal(con) or resized


def writer(db: Path) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
    """store.writer with this hook: the write session every caa command opens (any one may load events,
    or be the first after a migration that changed the rollups)."""
    return store.writer(Path(db), before_publish=before_publish)


def upgrade(db: Path) -> None:
    """A write session that does nothing itself: opening it migrates a store an older caa wrote, and closing it
    rebuilds the rollups a migration changed (heal) and publishes the snapshot. StoreBusyError when another
    process writes it (that session upgrades it)."""
    with writer(db):
        pass
