"""The lake: `events` and the rollups kept as day-partitioned Parquet files written once, so publishing a
store costs what changed, not what it holds.

The events' layout is a contract (README: the store), the same one the Spark extract writes and Spark,
Athena or DuckDB read directly:

    <stem>.events/day=YYYY-MM-DD/<uuid>.parquet

Each file holds events of one UTC day, exactly the columns of `events` in their order, sorted by
event_at, zstd-compressed. Files are never changed: a batch adds files, compaction writes a day's files
as one new file and retires the old ones.

The rollups (event_days, download_days, download_sessions_days, download_principal_days, principal_hours,
auth_hours, download_ip_days, transfer_days, download_months; analytics/rollups.py) live the same way under `<stem>.rollups/<table>/`: a refresh of some
days writes the open month's (that of the newest events) as one new file a day and a closed month's as one
`month=YYYY-MM/<uuid>.parquet`, and retires the files it replaces; once a month is over, its leftover day
files are compacted into one month file, so a year is about 12 files a table plus the current month's days.

The trail-file ledger's closed months (LEDGER) and the inventory's assets (ASSETS: one file, taken back into
the store file while an inventory session replaces rows, thaw, and written out again before its publish,
freeze) live under `<stem>.rollups/` too.

The catalog is the store's table `lake_files` (dataset, file relative to the dataset's folder, first day,
rows, min_at, max_at, bytes, added_at, retired_at; live while retired_at is NULL). It commits in the same
transaction as the rows that depend on it (the trail-file ledger, the watermark), so a file is part of
the store exactly when its catalog row is committed. Each dataset is a view over its live files
(absolute paths, rebuilt whenever the catalog changes and when a writer opens the store) plus its table
`<name>_rows` (`event_rows` for events), where the rows of a store from before the lake wait until the
first write session moves them. A file written by a process killed before its commit is in no catalog
row: the next writer removes it (sweep). A retired file stays on disk RETIRED_GRACE after it was
retired, so a reader that opened an older snapshot keeps seeing its version until it reopens.

Reads and writes: the lake folders and, through the caller's connection, lake_files, the `_rows` tables
and the datasets' views. Callers hold the store's write lock (core/store.py).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.clock import utc_midnight, utc_now

COLUMNS = ("event_id, event_at, event_name, account_id, region, domain, domain_owner, repository, format, "
           "namespace, package, version, asset, principal_arn, principal_type, source_ip, user_agent, "
           "error_code, request_uri")
NAMES = [c.strip() for c in COLUMNS.split(",")]  # the events columns, in order
COMPACT_AT = 8  # an events day with this many live files is rewritten as one
RETIRED_GRACE = timedelta(hours=1)
DAY_SQL = "CAST(event_at AT TIME ZONE 'UTC' AS DATE)"
EPOCH_DAY, US_PER_DAY = date(1970, 1, 1), 86_400_000_000  # a UTC day from microseconds since the epoch
ROW_GROUP_ROWS = 122_880  # DuckDB's own row group: the files prune alike whoever wrote them
# The events files' Parquet options (append_events): no dictionary for event_id, unique in every file (the
# dictionary was all of the column, then its indices), and min/max for event_at alone, the one column whose
# row-group ranges prune (the rows are in time order; a row group of text columns spans most of their values:
# every account, repository and package of its hours). 9% less writing CPU and 5% smaller day files than
# Arrow's defaults, and then 17% less again without the text columns' min/max (bench trail). event_at, sorted,
# is delta-encoded (DELTA_BINARY_PACKED, a standard Parquet encoding Spark, Athena and DuckDB read) instead of
# a dictionary that overflowed into plain values: on the bench trail's whole-second times the column is 4x
# smaller (a month of day files 10%); on the scale stores' sub-second times it went from half of a file to
# almost nothing, and DuckDB reads it 4x faster there (time-range filters, every query reading event_at).
DICTIONARY_COLUMNS = [c for c in NAMES if c not in ("event_id", "event_at")]
STATISTICS_COLUMNS = ["event_at"]
ENCODINGS = {"event_at": "DELTA_BINARY_PACKED"}


@dataclass(frozen=True)
class Dataset:
    name: str  # the view readers query
    rows: str  # the table of rows not in files (a store from before the lake, tests)
    day: str  # SQL: the UTC day of a row
    folder: str  # beside the store: "{stem}" is the store's stem


EVENTS = Dataset("events", "event_rows", DAY_SQL, "{stem}.events")
ROLLUPS = {t: Dataset(t, f"{t}_rows", "day", f"{{stem}}.rollups/{t}")
           for t in ("event_days", "download_days", "download_sessions_days", "download_principal_days",
                     "download_ip_days", "transfer_days")}
ROLLUPS |= {t: Dataset(t, f"{t}_rows", "CAST(hour_at AT TIME ZONE 'UTC' AS DATE)", f"{{stem}}.rollups/{t}")
            for t in ("principal_hours", "auth_hours")}
ROLLUPS["download_months"] = Dataset("download_months", "download_months_rows", "month",
                                     "{stem}.rollups/download_months")  # one file a month
# The trail-file ledger (migration 019): each batch inserts its rows in the store file; the rows of months
# before the open month go into a file a month before each publish (move_closed), as a rollup's closed months
LEDGER = Dataset("cloudtrail_files", "cloudtrail_files_rows", "day", "{stem}.rollups/cloudtrail_files")
# The inventory's assets (migration 020): one file, `<uuid>.parquet` in its folder, written again whenever the
# inventory changed (freeze, before a publish); a session that replaces rows first takes the file's rows back
# into the store file (thaw). Not by day: its catalog row's day is the day it was written.
ASSETS = Dataset("assets", "assets_rows", "NULL", "{stem}.rollups/assets")
ASSETS_ORDER = "account_id, region, domain, repository, format, namespace, package, version, asset"
DATASETS = {EVENTS.name: EVENTS, **ROLLUPS, LEDGER.name: LEDGER, ASSETS.name: ASSETS}


def _stem(db: Path) -> Path:
    db = Path(db).resolve()
    return db.with_name(db.stem.removesuffix(".read"))


def lake_dir(db: Path) -> Path:
    """`<stem>.events/` beside the store (also when given its reader snapshot `<stem>.read.duckdb`)."""
    return folder_of(db, EVENTS)


def folder_of(db: Path, ds: Dataset) -> Path:
    stem = _stem(db)
    return stem.parent / ds.folder.format(stem=stem.name)


def folders(db: Path) -> list[Path]:
    """The folders beside store `db` that hold its lake: `<stem>.events/` and `<stem>.rollups/`."""
    stem = _stem(db)
    return [lake_dir(db), stem.with_name(f"{stem.name}.rollups")]


def root_of(con: duckdb.DuckDBPyConnection, ds: Dataset = EVENTS) -> Path:
    """The folder of `ds` for the store `con` is connected to; an in-memory store (tests) gets a temporary
    folder."""
    path = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()[0]
    if path:
        return folder_of(Path(path), ds)
    con.execute("CREATE TEMP TABLE IF NOT EXISTS caa_memory_lake (path VARCHAR)")
    got = con.execute("SELECT path FROM caa_memory_lake").fetchone()
    if got is None:
        got = (tempfile.mkdtemp(prefix="caa-memory-lake-"),)
        atexit.register(shutil.rmtree, got[0], True)  # the store dies with the process: so do its files
        con.execute("INSERT INTO caa_memory_lake VALUES (?)", got)
    return folder_of(Path(got[0]) / "memory.duckdb", ds)


def _quote(path: Path | str) -> str:
    return str(path).replace("'", "''")


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN ... COMMIT, or ROLLBACK when the block raises (anything, Ctrl+C included). The store's
    (core/store.py re-exports it): here because the lake's own moves and merges commit on their own."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
        con.execute("COMMIT")
    except BaseException:
        rollback_quietly(con)
        raise


def rollback_quietly(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back an open transaction; never mask the error that got us here (a failed write may already
    have aborted the transaction, so ROLLBACK itself can fail)."""
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass


