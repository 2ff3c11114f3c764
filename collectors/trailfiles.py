"""The one trail-file driver: list -> fetch -> read (decode) -> stage -> dedupe -> commit -> watermark.

CloudTrail's gzip JSON files (collectors/cloudtrail.py) and Spark extracts as Parquet
(collectors/cloudtrail_parquet.py) are both files under a source, `s3://bucket/prefix` or a local
directory, each with a day. Each format gives the driver what differs: its listing, how a batch is read
ahead (JSON inflates and decodes it; Parquet needs nothing) and how a batch is staged into `ct_stage`. The
rest is here, once: the ledger check (a file already in `cloudtrail_files` with the same ETag, or size and mtime
for a local file, is not fetched again), oldest-day-first batches, S3 objects fetched concurrently into
a temporary directory one batch ahead of the load, the dedupe and commit (cloudtrail_load.commit_stage,
called by each format's stage), publishing during long runs, and the watermark.

Reads: the source (S3 or local), cloudtrail_files, watermarks. Writes: through the formats' loaders,
events and cloudtrail_files; here, the `cloudtrail` watermark of the source.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from collectors.base import RunContext, ScopeResult
from collectors.cloudtrail_load import BatchResult, Ledger, scratch_folder
from core import store
from core.aws import Scope, translate

LAG_DAYS = 2  # re-list this many days before the watermark: delivery is late and out of order
PUBLISH_EVERY_S = 30  # during a long backfill, let readers see committed batches this often


@dataclass(frozen=True)
class TrailObject:
    key: str  # relative to the source root
    size: int
    etag: str
    modified: float = 0.0  # S3 LastModified or the local mtime, as a POSIX time


Listed = tuple[TrailObject, str | None]  # a file and its day (YYYY-MM-DD; None when it has none)


@dataclass(frozen=True)
class FileFormat:
    """What differs between trail formats, for `ingest`."""

    read_ahead: Callable[[list[str]], Any]  # runs on the next batch while this one loads (JSON: decode)
    load: Callable[[duckdb.DuckDBPyConnection, list[str], Ledger, Any], BatchResult]  # stage, dedupe, commit
    close: Callable[[Any], None]  # drops what read_ahead made, when a batch fails before its load
    rejected_why: str  # how rejected records are reported
    max_bytes: int | None = None  # bytes per batch (besides cloudtrail.batch_files files)


def parse_source(source: str) -> tuple[str, str, str]:
    """('s3', bucket, prefix/) or ('local', path, '')."""
    if source.startswith("s3://"):
        bucket, _, prefix = source[5:].partition("/")
        prefix = prefix.strip("/")
        return "s3", bucket, (prefix + "/") if prefix else ""
    return "local", source, ""


def scan_dir(path: Path, rel: str, bad: list[tuple[str, str]]) -> list[tuple[str, os.stat_result | None]]:
    """(name, stat for a file / None for a folder) of each readable entry of the folder `path`. An entry
    that cannot be read (a symbolic link loop, no permission) is added to `bad` as (its path relative to
    the source, why) and left out, so one bad path never stops a source."""
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return []
    except OSError as e:
        bad.append((rel or ".", f"the folder cannot be listed: {e.strerror or e}"))
        return []
    out = []
    for e in entries:
        try:
            if e.is_dir():
                out.append((e.name, None))
            elif e.is_file():
                out.append((e.name, e.stat()))
        except OSError as err:
            bad.append((rel + e.name, f"cannot be read: {err.strerror or err} (a symbolic link loop or no "
                                      "permission); fix or remove it"))
    return out


def local_object(folder: str, name: str, st: os.stat_result) -> TrailObject:
    """A local file as a TrailObject: its size and mtime stand in for an ETag."""
    return TrailObject(folder + name, st.st_size, f"{st.st_size}-{st.st_mtime_ns}", st.st_mtime)


def s3_object(listed: dict, cut: int) -> TrailObject:
    """An S3 listing's object as a TrailObject, its key without the source's prefix (`cut` characters)."""
    modified = listed.get("LastModified")
    return TrailObject(listed["Key"][cut:], listed["Size"], listed["ETag"].strip('"'),
                       modified.timestamp() if modified else 0.0)


def start_date(ctx: RunContext, source: str) -> date:
    """The first day to list: --since, else the watermark minus LAG_DAYS, else cloudtrail.backfill_days ago."""
    if ctx.since:
        return ctx.since
    mark = store.read_watermark(ctx.con, "cloudtrail", source)
    if mark:
        return date.fromisoformat(mark[:10]) - timedelta(days=LAG_DAYS)
    return (ctx.now - timedelta(days=ctx.settings.cloudtrail.backfill_days)).date()


def set_watermark(con: duckdb.DuckDBPyConnection, scope: str, value: str) -> None:
    with store.load_transaction(con):
        store.write_watermark(con, "cloudtrail", scope, value)


def known_files(con: duckdb.DuckDBPyConnection, source: str, listed: list[Listed]) -> set[tuple[str, str | None]]:
    """The (key, etag) of the `listed` files that the ledger already holds for `source`. The ledger keeps every
    file of every run (a year of an organization's trail is millions of rows): it is matched against this
    run's listing inside DuckDB, so the run holds the listing's keys, not the ledger's."""
    if not listed:
        return set()
    # the ledger's rows of the listed days only (its files are a month each, its day in their statistics),
    # and the rows without a day, when a listed file has none
    parsed = [_date(d) for _, d in listed]
    days = sorted({d for d in parsed if d})
    span = "c.day BETWEEN ? AND ?" if days else "FALSE"
    if None in parsed:  # its ledger row has no day either
        span += " OR c.day IS NULL"
    params = [source, *([days[0], days[-1]] if days else [])]
    # none of those rows (a first run, a backfill of older days): the listing needs no table (making one imported
    # pandas through pyarrow, 0.14-0.17 s on one core before the first file was read)
    if not con.execute(f"SELECT count(*) FROM (SELECT 1 FROM cloudtrail_files AS c WHERE c.source = ? AND ({span}) "
                       "LIMIT 1)", params).fetchone()[0]:
        return set()
    con.complete()  # a caller's last execute() may hold a result: register() needs the connection free
    con.register("listed_files", pa.table({"key": [o.key for o, _ in listed], "etag": [o.etag for o, _ in listed]}))
    try:
        return set(con.execute("SELECT l.key, l.etag FROM listed_files AS l SEMI JOIN cloudtrail_files AS c "
                               f"ON c.source = ? AND ({span}) AND c.key = l.key AND c.etag IS NOT DISTINCT FROM l.etag",
                               params).fetchall())
    finally:
        con.unregister("listed_files")


def _date(day: str | None) -> date | None:
    """A listed file's day folder as a date; None for none, or for a folder that is no date (2026/02/30)."""
    try:
        return date.fromisoformat(day) if day else None
    except ValueError:
        return None


READ_AHEAD = 2  # batches prepared ahead of the one loading (one at a time, in order)


def batches(todo: list[Listed], max_files: int, max_bytes: int | None) -> list[list[Listed]]:
    """`todo` cut into batches of at most `max_files` files and (when set) `max_bytes` bytes."""
    out: list[list[Listed]] = []
    size = 0
    for item in todo:
        if not out or len(out[-1]) >= max_files or (max_bytes and size + item[0].size > max_bytes):
            out.append([])
            size = 0
        out[-1].append(item)
        size += item[0].size
    return out


def ingest(ctx: RunContext, scope: Scope, fmt: FileFormat, listed: list[Listed], result: ScopeResult,
           client: Any = None, root: str | None = None) -> int:
    """Load every listed file not yet in the ledger, oldest day first, and move the source's watermark to
    the newest day loaded (files already in the ledger count too: a run killed after its last batch left
    no watermark). `client` is the S3 client for an s3:// source, else the files are local. The files' keys
    are relative to `root` (default the source; the folder holding AWSLogs/ when the source named one inside
    it). Returns the bytes of the files it read."""
    kind, where, prefix = parse_source(root or scope.source)
    known = known_files(ctx.con, scope.source, listed)
    # Oldest day first across every account and region: a batch then spans about a day of event time,
    # so its dedupe anti-join (restricted to the batch's time range) reads a day of `events`, not months.
    todo = sorted(((o, d) for o, d in listed if (o.key, o.etag) not in known), key=lambda od: (od[1] or "", od[0].key))
    newest_day = max((d for o, d in listed if d and (o.key, o.etag) in known), default=None)
    work = batches(todo, ctx.settings.cloudtrail.batch_files, fmt.max_bytes)
    published = time.monotonic()
    with ctx.progress(f"cloudtrail {scope.source}", len(todo)) as advance, \
            scratch_folder("trail") as tmp, ThreadPoolExecutor(max_workers=1) as ahead:
        fetcher = S3Fetcher(ctx, scope, client, where, prefix, Path(tmp)) if kind == "s3" else None

        def prepare(batch: list[Listed]) -> tuple[dict[str, TrailObject], dict[str, str], Any]:
            """Fetch (S3) and read ahead one batch; runs while DuckDB loads an earlier one (READ_AHEAD)."""
            local, missing = fetcher.fetch([o for o, _ in batch]) if fetcher else (
                {str(Path(where) / o.key): o for o, _ in batch}, {})
            return local, missing, fmt.read_ahead(list(local))

        queued = deque(ahead.submit(prepare, b) for b in work[:READ_AHEAD])
        try:
            for i, batch in enumerate(work):
                local, missing, prepared = queued.popleft().result()
                if i + READ_AHEAD < len(work):
                    queued.append(ahead.submit(prepare, work[i + READ_AHEAD]))
                for key, why in missing.items():
                    result.skip(key, why)
                days = {o.key: d for o, d in batch}
                ledger = {f: (scope.source, o.key, o.etag, o.size, _date(days[o.key])) for f, o in local.items()}
                got = fmt.load(ctx.con, list(local), ledger, prepared)
                if fetcher:
                    for f in local:
                        Path(f).unlink()
                newest_day = _record(result, got, ledger, days, newest_day, fmt.rejected_why)
                advance(len(batch))
                if time.monotonic() - published > PUBLISH_EVERY_S:
                    release_batches()
                    store.publish_now(ctx.con)
                    published = time.monotonic()
        finally:
            for pending in queued:  # a batch failed: drop what was read ahead for the next ones
                try:
                    fmt.close(pending.result()[2])
                except Exception:  # noqa: BLE001 - its own failure is not the one being raised
                    pass
    release_batches()
    if newest_day and newest_day != store.read_watermark(ctx.con, "cloudtrail", scope.source):
        set_watermark(ctx.con, scope.source, newest_day)
    return sum(o.size for o, _ in todo)


def release_batches() -> None:
    """Return the memory Arrow's allocator keeps from the batches (cli.py: MIMALLOC_PURGE_DELAY) to the
    system before the rollups run: they are the run's peak (DuckDB's aggregations), and Arrow's pages kept
    beside them took the bench ingest's peak RSS from ~850 MiB to 1.05 GB."""
    pa.default_memory_pool().release_unused()


def _record(result: ScopeResult, got: BatchResult, ledger: Ledger, days: dict[str, str | None],
            newest_day: str | None, rejected_why: str) -> str | None:
    """Add a loaded batch to the scope's result (rows, skipped files, rejected records); return the newest
    day among the batch's loaded files and `newest_day` (the watermark candidate)."""
    result.rows += got.new_events
    for f, why in got.bad.items():
        result.skip(ledger[f][1], why)
    if got.rejected:
        result.skip(f"{got.rejected} records", rejected_why)
    loaded = [d for d in (days.get(ledger[f][1]) for f in got.files_ok) if d]
    return max([newest_day or "", *loaded]) if loaded else newest_day


class S3Fetcher:
    """Fetch a batch of S3 objects concurrently into a folder of its own; {local path: object}."""

    def __init__(self, ctx: RunContext, scope: Scope, client: Any, bucket: str, prefix: str, tmp: Path):
        self.scope, self.client, self.bucket, self.prefix, self.tmp = scope, client, bucket, prefix, tmp
        self.pool = ThreadPoolExecutor(max_workers=ctx.settings.cloudtrail.s3_concurrency)
        self.n = 0

    def _get(self, obj: TrailObject, path: Path) -> str | None:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.prefix + obj.key)["Body"]
            path.write_bytes(body.read())
            return None
        except Exception as e:  # noqa: BLE001 - classified below
            code = getattr(e, "response", {}).get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                return "deleted between listing and fetching (it will not be retried)"
            err = translate(e, self.scope, "s3", what=obj.key)
            if err is None:
                raise
            raise err from None

    def fetch(self, batch: list[TrailObject]) -> tuple[dict[str, TrailObject], dict[str, str]]:
        """({local path: object} fetched, {key: why} of the objects that were not there any more)."""
        self.n += 1
        folder = self.tmp / f"batch{self.n:06d}"  # one folder per batch: the next is fetched during the load
        folder.mkdir()
        suffix = "".join(Path(batch[0].key).suffixes[-2:]) if batch else ""
        paths = [folder / f"{i:05d}{suffix}" for i in range(len(batch))]
        outcomes = list(self.pool.map(self._get, batch, paths))
        local = {str(p): o for p, o, why in zip(paths, batch, outcomes, strict=True) if why is None}
        missing = {o.key: why for o, why in zip(batch, outcomes, strict=True) if why is not None}
        return local, missing
