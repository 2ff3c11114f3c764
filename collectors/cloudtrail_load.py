"""CloudTrail decode, normalize and load: trail files (gzip JSON `{"Records": [...]}`) -> the `events` table.

The rules of normalize are written once as SQL, NORMALIZE_SQL over a record STRUCT: keep only
codeartifact.amazonaws.com records, read both key spellings (package-manager
`domainName/repositoryName/packageName/...` and API `domain/repository/package/...`), strip '@' from npm
scopes and take the asset name from the end of `additionalEventData.requestUri`. The native decoder
(collectors/_ctjson.c, events mode) applies the same rules while it parses, and tests/unit/test_ctjson.py
holds its rows to NORMALIZE_SQL's over the same records; the Spark extract (spark/extract.py) applies
them in Spark SQL, and tests/integration/test_spark_extract.py holds the two paths to the same `events`.

load decodes the batch's files on every core: each is inflated with isal and, when its text mentions
`codeartifact.amazonaws.com`, decoded: the whole text is validated and the events columns of its CodeArtifact
records come out as Arrow columns (those whose values repeat within a file, such as the account, principal and
user agent, as dictionaries: the take and the Parquet writer then move indices). Both steps release the GIL,
so threads use every core, and nothing is written to scratch. A file whose text never mentions CodeArtifact is
not parsed, yet is recorded in the ledger; a file that cannot be inflated or decoded is skipped with why. The
batch's Arrow table is then read in place: duplicate eventIDs are dropped inside the batch and against
`events` (stored ids in the batch's time range only: the same event always carries the same eventTime), and
the new events (the rows kept, gathered in time order by one take, core/lake.py append_events), the days they
fall on (for the rollups, recomputed before the next publish), the file ledger rows and the store version are
committed in one transaction. LookupEvents results go through the same decoder.

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
import struct
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collectors import _ctjson
from core import lake, store
from core.clock import utc_now

try:  # isal inflates about three times as fast as zlib (or DuckDB's own gzip reader)
    from isal import isal_zlib
    from isal.igzip import decompress as _gunzip
except ImportError:  # pragma: no cover - isal is a dependency, gzip the fallback
    isal_zlib = None
    _gunzip = gzip.decompress

GZIP_MAX_RATIO = 1032  # deflate's ceiling: a member's text is at most ~1032 times its compressed size
GZIP_MAGIC = b"\x1f\x8b\x08"  # how every gzip member (of deflate) begins
# found by re rather than bytes.find: the compiled pattern looks for its first byte with memchr and checks the
# rest there, twice as fast as find's search on compressed bytes (0.21 against 0.44 CPU-s on the bench trail's
# 657 MB of gzip)
_MAGIC = re.compile(re.escape(GZIP_MAGIC))


def gunzip(raw: bytes) -> bytes:
    """Every gzip member of `raw`, inflated. A trail file is one member, whose trailer gives the length (ISIZE)
    and CRC-32 of its text: isal inflates it into one buffer of that length, where its gzip reader inflates in
    chunks and then joins them, a copy of every byte into new pages (on 3,000 bench files, two threads: 1.84-1.91
    against 2.06-2.63 CPU-s). The one-shot inflate stops at the end of the first member, so it is used only when
    no second member can follow (the file holds no member's magic bytes past the first header: 99% of trail
    files) and the file ends with the trailer of the text it gave (its length and CRC); any other file (several
    members, trailing bytes, the magic bytes by chance in the compressed data) is inflated by the reader."""
    if isal_zlib is None or len(raw) < 18 or _MAGIC.search(raw, 10) is not None:  # 18: a header and a trailer
        return _gunzip(raw)
    crc, size = struct.unpack("<II", raw[-8:])
    text = isal_zlib.decompress(raw, wbits=31, bufsize=min(size, GZIP_MAX_RATIO * len(raw)) + 1)
    if len(text) & 0xFFFFFFFF == size and isal_zlib.crc32(text) == crc:
        return text
    return _gunzip(raw)


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


# local path of a trail file -> (source, key, etag, size_bytes, day): its cloudtrail_files row (day: its day
# folder, None when the folder is none or no date)
Ledger = dict[str, tuple[str, str, str | None, int, date | None]]
EVENT_COLUMNS, EVENT_NAMES = lake.COLUMNS, lake.NAMES  # the events table's columns, one list (core/lake.py)
UTC_MICROS = pa.timestamp("us", tz="UTC")
DICTIONARY = pa.dictionary(pa.int32(), pa.string())
# the decoded batch: the columns whose values repeat within a trail file come as dictionaries (_ctjson.DICTIONARY)
EVENTS_ARROW = pa.schema([(c, UTC_MICROS if c == "event_at" else DICTIONARY if c in _ctjson.DICTIONARY
                           else pa.string()) for c in EVENT_NAMES])

# An eventTime as DuckDB reads it, within the years 1 to 9999 (a day of the lake; Python's dates): DuckDB also
# reads 'infinity', year 0 and years past 9999, and one such record failed its whole source's collection.
EVENT_TIMES = "BETWEEN TIMESTAMPTZ '0001-01-01 00:00:00+00' AND TIMESTAMPTZ '9999-12-31 23:59:59.999999+00'"
EVENT_TIME_SQL = "CASE WHEN TRY_CAST({0} AS TIMESTAMPTZ) " + EVENT_TIMES + " THEN TRY_CAST({0} AS TIMESTAMPTZ) END"

# Projection from `r` (a RECORD_FIELDS struct, decode_records) to the events columns: the specification the
# decoder's events mode is held to. Rows with no eventID or an unparseable eventTime are rejected (counted).
NORMALIZE_SQL = r"""
SELECT
    r.eventID AS event_id,
    """ + EVENT_TIME_SQL.format("r.eventTime") + r""" AS event_at,
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
SCRATCH_PREFIX = "caa-"  # caa-<kind>-<pid>-<random>: sweep_scratch removes the folders of dead processes
_RECORDS_HEAD = re.compile(rb'\s*\{\s*"Records"\s*:\s*\[')
_RECORDS_TAIL = re.compile(rb'\]\s*\}\s*$')