def _live(con: duckdb.DuckDBPyConnection, ds: Dataset, where: str = "TRUE", params: list | None = None) -> list[str]:
    return [f for (f,) in con.execute(f"SELECT file FROM lake_files WHERE dataset = ? AND retired_at IS NULL AND "
                                      f"{where} ORDER BY day, file", [ds.name, *(params or [])]).fetchall()]


def present(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the store has the lake's catalog (migration 012; not in tests of older schemas)."""
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'lake_files' "
                            "AND database_name = current_database()").fetchone()[0])


def count(con: duckdb.DuckDBPyConnection, ds: Dataset = EVENTS) -> int:
    """The rows of `ds` (its view's count) from the catalog: each live file's rows were counted from the file
    when it was written, so no file is opened (a count(*) of `events` opened every file: 2.1 s of a 4 s
    increment at 200M events)."""
    return con.execute(f"SELECT (SELECT coalesce(sum(rows), 0) FROM lake_files WHERE dataset = ? AND retired_at IS "
                       f"NULL) + (SELECT count(*) FROM {ds.rows})", [ds.name]).fetchone()[0]


def day_sizes(con: duckdb.DuckDBPyConnection, first: date, last: date) -> dict[date, int]:
    """The events of each UTC day from `first` to `last`, from the catalog (and the rows not in files)."""
    return dict(con.execute(f"SELECT day, sum(n) FROM (SELECT day, rows AS n FROM lake_files WHERE dataset = 'events' "
                            f"AND retired_at IS NULL AND day BETWEEN $first AND $last UNION ALL SELECT {DAY_SQL}, 1 "
                            f"FROM {EVENTS.rows} WHERE {DAY_SQL} BETWEEN $first AND $last) GROUP BY day",
                            {"first": first, "last": last}).fetchall())


