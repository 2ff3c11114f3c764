"""CloudTrail normalize and load: trail files (gzip JSON `{"Records": [...]}`) -> the `events` table.

normalize is one SQL projection (NORMALIZE_SQL) over a record STRUCT, used by every path: local and
S3 trail files, LookupEvents results and the golden tests. It keeps only codeartifact.amazonaws.com
records, reads both key spellings (package-manager `domainName/repositoryName/packageName/...` and
API `domain/repository/package/...`), strips '@' from npm scopes and takes the asset name from the
end of `additionalEventData.requestUri`.

load first inflates the batch's files with isal on every core into a scratch folder (/dev/shm when it
has room), where DuckDB reads them as plain JSON, a third less CPU than its own gzip reader. A file whose
text never mentions `codeartifact.amazonaws.com` is not written or parsed, yet is recorded in the ledger;
one that cannot be inflated is handed to DuckDB as it is, which reports it. It then stages the batch, drops
duplicate eventIDs inside the batch and against `events` (an anti-join restricted to the batch's time
range: the same event always carries the same eventTime), and commits the new events, the days they fall
on (for the rollups, recomputed before the next publish), the file ledger rows and the store version in
one transaction.

Reads: trail files. Writes: events (marking their days for the rollups, analytics/rollups.py), cloudtrail_files,
store_meta.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import re
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from core import lake, store
from core.clock import utc_now
from core.errors import first_line

try:  # isal inflates about three times as fast as zlib (or DuckDB's own gzip reader)
    from isal.igzip import decompress as _gunzip
except ImportError:  # pragma: no cover - isal is a dependency, gzip the fallback
    _gunzip = gzip.decompress

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
SCRATCH_MIN_FREE = 4 << 30  # inflated batches go to /dev/shm only with this much room left there
SCRATCH_PREFIX = "caa-"  # caa-<kind>-<pid>-<random>: sweep_scratch removes the folders of dead processes
MIN_OBJECT_BYTES = 64 << 20  # DuckDB's JSON read buffer: 512 MiB on every batch cost ~35% more CPU
MAX_OBJECT_BYTES = 512 << 20
_RECORDS_HEAD = re.compile(rb'\s*\{\s*"Records"\s*:\s*\[')
_RECORDS_TAIL = re.compile(rb'\]\s*\}\s*$')


def inflate_file(path: str) -> bytes | None:
    """The decompressed text of trail file `path` (every gzip member, with isal), b"" when it is a complete
    `{"Records": [...]}` that never mentions codeartifact.amazonaws.com (nothing for caa: never parsed, yet
    recorded in the ledger), or None when it cannot be inflated (truncated, not gzip, unreadable): DuckDB
    then reads the original and reports it exactly as before. Any doubt about a file goes to the parser."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        text = _gunzip(raw) if raw else None  # an empty file is not gzip (isal would answer b"")
    except Exception:  # noqa: BLE001 - OSError, EOFError, zlib.error or isal's error: the parser reports it
        return None
    if text is None:
        return None
    if CA_BYTES in text or not (_RECORDS_HEAD.match(text[:64]) and _RECORDS_TAIL.search(text[-64:])):
        return text
    return b""


def inflate_batch(files: list[str], folder: Path) -> tuple[dict[str, str], list[str]]:
    """Decompress `files` (on all cores) into `folder`, where DuckDB reads them as plain JSON: about a third
    less CPU than its own gzip reader. Returns ({path to read: original file}, [files without CodeArtifact]).
    A file that cannot be inflated is read as itself. The names keep the files' order (and so which copy of
    a duplicate event is kept) and say which file they came from."""
    read: dict[str, str] = {}
    quiet: list[str] = []
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:  # isal releases the GIL
        for i, (f, text) in enumerate(zip(files, pool.map(inflate_file, files), strict=True)):
            if text is None:
                read[f] = f
            elif not text:
                quiet.append(f)
            else:
                plain = folder / f"{i:06d}-{Path(f).name.removesuffix('.gz')}"
                plain.write_bytes(text)
                read[str(plain)] = f
    return read, quiet