def _flat(spec: dict, prefix: str = "") -> list[str]:
    return [n for k, v in spec.items() for n in ([prefix + k] if isinstance(v, str) else _flat(v, f"{prefix}{k}."))]


if tuple(_flat(RECORD_FIELDS)) != _ctjson.FIELDS:  # pragma: no cover - a rebuild of the decoder is missing
    raise ImportError("collectors/_ctjson.c reads other fields than RECORD_FIELDS: reinstall caa (make clean test)")


def _arrow_type(spec: dict | str) -> pa.DataType:
    if isinstance(spec, str):
        return pa.string()
    return pa.struct([(k, _arrow_type(v)) for k, v in spec.items()])


RECORD_ARROW = _arrow_type(RECORD_FIELDS)


class BadTrailFile(Exception):
    """A trail file that cannot be read as CloudTrail: str(e) says why, for the skipped list."""


def inflate_file(path: str) -> bytes | None:
    """The decompressed text of trail file `path` (every gzip member, with isal; a file that is JSON text
    already, as it is), b"" when it is a complete
    `{"Records": [...]}` that never mentions codeartifact.amazonaws.com (nothing for caa: never parsed, yet
    recorded in the ledger), or None when it cannot be inflated (truncated, not gzip). Any doubt about a file
    goes to the parser."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        if raw[:2] != b"\x1f\x8b" and raw[:64].lstrip()[:1] == b"{":
            text = raw  # a trail file kept uncompressed (*.json: gunzipped by a copy or sync tool)
        else:
            text = gunzip(raw) if raw else None  # an empty file is not gzip (isal would answer b"")
    except OSError as e:
        if isinstance(e, FileNotFoundError | PermissionError | IsADirectoryError):
            raise BadTrailFile(f"cannot be read ({e.strerror})") from None
        return None
    except Exception:  # noqa: BLE001 - EOFError, zlib.error or isal's error: not gzip
        return None
    if text is None:
        return None
    if CA_BYTES in text or not (_RECORDS_HEAD.match(text[:64]) and _RECORDS_TAIL.search(text[-64:])):
        return text
    return b""


def _text(column: tuple, rows: int) -> pa.Array:
    """A string column of the decoder, (validity or None, int32 offsets, data, null count), as an Arrow array."""
    valid, offsets, data, nulls = column
    return pa.Array.from_buffers(pa.string(), rows, [pa.py_buffer(valid) if valid is not None else None,
                                                     pa.py_buffer(offsets), pa.py_buffer(data)], null_count=nulls)


def _dictionary(column: tuple, rows: int) -> pa.DictionaryArray:
    """A DICTIONARY column of the decoder (its values repeat within a file) as an Arrow dictionary array: the
    take and the Parquet writer then move 4-byte indices, not the text (core/lake.py append_events)."""
    valid, indices, nulls, offsets, data = column
    values = _text((None, offsets, data, 0), len(offsets) // 4 - 1)
    return pa.DictionaryArray.from_buffers(DICTIONARY, rows, [pa.py_buffer(valid) if valid is not None else None,
                                                              pa.py_buffer(indices)], values, null_count=nulls)


def _decoded(call, text: bytes):
    try:
        return call(text)
    except ValueError as e:
        what, at, kind = e.args
        if kind == "not_list":
            raise BadTrailFile("its Records is not a list of events") from None
        raise BadTrailFile(f"not valid CloudTrail JSON at byte {at:,} of the uncompressed file: {what}") from None


def decode_records(text: bytes) -> pa.StructArray:
    """The CodeArtifact records of a trail file's JSON text, as RECORD_ARROW structs (the fields of
    RECORD_FIELDS, not yet normalized): what NORMALIZE_SQL reads. Raises BadTrailFile."""
    rows, _, columns = _decoded(_ctjson.parse, text)
    arrays = (_text(column, rows) for column in columns)

    def group(spec: dict) -> pa.StructArray:
        children = [next(arrays) if isinstance(v, str) else group(v) for v in spec.values()]
        return pa.StructArray.from_arrays(children, names=list(spec))

    return group(RECORD_FIELDS)


def parse_text(text: bytes) -> pa.Table:
    """The CodeArtifact events of a trail file's JSON text, normalized (the EVENT_COLUMNS), by the native
    decoder (collectors/_ctjson.c): it validates the whole text, needs no GIL, and normalizes as NORMALIZE_SQL
    does. An eventTime not spelled as CloudTrail spells it (YYYY-MM-DDTHH:MM:SSZ) is read by DuckDB's
    TRY_CAST, as NORMALIZE_SQL reads every one. Raises BadTrailFile."""
    return _events_table(*_decoded(_ctjson.events, text))


def parse_many(texts: list[bytes]) -> tuple[pa.Table, list[int]]:
    """parse_text over several texts (small trail files) in one call of the decoder: their events in one
    table, in order, and each text's number of events. Raises ValueError when one of them is not valid
    (parse_text then says which and why)."""
    *out, ends = _ctjson.events_many(texts)
    ends = np.frombuffer(ends, np.int64)
    return _events_table(*out), np.diff(ends, prepend=0).tolist()


def _events_table(rows: int, _records: int, columns: tuple, at_column: tuple, odd: tuple | None) -> pa.Table:
    at_valid, at_values, at_nulls = at_column
    at = pa.Array.from_buffers(UTC_MICROS, rows, [pa.py_buffer(at_valid) if at_valid is not None else None,
                                                  pa.py_buffer(at_values)], null_count=at_nulls)
    if odd is not None:
        at = _odd_times(at, odd)
    arrays = {name: (_dictionary if name in _ctjson.DICTIONARY else _text)(column, rows)
              for name, column in zip(_ctjson.EVENTS, columns, strict=True)}
    arrays["event_at"] = at
    return pa.table({c: arrays[c] for c in EVENT_NAMES})


def _odd_times(at: pa.Array, odd: tuple) -> pa.Array:
    """`at` with the rows whose eventTime the decoder left to DuckDB: TRY_CAST(text AS TIMESTAMPTZ), in UTC,
    within the years 1 to 9999 (EVENT_TIME_SQL)."""
    where, offsets, data, n = odd
    texts = _text((None, offsets, data, 0), n)
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.register("odd_times", pa.table({"t": texts}))
        got = con.sql(f"SELECT {EVENT_TIME_SQL.format('t')} AS at FROM odd_times").to_arrow_table()
    cast = got.column("at").combine_chunks().cast(UTC_MICROS)
    values = at.cast(pa.int64()).fill_null(0).to_numpy().copy()
    valid = at.is_valid().to_numpy(zero_copy_only=False).copy()
    rows = np.frombuffer(where, np.int32)
    values[rows] = cast.cast(pa.int64()).fill_null(0).to_numpy()
    valid[rows] = cast.is_valid().to_numpy(zero_copy_only=False)
    return pa.array(values, pa.int64(), mask=~valid).cast(UTC_MICROS)


@dataclass
class Decoded:
    """A batch of trail files decoded by `decode`, in the batch's order: the events of the files read (a
    table for each group of files decoded together, with each file's number of events in it, in order), the
    files without CodeArtifact (never parsed) and the files that could not be read, with why."""
    records: list[tuple[list[tuple[str, int]], pa.Table]]
    quiet: list[str]
    bad: dict[str, str]

    def close(self) -> None:
        self.records = []


# Small trail files are decoded in groups of consecutive files (at most GROUP_FILES, GROUP_BYTES of gzip), in
# one call of the decoder each (parse_many): a quiet account's trail is files of a few records, one every 5
# minutes per Region, and each cost 100 us in the Python and Arrow wrapping of its columns against 20 us to
# parse, and a chunk of its own in every step of the commit.
GROUP_BYTES = 256 << 10
GROUP_FILES = 64


def _groups(files: list[str]) -> list[list[str]]:
    """`files` in order, cut into runs of at most GROUP_FILES files and GROUP_BYTES bytes (a larger file alone)."""
    out: list[list[str]] = []
    held = 0
    for f in files:
        try:
            size = os.path.getsize(f)
        except OSError:  # decode_group says why it cannot be read
            size = GROUP_BYTES
        if not out or len(out[-1]) >= GROUP_FILES or held + size > GROUP_BYTES:
            out.append([])
            held = 0
        out[-1].append(f)
        held += size
    return out


def decode_group(paths: list[str]) -> Decoded:
    """Inflate and decode consecutive trail files, in order; the files that hold CodeArtifact events in one
    call of the decoder when there are several (one by one when one of them is not valid, to say which)."""
    out = Decoded([], [], {})
    texts: list[tuple[str, bytes]] = []
    for path in paths:
        try:
            text = inflate_file(path)
        except BadTrailFile as e:
            out.bad[path] = str(e)
            continue
        if text is None:
            out.bad[path] = "not a complete gzip file (truncated or corrupt)"
        elif not text:
            out.quiet.append(path)
        else:
            texts.append((path, text))
    if len(texts) > 1:
        try:
            table, counts = parse_many([text for _, text in texts])
        except ValueError:
            pass
        else:
            out.records.append(([(path, n) for (path, _), n in zip(texts, counts, strict=True)], table))
            return out
    for path, text in texts:
        try:
            table = parse_text(text)
        except BadTrailFile as e:
            out.bad[path] = str(e)
        else:
            out.records.append(([(path, table.num_rows)], table))
    return out


DECODER_NICE = 10  # added to the collector's own niceness


def _yield_to_the_commit() -> None:
    """Lower this decoder thread's priority (Linux: nice is per thread). The decoder reads the next batch
    while the main thread commits this one, and the commit was then the pipeline's slower stage: with two
    decoder threads and the commit on two cores, the commit lost its core a third of the time. On the bench
    trail the commits took 12.9 s instead of 13.4 (four alternating runs each). Since the commit's own CPU
    fell (11d4c6c), nice 0 and 10 ingest alike (17.6 and 17.7 s, three pairs)."""
    try:
        me = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, me, min(19, os.getpriority(os.PRIO_PROCESS, me) + DECODER_NICE))
    except (AttributeError, OSError):  # no per-thread priority here (not Linux): decode as before
        pass


def decode(files: list[str]) -> Decoded:
    """Inflate (isal) and decode (the native decoder) `files` on every core: both release the GIL."""
    out = Decoded([], [], {})
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2, initializer=_yield_to_the_commit) as pool:
        for got in pool.map(decode_group, _groups(files)):
            out.records += got.records
            out.quiet += got.quiet
            out.bad.update(got.bad)
    return out


def scratch_folder(kind: str, where: str | None = None) -> tempfile.TemporaryDirectory:
    """A temporary folder in `where` (default the system temp dir) named after this process,
    caa-<kind>-<pid>-<random>: a SIGKILL skips every cleanup, so a later collector's sweep_scratch removes
    it (S3 objects fetched)."""
    sweep_scratch(where or tempfile.gettempdir())
    if os.path.isdir("/dev/shm"):  # inflated JSON went there before 2026-12-04: a killed collector's, in memory
        sweep_scratch("/dev/shm")
    return tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{kind}-{os.getpid()}-", dir=where)


@functools.cache
def sweep_scratch(where: str) -> None:
    """Remove the scratch folders of collectors that no longer run (in /dev/shm they would hold memory until
    a reboot). Once per process and folder."""
    for path in Path(where).glob(f"{SCRATCH_PREFIX}*-*-*"):
        parts = path.name.split("-")
        if len(parts) == 4 and parts[2].isdigit() and not Path(f"/proc/{parts[2]}").exists():
            shutil.rmtree(path, ignore_errors=True)


def batch_table(records: list[tuple[str, pa.Table]]) -> pa.Table:
    """The events of a batch's files in one table, in the batch's order, with each row's file (a one-word
    dictionary per file)."""
    tables = [t.append_column("filename", pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(t.num_rows, np.int32)), pa.array([name]))) for name, t in records if t.num_rows]
    if not tables:
        return EVENTS_ARROW.append(pa.field("filename", pa.string())).empty_table()
    return pa.concat_tables(tables, promote_options="permissive")


def stage_records(con: duckdb.DuckDBPyConnection, records: list[tuple[str, pa.Table]], table: str) -> None:
    """The temp table `table` (EVENT_COLUMNS + filename): each file's decoded events and its name."""
    con.register("ct_records", batch_table(records))
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {EVENT_COLUMNS}, filename::VARCHAR AS filename "
                    "FROM ct_records")
    finally:
        con.unregister("ct_records")


