"""The events lake: `events` kept as day-partitioned Parquet files written once, so publishing a store
costs what changed, not what it holds.

The layout is a contract (README: the store), the same one the Spark extract writes and Spark, Athena or
DuckDB read directly:

    <stem>.events/day=YYYY-MM-DD/<uuid>.parquet

Each file holds events of one UTC day, exactly the columns of `events` in their order, sorted by
event_at, zstd-compressed. Files are never changed: a batch adds files, compaction writes a day's files
as one new file and retires the old ones.

The catalog is the store's table `event_files` (file relative to the lake, day, rows, min_at, max_at,
bytes, added_at, retired_at; live while retired_at is NULL). It commits in the same transaction as the
rows that depend on it (the trail-file ledger, the watermark), so a file is part of the store exactly
when its catalog row is committed. `events` is a view over the live files (absolute paths, rebuilt
whenever the catalog changes and when a writer opens the store) plus the table `event_rows`, where the
events of a store from before the lake wait until the first write session moves them. A file written by
a process killed before its commit is in no catalog row: the next writer removes it (sweep). A retired
file stays on disk RETIRED_GRACE after it was retired, so a reader that opened an older snapshot keeps
seeing its version until it reopens.

Reads and writes: the lake folder and, through the caller's connection, event_files, event_rows and the
`events` view. Callers hold the store's write lock (core/store.py).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import duckdb

from core.clock import utc_now

COLUMNS = ("event_id, event_at, event_name, account_id, region, domain, domain_owner, repository, format, "
           "namespace, package, version, asset, principal_arn, principal_type, source_ip, user_agent, "
           "error_code, request_uri")
COMPACT_AT = 8  # a day with this many live files is rewritten as one
RETIRED_GRACE = timedelta(hours=1)
DAY_SQL = "CAST(event_at AT TIME ZONE 'UTC' AS DATE)"


def lake_dir(db: Path) -> Path:
    """`<stem>.events/` beside the store (also when given its reader snapshot `<stem>.read.duckdb`)."""
    return Path(db).resolve().with_name(Path(db).stem.removesuffix(".read") + ".events")


def root_of(con: duckdb.DuckDBPyConnection) -> Path:
    """The lake of the store `con` is connected to; an in-memory store (tests) gets a temporary folder."""
    path = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()[0]
    if path:
        return lake_dir(Path(path))
    con.execute("CREATE TEMP TABLE IF NOT EXISTS caa_memory_lake (path VARCHAR)")
    got = con.execute("SELECT path FROM caa_memory_lake").fetchone()
    if got is None:
        got = (tempfile.mkdtemp(prefix="caa-memory-lake-"),)
        con.execute("INSERT INTO caa_memory_lake VALUES (?)", got)
    return Path(got[0])


def _quote(path: Path | str) -> str:
    return str(path).replace("'", "''")


def _live(con: duckdb.DuckDBPyConnection, where: str = "TRUE", params: list | None = None) -> list[str]:
    return [f for (f,) in con.execute(f"SELECT file FROM event_files WHERE retired_at IS NULL AND {where} "
                                      "ORDER BY day, file", params or []).fetchall()]


def present(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the store has the lake's catalog (migration 011; not in tests of older schemas)."""
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'event_files' "
                            "AND database_name = current_database()").fetchone()[0])


def rebuild_view(con: duckdb.DuckDBPyConnection) -> None:
    """`events` = the live files + event_rows. Call inside the transaction that changed the catalog."""
    root = root_of(con)
    con.execute(f"CREATE OR REPLACE VIEW events AS {_union([str(root / f) for f in _live(con)], COLUMNS)}")


def _union(files: list[str], columns: str, where: str = "") -> str:
    """`columns` of the given lake files and of event_rows (the files' paths as literals)."""
    rows = f"SELECT {columns} FROM event_rows{where}"
    if not files:
        return rows
    listed = ", ".join(f"'{_quote(f)}'" for f in files)
    return f"SELECT {columns} FROM read_parquet([{listed}]){where} UNION ALL {rows}"


def files_between(con: duckdb.DuckDBPyConnection, lo: object, hi: object) -> list[str]:
    """Absolute paths of the live files holding any event in [lo, hi]."""
    root = root_of(con)
    return [str(root / f) for f in _live(con, "max_at >= ? AND min_at <= ?", [lo, hi])]


def window_sql(con: duckdb.DuckDBPyConnection, lo: object, hi: object) -> str:
    """A SELECT of the events columns that reads only the files that can hold events in [lo, hi) (as
    literals; the caller adds its own conditions on event_at)."""
    return _union(files_between(con, lo, hi), COLUMNS)


@contextmanager
def window(con: duckdb.DuckDBPyConnection, lo: object, hi: object) -> Iterator[None]:
    """Within the block `events` (and the downloads view over it) reads only the files of [lo, hi]: a
    TEMP view shadows it on this connection. Opening every file costs ~0.1 ms each per query; a day's
    rollups or a dedupe need one or two."""
    con.execute(f"CREATE OR REPLACE TEMP VIEW events AS {window_sql(con, lo, hi)}")
    try:
        yield
    finally:
        con.execute("DROP VIEW IF EXISTS temp.events")


