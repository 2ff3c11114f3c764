"""The DuckDB store: connect, migrate forward, lock writers, publish a snapshot for readers.

Also the shared load helpers: transaction, load_transaction, insert_rows, read/write_watermark, and the
one before-publish hook (mark_days, prepare_publish) through which derived tables follow `events`.

Writes: the store file (settings.db, default data/caa.duckdb), its lock file `<db>.lock`, a reader
snapshot `<stem>.read.duckdb` beside it, and through core/lake.py the lake: `<stem>.events/` and
`<stem>.rollups/`.

DuckDB lets one process write a file or many processes read it, never both. So writers (collectors,
demo, apply) take an exclusive flock and work on the store itself; when a write session changed
anything, the store is checkpointed and copied to the snapshot with an atomic rename. The events and
their rollups live outside the file, in Parquet files written once (core/lake.py), so that copy holds
the small tables (the inventory except its assets, ledgers, the lake's catalog) and grows with them, not
with the history. Readers (the dashboard, `caa sql`, reports) only ever open the snapshot read-only. A
collection never fails because the dashboard is open, and the dashboard keeps answering from the last
committed state while a collection runs.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from core import lake
from core.clock import utc_now
from core.errors import StoreBusyError, StoreError, first_line
from core.lake import rollback_quietly, transaction  # the store's transactions (re-exported)

SCHEMA_DIR = Path(__file__).parent / "schema"
# The store file's block. DuckDB's default, 256 KiB, suits big tables; this file holds only small ones (the
# events and rollups are lake files), where much of a 256 KiB block is padding, and a block freed by a
# rewrite of a few rows stays in the file. The 5M scale store's file (a 120,000-version inventory) is
# 12.3 MiB at 256 KiB blocks, 10.0 rewritten compact, 7.6 at 64 KiB (8.4 at 128, 7.9 at 32, 8.2 at 16):
# the bytes every publish copies and that sit on disk twice (store and snapshot).
BLOCK_SIZE = 65_536
# A write session that changed the store ends by rewriting the file compact (its live rows only, in
# BLOCK_SIZE blocks) before it is published, when its blocks are of another size (a store from before) or
# when at least FREE_REWRITE_BYTES and more than FREE_SHARE_REWRITE of it are free blocks. DuckDB frees the
# blocks of deleted row groups and reuses them, but keeps the file at its high-water mark: the inventory
# collector replaces each repository's rows, and a reload of an unchanged 150,000-asset inventory left
# the file 1.3-1.9x its live blocks, every publish copying the difference. (Since migration 020 the assets,
# most of those rows, leave the file at each publish; a session that moved them always rewrites it.)
FREE_SHARE_REWRITE = 1 / 3
FREE_REWRITE_BYTES = 4 * 2**20
# A write session's DuckDB keeps the memory blocks its operators free, up to this much, for the next ones
# (block_allocator_memory), instead of returning them to the system: a backfill's rollups build one hash table
# after another, and each fresh page costs a page fault. On the bench trail the collector took 320-372k
# minor faults instead of 485-529k (three alternating pairs), 0.2-0.8 s less system time, for 20-30 MiB more
# peak RSS. The blocks are given back when the session closes; a reader keeps DuckDB's default.
WRITER_BLOCK_MEMORY = 512 * 2**20


def snapshot_path(db: Path) -> Path:
    return db.with_name(db.stem + ".read.duckdb")


def lock_path(db: Path) -> Path:
    return db.with_name(db.name + ".lock")


def rewrite_path(db: Path) -> Path:
    """Where _rewrite writes the compact copy of the store file before it replaces the file."""
    return db.with_name(db.name + ".rewrite")


def _connect(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    try:
        if not read_only and not path.exists():
            _create(path)
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as e:
        text = str(e)
        if "lock" in text.lower():
            raise StoreBusyError(f"the store {path} is in use by another process", where=str(path),
                                 fix="wait for the other caa process to finish") from None
        damaged = damage_error(e, path)
        if damaged:
            raise damaged from None
        raise StoreError(f"cannot open the store {path}: {first_line(e)}", where=str(path),
                         fix="choose a writable path with --db or CAA_DB, or free disk space") from None
    # DuckDB shares one database instance (and its settings) among a process's connections to a file:
    # once a reader has locked the configuration, the instance is already UTC and cannot be SET again.
    if not _locked(con):
        con.execute("SET GLOBAL TimeZone = 'UTC'")
        # the lake's Parquet footers, kept between queries: every query on `events` or a rollup opens its files
        con.execute("SET GLOBAL parquet_metadata_cache = true")
        if not read_only:  # at most an eighth of the machine's memory
            con.execute(f"SET GLOBAL block_allocator_memory = '{min(WRITER_BLOCK_MEMORY, _memory() // 8)} bytes'")
    return con


def _memory() -> int:
    """This machine's physical memory in bytes (the writer's block allocator's default when unknown)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return 8 * WRITER_BLOCK_MEMORY


