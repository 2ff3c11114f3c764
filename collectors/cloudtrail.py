"""The cloudtrail collector: CodeArtifact events from trail files (S3 or a local copy) or LookupEvents.

A source is `s3://bucket/prefix` or a local directory with the same layout
(`[prefix/]AWSLogs/[o-org/]<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz`). Listing starts at
`--since`, else the watermark minus a lag, else `cloudtrail.backfill_days` ago: a local tree is walked
by date folder, an S3 region prefix is listed once, flat, from that day (S3 returns keys in order).
Digest and Insight files live under other folders and are never listed. Files already in the
`cloudtrail_files` ledger with the same ETag are not fetched again, so a file delivered late is still
picked up. S3 objects are fetched concurrently into a temporary directory and read by the same code
as local files. A source holding `day=YYYY-MM-DD/*.parquet` rather than `AWSLogs/` is a Spark extract
(spark/extract.py), ingested by collectors/cloudtrail_parquet.py. Without any source,
LookupEvents (2 calls/s per account and region) is the fallback.

Reads: trail files, S3, cloudtrail:LookupEvents. Writes: events, cloudtrail_files, watermarks.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from collectors.base import CollectorSpec, RunContext, ScopeResult, account_region_scopes, echo
from collectors.cloudtrail_load import BatchResult, Inflated, inflate, load_files, normalize_records
from core import store
from core.aws import Scope, aws_errors, translate
from core.errors import ConfigError

LAG_DAYS = 2  # re-list this many days before the watermark: delivery is late and out of order
LOOKUP_MIN_INTERVAL_S = 0.5  # LookupEvents allows 2 calls/s per account and region
PUBLISH_EVERY_S = 30  # during a long backfill, let readers see committed batches this often


@dataclass(frozen=True)
class TrailObject:
    key: str  # relative to the source root
    size: int
    etag: str


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


class LocalTree:
    def __init__(self, root: Path):
        self.root = root
        self.bad: list[tuple[str, str]] = []  # (path, why): entries that could not be read, reported as skipped

    def children(self, prefix: str) -> list[str]:
        return sorted(name for name, st in scan_dir(self.root / prefix, prefix, self.bad) if st is None)

    def files(self, prefix: str) -> list[TrailObject]:
        out = [TrailObject(prefix + name, st.st_size, f"{st.st_size}-{st.st_mtime_ns}")
               for name, st in scan_dir(self.root / prefix, prefix, self.bad)
               if st is not None and name.endswith(".json.gz")]
        return sorted(out, key=lambda o: o.key)

    def day_files(self, base: str, start: date, end: date) -> Iterator[TrailObject]:
        """Trail files under `base` (.../CloudTrail/<region>/) whose YYYY/MM/DD folder is in [start, end]."""
        for y in self.children(base):
            if not (y.isdigit() and start.year <= int(y) <= end.year):
                continue
            for m in self.children(f"{base}{y}/"):
                if not m.isdigit() or not (start.replace(day=1) <= date(int(y), int(m), 1) <= end):
                    continue
                for d in self.children(f"{base}{y}/{m}/"):
                    try:
                        day = date(int(y), int(m), int(d))
                    except ValueError:
                        continue
                    if start <= day <= end:
                        yield from self.files(f"{base}{y}/{m}/{d}/")


class S3Tree:
    def __init__(self, client: Any, bucket: str, prefix: str):
        self.client, self.bucket, self.prefix = client, bucket, prefix

    def _pages(self, prefix: str, delimiter: str | None, start_after: str | None = None) -> Iterator[dict]:
        kwargs = {"Bucket": self.bucket, "Prefix": self.prefix + prefix}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        if start_after:
            kwargs["StartAfter"] = self.prefix + start_after
        yield from self.client.get_paginator("list_objects_v2").paginate(**kwargs)

    def children(self, prefix: str) -> list[str]:
        start = len(self.prefix + prefix)
        return sorted(cp["Prefix"][start:].rstrip("/") for page in self._pages(prefix, "/")
                      for cp in page.get("CommonPrefixes", []))

    def files(self, prefix: str) -> list[TrailObject]:
        start = len(self.prefix)
        return [TrailObject(o["Key"][start:], o["Size"], o["ETag"].strip('"'))
                for page in self._pages(prefix, "/") for o in page.get("Contents", [])
                if o["Key"].endswith(".json.gz")]

    def day_files(self, base: str, start: date, end: date) -> Iterator[TrailObject]:
        """Trail files under `base` whose YYYY/MM/DD folder is in [start, end]: one flat listing of the
        region's prefix from `start` on (S3 lists keys in order), instead of one request per day folder.
        It stops at the first key past `end`."""
        cut = len(self.prefix)
        for page in self._pages(base, None, start_after=f"{base}{start:%Y/%m/%d}"):
            for o in page.get("Contents", []):
                key = o["Key"][cut:]
                day = _day_of(key)
                if day is None:
                    continue
                if day > end.isoformat():
                    return
                if key.endswith(".json.gz") and day >= start.isoformat():
                    yield TrailObject(key, o["Size"], o["ETag"].strip('"'))


def parse_source(source: str) -> tuple[str, str, str]:
    """('s3', bucket, prefix/) or ('local', path, '')."""
    if source.startswith("s3://"):
        bucket, _, prefix = source[5:].partition("/")
        prefix = prefix.strip("/")
        return "s3", bucket, (prefix + "/") if prefix else ""
    return "local", source, ""


def list_trail_files(tree: LocalTree | S3Tree, start: date, end: date) -> Iterator[TrailObject]:
    """Every trail file under AWSLogs/ whose date folder is in [start, end]."""
    accounts: list[str] = []
    for name in tree.children("AWSLogs/"):
        if name.startswith("o-"):
            accounts += [f"AWSLogs/{name}/{acct}/" for acct in tree.children(f"AWSLogs/{name}/") if acct.isdigit()]
        elif name.isdigit():
            accounts.append(f"AWSLogs/{name}/")
    for acct in accounts:
        for region in tree.children(acct + "CloudTrail/"):
            yield from tree.day_files(f"{acct}CloudTrail/{region}/", start, end)


def record_batch(result: ScopeResult, got: BatchResult, ledger: dict[str, tuple], day_of: Callable[[str], str | None],
                 newest_day: str | None, rejected_why: str) -> str | None:
    """Add a loaded batch to the scope's result (rows, skipped files, rejected records); return the newest
    day among the batch's loaded files and `newest_day` (the watermark candidate). `ledger` maps each local
    file to (source, key, etag, size); `day_of` gives a key's day."""
    result.rows += got.new_events
    for f, why in got.bad.items():
        result.skip(ledger[f][1], why)
    if got.rejected:
        result.skip(f"{got.rejected} records", rejected_why)
    days = [d for d in (day_of(ledger[f][1]) for f in got.files_ok) if d]
    return max([newest_day or "", *days]) if days else newest_day