def columns(con: duckdb.DuckDBPyConnection, ds: Dataset) -> str:
    """The columns of `ds`, in order (those of its `_rows` table)."""
    if ds is EVENTS:
        return COLUMNS
    return ", ".join(c for (c,) in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = ? AND database_name = current_database() "
        "ORDER BY column_index", [ds.rows]).fetchall())


def in_store(con: duckdb.DuckDBPyConnection) -> list[Dataset]:
    """The datasets whose `_rows` table the store has (the ledger's came with migration 019: tests of older
    schemas write stores without it)."""
    have = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = "
                                      "current_database()").fetchall()}
    return [ds for ds in DATASETS.values() if ds.rows in have]


def _holds(con: duckdb.DuckDBPyConnection, ds: Dataset) -> bool:
    """Whether the store has the catalog and the `_rows` table of `ds` (tests write stores of older schemas)."""
    return present(con) and ds in in_store(con)


def rebuild_view(con: duckdb.DuckDBPyConnection, *datasets: Dataset) -> None:
    """Each dataset's view (default: all) = its live files + its `_rows` table. Call inside the transaction
    that changed the catalog."""
    for ds in datasets or in_store(con):
        root = root_of(con, ds)
        con.execute(f"CREATE OR REPLACE VIEW {ds.name} AS "
                    f"{_union(ds, [str(root / f) for f in _live(con, ds)], columns(con, ds))}")


def _union(ds: Dataset, files: list[str], cols: str, where: str = "") -> str:
    """`cols` of the given files of `ds` and of its `_rows` table (the files' paths as literals)."""
    rows = f"SELECT {cols} FROM {ds.rows}{where}"
    if not files:
        return rows
    listed = ", ".join(f"'{_quote(f)}'" for f in files)
    return f"SELECT {cols} FROM read_parquet([{listed}], hive_partitioning = false){where} UNION ALL {rows}"


def files_between(con: duckdb.DuckDBPyConnection, *spans: tuple[object, object], ds: Dataset = EVENTS) -> list[str]:
    """Absolute paths of the live files of `ds` holding any row in one of `spans` ((lo, hi) pairs, both
    inclusive), in one catalog query: the auth-spike details pass thousands of spans (one query each took
    10 s at 200M events)."""
    if not spans:
        return []
    los, his = zip(*spans, strict=True)
    root = root_of(con, ds)
    return [str(root / f) for f in _live(con, ds, "EXISTS (SELECT 1 FROM (SELECT unnest(?::TIMESTAMPTZ[]) AS lo, "
                                         "unnest(?::TIMESTAMPTZ[]) AS hi) s WHERE max_at >= s.lo AND min_at <= s.hi)",
                                         [list(los), list(his)])]


def window_sql(con: duckdb.DuckDBPyConnection, *spans: tuple[object, object]) -> str:
    """A SELECT of the events columns that reads only the files that can hold events in one of `spans`
    ((lo, hi) pairs; as literals: the caller adds its own conditions on event_at)."""
    return _union(EVENTS, files_between(con, *spans), COLUMNS)


@contextmanager
def window(con: duckdb.DuckDBPyConnection, *spans: tuple[object, object]) -> Iterator[None]:
    """Within the block `events` (and the downloads view over it) reads only the files of `spans` ((lo, hi)
    pairs): a TEMP view shadows it on this connection. Opening every file costs ~0.1 ms each per query; a
    day's rollups or a dedupe need one or two."""
    con.execute(f"CREATE OR REPLACE TEMP VIEW events AS {window_sql(con, *spans)}")
    try:
        yield
    finally:
        con.execute("DROP VIEW IF EXISTS temp.events")