@dataclass
class BatchResult:
    files_ok: list[str] = field(default_factory=list)
    bad: dict[str, str] = field(default_factory=dict)  # file -> why
    new_events: int = 0
    rejected: int = 0
    no_codeartifact: list[str] = field(default_factory=list)  # recorded in the ledger, never parsed
    events_per_file: dict[str, int] = field(default_factory=dict)


_STAGE_TYPES = [(c, "TIMESTAMPTZ" if c == "event_at" else "VARCHAR") for c in EVENT_NAMES] + [("filename", "VARCHAR")]


def _create_empty(con: duckdb.DuckDBPyConnection, table: str) -> None:
    cols = ", ".join(f"{c} {t}" for c, t in _STAGE_TYPES)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} ({cols})")


# A row every source can commit, else rejected (counted): an id, a name and a time within the years 1 to 9999
# (EVENT_TIMES, which the decoder applies to trail files): a Spark extract's Parquet, hand-made, can hold any
# timestamp, and one past 9999 failed its whole source's collection (the lake could not name its day).
VALID_ROW = f"event_id IS NOT NULL AND event_name IS NOT NULL AND event_at IS NOT NULL AND event_at {EVENT_TIMES}"


# DuckDB raises UnicodeDecodeError (not duckdb.Error) when a parse-error excerpt cuts a multi-byte character:
# that is a bad file too, not a crash of the run (the Spark extract's Parquet files, cloudtrail_parquet).
PARSE_ERRORS = (duckdb.Error, UnicodeDecodeError)