@dataclass
class Inflated:
    """A batch inflated by `inflate`: {path to read: original file}, the files without CodeArtifact, and
    the scratch folder holding the inflated copies (removed by close())."""
    read: dict[str, str]
    quiet: list[str]
    folder: tempfile.TemporaryDirectory

    def close(self) -> None:
        self.folder.cleanup()


def inflate(files: list[str]) -> Inflated:
    """inflate_batch into a new scratch folder (in memory when there is room, see scratch_dir)."""
    folder = scratch_folder("json", scratch_dir())
    try:
        return Inflated(*inflate_batch(files, Path(folder.name)), folder)
    except BaseException:
        folder.cleanup()
        raise


def scratch_folder(kind: str, where: str | None = None) -> tempfile.TemporaryDirectory:
    """A temporary folder in `where` (default the system temp dir) named after this process,
    caa-<kind>-<pid>-<random>: a SIGKILL skips every cleanup, so a later collector's sweep_scratch removes
    it (S3 objects fetched, inflated JSON)."""
    sweep_scratch(where or tempfile.gettempdir())
    return tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{kind}-{os.getpid()}-", dir=where)


@functools.cache
def sweep_scratch(where: str) -> None:
    """Remove the scratch folders of collectors that no longer run (in /dev/shm they would hold memory until
    a reboot). Once per process and folder."""
    for path in Path(where).glob(f"{SCRATCH_PREFIX}*-*-*"):
        parts = path.name.split("-")
        if len(parts) == 4 and parts[2].isdigit() and not Path(f"/proc/{parts[2]}").exists():
            shutil.rmtree(path, ignore_errors=True)


def scratch_dir() -> str | None:
    """Where inflated batches go: /dev/shm (memory) when it has room, else the system temp dir."""
    if os.path.isdir("/dev/shm"):
        sweep_scratch("/dev/shm")
    try:
        st = os.statvfs("/dev/shm")
        if st.f_bavail * st.f_frsize >= SCRATCH_MIN_FREE:
            return "/dev/shm"
    except OSError:
        pass
    return None


def object_bytes(files: list[str]) -> int:
    """maximum_object_size for a batch: the largest file's uncompressed size, rounded up to a power of two,
    at least MIN_OBJECT_BYTES and at most MAX_OBJECT_BYTES. The size is the gzip trailer's (exact for a
    single member below 4 GiB), or 20x the compressed size when that is larger (several members)."""
    biggest = 0
    for f in files:
        if not f.endswith(".gz"):  # inflated already
            try:
                biggest = max(biggest, os.path.getsize(f))
            except OSError:
                pass
            continue
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
    text = first_line(e)
    if "GZIP" in text or "gzip" in text:
        return "not a complete gzip file (truncated or corrupt)"
    if "Expected ARRAY" in text or "Records" in text:
        return "its Records is not a list of events"
    m = re.search(r"at byte (\d+) in record/value \d+: (.+?)\.?\s*$", text)
    if m:  # DuckDB names its own scratch copy of the file: say where in the trail file instead
        return f"not valid CloudTrail JSON at byte {int(m.group(1)):,} of the uncompressed file: {m.group(2)}"
    text = re.sub(r'\s*(in|from) file "[^"]*",?', "", text).strip()  # never a scratch path
    return "not valid CloudTrail JSON: " + (text if len(text) <= 200 else text[:200].rsplit(" ", 1)[0] + " ...")


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


def load_files(con: duckdb.DuckDBPyConnection, files: list[str], ledger: dict[str, tuple[str, str, str | None, int]],
               inflated: Inflated | None = None) -> BatchResult:
    """Stage, dedupe and commit one batch of local trail files.

    `ledger` maps each local file to (source, key, etag, size_bytes) for the cloudtrail_files rows.
    `inflated` is `inflate(files)` when the caller prepared it ahead (it is closed here either way).
    """
    ordered = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0]
    # Less memory and CPU. Rows then land in any order within a batch; batches go oldest day first, and
    # DuckDB prunes by row group (~120k rows), so the time ranges still prune as well as with a sort.
    con.execute("SET preserve_insertion_order = false")
    try:
        return _load_files(con, files, ledger, inflated or inflate(files))
    finally:
        con.execute(f"SET preserve_insertion_order = {'true' if ordered else 'false'}")