def ids_between_sql(con: duckdb.DuckDBPyConnection, lo: object, hi: object) -> str:
    """A SELECT of the event_ids stored between lo and hi ($lo, $hi), reading only the files that can hold
    them (a dedupe must not open every file of the store)."""
    return _union(EVENTS, files_between(con, (lo, hi)), "event_id", " WHERE event_at BETWEEN $lo AND $hi")


def append(con: duckdb.DuckDBPyConnection, table: str, ds: Dataset = EVENTS, months_before: date | None = None) -> int:
    """Write the rows of `table` (the columns of `ds`; a temp table of the caller) as new files, one per UTC
    day, and register them. For a rollup, the rows of the months before `months_before` (a month's first
    day; the rollups pass the month of the newest events) go one file per month instead (`month=YYYY-MM/`,
    what compaction would make of them): a backfill's refresh then writes a file a month, not a file a day
    that compaction rewrites. Call inside the caller's transaction. Returns the rows added."""
    if ds is not EVENTS:
        written = write_files(con, table, ds, months_before)
        return _register(con, ds, root_of(con, ds), written) if written else 0
    if not con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]:
        return 0
    root_of(con, ds).mkdir(parents=True, exist_ok=True)
    con.complete()  # the caller's last execute() may hold a result: con.sql() needs the connection free
    return sum(append_events(con, con.sql(f"SELECT {COLUMNS} FROM {table}").to_arrow_table()).values())


def write_files(con: duckdb.DuckDBPyConnection, table: str, ds: Dataset, months_before: date | None = None,
                root: Path | None = None) -> list[str]:
    """append's files of a rollup `ds`, written and not registered: the paths of the files holding the rows of
    `table` (a temp table of `con`), as append would write them. `con` may be another connection to the
    writer's store (nothing here reads or changes lake_files); it then takes `root`, root_of the writer's
    connection (an in-memory store's folder is the connection's own). A file is part of the store once
    replace_days registers it in the writer's transaction; until then the next writer's sweep removes it."""
    if not con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]:
        return []
    root = root or root_of(con, ds)
    root.mkdir(parents=True, exist_ok=True)
    cols = columns(con, ds)
    # a rollup with its own day column keeps it in the files; a derived day only names the folder (the files
    # hold exactly the columns of `ds`)
    keep = ", WRITE_PARTITION_COLUMNS true" if ds.day == "day" else ""
    parts = [("day", f"{ds.day} AS day" if ds.day != "day" else None, "TRUE")]
    if months_before is not None and ds.day != "month":
        closed = f"{ds.day} < DATE '{months_before.isoformat()}'"
        parts = [("month", f"strftime({ds.day}, '%Y-%m') AS month", closed),
                 ("day", parts[0][1], f"NOT ({closed})")]
    written: list[str] = []
    for part, derive, where in parts:
        select = f"SELECT {cols}{', ' + derive if derive else ''} FROM {table} WHERE {where}"
        if not con.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()[0]:
            continue
        written += con.execute(
            f"COPY ({select}) TO '{_quote(root)}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY ({part})"
            f"{keep if part == 'day' else ''}, APPEND, FILENAME_PATTERN '{{uuid}}', RETURN_FILES)").fetchone()[1]
    return written


def append_events(con: duckdb.DuckDBPyConnection, rows: pa.Table, keep: np.ndarray | None = None
                  ) -> dict[date, int]:
    """Write `rows` (the events columns; with `keep`, a boolean per row, only the rows it marks) as new files,
    one per UTC day, sorted by event_at, with Arrow's Parquet writer (a third of the CPU of DuckDB's
    partitioned COPY for these text columns), and register them with their counts and time range. The rows
    kept are sorted (stably) and gathered in one take: a batch is a table of a chunk per trail file, and a
    filter then a sort of it cost four times as much. Call inside the caller's transaction. Returns the rows
    added on each UTC day ({} when none)."""
    at = rows.column("event_at").cast(pa.int64()).to_numpy()
    order = np.flatnonzero(keep) if keep is not None else np.arange(len(at))
    if not len(order):
        return {}
    order = order[np.argsort(at[order], kind="stable")]
    root = root_of(con, EVENTS)
    rows = rows.take(pa.array(order))
    # UTC days: microseconds since the epoch, floored to days; sorted, so each day is one slice
    days = at[order] // US_PER_DAY
    cuts = [0, *(np.flatnonzero(days[1:] != days[:-1]) + 1).tolist(), len(days)]
    now, added = utc_now(), []
    for a, b in zip(cuts, cuts[1:], strict=False):
        part, day = _tight(rows.slice(a, b - a)), EPOCH_DAY + timedelta(days=int(days[a]))
        rel = f"day={day}/{uuid.uuid4().hex}.parquet"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(part, root / rel, compression="zstd", row_group_size=ROW_GROUP_ROWS,
                       use_dictionary=DICTIONARY_COLUMNS, write_statistics=STATISTICS_COLUMNS,
                       column_encoding=ENCODINGS, store_schema=False)
        lo, hi = part.column("event_at")[0].as_py(), part.column("event_at")[-1].as_py()
        added.append((EVENTS.name, rel, day, part.num_rows, lo, hi, (root / rel).stat().st_size, now))
    _catalog(con, added)
    rebuild_view(con, EVENTS)
    return {day: n for _, _, day, n, *_ in added}