def load_files(con: duckdb.DuckDBPyConnection, files: list[str], ledger: Ledger,
               decoded: Decoded | None = None) -> BatchResult:
    """Stage, dedupe and commit one batch of local trail files.

    `ledger` maps each local file to (source, key, etag, size_bytes, day) for the cloudtrail_files rows.
    `decoded` is `decode(files)` when the caller prepared it ahead.
    """
    ordered = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0]
    # Less memory and CPU. Rows then land in any order within a batch; batches go oldest day first, and
    # DuckDB prunes by row group (~120k rows), so the time ranges still prune as well as with a sort.
    con.execute("SET preserve_insertion_order = false")
    try:
        return _load_files(con, ledger, decoded or decode(files))
    finally:
        con.execute(f"SET preserve_insertion_order = {'true' if ordered else 'false'}")


def _load_files(con: duckdb.DuckDBPyConnection, ledger: Ledger,
                decoded: Decoded) -> BatchResult:
    result = BatchResult(bad=dict(decoded.bad), no_codeartifact=decoded.quiet)
    read = [f for files, _ in decoded.records for f, _ in files]
    # in the batch's order (its files, each file's records): a twice-delivered event keeps its first copy
    rows = pa.concat_tables([t for _, t in decoded.records if t.num_rows] or [EVENTS_ARROW.empty_table()])
    result.events_per_file = {f: n for files, _ in decoded.records for f, n in files}
    decoded.close()
    commit_stage(con, read + result.no_codeartifact, ledger, result, rows)
    del rows  # its memory stays with Arrow's allocator for the next batch (trailfiles.ingest returns it)
    result.files_ok = read + result.no_codeartifact
    return result


