"""CloudTrail normalize and load: trail files (gzip JSON `{"Records": [...]}`) -> the `events` table.

normalize is one SQL projection (NORMALIZE_SQL) over a record STRUCT, used by every path: local and
S3 trail files, LookupEvents results and the golden tests. It keeps only codeartifact.amazonaws.com
records, reads both key spellings (package-manager `domainName/repositoryName/packageName/...` and
API `domain/repository/package/...`), strips '@' from npm scopes and takes the asset name from the
end of `additionalEventData.requestUri`.

load stages a batch of files, drops duplicate eventIDs inside the batch and against `events` (an
anti-join restricted to the batch's time range: the same event always carries the same eventTime),
and commits the new events, the file ledger rows and the store version in one transaction.

Reads: trail files. Writes: events, cloudtrail_files, store_meta.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from collectors import store
from collectors.errors import utc_now

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


def _files_source(strict: bool) -> str:
    if strict:
        return ("SELECT filename, unnest(Records) AS r FROM read_json($files, columns = $columns, "
                "records = 'true', format = 'newline_delimited', filename = true, "
                "maximum_object_size = 536870912)")
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
    events_per_file: dict[str, int] = field(default_factory=dict)


def _stage(con: duckdb.DuckDBPyConnection, files: list[str], strict: bool) -> None:
    params = {"files": files}
    if strict:
        params["columns"] = RECORDS_COLUMNS
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


def _stage_checked(con: duckdb.DuckDBPyConnection, files: list[str], result: BatchResult) -> list[str]:
    """Stage the batch; on failure fall back file by file (strict, then tolerant). Returns staged files."""
    try:
        _stage(con, files, strict=True)
        return files
    except duckdb.Error:
        pass
    _create_empty(con, "ct_good")
    good: list[str] = []
    for f in files:
        try:
            try:
                _stage(con, [f], strict=True)
            except duckdb.Error:
                if not _records_is_list(con, f):
                    result.bad[f] = "its Records is not a list of events"
                    continue
                _stage(con, [f], strict=False)
        except duckdb.Error as e:
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


def load_files(con: duckdb.DuckDBPyConnection, files: list[str], ledger: dict[str, tuple[str, str, str | None, int]]
               ) -> BatchResult:
    """Stage, dedupe and commit one batch of local trail files.

    `ledger` maps each local file to (source, key, etag, size_bytes) for the cloudtrail_files rows.
    """
    result = BatchResult()
    staged = _stage_checked(con, files, result)
    result.files_ok = staged
    result.rejected = con.execute(
        "SELECT count(*) FROM ct_stage WHERE event_id IS NULL OR event_at IS NULL OR event_name IS NULL"
    ).fetchone()[0]
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
                    FROM ct_stage WHERE event_id IS NOT NULL AND event_at IS NOT NULL AND event_name IS NOT NULL
                ) s
                WHERE copy_no = 1
                  AND event_id NOT IN (SELECT event_id FROM events WHERE event_at BETWEEN $lo AND $hi)
                ORDER BY event_at
            """, {"lo": lo_hi[0], "hi": lo_hi[1]}).fetchone()[0]
        now = utc_now()
        rows = [(*ledger[f], result.events_per_file.get(f, 0), now) for f in staged if f in ledger]
        if rows:
            con.executemany("INSERT INTO cloudtrail_files VALUES (?, ?, ?, ?, ?, ?)", rows)
        if rows or result.new_events:
            store.bump_version(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
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