def _load_files(con: duckdb.DuckDBPyConnection, files: list[str], ledger: dict[str, tuple[str, str, str | None, int]],
                inflated: Inflated) -> BatchResult:
    result = BatchResult()
    read, result.no_codeartifact = inflated.read, inflated.quiet
    try:
        staged = _stage_checked(con, list(read), result) if read else []
        if not read:
            _create_empty(con, "ct_stage")
    finally:
        inflated.close()
    # ct_stage names the inflated copies; the ledger rows and the caller name the original files.
    by_read = {**{f: ledger[o] for f, o in read.items() if o in ledger}, **ledger}
    commit_stage(con, staged + result.no_codeartifact, by_read, result)
    result.bad = {read[f]: why for f, why in result.bad.items()}
    result.events_per_file = {read.get(f, f): n for f, n in result.events_per_file.items()}
    result.files_ok = [read[f] for f in staged] + result.no_codeartifact
    return result


def commit_stage(con: duckdb.DuckDBPyConnection, staged: list[str],
                 ledger: dict[str, tuple[str, str, str | None, int]], result: BatchResult) -> BatchResult:
    """Dedupe the rows of the temp table ct_stage (EVENT_COLUMNS + filename) and commit them, with the ledger
    rows of the `staged` files and the store version, in one transaction; drops ct_stage. Trail files and
    Spark extracts (cloudtrail_parquet) both end here."""
    result.rejected, lo, hi, repeats = con.execute(
        f"SELECT count(*) FILTER (WHERE NOT ({VALID_ROW})), min(event_at) FILTER (WHERE event_id IS NOT NULL), "
        f"max(event_at) FILTER (WHERE event_id IS NOT NULL), count(*) FILTER (WHERE {VALID_ROW}) - "
        f"count(DISTINCT event_id) FILTER (WHERE {VALID_ROW}) FROM ct_stage").fetchone()
    result.events_per_file = dict(con.execute(
        "SELECT filename, count(*) FROM ct_stage GROUP BY filename").fetchall())
    # An event delivered twice in the batch keeps its copy from the first file. Only the repeated events go
    # through the window: a batch rarely holds many, and numbering every row cost more than the insert.
    valid = f"SELECT {EVENT_COLUMNS}, filename FROM ct_stage WHERE {VALID_ROW}"
    batch = valid if not repeats else f"""
        WITH repeated AS (SELECT event_id FROM ct_stage WHERE {VALID_ROW} GROUP BY event_id HAVING count(*) > 1)
        {valid} AND event_id NOT IN (SELECT event_id FROM repeated)
        UNION ALL
        SELECT * EXCLUDE (copy_no) FROM (
            SELECT *, row_number() OVER (PARTITION BY event_id ORDER BY filename) AS copy_no
            FROM ({valid} AND event_id IN (SELECT event_id FROM repeated))
        ) WHERE copy_no = 1"""
    with store.transaction(con):
        if lo is not None:
            con.complete()  # the last execute()'s result must be done before con.sql() runs
            new = con.sql(f"SELECT {EVENT_COLUMNS} FROM ({batch}) WHERE event_id NOT IN "
                          f"({lake.ids_between_sql(con, lo, hi)})", params={"lo": lo, "hi": hi}).to_arrow_table()
            result.new_events = lake.append_events(con, new)  # the batch's new events, one file per UTC day
        if result.new_events:
            store.mark_days(con, "ct_stage", VALID_ROW)  # its rollups are recomputed before the next publish
        now = utc_now()
        rows = [(*ledger[f], result.events_per_file.get(f, 0), now) for f in staged if f in ledger]
        if rows:  # one statement: executemany costs a round trip per row
            con.execute("INSERT INTO cloudtrail_files VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(rows)),
                        [v for row in rows for v in row])
        if rows or result.new_events:
            store.bump_version(con)
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
        with scratch_folder("ct") as tmp:
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
