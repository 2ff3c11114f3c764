"""Ingest a Spark extract (spark/extract.py) into `events`, incrementally.

An extract is `<source>/day=YYYY-MM-DD/*.parquet`, in S3 (`s3://bucket/prefix`) or a local directory,
whose files hold exactly the `events` columns; `day` is the trail's delivery day. Listing walks the day
folders from `--since`, else the watermark minus a lag, else `cloudtrail.backfill_days` ago, as for trail
files; Parquet files directly under the source are always listed. Hidden files (`_SUCCESS`, `.crc`,
`_temporary/`) are never listed. Files already in the `cloudtrail_files` ledger with the same ETag (S3)
or size and mtime (local) are not fetched again; a day that Spark extracted again has new file names, so
it is read again and only its events not yet in `events` land. S3 objects are fetched concurrently by the
trail collector's fetcher. Each batch goes through cloudtrail_load.commit_stage, the same dedupe and
commit as trail files. A file that is not readable Parquet with the events columns is skipped, named
with the fix, kept out of the ledger (so it is retried), and the rest still lands.

Reads: the extract (S3 or local). Writes: events, cloudtrail_files, watermarks.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb

from collectors.base import RunContext, ScopeResult
from collectors.cloudtrail import (
    PUBLISH_EVERY_S,
    S3Fetcher,
    S3Tree,
    TrailObject,
    known_files,
    parse_source,
    record_batch,
    scan_dir,
    set_watermark,
    start_date,
)
from collectors.cloudtrail_load import EVENT_COLUMNS, PARSE_ERRORS, BatchResult, commit_stage
from core import store
from core.aws import Scope, aws_errors
from core.errors import first_line

DAY_DIR = re.compile(r"day=(\d{4}-\d{2}-\d{2})")
BATCH_BYTES = 16 << 20  # Parquet bytes per statement and commit: ~500k events, under 1 GiB of RSS
FIX = "fix: run spark_extract.py again for its day (--since/--until), or delete the file"

_COLUMNS = ", ".join(f"CAST({c} AS {'TIMESTAMPTZ' if c == 'event_at' else 'VARCHAR'}) AS {c}"
                     for c in (c.strip() for c in EVENT_COLUMNS.split(",")))
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
    kind, where, prefix = parse_source(scope.source)
    if kind == "local":
        if not os.path.isdir(where):
            return False  # the trail path names the missing directory
        entries = scan_dir(Path(where), "", [])  # unreadable entries are reported by the collector that runs
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
    return [TrailObject(folder + name, st.st_size, f"{st.st_size}-{st.st_mtime_ns}")
            for name, st in scan_dir(root / folder, folder, bad) if st is not None and _visible(name)]


def _s3_level(client: Any, bucket: str, prefix: str) -> tuple[list[str], list[TrailObject]]:
    """(child folder names, visible Parquet files) one level below `prefix`, relative to it."""
    dirs, files = [], []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        dirs += [cp["Prefix"][len(prefix):].rstrip("/") for cp in page.get("CommonPrefixes", [])]
        files += [(o["Key"][len(prefix):], o["Size"], o["ETag"].strip('"')) for o in page.get("Contents", [])]
    return dirs, [TrailObject(k, size, etag) for k, size, etag in files if _visible(k)]


def list_extract(kind: str, where: str, prefix: str, client: Any, start: date, end: date,
                 bad: list[tuple[str, str]] | None = None) -> list[tuple[TrailObject, str | None]]:
    """Every visible Parquet file of the extract whose day is in [start, end] (or that has no day), with its day.
    Local entries that cannot be read go to `bad` as (path, why)."""
    out: list[tuple[TrailObject, str | None]] = []
    bad = [] if bad is None else bad
    if kind == "local":
        root = Path(where)
        dirs = sorted(name for name, st in scan_dir(root, "", bad) if st is None)
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


def _batches(todo: list[tuple[TrailObject, str | None]], max_files: int) -> list[list[tuple[TrailObject, str | None]]]:
    batches: list[list[tuple[TrailObject, str | None]]] = []
    size = 0
    for item in todo:
        if not batches or len(batches[-1]) >= max_files or size + item[0].size > BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(item)
        size += item[0].size
    return batches


def _why(e: BaseException) -> str:
    text = first_line(e)
    if "magic bytes" in text or "too small" in text or "corrupt" in text.lower():
        return f"not a complete Parquet file (truncated or corrupt); {FIX}"
    if "Binder Error" in text:  # a column of events is missing
        return f"not a caa Spark extract (it lacks the events columns): {text[:120]}; {FIX}"
    return f"unreadable Parquet: {text[:160]}; {FIX}"


def load_parquet(con: duckdb.DuckDBPyConnection, files: list[str],
                 ledger: dict[str, tuple[str, str, str | None, int]]) -> BatchResult:
    """Stage a batch of local extract files (one by one when the batch fails), then dedupe and commit it."""
    ordered = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0]
    con.execute("SET preserve_insertion_order = false")  # as load_files: the insert has its ORDER BY
    try:
        return _load_parquet(con, files, ledger)
    finally:
        con.execute(f"SET preserve_insertion_order = {'true' if ordered else 'false'}")


def _load_parquet(con: duckdb.DuckDBPyConnection, files: list[str],
                  ledger: dict[str, tuple[str, str, str | None, int]]) -> BatchResult:
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


def collect_extract(ctx: RunContext, scope: Scope) -> ScopeResult:
    kind, where, prefix = parse_source(scope.source)
    client = ctx.clients.client(Scope(region=None), "s3") if kind == "s3" else None
    start, end = start_date(ctx, scope.source), (ctx.now + timedelta(days=1)).date()
    result = ScopeResult(window=f"{start}..{end}")
    with aws_errors(scope, "s3", what="listing"):
        known = known_files(ctx.con, scope.source)
        unreadable: list[tuple[str, str]] = []
        listed = list_extract(kind, where, prefix, client, start, end, unreadable)
    for key, why in unreadable:
        result.skip(key, why)
    todo = sorted(((o, d) for o, d in listed if (o.key, o.etag) not in known), key=lambda od: (od[1] or "", od[0].key))
    batches = _batches(todo, ctx.settings.cloudtrail.batch_files)
    newest_day = max((d for o, d in listed if d and (o.key, o.etag) in known), default=None)
    published = time.monotonic()
    with ctx.progress(f"cloudtrail {scope.source}", len(todo)) as advance, \
            tempfile.TemporaryDirectory(prefix="caa-extract-") as tmp:
        fetcher = S3Fetcher(ctx, scope, S3Tree(client, where, prefix), Path(tmp)) if client else None
        pending = fetcher.submit([o for o, _ in batches[0]]) if fetcher and batches else None
        for i, batch in enumerate(batches):
            days = {o.key: d for o, d in batch}
            if fetcher:
                local, missing = pending.result()
                pending = fetcher.submit([o for o, _ in batches[i + 1]]) if i + 1 < len(batches) else None
                for key, why in missing.items():
                    result.skip(key, why)
            else:
                local = {str(Path(where) / o.key): o for o, _ in batch}
            ledger = {f: (scope.source, o.key, o.etag, o.size) for f, o in local.items()}
            got = load_parquet(ctx.con, list(local), ledger)
            if fetcher:
                for f in local:
                    Path(f).unlink()
            newest_day = record_batch(result, got, ledger, days.get, newest_day,
                                      "no event_id, event_at or event_name (rejected)")
            advance(len(batch))
            if time.monotonic() - published > PUBLISH_EVERY_S:
                store.publish_now(ctx.con)
                published = time.monotonic()
    if newest_day and newest_day != store.read_watermark(ctx.con, "cloudtrail", scope.source):
        set_watermark(ctx.con, scope.source, newest_day)
    return result
