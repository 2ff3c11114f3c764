"""The cloudtrail collector: CodeArtifact events from trail files (S3 or a local copy) or LookupEvents.

A source is `s3://bucket/prefix` or a local directory with the same layout
(`[prefix/]AWSLogs/[o-org/]<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz`, or `*.json` that a copy
left uncompressed); a source that names a folder inside AWSLogs/ reads that part of it (split_at_awslogs).
Listing starts at `--since`, else the watermark minus a lag, else `cloudtrail.backfill_days` ago: a local
tree is walked by date folder, an S3 region prefix is listed once, flat, from that day (S3 returns keys in order).
Digest and Insight files live under other folders and are never listed. Files already in the
`cloudtrail_files` ledger with the same ETag are not fetched again, so a file delivered late is still
picked up. The fetch, read-ahead, dedupe, commit and watermark are the trail-file driver's
(collectors/trailfiles.py); this module lists trail files and gives the driver its JSON format
(inflate and decode, collectors/cloudtrail_load.py). A source holding `day=YYYY-MM-DD/*.parquet` rather than
`AWSLogs/` is a Spark extract (spark/extract.py), the driver's other format (collectors/cloudtrail_parquet.py).
Without any source, LookupEvents (2 calls/s per account and region) is the fallback.

Reads: trail files, S3, cloudtrail:LookupEvents. Writes: events, cloudtrail_files, watermarks.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from collectors import cloudtrail_parquet
from collectors.base import CollectorSpec, RunContext, ScopeResult, account_region_scopes
from collectors.cloudtrail_load import Decoded, decode, load_files, normalize_records, scratch_folder
from collectors.trailfiles import (
    FileFormat,
    TrailObject,
    ingest,
    local_object,
    parse_source,
    s3_object,
    scan_dir,
    set_watermark,
    start_date,
)
from core import store
from core.aws import Scope, aws_errors
from core.errors import ConfigError, echo

TRAIL_SUFFIXES = (".json.gz", ".json")  # as CloudTrail delivers them, and as a tool that gunzipped a copy left them
LOOKUP_MIN_INTERVAL_S = 0.5  # LookupEvents allows 2 calls/s per account and region


class LocalTree:
    def __init__(self, root: Path):
        self.root = root
        self.bad: list[tuple[str, str]] = []  # (path, why): entries that could not be read, reported as skipped

    def children(self, prefix: str) -> list[str]:
        return sorted(name for name, st in scan_dir(self.root / prefix, prefix, self.bad) if st is None)

    def files(self, prefix: str) -> list[TrailObject]:
        out = [local_object(prefix, name, st) for name, st in scan_dir(self.root / prefix, prefix, self.bad)
               if st is not None and name.endswith(TRAIL_SUFFIXES)]
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
                if key.endswith(TRAIL_SUFFIXES) and day >= start.isoformat():
                    yield s3_object(o, cut)


def list_trail_files(tree: LocalTree | S3Tree, start: date, end: date, within: str = "AWSLogs/"
                     ) -> Iterator[TrailObject]:
    """Every trail file under AWSLogs/ whose date folder is in [start, end]; with `within` (a folder inside
    AWSLogs/ the source named: an organisation's, an account's, its CloudTrail/ or a region's), only those
    under it."""
    def under(folder: str) -> bool:
        return folder.startswith(within) or within.startswith(folder)

    accounts: list[str] = []
    for name in tree.children("AWSLogs/"):
        if name.startswith("o-") and under(f"AWSLogs/{name}/"):
            accounts += [f"AWSLogs/{name}/{acct}/" for acct in tree.children(f"AWSLogs/{name}/")
                         if acct.isdigit() and under(f"AWSLogs/{name}/{acct}/")]
        elif name.isdigit() and under(f"AWSLogs/{name}/"):
            accounts.append(f"AWSLogs/{name}/")
    for acct in accounts:
        for region in tree.children(acct + "CloudTrail/"):
            if under(f"{acct}CloudTrail/{region}/"):
                yield from tree.day_files(f"{acct}CloudTrail/{region}/", start, end)


def split_at_awslogs(kind: str, where: str, prefix: str) -> tuple[str, str, str]:
    """(where, prefix, within) for a source that names a folder inside AWSLogs/ (`s3://bucket/AWSLogs/`, a
    local copy's `.../AWSLogs/123456789012/CloudTrail/us-east-1`): the tree starts at the folder holding
    AWSLogs/, and `within` is the part of the layout the source named ("AWSLogs/" when it named none)."""
    parts = (prefix if kind == "s3" else where).replace("\\", "/").strip("/").split("/")
    if "AWSLogs" not in parts:
        return where, prefix, "AWSLogs/"
    i = parts.index("AWSLogs")
    within = "/".join(["AWSLogs", *[p for p in parts[i + 1:] if p]]) + "/"
    head = "/".join(parts[:i])
    if kind == "s3":
        return where, head + "/" if head else "", within
    root = ("/" if where.startswith("/") else "") + head
    return root or ".", prefix, within


def no_trail_note(tree: LocalTree | S3Tree, source: str) -> str | None:
    """When the source holds no AWSLogs/ folder: a note saying so, with a local folder below it that does
    hold one (three levels down at most), and what to point the source at."""
    if "AWSLogs" in tree.children(""):  # the layout is there (its window may just hold no file)
        return None
    below = _awslogs_below(tree) if isinstance(tree, LocalTree) else None
    there = f" (there is one in {source.rstrip('/')}/{below})" if below else ""
    return (f"note: no AWSLogs/ folder in {source}{there}: point --source or cloudtrail.sources at the folder, or "
            "s3://bucket/prefix, that holds AWSLogs/ (or CloudTrail has not delivered there yet)")


def _awslogs_below(tree: LocalTree, depth: int = 3) -> str | None:
    level = [""]
    for _ in range(depth):
        deeper = []
        for rel in level:
            for name in tree.children(rel):
                if name == "AWSLogs":
                    return rel.rstrip("/")
                deeper.append(f"{rel}{name}/")
        level = deeper[:500]  # a wide tree is not searched whole
    return None


def _day_of(key: str) -> str | None:
    parts = key.split("/")
    try:
        i = parts.index("CloudTrail")
        return f"{parts[i + 2]}-{parts[i + 3]}-{parts[i + 4]}"
    except (ValueError, IndexError):
        return None


def collect_files(ctx: RunContext, scope: Scope) -> ScopeResult:
    if cloudtrail_parquet.is_extract(ctx, scope):
        return cloudtrail_parquet.collect_extract(ctx, scope)
    kind, where, prefix = parse_source(scope.source)
    where, prefix, within = split_at_awslogs(kind, where, prefix)
    client = ctx.clients.client(Scope(region=None), "s3") if kind == "s3" else None
    if kind == "local":
        if not Path(where).is_dir():
            raise ConfigError(f"trail directory {where} does not exist", where="cloudtrail.sources / --source",
                              fix="point it at a directory that contains AWSLogs/")
        tree: LocalTree | S3Tree = LocalTree(Path(where))
    else:
        tree = S3Tree(client, where, prefix)
    start, end = start_date(ctx, scope.source), (ctx.now + timedelta(days=1)).date()
    first_run = ctx.since is None and store.read_watermark(ctx.con, "cloudtrail", scope.source) is None
    t0 = time.monotonic()
    result = ScopeResult(window=f"{start}..{end}")
    with aws_errors(scope, "s3", what="listing"):
        listed = [(o, _day_of(o.key)) for o in list_trail_files(tree, start, end, within)]
        note = None if listed else no_trail_note(tree, scope.source)
    for key, why in getattr(tree, "bad", []):
        result.skip(key, why)
    if note:
        echo(note)
    read = sum(o.size for o, _ in listed)
    ingest(ctx, scope, JSON_FILES, listed, result, client, root=f"s3://{where}/{prefix}" if kind == "s3" else where)
    if first_run:
        with aws_errors(scope, "s3", what="listing"):
            hint = backfill_hint(ctx, scope.source, list(list_trail_files(tree, date(1970, 1, 1), start - timedelta(days=1),
                                                                           within)),
                                 start, result.rows, read, time.monotonic() - t0)
        if hint:
            echo(hint)
    return result


# gzip bytes of trail files per commit (and at most cloudtrail.batch_files files): the bench trail's files
# average 120 KB, so about 200 of them, 486-745k events, peak RSS under 1 GiB. A quiet account's trail is
# thousands of files of a few records (one every 5 minutes per Region): a commit costs 50 ms whatever its size,
# and 20,722 such files took 104 commits of 200 files, 7-8 s, where 400 files of the same 205k records took 1.1 s.
BATCH_BYTES = 24 << 20
JSON_FILES = FileFormat(read_ahead=decode, load=load_files, close=Decoded.close,
                        rejected_why="no eventID or unreadable eventTime (rejected)", max_bytes=BATCH_BYTES)


BYTES_PER_EVENT = 190  # compressed trail bytes per CodeArtifact event in the demo trail (37.7 MB, 198,624 events)
BENCH_EVENTS_PER_S = 300_000  # `make bench` on the 2-core machine, 2026-12-05: 363-429k (README: Performance)


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
    with scratch_folder("lookup") as tmp:
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

__all__ = ["SPEC", "S3Tree", "collect", "list_trail_files", "normalize_records"]