def _create(path: Path) -> None:
    """An empty store file in BLOCK_SIZE blocks (a file's block size is fixed when it is created)."""
    with duckdb.connect() as mem:
        mem.execute(f"ATTACH '{lake._quote(path)}' AS caa_new (BLOCK_SIZE {BLOCK_SIZE})")
        mem.execute("DETACH caa_new")


def _locked(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute("SELECT current_setting('lock_configuration')").fetchone()[0])


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply schema/NNN_*.sql files not yet applied, each in its own transaction. Returns their names."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER NOT NULL, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    applied = {v for (v,) in con.execute("SELECT version FROM schema_migrations").fetchall()}
    done = []
    for path in sorted(SCHEMA_DIR.glob("[0-9][0-9][0-9]_*.sql")):
        version = int(path.name[:3])
        if version in applied:
            continue
        with transaction(con):
            con.execute("SET VARIABLE caa_now = ?", [utc_now()])  # a migration's "now" is the clock's too
            con.execute(path.read_text(encoding="utf-8"))
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [version, path.name, utc_now()])
        done.append(path.name)
    return done


def store_version(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("SELECT value FROM store_meta WHERE key = 'store_version'").fetchone()[0]


def store_identity(con: duckdb.DuckDBPyConnection) -> tuple[int | None, int]:
    """(store_id, store_version): which store, and which state of it, a connection reads (store_id: migration
    017's random number, None in a store older than it)."""
    got = dict(con.execute("SELECT key, value FROM store_meta WHERE key IN ('store_id', 'store_version')").fetchall())
    return got.get("store_id"), got["store_version"]


def bump_version(con: duckdb.DuckDBPyConnection) -> None:
    """Mark that committed data changed; call inside the load transaction."""
    con.execute("UPDATE store_meta SET value = value + 1 WHERE key = 'store_version'")


@contextmanager
def load_transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """One collector load: its rows, its watermark and the store version commit together, or not at all."""
    with transaction(con):
        yield con
        bump_version(con)


# The store's one "before publish" hook. Loaders mark the UTC days of the `events` rows they commit
# (mark_days, in their transaction: the mark is a TEMP row, committed with them). Before every publish the
# writer's hook gets those days (prepare_publish); it returns True when it changed data that was already
# committed, so the store version moves. analytics/rollups.py `before_publish` is the hook that keeps the
# rollups in step with `events`: every caa command that writes opens its session with it, through
# analytics.rollups.writer (cli, demo, apply, alerts; a migration may change the rollups, and any write
# session can be the first after an upgrade), and writer
# refuses to publish marked days without a hook rather than publish events without their rollups.
BeforePublish = Callable[[duckdb.DuckDBPyConnection, list[date]], bool]
_HOOKS: dict[int, BeforePublish | None] = {}  # id(write connection) -> its session's hook
# id(write connection) of the sessions whose publish wrote the assets into the lake (lake.freeze): their rows left
# the store file, so the session ends by rewriting it without their space, as after move_rows
_FROZEN: set[int] = set()
DAY_OF_EVENT = "CAST(event_at AT TIME ZONE 'UTC' AS DATE)"


def mark_days(con: duckdb.DuckDBPyConnection, table: str, where: str = "TRUE") -> None:
    """Mark the UTC days of `table`'s rows (a loader's staged batch, with an event_at column) as changed,
    for the next publish. `table` and `where` are module constants of the caller."""
    con.execute("CREATE TEMP TABLE IF NOT EXISTS changed_days (day DATE NOT NULL)")
    con.execute(f"INSERT INTO changed_days SELECT DISTINCT {DAY_OF_EVENT} FROM {table} WHERE {where}")


def mark_these_days(con: duckdb.DuckDBPyConnection, days: Iterable[date]) -> None:
    """mark_days for a loader that knows the UTC days of the events it committed."""
    con.execute("CREATE TEMP TABLE IF NOT EXISTS changed_days (day DATE NOT NULL)")
    con.execute("INSERT INTO changed_days SELECT unnest($days::DATE[])", {"days": list(days)})


def mark_inventory(con: duckdb.DuckDBPyConnection) -> None:
    """Mark that this session loaded inventory rows (assets): the before-publish hook then sizes the
    downloads it could not size before (analytics/rollups.py resize)."""
    con.execute("CREATE TEMP TABLE IF NOT EXISTS changed_inventory (marked BOOLEAN)")
    con.execute("INSERT INTO changed_inventory VALUES (true)")


def take_inventory_mark(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether inventory rows were loaded since the last call (mark_inventory); clears the mark."""
    if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = 'changed_inventory'"
                       ).fetchone()[0]:
        return False
    marked = con.execute("SELECT count(*) FROM changed_inventory").fetchone()[0] > 0
    con.execute("DELETE FROM changed_inventory")
    return marked


def prepare_publish(con: duckdb.DuckDBPyConnection) -> bool:
    """Run the session's before-publish hook on the days marked since the last call, and move the store
    version when the hook changed committed data (then True); then move the ledger's closed months and the
    assets the session loaded into the lake and compact the lake (which moves the version when it rewrites files). Publishing calls it; so does precompute, whose views read what the hook keeps
    and are keyed on the version it leaves."""
    marked = con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = 'changed_days'"
                         ).fetchone()[0]
    days = sorted(d for (d,) in con.execute("SELECT DISTINCT day FROM changed_days").fetchall()) if marked else []
    hook = _HOOKS.get(id(con))
    if hook is None and days:
        raise StoreError("events were loaded in a write session without a before-publish hook", fix=(
            "open the session with analytics.rollups.writer(db)"))
    changed = hook is not None and hook(con, days)
    if marked:
        con.execute("DELETE FROM changed_days")
    if changed:
        with transaction(con):
            bump_version(con)
    lake.move_closed(con)
    if lake.freeze(con):  # (which sums every version's assets again)
        _FROZEN.add(id(con))
    else:
        lake.size_versions(con)  # versions written without their assets changing (one statement: atomic)
    lake.compact(con)
    return changed


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]],
                types: dict[str, pa.DataType]) -> None:
    """Bulk insert through Arrow. `table` and the `types` keys (the columns) are module constants."""
    if not rows:
        return
    batch = pa.table({c: pa.array([r[c] for r in rows], type=t) for c, t in types.items()})
    cols = ", ".join(types)
    con.register("_caa_batch", batch)
    try:
        con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _caa_batch")
    finally:
        con.unregister("_caa_batch")


def read_watermark(con: duckdb.DuckDBPyConnection, collector: str, scope: str) -> str | None:
    row = con.execute("SELECT value FROM watermarks WHERE collector = ? AND scope = ?", [collector, scope]).fetchone()
    return row[0] if row else None


def write_watermark(con: duckdb.DuckDBPyConnection, collector: str, scope: str, value: str) -> None:
    """Set a watermark; call inside the load transaction. updated_at is when the value last moved, so a
    re-run that does not move it leaves the table identical."""
    if read_watermark(con, collector, scope) == value:
        return
    con.execute("DELETE FROM watermarks WHERE collector = ? AND scope = ?", [collector, scope])
    con.execute("INSERT INTO watermarks VALUES (?, ?, ?, ?)", [collector, scope, value, utc_now()])


class _Lock:
    def __init__(self, db: Path):
        self.path = lock_path(db)
        self.fd: int | None = None

    def acquire(self) -> None:
        for folder in (self.path.parent, *self.path.parent.parents):
            if folder.exists() and not folder.is_dir():
                raise StoreError(f"cannot create the store: {folder} is a file, not a folder",
                                 where=str(self.path.with_suffix("")), fix="choose another path with --db or CAA_DB")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise StoreError(f"cannot create the store's lock file: {e.strerror}", where=str(self.path),
                             fix="choose a writable path with --db or CAA_DB") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StoreBusyError(f"another caa process is writing to {self.path.with_suffix('')} ({holder})",
                                 fix="wait for it to finish, or stop it, then run this again") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {utc_now():%Y-%m-%d %H:%M:%S}Z".encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def publish_snapshot(db: Path) -> Path:
    """Copy the (checkpointed, closed) store to the reader snapshot with an atomic rename."""
    snap = snapshot_path(db)
    tmp = snap.with_name(snap.name + ".tmp")
    try:
        shutil.copyfile(db, tmp)
        os.replace(tmp, snap)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"cannot publish the reader snapshot: {e.strerror}", where=str(snap),
                         fix="free disk space next to the store; the store itself is intact") from None
    return snap


def publish_now(con: duckdb.DuckDBPyConnection) -> Path:
    """Inside a write session, between batches: checkpoint and publish what is committed so far.

    Long runs call this every so often so the dashboard shows a backfill as it lands.
    """
    path = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()[0]
    prepare_publish(con)
    con.execute("CHECKPOINT")
    return publish_snapshot(Path(path))


@contextmanager
def writer(db: Path, before_publish: BeforePublish | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Exclusive write session: lock, migrate, yield, run the before-publish hook, checkpoint, rewrite the
    file compact if it is wasteful (_wasteful) or its assets moved into the lake (_FROZEN), publish the
    snapshot if changed. A session that loads
    events passes rollups.before_publish (see mark_days).

    Also when the session ends with an exception (Ctrl+C, a failed AWS call): what was committed
    before it is checkpointed and published, so readers see a partial run; the exception still
    propagates unchanged.
    """
    db = Path(db)
    lock = _Lock(db)
    lock.acquire()
    try:
        con = _connect(db, read_only=False)
        changed, failed, before = False, True, None
        try:
            changed = bool(migrate(con))
            con, settled = _settle_lake(db, con)
            changed = changed or settled
            _HOOKS[id(con)] = before_publish
            before = store_version(con)
            yield con
            failed = False
        finally:
            try:
                if failed:
                    rollback_quietly(con)
                # what was committed (also before a failure) is published with what the hook derives from it
                prepare_publish(con)
                changed = changed or store_version(con) != before
                con.execute("CHECKPOINT")
                frozen = id(con) in _FROZEN
                if changed and not failed and (frozen or _wasteful(con)):
                    _HOOKS.pop(id(con), None)
                    _FROZEN.discard(id(con))
                    con = _compact(db, con)
            except (duckdb.Error, StoreError):
                if not failed:
                    raise
            finally:
                _HOOKS.pop(id(con), None)
                _FROZEN.discard(id(con))
                con.close()
            if changed or not snapshot_path(db).exists():
                try:
                    publish_snapshot(db)
                except StoreError:
                    if not failed:
                        raise
    finally:
        lock.release()


def _settle_lake(db: Path, con: duckdb.DuckDBPyConnection) -> tuple[duckdb.DuckDBPyConnection, bool]:
    """At the start of a write session: remove lake files no reader can need, move the events and rollups
    of a store from before the lake into files (then rewrite the store file without their space, once, when
    it can: _compact), and point the lake's views at this store's lake (it may have been moved). Returns the
    connection and whether anything readers see changed. (Nothing to do for a schema from before the lake:
    tests of old code.)"""
    if not lake.present(con):
        return con, False
    lake.sweep(con)
    moved = lake.move_rows(con)
    if moved:
        con = _compact(db, con)
    views = "SELECT list(sql ORDER BY view_name) FROM duckdb_views() WHERE view_name IN $names AND NOT internal"
    names = {"names": list(lake.DATASETS)}
    view = con.execute(views, names).fetchone()
    with transaction(con):
        lake.rebuild_view(con)
    after = con.execute(views, names).fetchone()
    return con, bool(moved) or view != after


def _wasteful(con: duckdb.DuckDBPyConnection) -> bool:
    """The (checkpointed) store file is in blocks of another size than BLOCK_SIZE, or much of it is free."""
    block, total, free = con.execute("SELECT block_size, total_blocks, free_blocks FROM pragma_database_size() "
                                     "WHERE database_name = current_database()").fetchone()
    return block != BLOCK_SIZE or (free > FREE_SHARE_REWRITE * total and free * block >= FREE_REWRITE_BYTES)


def _compact(db: Path, con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """_rewrite the store file: a wasteful one before it is published, and once after rows moved into the
    lake. Optional: when the rewrite fails (no disk space for the copy, something in the way of its file),
    its partial file is removed and the store file stays as it was, with everything committed to it, and is
    published as it is (the rows moved are in the lake's files either way)."""
    try:
        return _rewrite(db, con)
    except (duckdb.Error, OSError):
        try:
            rewrite_path(db).unlink(missing_ok=True)
        except OSError:
            pass
        try:
            con.execute("DETACH DATABASE IF EXISTS caa_rewrite")
            return con
        except duckdb.Error:  # closed: the rename failed after the copy
            return _connect(db, read_only=False)


def _rewrite(db: Path, con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Rewrite the store file with its live data only (DuckDB keeps the space of deleted rows), in
    BLOCK_SIZE blocks: after the events moved to the lake, the file and every snapshot copy shrink to the
    small tables. The old file is replaced atomically; a crash before that leaves it as it was."""
    tmp = rewrite_path(db)
    tmp.unlink(missing_ok=True)
    name = con.execute("SELECT current_database()").fetchone()[0]
    con.execute("CHECKPOINT")
    con.execute(f"ATTACH '{lake._quote(tmp)}' AS caa_rewrite (BLOCK_SIZE {BLOCK_SIZE})")
    con.execute(f'COPY FROM DATABASE "{name}" TO caa_rewrite')
    con.execute("DETACH caa_rewrite")
    con.close()
    os.replace(tmp, db)
    return _connect(db, read_only=False)


def copy_store(src: Path, dst: Path) -> Path:
    """Copy a store (closed: no writer on it) with its lake to `dst`; the next write session points the
    copy's views at its own lake and publishes its snapshot."""
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    for a, b in zip(lake.folders(src), lake.folders(dst), strict=True):
        shutil.rmtree(b, ignore_errors=True)
        if a.exists():
            shutil.copytree(a, b)
    return dst


DISK_FULL = ("No space left", "File too large", "Disk quota", "Read-only file system")
DISK_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS)


DAMAGED = ("not a valid DuckDB database file", "Could not read enough bytes", "checksum", "Corrupt", "corrupt")


def damage_error(exc: BaseException, path: Path | None = None) -> StoreError | None:
    """A StoreError naming the damage and the real fix for a store or reader snapshot DuckDB cannot read
    (truncated, overwritten, corrupt), else None."""
    text = first_line(exc)
    if not (isinstance(exc, duckdb.Error) and any(m in text for m in DAMAGED)):
        return None
    named = re.search(r'file "([^"]+)"', text)
    where = str(path or (named.group(1) if named else "the store"))
    if where.endswith(".read.duckdb"):
        return StoreError(f"the reader snapshot {where} is damaged ({text[:140]})", where=where,
                          fix="run `caa refresh`, which publishes it again from the store")
    return StoreError(f"the store {where} is damaged ({text[:140]})", where=where,
                      fix="restore it from a backup (README: backing up the store), or move it aside and rebuild "
                          "it with `caa collect all --since YYYY-MM-DD`")


def disk_error(exc: BaseException) -> StoreError | None:
    """A StoreError for a failed write to a full (or read-only) disk, else None."""
    text = first_line(exc)
    if (isinstance(exc, OSError) and exc.errno in DISK_ERRNOS) or (
            isinstance(exc, duckdb.Error) and any(m in text for m in DISK_FULL)):
        return StoreError(f"cannot write the store, the disk is full or read-only ({text[:160]})",
                          fix="free disk space (or move the store with --db) and run again; data committed "
                              "before this is kept and the next run resumes")
    return None


def open_reader(db: Path) -> duckdb.DuckDBPyConnection | None:
    """A read-only connection to the latest published snapshot, or None when there is no data yet.

    Close it promptly (use it in a `with` block): a new snapshot is only seen by new connections.
    """
    snap = snapshot_path(Path(db))
    if not snap.exists():
        return None
    return lock_down(_connect(snap, read_only=True), lake.folders(Path(db)))


def no_data_error(db: Path) -> StoreError:
    """The one "nothing collected yet" error, for every command that needs data; when `db` is a folder or a
    file that is not a DuckDB database (a mistyped --db), that instead: collecting would not help."""
    what = _not_a_store(Path(db))
    if what:
        return StoreError(f"{db} is not a caa store (it is {what})", where=str(db),
                          fix="pass --db the store `caa collect` writes (default data/caa.duckdb, or env CAA_DB); "
                              "if it was one, restore it from a backup (README: backing up the store)")
    return StoreError(f"no data yet in {db}", fix="run `make demo` or `caa collect` first")


def _not_a_store(db: Path) -> str | None:
    """What `db` is when it cannot be a store: a folder, or a file with bytes whose header lacks DuckDB's
    magic (an empty file is a store not yet written); else None."""
    if db.is_dir():
        return "a folder"
    try:
        with open(db, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return None  # missing or unreadable: "no data yet" (an unreadable one fails on its own when opened)
    return "not a DuckDB database file" if head and head[8:12] != b"DUCK" else None


def require_reader(db: Path) -> duckdb.DuckDBPyConnection:
    """open_reader(), or the no-data error when nothing has been published yet."""
    con = open_reader(db)
    if con is None:
        raise no_data_error(db)
    return con


def latest_schema() -> int:
    """The number of this caa's newest migration (schema/NNN_*.sql)."""
    return max(int(p.name[:3]) for p in SCHEMA_DIR.glob("[0-9][0-9][0-9]_*.sql"))


def schema_behind(db: Path) -> int | None:
    """The schema of the published snapshot of `db` when it lacks one of this caa's migrations (a store that an
    older caa wrote and no write session of this one has opened since), else None: current, nothing published
    yet, or not a store."""
    snap = snapshot_path(Path(db))
    if not snap.is_file() or _not_a_store(snap):
        return None
    con = _connect(snap, read_only=True)
    try:
        have = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]
    except duckdb.CatalogException:  # a snapshot from before schema_migrations existed
        have = 0
    finally:
        con.close()
    return have if have < latest_schema() else None


def lock_down(con: duckdb.DuckDBPyConnection, lake_roots: list[Path] | None = None) -> duckdb.DuckDBPyConnection:
    """Make a reader see the store and nothing else, before any query text runs: no file, URL or
    extension outside it (the snapshot and its lake's folders, `lake_roots`) can be read or written (COPY ...
    TO, EXPORT DATABASE, read_text, read_csv, glob, ATTACH, INSTALL), and no setting can be changed again
    (memory_limit, TimeZone, enable_external_access itself). The snapshot is opened read-only, so its own
    tables cannot be written; the lake's files are only read."""
    if not _locked(con):  # (for the whole instance: every later connection to the snapshot is locked too)
        if lake_roots:
            con.execute("SET GLOBAL allowed_directories = $dirs", {"dirs": [str(r) + "/" for r in lake_roots]})
        con.execute("SET GLOBAL enable_external_access = false")
        con.execute("SET GLOBAL lock_configuration = true")
    return con


def reader_version(db: Path) -> tuple[int, int] | None:
    """A cheap key that changes whenever a new snapshot is published (for caches)."""
    try:
        st = snapshot_path(Path(db)).stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size)
