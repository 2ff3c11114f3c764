"""CloudTrail normalize and load: trail files (gzip JSON `{"Records": [...]}`) -> the `events` table.

normalize is one SQL projection (NORMALIZE_SQL) over a record STRUCT, used by every path: local and
S3 trail files, LookupEvents results and the golden tests. It keeps only codeartifact.amazonaws.com
records, reads both key spellings (package-manager `domainName/repositoryName/packageName/...` and
API `domain/repository/package/...`), strips '@' from npm scopes and takes the asset name from the
end of `additionalEventData.requestUri`.

load first skips files whose decompressed text never mentions `codeartifact.amazonaws.com` (a byte
search that stops at the first hit, so a CodeArtifact file costs one small inflate step; a file of
other services only is never parsed, yet is recorded in the ledger). It then stages the batch, drops
duplicate eventIDs inside the batch and against `events` (an anti-join restricted to the batch's time
range: the same event always carries the same eventTime), and commits the new events, the rollups of
the days they fall on, the file ledger rows and the store version in one transaction.

Reads: trail files. Writes: events, their daily rollups (collectors/rollups.py), cloudtrail_files,
store_meta.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from collectors import rollups, store
from collectors.errors import utc_now

try:  # isal inflates about twice as fast as zlib; the prefilter works with either
    from isal import isal_zlib as _inflate
except ImportError:  # pragma: no cover - isal is a dependency, zlib the fallback
    _inflate = zlib

# The subset of a CloudTrail record caa reads. Unknown keys are ignored; missing keys read as NULL.
RECORD_FIELDS: dict = {
    "eventVersion": "VARCHAR",
    "eventID": "VARCHAR",
    "eventTime": "VARCHAR",
    "eventSource": "VARCHAR",
    "eventName": "VARCHAR",
    "awsRegion": "VARCHAR",
    "sourceIPAddress": "VARCHAR",
    "userAgent": "VARCHAR",
    "errorCode": "VARCHAR",
    "recipientAccountId": "VARCHAR",
    "userIdentity": {"type": "VARCHAR", "arn": "VARCHAR", "accountId": "VARCHAR"},
    "requestParameters": {
        k: "VARCHAR"
        for k in ("domainName", "domain", "domainOwner", "repositoryName", "repository", "packageFormat",
                  "format", "packageNamespace", "namespace", "packageName", "package", "packageVersion",
                  "asset")
    },
    "additionalEventData": {"requestUri": "VARCHAR"},
}


def _duck_type(spec: dict | str) -> str:
    if isinstance(spec, str):
        return spec
    return "STRUCT(" + ", ".join(f'"{k}" {_duck_type(v)}' for k, v in spec.items()) + ")"


RECORD_TYPE = _duck_type(RECORD_FIELDS)
RECORDS_COLUMNS = {"Records": RECORD_TYPE + "[]"}
RECORDS_JSON_STRUCTURE = json.dumps([RECORD_FIELDS])

EVENT_COLUMNS = ("event_id, event_at, event_name, account_id, region, domain, domain_owner, repository, "
                 "format, namespace, package, version, asset, principal_arn, principal_type, source_ip, "
                 "user_agent, error_code, request_uri")

# Projection from `r` (a RECORD_TYPE struct) to the events columns. Rows with no eventID or an
# unparseable eventTime are rejected (counted) by the caller.
NORMALIZE_SQL = r"""
SELECT
    r.eventID AS event_id,
    TRY_CAST(r.eventTime AS TIMESTAMPTZ) AS event_at,
    r.eventName AS event_name,
    COALESCE(p.domainOwner, r.recipientAccountId) AS account_id,
    r.awsRegion AS region,
    COALESCE(p.domainName, p.domain) AS domain,
    p.domainOwner AS domain_owner,
    COALESCE(p.repositoryName, p.repository) AS repository,
    COALESCE(p.packageFormat, p.format) AS format,
    CASE WHEN ns_raw IS NOT NULL THEN ltrim(ns_raw, '@')
         WHEN pkg_raw LIKE '@%/%' THEN substr(split_part(pkg_raw, '/', 1), 2) END AS namespace,
    CASE WHEN ns_raw IS NULL AND pkg_raw LIKE '@%/%' THEN substr(pkg_raw, strpos(pkg_raw, '/') + 1)
         ELSE pkg_raw END AS package,
    p.packageVersion AS version,
    CASE WHEN p.asset IS NOT NULL THEN p.asset
         WHEN p.packageVersion IS NOT NULL AND last_seg <> '' AND NOT starts_with(last_seg, 'maven-metadata.xml')
              AND last_seg <> p.packageVersion THEN last_seg END AS asset,
    r.userIdentity.arn AS principal_arn,
    r.userIdentity.type AS principal_type,
    r.sourceIPAddress AS source_ip,
    r.userAgent AS user_agent,
    r.errorCode AS error_code,
    uri AS request_uri{extra}