def _tight(part: pa.Table) -> pa.Table:
    """`part` with each dictionary column (the decoder's, collectors/_ctjson.c) whose dictionary holds more values
    than `part` has rows as plain text: the writer stores a dictionary column's dictionary whole, and a day file
    of a few late events would carry its batch's every source IP and user agent."""
    for i, field in enumerate(part.schema):
        if pa.types.is_dictionary(field.type):
            column = part.column(i)
            if sum(len(chunk.dictionary) for chunk in column.chunks) > part.num_rows:
                part = part.set_column(i, field.name, column.cast(pa.string()))
    return part


def file_stats(con: duckdb.DuckDBPyConnection, ds: Dataset, written: list[str]) -> list[tuple]:
    """(path, rows, first, last) of each file of `ds` DuckDB just wrote, read from the files: their catalog
    counts and range (any connection; write_files' caller reads them where it wrote them)."""
    at = "min(event_at), max(event_at)" if ds is EVENTS else f"min({ds.day}), max({ds.day})"
    return con.execute(f"SELECT filename, count(*), {at} FROM read_parquet($f, filename = true, "
                       "hive_partitioning = false) GROUP BY filename", {"f": written}).fetchall()


def _register(con: duckdb.DuckDBPyConnection, ds: Dataset, root: Path, written: list[str],
              stats: list[tuple] | None = None) -> int:
    """Catalog rows for files DuckDB just wrote: their day from the path, their counts and time range from
    the files (file_stats, unless given; a rollup file's range is its whole days)."""
    stats = file_stats(con, ds, written) if stats is None else stats
    now, added = utc_now(), []
    for path, n, lo, hi in stats:
        rel = Path(path).relative_to(root).as_posix()
        folder = rel.split("/", 1)[0]
        day = folder.removeprefix("day=") if folder.startswith("day=") else folder.removeprefix("month=") + "-01"
        if ds is not EVENTS:
            lo, hi = utc_midnight(lo), utc_midnight(hi + timedelta(days=1)) - timedelta(microseconds=1)
        added.append((ds.name, rel, day, n, lo, hi, Path(path).stat().st_size, now))
    _catalog(con, added)
    rebuild_view(con, ds)
    return sum(n for _, n, _, _ in stats)


def _catalog(con: duckdb.DuckDBPyConnection, added: list[tuple]) -> None:
    """lake_files rows (dataset, file, day, rows, min_at, max_at, bytes, added_at), in one statement."""
    if added:
        con.execute("INSERT INTO lake_files (dataset, file, day, rows, min_at, max_at, bytes, added_at) VALUES "
                    + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(added)), [v for row in added for v in row])