def commit_stage(con: duckdb.DuckDBPyConnection, staged: list[str],
                 ledger: Ledger, result: BatchResult,
                 rows: pa.Table | None = None) -> BatchResult:
    """Dedupe a staged batch and commit it, with the ledger rows of the `staged` files and the store version,
    in one transaction. The batch is the temp table ct_stage (EVENT_COLUMNS + filename; a Spark extract's,
    dropped here) or `rows` (trail files: their decoded events in Arrow, in the batch's order, read in place
    as ct_stage; the rows kept are written to the lake by append_events)."""
    if rows is not None:
        con.register("ct_stage", rows)
    try:
        return _commit(con, staged, ledger, result, rows)
    finally:
        if rows is not None:
            con.unregister("ct_stage")
        else:
            con.execute("DROP TABLE IF EXISTS ct_stage")


def first_copies(ids: pa.ChunkedArray, valid: pa.ChunkedArray) -> np.ndarray:
    """For each row: valid, and the first valid row with its event_id. Rows are in the batch's order (its
    files in order, each file's records in order), so the first copy is the first file's."""
    codes = pc.dictionary_encode(ids.combine_chunks()).indices.fill_null(-1).to_numpy(zero_copy_only=False)
    ok = valid.to_numpy()
    if ok.all():  # (nearly every batch) Arrow numbers the distinct ids in the order they first appear, so a
        # row is its id's first exactly when its number is past every number before it: no sort
        keep = np.empty(len(codes), bool)
        keep[:1] = codes[:1] >= 0
        keep[1:] = codes[1:] > np.maximum.accumulate(codes)[:-1]
        return keep
    at = np.flatnonzero(ok)
    _, first = np.unique(codes[at], return_index=True)  # the index of each id's first valid row among `at`
    keep = np.zeros(len(codes), bool)
    keep[at[first]] = True
    return keep