def _day_of(key: str) -> str | None:
    parts = key.split("/")
    try:
        i = parts.index("CloudTrail")
        return f"{parts[i + 2]}-{parts[i + 3]}-{parts[i + 4]}"
    except (ValueError, IndexError):
        return None


def set_watermark(con: duckdb.DuckDBPyConnection, scope: str, value: str) -> None:
    with store.load_transaction(con):
        store.write_watermark(con, "cloudtrail", scope, value)


def start_date(ctx: RunContext, scope_key: str) -> date:
    if ctx.since:
        return ctx.since
    mark = store.read_watermark(ctx.con, "cloudtrail", scope_key)
    if mark:
        return date.fromisoformat(mark[:10]) - timedelta(days=LAG_DAYS)
    return (ctx.now - timedelta(days=ctx.settings.cloudtrail.backfill_days)).date()


def known_files(con: duckdb.DuckDBPyConnection, source: str) -> set[tuple[str, str]]:
    return set(con.execute("SELECT key, etag FROM cloudtrail_files WHERE source = ?", [source]).fetchall())


def collect_files(ctx: RunContext, scope: Scope) -> ScopeResult:
    from collectors import cloudtrail_parquet  # imported here: it reuses this module's S3 fetcher

    if cloudtrail_parquet.is_extract(ctx, scope):
        return cloudtrail_parquet.collect_extract(ctx, scope)
    kind, where, prefix = parse_source(scope.source)
    if kind == "local":
        root = Path(where)
        if not root.is_dir():
            raise ConfigError(f"trail directory {root} does not exist", where="cloudtrail.sources / --source",
                              fix="point it at a directory that contains AWSLogs/")
        tree: LocalTree | S3Tree = LocalTree(root)
    else:
        s3 = ctx.clients.client(Scope(region=None), "s3")
        tree = S3Tree(s3, where, prefix)
    start, end = start_date(ctx, scope.source), (ctx.now + timedelta(days=1)).date()
    first_run = ctx.since is None and store.read_watermark(ctx.con, "cloudtrail", scope.source) is None
    t0 = time.monotonic()
    result = ScopeResult(window=f"{start}..{end}")
    with aws_errors(scope, "s3", what="listing"):
        known = known_files(ctx.con, scope.source)
        listed = list(list_trail_files(tree, start, end))
        todo = [o for o in listed if (o.key, o.etag) not in known]
    for key, why in getattr(tree, "bad", []):
        result.skip(key, why)
    # Oldest day first across every account and region: a batch then spans about a day of event time,
    # so its dedupe anti-join (restricted to the batch's time range) reads a day of `events`, not months.
    todo.sort(key=lambda o: (_day_of(o.key) or "", o.key))
    size = ctx.settings.cloudtrail.batch_files
    batches = [todo[i:i + size] for i in range(0, len(todo), size)]
    # Files already in the ledger count too: a run killed after its last batch left no watermark.
    newest_day = max((d for o in listed if (o.key, o.etag) in known and (d := _day_of(o.key))), default=None)
    published = time.monotonic()
    with ctx.progress(f"cloudtrail {scope.source}", len(todo)) as advance, \
            tempfile.TemporaryDirectory(prefix="caa-trail-") as tmp, ThreadPoolExecutor(max_workers=1) as ahead:
        fetcher = S3Fetcher(ctx, scope, tree, Path(tmp)) if kind == "s3" else None

        def prepare(batch: list[TrailObject]) -> tuple[dict[str, TrailObject], dict[str, str], Inflated]:
            """Fetch (S3) and inflate a batch; runs one batch ahead while DuckDB loads the current one."""
            local, missing = fetcher.submit(batch).result() if fetcher else (
                {str(root / o.key): o for o in batch}, {})
            return local, missing, inflate(list(local))

        pending = ahead.submit(prepare, batches[0]) if batches else None
        try:
            for i, batch in enumerate(batches):
                local, missing, inflated = pending.result()
                pending = ahead.submit(prepare, batches[i + 1]) if i + 1 < len(batches) else None
                for key, why in missing.items():
                    result.skip(key, why)
                ledger = {f: (scope.source, o.key, o.etag, o.size) for f, o in local.items()}
                got = load_files(ctx.con, list(local), ledger, inflated)
                if fetcher:
                    for f in local:
                        Path(f).unlink()
                newest_day = record_batch(result, got, ledger, _day_of, newest_day,
                                          "no eventID or unreadable eventTime (rejected)")
                advance(len(batch))
                if time.monotonic() - published > PUBLISH_EVERY_S:
                    store.publish_now(ctx.con)
                    published = time.monotonic()
        finally:
            if pending is not None:  # a batch failed: drop the files of the one prepared ahead
                try:
                    pending.result()[2].close()
                except Exception:  # noqa: BLE001 - its own failure is not the one being raised
                    pass
    if newest_day and newest_day != store.read_watermark(ctx.con, "cloudtrail", scope.source):
        set_watermark(ctx.con, scope.source, newest_day)
    if first_run:
        with aws_errors(scope, "s3", what="listing"):
            hint = backfill_hint(ctx, scope.source, list(list_trail_files(tree, date(1970, 1, 1), start - timedelta(days=1))),
                                 start, result.rows, sum(o.size for o in todo), time.monotonic() - t0)
        if hint:
            echo(hint)
    return result