def replace_days(con: duckdb.DuckDBPyConnection, ds: Dataset, table: str, first: date, last: date,
                 months_before: date | None = None, written: list[tuple] | None = None) -> None:
    """Make the rows of `ds` on the days [first, last] those of `table` (a temp table of the caller, with
    the columns of `ds`) and of the files `written` (write_files by another connection, as file_stats' rows:
    their rows are not in `table`): the live files holding any of those days are retired, the rows they
    hold on other days (a compacted month) are written again with `table`'s. Call inside the caller's
    transaction."""
    lo, hi = utc_midnight(first), utc_midnight(last + timedelta(days=1)) - timedelta(microseconds=1)
    old = _live(con, ds, "max_at >= ? AND min_at <= ?", [lo, hi])
    if old:
        root = root_of(con, ds)
        listed = ", ".join(f"'{_quote(root / f)}'" for f in old)
        kept = con.execute(f"INSERT INTO {table} SELECT {columns(con, ds)} FROM read_parquet([{listed}], hive_partitioning "
                           f"= false) WHERE {ds.day} NOT BETWEEN $first AND $last", {"first": first, "last": last}
                           ).fetchone()[0]
        if kept and written:  # the month file again one file: the new rows join the old month's others
            paths = [f for f, *_ in written]
            con.execute(f"INSERT INTO {table} SELECT {columns(con, ds)} FROM read_parquet($f, hive_partitioning = false)",
                        {"f": paths})
            for f in paths:
                Path(f).unlink()
            written = None
        con.execute("UPDATE lake_files SET retired_at = ? WHERE dataset = ? AND retired_at IS NULL AND file IN "
                    "(SELECT unnest(?))", [utc_now(), ds.name, old])
    con.execute(f"DELETE FROM {ds.rows} WHERE {ds.day} BETWEEN $first AND $last", {"first": first, "last": last})
    added = append(con, table, ds, months_before)
    if written:
        added += _register(con, ds, root_of(con, ds), [f for f, *_ in written], written)
    if not added:
        rebuild_view(con, ds)


def clear(con: duckdb.DuckDBPyConnection, ds: Dataset) -> None:
    """Retire every file of `ds` and empty its `_rows` table (a rebuild). Inside the caller's transaction."""
    con.execute("UPDATE lake_files SET retired_at = ? WHERE dataset = ? AND retired_at IS NULL", [utc_now(), ds.name])
    con.execute(f"DELETE FROM {ds.rows}")
    rebuild_view(con, ds)


def _write(con: duckdb.DuckDBPyConnection, ds: Dataset, root: Path, folder: str, files: list[str]) -> tuple[str, int]:
    rel = f"{folder}/{uuid.uuid4().hex}.parquet"
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    listed = ", ".join(f"'{_quote(root / f)}'" for f in files)
    order = " ORDER BY event_at" if ds is EVENTS else ""
    con.execute(f"COPY (SELECT {columns(con, ds)} FROM read_parquet([{listed}], hive_partitioning = false){order}) TO '{_quote(path)}' "
                f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_ROWS})")
    return rel, path.stat().st_size


def _merge(con: duckdb.DuckDBPyConnection, ds: Dataset, folder: str, files: list[str]) -> None:
    """Rewrite `files` of `ds` as one file under `folder` and retire them, in one transaction."""
    root = root_of(con, ds)
    with transaction(con):
        rel, size = _write(con, ds, root, folder, files)
        n, lo, hi, day = con.execute(
            "SELECT sum(rows), min(min_at), max(max_at), min(day) FROM lake_files WHERE dataset = ? AND retired_at "
            "IS NULL AND file IN (SELECT unnest(?))", [ds.name, files]).fetchone()
        now = utc_now()
        con.execute("UPDATE lake_files SET retired_at = ? WHERE dataset = ? AND retired_at IS NULL AND file IN "
                    "(SELECT unnest(?))", [now, ds.name, files])
        _catalog(con, [(ds.name, rel, day, n, lo, hi, size, now)])
        rebuild_view(con, ds)
        con.execute("UPDATE store_meta SET value = value + 1 WHERE key = 'store_version'")


def open_month(con: duckdb.DuckDBPyConnection) -> date | None:
    """The first day of the month of the newest events (from the catalog, and the rows not in files), None
    without events. The months before it are closed: a rollup's rows there are one file a month (the refresh
    writes them so, compaction merges what was written while the month was open); the open month's are a
    file a day, so an increment rewrites a day, not the month."""
    newest = con.execute(f"SELECT greatest((SELECT max(day) FROM lake_files WHERE dataset = 'events' AND retired_at "
                         f"IS NULL), (SELECT max({DAY_SQL}) FROM {EVENTS.rows}))").fetchone()[0]
    return newest.replace(day=1) if newest else None