def _commit(con: duckdb.DuckDBPyConnection, staged: list[str], ledger: Ledger,
            result: BatchResult, rows: pa.Table | None) -> BatchResult:
    if rows is None:
        result.rejected, lo, hi, repeats = con.execute(
            f"SELECT count(*) FILTER (WHERE NOT ({VALID_ROW})), min(event_at) FILTER (WHERE {VALID_ROW}), "
            f"max(event_at) FILTER (WHERE {VALID_ROW}), count(*) FILTER (WHERE {VALID_ROW}) - "
            f"count(DISTINCT event_id) FILTER (WHERE {VALID_ROW}) FROM ct_stage").fetchone()
        result.events_per_file = dict(con.execute(
            "SELECT filename, count(*) FROM ct_stage GROUP BY filename").fetchall())
    else:  # the same figures from the Arrow columns, without a scan of them by DuckDB
        has_id = rows["event_id"].is_valid()
        valid = pc.and_(pc.and_(has_id, rows["event_at"].is_valid()), rows["event_name"].is_valid())
        result.rejected = rows.num_rows - (pc.sum(valid).as_py() or 0)
        span = pc.min_max(rows["event_at"].filter(has_id))
        lo, hi = span["min"].as_py(), span["max"].as_py()
        first = first_copies(rows["event_id"], valid)
    # An event delivered twice in the batch keeps its copy from the first file (trail files: first_copies).
    with store.transaction(con):
        if lo is not None:
            con.complete()  # the last execute()'s result must be done before con.sql() runs
            stored = lake.ids_between_sql(con, lo, hi)
            if rows is not None:  # the first valid copy of each event not stored yet
                known = con.sql(stored, params={"lo": lo, "hi": hi}).to_arrow_table().column(0)
                keep = first & ~pc.is_in(rows["event_id"], value_set=known.combine_chunks()).to_numpy()
                written = lake.append_events(con, rows.select(EVENT_NAMES), keep)
            else:  # only the repeated events go through the window: numbering every row cost more than the insert
                repeated = f"SELECT event_id FROM ct_stage WHERE {VALID_ROW} GROUP BY event_id HAVING count(*) > 1"
                valid_rows = f"SELECT {EVENT_COLUMNS}, filename FROM ct_stage WHERE {VALID_ROW}"
                batch = valid_rows if not repeats else f"""
                    {valid_rows} AND event_id NOT IN ({repeated})
                    UNION ALL
                    SELECT * EXCLUDE (copy_no) FROM (
                        SELECT *, row_number() OVER (PARTITION BY event_id ORDER BY filename) AS copy_no
                        FROM ({valid_rows} AND event_id IN ({repeated}))
                    ) WHERE copy_no = 1"""
                new = con.sql(f"SELECT {EVENT_COLUMNS} FROM ({batch}) WHERE event_id NOT IN ({stored})",
                              params={"lo": lo, "hi": hi}).to_arrow_table()
                written = lake.append_events(con, new)  # the batch's new events, one file per UTC day
            result.new_events = sum(written.values())
            if written:  # the days of the events written: their rollups are recomputed before the next publish
                store.mark_these_days(con, written)
        files = [(*ledger[f], result.events_per_file.get(f, 0)) for f in staged if f in ledger]
        if files:  # one statement of a list per column: executemany costs a round trip per row, and a VALUES
            # list of a batch's 5,000 small files' rows took 800 ms to bind (this, 35 ms; 200 files: 27 and 2 ms)
            con.execute("INSERT INTO cloudtrail_files_rows (source, key, etag, size_bytes, day, events, processed_at) "
                        "SELECT unnest($1::VARCHAR[]), unnest($2::VARCHAR[]), unnest($3::VARCHAR[]), "
                        "unnest($4::BIGINT[]), unnest($5::DATE[]), unnest($6::BIGINT[]), $7::TIMESTAMPTZ",
                        [*map(list, zip(*files, strict=True)), utc_now()])
        if files or result.new_events:
            store.bump_version(con)
    return result


def normalize_text(con: duckdb.DuckDBPyConnection, text: bytes, table: str) -> None:
    """The temp table `table` (EVENT_COLUMNS + filename): the CodeArtifact events of a trail file's JSON text,
    decoded and normalized as the collector does. Raises BadTrailFile."""
    stage_records(con, [("text", parse_text(text))], table)


def normalize_records(records: list[dict], con: duckdb.DuckDBPyConnection | None = None) -> list[dict]:
    """Normalize in-memory CloudTrail records with the trail files' decoder and SQL (LookupEvents, tests).

    Returns one dict per CodeArtifact record, in input order, with the `events` columns.
    """
    own = con is None
    con = con or duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        normalize_text(con, json.dumps({"Records": records}, default=str).encode(), "ct_norm")
        cur = con.execute(f"SELECT {EVENT_COLUMNS} FROM ct_norm")
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        con.execute("DROP TABLE ct_norm")
        return rows
    finally:
        if own:
            con.close()
