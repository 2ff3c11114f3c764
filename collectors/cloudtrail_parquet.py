"""Ingest a Spark extract (spark/extract.py) into `events`, incrementally.

An extract is `<source>/day=YYYY-MM-DD/*.parquet`, in S3 (`s3://bucket/prefix`) or a local directory,
whose files hold exactly the `events` columns; `day` is the trail's delivery day. Listing walks the day
folders from `--since`, else the watermark minus a lag, else `cloudtrail.backfill_days` ago, as for trail
files; Parquet files directly under the source are always listed. Hidden files (`_SUCCESS`, `.crc`,
`_temporary/`) are never listed. Files already in the `cloudtrail_files` ledger with the same ETag (S3)
or size and mtime (local) are not fetched again; a day that Spark extracted again has new file names, so
it is read again and only its events not yet in `events` land. The fetching, batching, dedupe, commit and
watermark are the trail-file driver's (collectors/trailfiles.py), as for trail files. A file that is not
readable Parquet with the events columns is skipped, named with the fix, kept out of the ledger (so it
is retried), and the rest still lands.

Reads: the extract (S3 or local). Writes: events, cloudtrail_files, watermarks.
"""

from __future__ import annotations

import os
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb

from collectors import trailfiles
from collectors.base import RunContext, ScopeResult
from collectors.cloudtrail_load import EVENT_NAMES, PARSE_ERRORS, BatchResult, commit_stage
from collectors.trailfiles import FileFormat, Ledger, Listed, TrailObject
from core.aws import Scope, aws_errors
from core.errors import first_line

DAY_DIR = re.compile(r"day=(\d{4}-\d{2}-\d{2})")
BATCH_BYTES = 16 << 20  # Parquet bytes per statement and commit: ~500k events, under 1 GiB of RSS
FIX = "fix: run spark_extract.py again for its day (--since/--until), or delete the file"

_COLUMNS = ", ".join(f"CAST({c} AS {'TIMESTAMPTZ' if c == 'event_at' else 'VARCHAR'}) AS {c}"
                     for c in EVENT_NAMES)
_STAGE_SQL = (f"CREATE OR REPLACE TEMP TABLE ct_stage AS SELECT {_COLUMNS}, filename "
              "FROM read_parquet($files, filename = true, hive_partitioning = false)")


def _visible(name: str) -> bool:
    return name.endswith(".parquet") and not name.startswith(("_", "."))


def _day(name: str) -> str | None:
    m = DAY_DIR.fullmatch(name)
    if not m:
        return None
    try:
        return date.fromisoformat(m.group(1)).isoformat()
    except ValueError:
        return None


def is_extract(ctx: RunContext, scope: Scope) -> bool:
    """True when the source holds day=YYYY-MM-DD/ folders or *.parquet files rather than AWSLogs/."""
    kind, where, prefix = trailfiles.parse_source(scope.source)
    if kind == "local":
        if not os.path.isdir(where):
            return False  # the trail path names the missing directory
        entries = trailfiles.scan_dir(Path(where), "", [])  # unreadable entries are reported by the collector that runs
        dirs = {name for name, st in entries if st is None}
        files = [name for name, st in entries if st is not None]
    else:
        with aws_errors(scope, "s3", what="listing"):
            page = ctx.clients.client(Scope(region=None), "s3").list_objects_v2(
                Bucket=where, Prefix=prefix, Delimiter="/")
        dirs = {cp["Prefix"][len(prefix):].rstrip("/") for cp in page.get("CommonPrefixes", [])}
        files = [o["Key"][len(prefix):] for o in page.get("Contents", [])]
    if "AWSLogs" in dirs:
        return False
    return any(_day(d) for d in dirs) or any(_visible(f) for f in files)


def _local_files(root: Path, folder: str, bad: list[tuple[str, str]]) -> list[TrailObject]:
    return [trailfiles.local_object(folder, name, st) for name, st in trailfiles.scan_dir(root / folder, folder, bad)
            if st is not None and _visible(name)]


def _s3_level(client: Any, bucket: str, prefix: str) -> tuple[list[str], list[TrailObject]]:
    """(child folder names, visible Parquet files) one level below `prefix`, relative to it."""
    dirs, files = [], []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        dirs += [cp["Prefix"][len(prefix):].rstrip("/") for cp in page.get("CommonPrefixes", [])]
        files += [trailfiles.s3_object(o, len(prefix)) for o in page.get("Contents", [])]
    return dirs, [o for o in files if _visible(o.key)]