def ids_between_sql(con: duckdb.DuckDBPyConnection, lo: object, hi: object) -> str:
    """A SELECT of the event_ids stored between lo and hi ($lo, $hi), reading only the files that can hold
    them (a dedupe must not open every file of the store)."""
    return _union(files_between(con, lo, hi), "event_id", " WHERE event_at BETWEEN $lo AND $hi")


def _write_day(con: duckdb.DuckDBPyConnection, root: Path, select: str, day: object,
               params: dict | None = None) -> tuple[str, int]:
    rel = f"day={day}/{uuid.uuid4().hex}.parquet"
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"COPY ({select} ORDER BY event_at) TO '{_quote(path)}' (FORMAT parquet, COMPRESSION zstd, "
                "ROW_GROUP_SIZE 122880)", params or {})
    return rel, path.stat().st_size


def append(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """Write the rows of `table` (the events columns; a temp table of the caller) as new files, one per UTC
    day (one COPY for all of them), and register them. Call inside the caller's transaction. Returns the
    rows added."""
    if not con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]:
        return 0
    root = root_of(con)
    root.mkdir(parents=True, exist_ok=True)
    written = con.execute(
        f"COPY (SELECT {COLUMNS}, {DAY_SQL} AS day FROM {table} ORDER BY event_at) TO '{_quote(root)}' "
        "(FORMAT parquet, COMPRESSION zstd, PARTITION_BY (day), APPEND, FILENAME_PATTERN '{uuid}', RETURN_FILES)"
    ).fetchone()[1]
    return _register(con, root, written)


def _register(con: duckdb.DuckDBPyConnection, root: Path, written: list[str]) -> int:
    """Catalog rows for freshly written files (their day from the path, their counts from the files)."""
    stats = con.execute("SELECT filename, count(*), min(event_at), max(event_at) FROM read_parquet($f, "
                        "filename = true, hive_partitioning = false) GROUP BY filename", {"f": written}).fetchall()
    now = utc_now()
    for path, n, lo, hi in stats:
        rel = Path(path).relative_to(root).as_posix()
        day = rel.split("/", 1)[0].removeprefix("day=")
        con.execute("INSERT INTO event_files VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                    [rel, day, n, lo, hi, Path(path).stat().st_size, now])
    rebuild_view(con)
    return sum(n for _, n, _, _ in stats)


def compact(con: duckdb.DuckDBPyConnection, at: int = COMPACT_AT) -> int:
    """Rewrite each day that has `at` or more live files as one file; returns the days rewritten. Each
    day commits on its own (the old files stay readable until they are swept)."""
    if not present(con):
        return 0
    root = root_of(con)
    days = [d for (d,) in con.execute("SELECT day FROM event_files WHERE retired_at IS NULL GROUP BY day "
                                      "HAVING count(*) >= ? ORDER BY day", [at]).fetchall()]
    for day in days:
        files = _live(con, "day = ?", [day])
        listed = ", ".join(f"'{_quote(root / f)}'" for f in files)
        con.execute("BEGIN TRANSACTION")
        try:
            rel, size = _write_day(con, root, f"SELECT {COLUMNS} FROM read_parquet([{listed}])", day)
            n, lo, hi = con.execute(f"SELECT count(*), min(event_at), max(event_at) FROM read_parquet('{_quote(root / rel)}')"
                                    ).fetchone()
            now = utc_now()
            con.execute("UPDATE event_files SET retired_at = ? WHERE retired_at IS NULL AND day = ?", [now, day])
            con.execute("INSERT INTO event_files VALUES (?, ?, ?, ?, ?, ?, ?, NULL)", [rel, day, n, lo, hi, size, now])
            rebuild_view(con)
            con.execute("UPDATE store_meta SET value = value + 1 WHERE key = 'store_version'")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return len(days)


def sweep(con: duckdb.DuckDBPyConnection, grace: timedelta = RETIRED_GRACE) -> int:
    """Delete the files no reader can need: retired longer than `grace` ago (and their catalog rows), and
    files in no catalog row (written by a process that died before its commit). Returns files deleted."""
    root = root_of(con)
    if not root.exists():
        return 0
    cutoff = utc_now() - grace
    known = {f for (f,) in con.execute("SELECT file FROM event_files").fetchall()}
    old = [f for (f,) in con.execute("SELECT file FROM event_files WHERE retired_at <= ?", [cutoff]).fetchall()]
    gone = 0
    for rel in old:
        (root / rel).unlink(missing_ok=True)
        gone += 1
    if old:
        con.execute("DELETE FROM event_files WHERE retired_at <= ?", [cutoff])
    for path in root.glob("day=*/*"):
        rel = path.relative_to(root).as_posix()
        if rel not in known:
            path.unlink(missing_ok=True)
            gone += 1
    for folder in root.glob("day=*"):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return gone


def move_rows(con: duckdb.DuckDBPyConnection) -> int:
    """Move the events of event_rows (a store from before the lake) into files, in one transaction."""
    n = con.execute("SELECT count(*) FROM event_rows").fetchone()[0]
    if not n:
        return 0
    con.execute("BEGIN TRANSACTION")
    try:
        append(con, "event_rows")
        con.execute("DELETE FROM event_rows")
        rebuild_view(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return n


def missing(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Live catalog files that are not on disk (a lake copied without its folder, a deleted file)."""
    root = root_of(con)
    return [f for f in _live(con) if not os.path.exists(root / f)]