FROM (
    SELECT r, r.requestParameters AS p, r.additionalEventData.requestUri AS uri,
           COALESCE(r.requestParameters.packageNamespace, r.requestParameters.namespace) AS ns_raw,
           COALESCE(r.requestParameters.packageName, r.requestParameters.package) AS pkg_raw,
           regexp_extract(COALESCE(r.additionalEventData.requestUri, ''), '[^/]*$') AS last_seg{extra_in}
    FROM ({source})
    WHERE r.eventSource = 'codeartifact.amazonaws.com'
)
"""


CA_BYTES = b"codeartifact.amazonaws.com"
_PREFILTER_CHUNK = 1 << 15  # compressed bytes per inflate step; a CodeArtifact file stops after one
MIN_OBJECT_BYTES = 64 << 20  # DuckDB's JSON read buffer: 512 MiB on every batch cost ~35% more CPU
MAX_OBJECT_BYTES = 512 << 20
_RECORDS_HEAD = re.compile(rb'\s*\{\s*"Records"\s*:\s*\[')
_RECORDS_TAIL = re.compile(rb'\]\s*\}\s*$')


def needs_parse(path: str) -> bool:
    """False only when `path` is a complete gzip file of `{"Records": [...]}` whose text never contains
    codeartifact.amazonaws.com: such a file holds nothing for caa and is never parsed.

    Any doubt (unreadable, truncated, not gzip, not a Records list) answers True, so the file goes to the
    parser, which reports it exactly as before. The search stops at the first hit, so a CodeArtifact
    file costs one small inflate step.
    """
    overlap = len(CA_BYTES) - 1
    head = b""
    try:
        with open(path, "rb") as fh:
            d, tail = _inflate.decompressobj(wbits=31), b""
            while chunk := fh.read(_PREFILTER_CHUNK):
                while chunk:
                    out = d.decompress(chunk)
                    if CA_BYTES in out or CA_BYTES in tail[-overlap:] + out[:overlap]:
                        return True
                    if len(head) < 64:
                        head += out[:64]
                    tail = out[-64:] if len(out) >= 64 else (tail + out)[-64:]
                    if not d.eof:
                        break
                    chunk = d.unused_data  # a multi-member gzip: go on with the next member
                    if chunk:
                        d = _inflate.decompressobj(wbits=31)
    except Exception:  # noqa: BLE001 - OSError, zlib.error or isal's error: the parser will report the file
        return True
    return not (d.eof and _RECORDS_HEAD.match(head) and _RECORDS_TAIL.search(tail))


def object_bytes(files: list[str]) -> int:
    """maximum_object_size for a batch: the largest file's uncompressed size, rounded up to a power of two,
    at least MIN_OBJECT_BYTES and at most MAX_OBJECT_BYTES. The size is the gzip trailer's (exact for a
    single member below 4 GiB), or 20x the compressed size when that is larger (several members)."""
    biggest = 0
    for f in files:
        try:
            with open(f, "rb") as fh:
                fh.seek(-4, os.SEEK_END)
                biggest = max(biggest, int.from_bytes(fh.read(4), "little"), os.fstat(fh.fileno()).st_size * 20)
        except OSError:
            continue
    size = MIN_OBJECT_BYTES
    while size < biggest + (1 << 20) and size < MAX_OBJECT_BYTES:
        size *= 2
    return size


def _files_source(strict: bool) -> str:
    if strict:
        return ("SELECT filename, unnest(Records) AS r FROM read_json($files, columns = $columns, "
                "records = 'true', format = 'newline_delimited', filename = true, "
                "maximum_object_size = $object_bytes)")
    # Tolerant: Records read as raw JSON, each record converted field by field (a wrongly typed
    # field becomes NULL instead of failing the whole file).
    return ("SELECT filename, unnest(from_json(Records, $structure)) AS r FROM read_json($files, "
            "columns = {'Records': 'JSON'}, records = 'true', format = 'auto', filename = true, "
            "maximum_object_size = 536870912)")


def normalize_sql(strict: bool) -> str:
    return NORMALIZE_SQL.format(source=_files_source(strict), extra=", filename", extra_in=", filename")


@dataclass
class BatchResult:
    files_ok: list[str] = field(default_factory=list)
    bad: dict[str, str] = field(default_factory=dict)  # file -> why
    new_events: int = 0
    rejected: int = 0
    no_codeartifact: list[str] = field(default_factory=list)  # recorded in the ledger, never parsed
    events_per_file: dict[str, int] = field(default_factory=dict)


def _stage(con: duckdb.DuckDBPyConnection, files: list[str], strict: bool) -> None:
    params = {"files": files}
    if strict:
        params["columns"] = RECORDS_COLUMNS
        params["object_bytes"] = object_bytes(files)
    else:
        params["structure"] = RECORDS_JSON_STRUCTURE
    con.execute("CREATE OR REPLACE TEMP TABLE ct_stage AS " + normalize_sql(strict), params)


def _why(e: Exception) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    if "GZIP" in text or "gzip" in text:
        return "not a complete gzip file (truncated or corrupt)"
    if "Expected ARRAY" in text or "Records" in text:
        return "its Records is not a list of events"
    return "not valid CloudTrail JSON: " + text[:160]


# DuckDB raises UnicodeDecodeError (not duckdb.Error) when its parse-error excerpt cuts a multi-byte
# character: that is a bad file too, not a crash of the run.
PARSE_ERRORS = (duckdb.Error, UnicodeDecodeError)


def _stage_checked(con: duckdb.DuckDBPyConnection, files: list[str], result: BatchResult) -> list[str]:
    """Stage the batch; on failure fall back file by file (strict, then tolerant). Returns staged files."""
    try:
        _stage(con, files, strict=True)
        return files
    except PARSE_ERRORS:
        pass
    _create_empty(con, "ct_good")
    good: list[str] = []
    for f in files:
        try:
            try:
                _stage(con, [f], strict=True)
            except PARSE_ERRORS:
                if not _records_is_list(con, f):
                    result.bad[f] = "its Records is not a list of events"
                    continue
                _stage(con, [f], strict=False)
        except PARSE_ERRORS as e:
            result.bad[f] = _why(e)
            continue
        con.execute("INSERT INTO ct_good SELECT * FROM ct_stage")
        good.append(f)
    con.execute("CREATE OR REPLACE TEMP TABLE ct_stage AS SELECT * FROM ct_good")
    con.execute("DROP TABLE ct_good")
    return good


_STAGE_TYPES = [(c.strip(), "TIMESTAMPTZ" if c.strip() == "event_at" else "VARCHAR")
                for c in EVENT_COLUMNS.split(",")] + [("filename", "VARCHAR")]


def _create_empty(con: duckdb.DuckDBPyConnection, table: str) -> None:
    cols = ", ".join(f"{c} {t}" for c, t in _STAGE_TYPES)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} ({cols})")


def _records_is_list(con: duckdb.DuckDBPyConnection, f: str) -> bool:
    kind = con.execute("SELECT json_type(Records) FROM read_json($f, columns = {'Records': 'JSON'}, "
                       "records = 'true', format = 'auto', maximum_object_size = 536870912)",
                       {"f": [f]}).fetchone()
    return kind is not None and kind[0] == "ARRAY"


VALID_ROW = "event_id IS NOT NULL AND event_at IS NOT NULL AND event_name IS NOT NULL"  # else rejected


def load_files(con: duckdb.DuckDBPyConnection, files: list[str], ledger: dict[str, tuple[str, str, str | None, int]]
               ) -> BatchResult:
    """Stage, dedupe and commit one batch of local trail files.

    `ledger` maps each local file to (source, key, etag, size_bytes) for the cloudtrail_files rows.
    """
    ordered = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0]
    con.execute("SET preserve_insertion_order = false")  # less memory and CPU; the insert has its ORDER BY
    try:
        return _load_files(con, files, ledger)
    finally:
        con.execute(f"SET preserve_insertion_order = {'true' if ordered else 'false'}")


def _load_files(con: duckdb.DuckDBPyConnection, files: list[str], ledger: dict[str, tuple[str, str, str | None, int]]
                ) -> BatchResult:
    result = BatchResult()
    parse = []
    for f in files:
        (parse if needs_parse(f) else result.no_codeartifact).append(f)
    if parse:
        staged = _stage_checked(con, parse, result)
    else:
        staged = []
        _create_empty(con, "ct_stage")
    staged += result.no_codeartifact
    result.files_ok = staged
    return commit_stage(con, staged, ledger, result)


def commit_stage(con: duckdb.DuckDBPyConnection, staged: list[str],
                 ledger: dict[str, tuple[str, str, str | None, int]], result: BatchResult) -> BatchResult:
    """Dedupe the rows of the temp table ct_stage (EVENT_COLUMNS + filename) and commit them, with the ledger
    rows of the `staged` files and the store version, in one transaction; drops ct_stage. Trail files and
    Spark extracts (cloudtrail_parquet) both end here."""
    result.rejected = con.execute(f"SELECT count(*) FROM ct_stage WHERE NOT ({VALID_ROW})").fetchone()[0]
    result.events_per_file = dict(con.execute(
        "SELECT filename, count(*) FROM ct_stage GROUP BY filename").fetchall())
    lo_hi = con.execute("SELECT min(event_at), max(event_at) FROM ct_stage WHERE event_id IS NOT NULL").fetchone()
    con.execute("BEGIN TRANSACTION")
    try:
        if lo_hi[0] is not None:
            result.new_events = con.execute(f"""
                INSERT INTO events ({EVENT_COLUMNS})
                SELECT {EVENT_COLUMNS} FROM (
                    SELECT *, row_number() OVER (PARTITION BY event_id ORDER BY filename) AS copy_no
                    FROM ct_stage WHERE {VALID_ROW}
                ) s
                WHERE copy_no = 1
                  AND event_id NOT IN (SELECT event_id FROM events WHERE event_at BETWEEN $lo AND $hi)
                ORDER BY event_at
            """, {"lo": lo_hi[0], "hi": lo_hi[1]}).fetchone()[0]
        if result.new_events:
            rollups.refresh(con, rollups.days_of(con, "ct_stage", VALID_ROW))
        now = utc_now()
        rows = [(*ledger[f], result.events_per_file.get(f, 0), now) for f in staged if f in ledger]
        if rows:  # one statement: executemany costs a round trip per row
            con.execute("INSERT INTO cloudtrail_files VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(rows)),
                        [v for row in rows for v in row])
        if rows or result.new_events:
            store.bump_version(con)
        con.execute("COMMIT")
    except BaseException:
        store.rollback_quietly(con)
        raise
    con.execute("DROP TABLE IF EXISTS ct_stage")
    return result


def normalize_records(records: list[dict], con: duckdb.DuckDBPyConnection | None = None) -> list[dict]:
    """Normalize in-memory CloudTrail records with the same SQL as trail files (LookupEvents, tests).

    Returns one dict per CodeArtifact record, in input order, with the `events` columns.
    """
    own = con is None
    con = con or duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        with tempfile.TemporaryDirectory(prefix="caa-ct-") as tmp:
            path = Path(tmp) / "records.json.gz"
            with gzip.open(path, "wt", encoding="utf-8") as fh:
                json.dump({"Records": records}, fh, default=str)
            con.execute(f"CREATE OR REPLACE TEMP TABLE ct_norm AS {normalize_sql(strict=False)}",
                        {"files": [str(path)], "structure": RECORDS_JSON_STRUCTURE})
        cur = con.execute(f"SELECT {EVENT_COLUMNS} FROM ct_norm")
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        con.execute("DROP TABLE ct_norm")
        return rows
    finally:
        if own:
            con.close()