def list_extract(kind: str, where: str, prefix: str, client: Any, start: date, end: date,
                 bad: list[tuple[str, str]] | None = None) -> list[Listed]:
    """Every visible Parquet file of the extract whose day is in [start, end] (or that has no day), with its day.
    Local entries that cannot be read go to `bad` as (path, why)."""
    out: list[Listed] = []
    bad = [] if bad is None else bad
    if kind == "local":
        root = Path(where)
        dirs = sorted(name for name, st in trailfiles.scan_dir(root, "", bad) if st is None)
        out += [(o, None) for o in _local_files(root, "", bad)]
    else:
        dirs, top = _s3_level(client, where, prefix)
        out += [(o, None) for o in top]
    for name in sorted(dirs):
        day = _day(name)
        if day is None or not (start.isoformat() <= day <= end.isoformat()):
            continue
        if kind == "local":
            objs = _local_files(Path(where), name + "/", bad)
        else:
            _, objs = _s3_level(client, where, f"{prefix}{name}/")
            objs = [TrailObject(f"{name}/{o.key}", o.size, o.etag) for o in objs]
        out += [(o, day) for o in objs]
    return out


def _why(e: BaseException) -> str:
    text = first_line(e)
    if "magic bytes" in text or "too small" in text or "corrupt" in text.lower():
        return f"not a complete Parquet file (truncated or corrupt); {FIX}"
    if "Binder Error" in text:  # a column of events is missing
        return f"not a caa Spark extract (it lacks the events columns): {text[:120]}; {FIX}"
    return f"unreadable Parquet: {text[:160]}; {FIX}"


def load_parquet(con: duckdb.DuckDBPyConnection, files: list[str], ledger: Ledger) -> BatchResult:
    """Stage a batch of local extract files (one by one when the batch fails), then dedupe and commit it."""
    ordered = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0]
    con.execute("SET preserve_insertion_order = false")  # as load_files: the insert has its ORDER BY
    try:
        return _load_parquet(con, files, ledger)
    finally:
        con.execute(f"SET preserve_insertion_order = {'true' if ordered else 'false'}")


def _load_parquet(con: duckdb.DuckDBPyConnection, files: list[str], ledger: Ledger) -> BatchResult:
    result = BatchResult()
    if not files:
        return result
    try:
        con.execute(_STAGE_SQL, {"files": files})
        staged = files
    except PARSE_ERRORS:
        staged = []
        for f in files:
            try:
                con.execute(_STAGE_SQL, {"files": [f]})
                staged.append(f)
            except PARSE_ERRORS as e:
                result.bad[f] = _why(e)
        if staged:
            con.execute(_STAGE_SQL, {"files": staged})
    if not staged:
        con.execute("DROP TABLE IF EXISTS ct_stage")
        return result
    result.files_ok = staged
    return commit_stage(con, staged, ledger, result)


def _nothing(files: list[str]) -> None:
    return None


def parquet_files() -> FileFormat:
    """The extract's format for the driver (built per run, so a test can wrap load_parquet)."""
    return FileFormat(read_ahead=_nothing, load=lambda con, files, ledger, _: load_parquet(con, files, ledger),
                      close=_nothing, max_bytes=BATCH_BYTES,
                      rejected_why="no event_id or event_name, or no event_at in the years 1 to 9999 (rejected)")


def collect_extract(ctx: RunContext, scope: Scope) -> ScopeResult:
    kind, where, prefix = trailfiles.parse_source(scope.source)
    client = ctx.clients.client(Scope(region=None), "s3") if kind == "s3" else None
    start, end = trailfiles.start_date(ctx, scope.source), (ctx.now + timedelta(days=1)).date()
    result = ScopeResult(window=f"{start}..{end}")
    with aws_errors(scope, "s3", what="listing"):
        unreadable: list[tuple[str, str]] = []
        listed = list_extract(kind, where, prefix, client, start, end, unreadable)
    for key, why in unreadable:
        result.skip(key, why)
    trailfiles.ingest(ctx, scope, parquet_files(), listed, result, client)
    return result