def compact(con: duckdb.DuckDBPyConnection, at: int = COMPACT_AT) -> int:
    """Rewrite each events day that has `at` or more live files as one file, and each rollup table's (and the
    ledger's) closed months (before open_month) that have more than one file as one file; returns the files
    written.
    Each commits on its own (the old files stay readable until they are swept)."""
    if not present(con):
        return 0
    done = 0
    for (day,) in con.execute("SELECT day FROM lake_files WHERE dataset = 'events' AND retired_at IS NULL "
                              "GROUP BY day HAVING count(*) >= ? ORDER BY day", [at]).fetchall():
        _merge(con, EVENTS, f"day={day}", _live(con, EVENTS, "day = ?", [day]))
        done += 1
    opened = open_month(con)
    for ds in [*ROLLUPS.values(), LEDGER] if opened else ():
        months = con.execute(
            "SELECT date_trunc('month', day) AS m FROM lake_files WHERE dataset = $ds AND retired_at IS NULL "
            "GROUP BY m HAVING count(*) > 1 AND m < $open ORDER BY m", {"ds": ds.name, "open": opened}).fetchall()
        for (month,) in months:
            files = _live(con, ds, "date_trunc('month', day) = ?", [month])
            _merge(con, ds, f"month={month:%Y-%m}", files)
            done += 1
    return done


def sweep(con: duckdb.DuckDBPyConnection, grace: timedelta = RETIRED_GRACE) -> int:
    """Delete the files no reader can need: retired longer than `grace` ago (and their catalog rows), and
    files in no catalog row (written by a process that died before its commit). Returns files deleted."""
    cutoff = utc_now() - grace
    gone = 0
    for ds in DATASETS.values():
        root = root_of(con, ds)
        if not root.exists():
            continue
        known = {f for (f,) in con.execute("SELECT file FROM lake_files WHERE dataset = ?", [ds.name]).fetchall()}
        old = [f for (f,) in con.execute("SELECT file FROM lake_files WHERE dataset = ? AND retired_at <= ?",
                                         [ds.name, cutoff]).fetchall()]
        for rel in old:
            (root / rel).unlink(missing_ok=True)
            gone += 1
        if old:
            con.execute("DELETE FROM lake_files WHERE dataset = ? AND retired_at <= ?", [ds.name, cutoff])
        for path in [*root.glob("day=*/*"), *root.glob("month=*/*"), *(root.glob("*.parquet") if ds is ASSETS else ())]:
            rel = path.relative_to(root).as_posix()
            if rel not in known:
                path.unlink(missing_ok=True)
                gone += 1
        for folder in [*root.glob("day=*"), *root.glob("month=*")]:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    return gone


def move_closed(con: duckdb.DuckDBPyConnection) -> int:
    """Move the ledger's rows of the months before open_month from the store file into a file a month, in one
    transaction (a month's later rows make another file, which compaction merges); returns the rows moved."""
    opened = open_month(con) if _holds(con, LEDGER) else None
    if opened is None or not con.execute(f"SELECT count(*) FROM {LEDGER.rows} WHERE day < ?", [opened]).fetchone()[0]:
        return 0
    with transaction(con):  # the same rows, elsewhere: nothing a reader sees changes, so neither does the version
        con.execute(f"CREATE OR REPLACE TEMP TABLE closed_ledger AS SELECT * FROM {LEDGER.rows} WHERE day < ?", [opened])
        n = append(con, "closed_ledger", LEDGER, months_before=opened)
        con.execute(f"DELETE FROM {LEDGER.rows} WHERE day < ?", [opened])
        con.execute("DROP TABLE closed_ledger")
    return n


def thaw(con: duckdb.DuckDBPyConnection) -> int:
    """Take the rows of the assets file back into `assets_rows` and retire the file, so that the session can
    replace some of them (a DELETE reaches only the table); the next publish writes them all as one file again
    (freeze). Readers see the same rows throughout. Call inside the caller's transaction, before it changes
    `assets_rows`. Returns the rows taken back (0 when there is no file, as after an earlier thaw)."""
    if not _holds(con, ASSETS):
        return 0
    files = _live(con, ASSETS)
    if not files:
        return 0
    root = root_of(con, ASSETS)
    listed = ", ".join(f"'{_quote(root / f)}'" for f in files)
    n = con.execute(f"INSERT INTO {ASSETS.rows} SELECT {columns(con, ASSETS)} FROM read_parquet([{listed}], "
                    "hive_partitioning = false)").fetchone()[0]
    con.execute("UPDATE lake_files SET retired_at = ? WHERE dataset = ? AND retired_at IS NULL",
                [utc_now(), ASSETS.name])
    rebuild_view(con, ASSETS)
    return n