BYTES_PER_EVENT = 190  # compressed trail bytes per CodeArtifact event in the demo trail (37.7 MB, 198,624 events)
BENCH_EVENTS_PER_S = 66_000  # `make bench` on the 2-core machine, slow day of 2026-12-02 (README: Performance)


def backfill_hint(ctx: RunContext, source: str, older: list[TrailObject], start: date, rows: int, read_bytes: int,
                  secs: float) -> str | None:
    """On a first run, the trail files older than the window it read, and the command that reads them,
    with the events and time it would take (at this run's rate when it read enough, else the bench's)."""
    if not older:
        return None
    days = sorted({d for o in older if (d := _day_of(o.key))})
    size = sum(o.size for o in older)
    per_byte = rows / read_bytes if rows >= 1000 and read_bytes else 1 / BYTES_PER_EVENT
    events = size * per_byte
    rate = rows / secs if rows >= 10_000 and secs > 0 else BENCH_EVENTS_PER_S
    since = days[0] if days else (start - timedelta(days=1)).isoformat()
    amount = f"{size / 1e6:,.1f} MB" if size >= 100_000 else f"{size / 1e3:,.0f} kB"
    return (f"backfill: {len(older):,} older trail files ({amount}, {len(days):,} day folders from {since} "
            f"to {days[-1] if days else since}) are before this first run's window, which starts "
            f"cloudtrail.backfill_days = {ctx.settings.cloudtrail.backfill_days} days back; about {events:,.0f} events, "
            f"~{max(events / rate, 1):,.0f} s at {rate:,.0f} events/s. To read them: "
            f"caa collect cloudtrail --source {source} --since {since}")


class S3Fetcher:
    """Fetch a batch of S3 objects concurrently into a temp dir; yields {local path: object}."""

    def __init__(self, ctx: RunContext, scope: Scope, tree: S3Tree, tmp: Path):
        self.scope, self.tree, self.tmp = scope, tree, tmp
        self.pool = ThreadPoolExecutor(max_workers=ctx.settings.cloudtrail.s3_concurrency)
        self.outer = ThreadPoolExecutor(max_workers=1)  # one batch fetched ahead while DuckDB loads
        self.n = 0

    def _get(self, obj: TrailObject, path: Path) -> str | None:
        try:
            body = self.tree.client.get_object(Bucket=self.tree.bucket, Key=self.tree.prefix + obj.key)["Body"]
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

    def _batch(self, batch: list[TrailObject]) -> tuple[dict[str, TrailObject], dict[str, str]]:
        self.n += 1
        folder = self.tmp / f"batch{self.n:06d}"  # one folder per batch: the next is fetched during the load
        folder.mkdir()
        paths = [folder / f"{i:05d}.json.gz" for i in range(len(batch))]
        outcomes = list(self.pool.map(self._get, batch, paths))
        local = {str(p): o for p, o, why in zip(paths, batch, outcomes, strict=True) if why is None}
        missing = {o.key: why for o, why in zip(batch, outcomes, strict=True) if why is not None}
        return local, missing

    def submit(self, batch: list[TrailObject]) -> Any:
        return self.outer.submit(self._batch, batch)


def collect_lookup(ctx: RunContext, scope: Scope) -> ScopeResult:
    """Fallback without a trail: LookupEvents for EventSource=codeartifact, at most 2 calls/s."""
    client = ctx.clients.client(scope, "cloudtrail")
    key = f"lookup:{scope.account_id or 'default'}:{scope.region}"
    mark = store.read_watermark(ctx.con, "cloudtrail", key)
    start = (datetime.combine(ctx.since, datetime.min.time()).replace(tzinfo=ctx.now.tzinfo) if ctx.since
             else datetime.fromisoformat(mark) - timedelta(minutes=30) if mark
             else ctx.now - timedelta(days=min(ctx.settings.cloudtrail.backfill_days, 90)))
    result = ScopeResult(window=f"{start:%Y-%m-%dT%H:%M}..{ctx.now:%Y-%m-%dT%H:%M}")
    records: list[dict] = []
    with aws_errors(scope, "cloudtrail"):
        pages = client.get_paginator("lookup_events").paginate(
            LookupAttributes=[{"AttributeKey": "EventSource", "AttributeValue": "codeartifact.amazonaws.com"}],
            StartTime=start, EndTime=ctx.now, PaginationConfig={"PageSize": 50})
        for page in _rate_limited(pages, LOOKUP_MIN_INTERVAL_S):
            for ev in page.get("Events", []):
                try:
                    records.append(json.loads(ev["CloudTrailEvent"]))
                except (KeyError, TypeError, ValueError):
                    result.skip(ev.get("EventId", "?"), "CloudTrailEvent is not JSON")
    with tempfile.TemporaryDirectory(prefix="caa-lookup-") as tmp:
        path = Path(tmp) / "lookup.json.gz"
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            json.dump({"Records": records}, fh)
        got = load_files(ctx.con, [str(path)], ledger={})  # no files to remember: the watermark is the state
    result.rows = got.new_events
    if records:
        newest = max(r.get("eventTime", "") for r in records)
        set_watermark(ctx.con, key, newest)
    return result


def _rate_limited(pages: Any, interval: float) -> Iterator[dict]:
    last = 0.0
    for page in pages:
        wait = last + interval - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        last = time.monotonic()
        yield page


def scopes(ctx: RunContext) -> list[Scope]:
    sources = [ctx.source] if ctx.source else ctx.settings.cloudtrail.sources
    if sources:
        return [Scope(source=s) for s in sources]
    return account_region_scopes(ctx)


def collect(ctx: RunContext, scope: Scope) -> ScopeResult:
    return collect_files(ctx, scope) if scope.source else collect_lookup(ctx, scope)


SPEC = CollectorSpec("cloudtrail", collect, scopes)

__all__ = ["PUBLISH_EVERY_S", "SPEC", "S3Fetcher", "S3Tree", "TrailObject", "collect", "known_files", "list_trail_files",
           "normalize_records", "parse_source", "record_batch", "set_watermark", "start_date"]