def freeze(con: duckdb.DuckDBPyConnection) -> int:
    """When `assets_rows` has rows (an inventory session, a store from before migration 020): write every row
    of `assets` as one new file sorted by its key and empty the table, in one transaction (a live file beside
    the rows, as after rows written without a thaw, is thawed into them first and retired). Readers see the
    same rows, so the store version stays. Returns the rows written (0 when there was nothing to move)."""
    if not _holds(con, ASSETS) or not con.execute(f"SELECT count(*) FROM {ASSETS.rows}").fetchone()[0]:
        return 0
    root = root_of(con, ASSETS)
    with transaction(con):
        thaw(con)
        rel = f"{uuid.uuid4().hex}.parquet"
        root.mkdir(parents=True, exist_ok=True)
        n = con.execute(f"COPY (SELECT {columns(con, ASSETS)} FROM {ASSETS.rows} ORDER BY {ASSETS_ORDER}) TO "
                        f"'{_quote(root / rel)}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_ROWS})"
                        ).fetchone()[0]
        now = utc_now()
        _catalog(con, [(ASSETS.name, rel, now.date(), n, None, None, (root / rel).stat().st_size, now)])
        size_versions(con, ASSETS.rows, every=True)  # the file's rows, in the commit that makes them the assets
        con.execute(f"DELETE FROM {ASSETS.rows}")
        rebuild_view(con, ASSETS)
    return n


# package_versions.assets_bytes and assets_count (migration 025): each version's assets summed in its row, matched
# by its stored names as the assets are (exact, namespace NULL for none)
_SIZE_VERSIONS = """UPDATE package_versions SET assets_bytes = s.bytes, assets_count = s.n
FROM (SELECT v.rowid AS id, coalesce(sum(a.size_bytes), 0) AS bytes, count(a.account_id) AS n
      FROM package_versions v
      LEFT JOIN {assets} a
             ON a.account_id = v.account_id AND a.region = v.region AND a.domain = v.domain
            AND a.repository = v.repository AND a.format = v.format AND a.namespace IS NOT DISTINCT FROM v.namespace
            AND a.package = v.package AND a.version = v.version
      WHERE {where}
      GROUP BY v.rowid) s
WHERE package_versions.rowid = s.id"""


def sizes_held(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the store (or snapshot) has migration 025's columns."""
    return bool(con.execute("SELECT count(*) FROM duckdb_columns() WHERE database_name = current_database() "
                            "AND table_name = 'package_versions' AND column_name = 'assets_count'").fetchone()[0])


def size_versions(con: duckdb.DuckDBPyConnection, assets: str = ASSETS.name, every: bool = False) -> int:
    """Sum each version's assets (`assets`: a table or view holding every asset) into its package_versions
    row: every row (freeze, when the assets changed), or only the rows not counted yet (NULL: written by an
    inventory session or a test, or by migration 025). One statement, so it commits whole; returns the rows
    counted."""
    if not sizes_held(con) or not every and not con.execute(
            "SELECT count(*) FROM package_versions WHERE assets_count IS NULL").fetchone()[0]:
        return 0
    return con.execute(_SIZE_VERSIONS.format(assets=assets, where="TRUE" if every else "v.assets_count IS NULL")
                       ).fetchone()[0]


def versions_sized(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether package_versions' assets_bytes and assets_count hold every version's assets (size_versions):
    after every publish; not while an inventory session's assets wait in assets_rows, nor on a snapshot
    from before migration 025 that this process could not upgrade (its readers sum the assets themselves)."""
    if not sizes_held(con):
        return False
    return bool(con.execute(f"SELECT NOT EXISTS (SELECT 1 FROM package_versions WHERE assets_count IS NULL) "
                            f"AND NOT EXISTS (SELECT 1 FROM {ASSETS.rows})").fetchone()[0])


def move_rows(con: duckdb.DuckDBPyConnection) -> int:
    """Move the rows of every `_rows` table (a store from before the lake) into files, in one transaction. The
    ledger's rows are not moved here: they stay in the store file until their month closes (move_closed);
    nor are the assets' (freeze, before each publish)."""
    todo = [ds for ds in in_store(con)
            if ds not in (LEDGER, ASSETS) and con.execute(f"SELECT count(*) FROM {ds.rows}").fetchone()[0]]
    if not todo:
        return 0
    n = 0
    with transaction(con):
        for ds in todo:
            n += append(con, ds.rows, ds)
            con.execute(f"DELETE FROM {ds.rows}")
            rebuild_view(con, ds)
    return n


def missing(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Live catalog files that are not on disk (a lake copied without its folder, a deleted file)."""
    out = []
    for ds in DATASETS.values():
        root = root_of(con, ds)
        out += [f"{ds.name}/{f}" for f in _live(con, ds) if not os.path.exists(root / f)]
    return out
