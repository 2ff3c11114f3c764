"""CUR 2.0 collector ("cur"): the CodeArtifact rows of an AWS Data Exports "CUR 2.0" export, as billed.

The export (Parquet, or gzip text/csv: the two formats Data Exports offers) sits in a local folder or
under `s3://bucket/prefix` (read through boto3; DuckDB reads the files). AWS writes it as
`<prefix>/<export-name>/data/BILLING_PERIOD=YYYY-MM/*.parquet` (or `*.csv.gz`),
with `metadata/BILLING_PERIOD=YYYY-MM/<export-name>-Manifest.json`, and re-delivers a period (several
times a day while it is open, and when the bill is restated) by replacing that period's files. So:
- every BILLING_PERIOD folder under the source is a unit: when its files (key, ETag; size and mtime for
  a local file) are those of the ledger `cur_files`, it is not read again;
- otherwise all of the period's current files are read (those the period's manifest lists, when it has
  one; else every data file of the folder) and the period's rows in `cur_line_items` are replaced,
  with its ledger rows, in one transaction, so a re-delivery never adds to the old rows;
- a file that cannot be read (not Parquet, another table, a missing column) is skipped, counted and
  reported with the fix, and its period keeps the rows of the last good delivery.
A CSV file is read as text, column by column (an account id keeps its leading zeros); its times are ISO
8601 (UTC unless they carry an offset) and its maps (resource_tags) JSON objects.

Columns, from AWS's CUR 2.0 table dictionary (AWS Data Exports User Guide, "Data Exports table
dictionary" > "Cost and usage report (CUR) 2.0": line item, bill, product, pricing and resource tags
columns, https://docs.aws.amazon.com/cur/latest/userguide/table-dictionary-cur2.html):
- line_item_usage_account_id (the account that used the service), bill_payer_account_id,
  bill_billing_period_start_date, line_item_line_item_type (Usage, Tax, Credit, Refund, Discount,
  EdpDiscount, ...), line_item_usage_start_date / _end_date, line_item_product_code ('AWSCodeArtifact'),
  line_item_usage_type (e.g. USE1-Requests, USE1-TimedStorage-ByteHrs), line_item_operation,
  line_item_resource_id (only when the export includes resource IDs: a domain ARN for storage, a
  repository ARN for most requests, per CodeArtifact's tagging page on cost allocation),
  line_item_usage_amount, pricing_unit, line_item_unblended_cost, line_item_net_unblended_cost (after
  discounts; only in exports that include it), line_item_currency_code,
  line_item_line_item_description, product_region_code, and resource_tags, a map<string,string> of the
  enabled cost-allocation tags.
Rows kept: line_item_product_code = 'AWSCodeArtifact', and any row whose resource id is a CodeArtifact
ARN (data transfer billed under another product code).

Reads: the source, cur_files. Writes: cur_line_items, cur_files.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from collectors.base import CollectorSpec, RunContext, ScopeResult, clients
from collectors.trailfiles import TrailObject, local_object, parse_source, s3_object
from core import store
from core.aws import Scope, aws_errors
from core.clock import utc_now
from core.errors import ConfigError, echo, first_line

NAME = "cur"
PRODUCT_CODE = "AWSCodeArtifact"
PERIOD_RE = re.compile(r"(?:^|/)BILLING_PERIOD=(\d{4})-(\d{2})(?:/|$)")
IAM_ACTIONS = ("s3:ListBucket", "s3:GetObject")
# column -> what it is, for the messages; the reader needs every one of these
REQUIRED = {
    "line_item_usage_account_id": "the usage account", "line_item_line_item_type": "the line item type",
    "line_item_usage_start_date": "the usage start", "line_item_usage_end_date": "the usage end",
    "line_item_product_code": "the product code", "line_item_usage_type": "the usage type",
    "line_item_operation": "the operation", "line_item_usage_amount": "the usage amount",
    "line_item_unblended_cost": "the unblended cost",
}
# A legacy CUR's layouts: Parquet in <report>/<report>/year=YYYY/month=M/, CSV in <report>/YYYYMMDD-YYYYMMDD/
LEGACY_RE = re.compile(r"(?:^|/)(?:year=\d{4}/month=\d{1,2}|\d{8}-\d{8})/")
FIX_LEGACY = ("caa reads the CUR 2.0 table of AWS Data Exports (Billing and Cost Management > Data Exports > "
              "Create > Standard data export, CUR 2.0, Parquet, include resource IDs); create one, point [cur] "
              "sources at it, and collect again (README: the bill). Until it delivers, caa prices from Cost "
              "Explorer (`caa collect costs`)")
CSV_SUFFIXES = (".csv.gz", ".csv")
DATA_SUFFIXES = (".parquet", *CSV_SUFFIXES)  # the export's data files (Parquet, or gzip text/csv)
FIX_EXPORT = ("point [cur] sources at an AWS Data Exports export of the 'CUR 2.0' table (Parquet or CSV), "
              "created with its standard columns (see README: the bill)")


@dataclass
class Period:
    export: str  # the folder holding data/ (relative to the source, '' when the source is the export)
    period: date
    files: list[TrailObject]
    manifest: TrailObject | None = None
    other: list[TrailObject] = field(default_factory=list)  # its other data files (a format caa cannot read)


def scopes(ctx: RunContext) -> list[Scope]:
    sources = [ctx.source] if ctx.source else ctx.settings.cur.sources
    return [Scope(source=s) for s in sources]


# ---------------------------------------------------------------- listing (the only AWS / disk reads)

def _period_of(key: str) -> date | None:
    m = PERIOD_RE.search(key)
    return date(int(m.group(1)), int(m.group(2)), 1) if m and 1 <= int(m.group(2)) <= 12 else None


def _export_of(key: str) -> str:
    """The export folder of a data or metadata key: what precedes data/ or metadata/ (or BILLING_PERIOD=)."""
    head = key[:PERIOD_RE.search(key).start()].rstrip("/")
    for tail in ("data", "metadata"):
        if head == tail:
            return ""
        if head.endswith("/" + tail):
            return head[: -len(tail) - 1]
    return head


def list_local(root: Path) -> list[TrailObject]:
    """Every file under the folder (hidden ones left out), as the trail files' ledger names them."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        folder = Path(dirpath).relative_to(root).as_posix()
        folder = "" if folder == "." else folder + "/"
        out += [local_object(folder, name, (Path(dirpath) / name).stat()) for name in filenames
                if not name.startswith(".")]
    return out


def list_s3(client: Any, bucket: str, prefix: str) -> list[TrailObject]:
    return [s3_object(o, len(prefix)) for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix) for o in page.get("Contents", [])]


def periods(listed: list[TrailObject]) -> list[Period]:
    """Group an export listing by (export folder, BILLING_PERIOD); data files are *.parquet or *.csv.gz
    (DATA_SUFFIXES), the manifest is the period's *Manifest.json under metadata/."""
    found: dict[tuple[str, date], Period] = {}
    for f in listed:
        period = _period_of(f.key)
        if period is None:
            continue
        export = _export_of(f.key)
        p = found.setdefault((export, period), Period(export, period, []))
        name = f.key.rsplit("/", 1)[-1]
        if name.lower().endswith(DATA_SUFFIXES) and "/metadata/" not in f"/{f.key}":
            p.files.append(f)
        elif name.lower().endswith("manifest.json"):
            p.manifest = f
        elif "/metadata/" not in f"/{f.key}":
            p.other.append(f)
    return [found[k] for k in sorted(found)]


def _in_period(path: str) -> str | None:
    """A file's path from its BILLING_PERIOD= folder on (a manifest names S3 URIs, the listing relative keys)."""
    m = PERIOD_RE.search(path)
    return path[m.start():].lstrip("/") if m else None


def current_files(p: Period, manifest: dict[str, Any] | None) -> list[TrailObject]:
    """The period's files of its latest delivery.

    The manifest (overwritten at every delivery) lists them: the files it names, matched from the period
    folder on (so a delivery sub-folder is part of the match). Without one: an export set to "create new
    export versions" puts each delivery in its own sub-folder of the period, so the sub-folder written
    last wins; files right in the period folder ("overwrite") are one delivery of their own. Deliveries
    are never added up."""
    named = ({_in_period(s) for s in _strings(manifest) if s.lower().endswith(DATA_SUFFIXES)} - {None}
             if manifest else set())
    keep = [f for f in p.files if _in_period(f.key) in named]
    if keep:
        return sorted(keep, key=lambda f: f.key)
    deliveries: dict[str, list[TrailObject]] = {}
    for f in p.files:
        rest = f.key[PERIOD_RE.search(f.key).end():]
        deliveries.setdefault(rest.rsplit("/", 1)[0] if "/" in rest else "", []).append(f)
    if not deliveries:
        return []
    latest = max(deliveries.values(), key=lambda fs: (max(f.modified for f in fs), min(f.key for f in fs)))
    return sorted(latest, key=lambda f: f.key)


def _strings(doc: Any) -> Iterator[str]:
    if isinstance(doc, str):
        yield doc
    elif isinstance(doc, dict):
        for v in doc.values():
            yield from _strings(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _strings(v)


class Source:
    """A local folder or an S3 prefix: list it, and get a file as a local path."""

    def __init__(self, ctx: RunContext, scope: Scope):
        self.kind, self.where, self.prefix = parse_source(scope.source or "")
        self.scope = scope
        self.client = clients(ctx).client(Scope(region=None), "s3") if self.kind == "s3" else None

    def list(self) -> list[TrailObject]:
        if self.kind == "local":
            if not Path(self.where).is_dir():
                raise ConfigError(f"CUR export folder {self.where} does not exist", where="[cur] sources",
                                  fix="point it at the folder that holds <export-name>/data/BILLING_PERIOD=...")
            return list_local(Path(self.where))
        with aws_errors(self.scope, "s3", what="listing"):
            return list_s3(self.client, self.where, self.prefix)

    def read_bytes(self, f: TrailObject) -> bytes:
        if self.kind == "local":
            return (Path(self.where) / f.key).read_bytes()
        with aws_errors(self.scope, "s3", what=f.key):
            return self.client.get_object(Bucket=self.where, Key=self.prefix + f.key)["Body"].read()

    @contextmanager
    def local(self, f: TrailObject, tmp: Path) -> Iterator[Path]:
        if self.kind == "local":
            yield Path(self.where) / f.key
            return
        path = tmp / f.key.replace("/", "_")
        with aws_errors(self.scope, "s3", what=f.key):
            self.client.download_file(self.where, self.prefix + f.key, str(path))
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)


# ---------------------------------------------------------------- reading one file (pure but for DuckDB)

class BadFile(Exception):  # noqa: N818 - a reason to skip one file, reported with its fix
    pass


def _is_csv(path: Path) -> bool:
    return path.name.lower().endswith(CSV_SUFFIXES)


def reader(path: Path) -> str:
    """The table function that reads export file `path` (bound as $path): Parquet, or a CSV file as text."""
    return "read_csv($path, header = true, all_varchar = true)" if _is_csv(path) else "read_parquet($path)"


def columns(con: duckdb.DuckDBPyConnection, path: Path) -> dict[str, str]:
    kind = "CSV" if _is_csv(path) else "Parquet"
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {reader(path)}", {"path": str(path)}).fetchall()
    except (duckdb.Error, UnicodeDecodeError) as e:
        why = re.sub(r"\s*'[^']*'?", "", first_line(e)).split(": ", 1)[-1][:100]  # without the file's path
        raise BadFile(f"not a readable {kind} file ({why}); fix: let AWS re-deliver the period "
                      "or remove the file") from None
    return {name: typ for name, typ, *_ in rows}


def check_table(cols: dict[str, str]) -> None:
    """Refuse a file of another table with what was expected and the fix."""
    if "BilledCost" in cols or "ChargePeriodStart" in cols:
        raise BadFile(f"a FOCUS export, not CUR 2.0 (it has BilledCost, ChargePeriodStart); fix: {FIX_EXPORT}")
    legacy = [c for c in cols if c.startswith(("resource_tags_", "lineItem/", "identity/"))]
    if legacy or ("line_item_usage_account_id" in cols and "identity_line_item_id" in cols
                  and "resource_tags" not in cols and "product" not in cols):
        raise BadFile(f"a legacy CUR export, not CUR 2.0 (it has {(legacy or ['identity_line_item_id'])[0]} "
                      f"and no resource_tags map); fix: {FIX_EXPORT}")
    missing = [c for c in REQUIRED if c not in cols]
    if missing:
        near = [c for c in cols if c.replace("_", "").lower() in {m.replace("_", "").lower() for m in missing}]
        raise BadFile(f"lacks the CUR 2.0 column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                      f"({', '.join(REQUIRED[m] for m in missing)})"
                      + (f"; it has {', '.join(near)}, which is not the CUR 2.0 spelling" if near else "")
                      + f"; fix: {FIX_EXPORT}")


def _ts(col: str, typ: str) -> str:
    if typ.startswith("TIMESTAMP WITH TIME ZONE"):
        return col
    if typ.startswith("TIMESTAMP") or typ == "DATE":
        return f"CAST({col} AS TIMESTAMP) AT TIME ZONE 'UTC'"
    return f"CAST({col} AS TIMESTAMPTZ)"  # ISO 8601 text, e.g. 2026-11-01T00:00:00Z


def _text(cols: dict[str, str], col: str) -> str:
    return f"nullif(CAST({col} AS VARCHAR), '')" if col in cols else "CAST(NULL AS VARCHAR)"


def _num(cols: dict[str, str], col: str) -> str:
    return f"CAST({col} AS DOUBLE)" if col in cols else "CAST(NULL AS DOUBLE)"


def _tags(cols: dict[str, str]) -> str:
    typ = cols.get("resource_tags")
    if typ is None:
        return "CAST(NULL AS MAP(VARCHAR, VARCHAR))"
    if typ.startswith("MAP"):
        return "CAST(resource_tags AS MAP(VARCHAR, VARCHAR))"
    return "TRY_CAST(TRY_CAST(resource_tags AS JSON) AS MAP(VARCHAR, VARCHAR))"  # a JSON object as text


ARN_RE = r"^arn:aws[a-z-]*:codeartifact:[a-z0-9-]*:\d*:(domain|repository)/([^/]+)(?:/(.+))?$"


def select_sql(cols: dict[str, str], read: str = "read_parquet($path)") -> str:
    """The SELECT that turns one export file ($path, read by `read`: reader()) into cur_line_items rows
    ($source, $period)."""
    region = ("coalesce(nullif(CAST(product_region_code AS VARCHAR), ''), nullif(regexp_extract("
              "line_item_resource_id, '^arn:aws[a-z-]*:codeartifact:([a-z0-9-]+):', 1), ''))"
              if "line_item_resource_id" in cols else _text(cols, "product_region_code"))
    rid = _text(cols, "line_item_resource_id")
    keep = "line_item_product_code = '" + PRODUCT_CODE + "'"
    if "line_item_resource_id" in cols:
        keep += " OR regexp_matches(CAST(line_item_resource_id AS VARCHAR), '^arn:aws[a-z-]*:codeartifact:')"
    start = _ts("line_item_usage_start_date", cols["line_item_usage_start_date"])
    return f"""
SELECT $source AS source, CAST($period AS DATE) AS billing_period,
       {_text(cols, 'bill_payer_account_id')} AS payer_account_id,
       CAST(line_item_usage_account_id AS VARCHAR) AS account_id,
       CAST(line_item_line_item_type AS VARCHAR) AS line_item_type,
       {start} AS usage_start_at,
       {_ts('line_item_usage_end_date', cols['line_item_usage_end_date'])} AS usage_end_at,
       CAST(({start}) AT TIME ZONE 'UTC' AS DATE) AS usage_date,
       {_text(cols, 'line_item_usage_type')} AS usage_type,
       {_text(cols, 'line_item_operation')} AS operation,
       {region} AS region,
       {rid} AS resource_id,
       nullif(regexp_extract({rid}, '{ARN_RE}', 2), '') AS domain,
       CASE WHEN regexp_extract({rid}, '{ARN_RE}', 1) = 'repository'
            THEN nullif(regexp_extract({rid}, '{ARN_RE}', 3), '') END AS repository,
       {_num(cols, 'line_item_usage_amount')} AS usage_amount,
       {_text(cols, 'pricing_unit')} AS pricing_unit,
       coalesce({_num(cols, 'line_item_unblended_cost')}, 0) AS unblended_cost,
       {_num(cols, 'line_item_net_unblended_cost')} AS net_unblended_cost,
       {_text(cols, 'line_item_currency_code')} AS currency_code,
       {_text(cols, 'line_item_line_item_description')} AS description,
       {_tags(cols)} AS resource_tags
FROM {read}
WHERE {keep}"""


STAGE = "cur_stage"


def stage_file(con: duckdb.DuckDBPyConnection, path: Path, source: str, period: date) -> int:
    """Append one export file's CodeArtifact rows to the temp table cur_stage; returns their count."""
    cols = columns(con, path)
    check_table(cols)
    sql = select_sql(cols, reader(path))
    try:
        return con.execute(f"INSERT INTO {STAGE} {sql}", {"source": source, "period": period, "path": str(path)}
                           ).fetchone()[0]
    except (duckdb.Error, UnicodeDecodeError) as e:
        raise BadFile(f"its values do not fit the CUR 2.0 types ({first_line(e, 160)}); fix: {FIX_EXPORT}") from None


# ---------------------------------------------------------------- loading

def _ledger(con: duckdb.DuckDBPyConnection, source: str, period: date) -> set[tuple[str, str]]:
    return {(k, e) for k, e in con.execute(
        "SELECT key, etag FROM cur_files WHERE source = ? AND billing_period = ?", [source, period]).fetchall()}


# The same payer's bill for a period held from another source: the same export under another spelling (a
# relative path, `.../data`, a local copy of the bucket) or a second export of it (one filtered to
# CodeArtifact beside the full one). Readers add up every row, so it would be billed twice.
OTHER_SOURCES = ("FROM cur_line_items WHERE billing_period = $period AND source <> $source AND payer_account_id IN "
                 f"(SELECT payer_account_id FROM {STAGE})")


def load_period(con: duckdb.DuckDBPyConnection, source: str, period: date, files: list[tuple[TrailObject, int]]
                ) -> tuple[int, list[str]]:
    """Replace the period's rows and ledger with the staged ones, in one transaction, and the rows of the
    same payers' bill for the period held from other sources (OTHER_SOURCES; their ledger stays, so they are
    read again only when AWS delivers them again). Returns (rows loaded, the other sources replaced)."""
    with store.load_transaction(con):
        params = {"period": period, "source": source}
        others = [s for (s,) in con.execute(f"SELECT DISTINCT source {OTHER_SOURCES} ORDER BY 1", params).fetchall()]
        con.execute(f"DELETE {OTHER_SOURCES}", params)
        con.execute("DELETE FROM cur_line_items WHERE source = ? AND billing_period = ?", [source, period])
        con.execute(f"INSERT INTO cur_line_items SELECT * FROM {STAGE}")
        con.execute("DELETE FROM cur_files WHERE source = ? AND billing_period = ?", [source, period])
        now = utc_now()
        for f, rows in files:
            con.execute("INSERT INTO cur_files VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [source, period, f.key, f.etag, f.size, rows, now])
        return con.execute(f"SELECT count(*) FROM {STAGE}").fetchone()[0], others


def collect(ctx: RunContext, scope: Scope) -> ScopeResult:
    src = Source(ctx, scope)
    result = ScopeResult()
    listed = src.list()
    found = periods(listed)
    if not found:
        legacy = next((f.key for f in listed if LEGACY_RE.search(f.key)), None)
        if legacy is not None:
            raise ConfigError("the source holds a legacy Cost and Usage Report (its year=/month= or "
                              f"YYYYMMDD-YYYYMMDD folders, e.g. {legacy[:120]}), not a CUR 2.0 export",
                              fix=FIX_LEGACY)
        if PERIOD_RE.search((scope.source or "").rstrip("/") + "/"):  # pointed at one period's folder
            raise ConfigError(f"{scope.source} is one billing period's folder, not a CUR 2.0 export",
                              where="[cur] sources / --source",
                              fix="point it at the export's folder (the one holding data/ and metadata/): every "
                                  "period is read, and a period already read is not read again")
        result.window = "no BILLING_PERIOD=YYYY-MM folders under the source (nothing exported yet?)"
        return result
    read = unchanged = 0
    coarse = False  # a monthly export was named (once a run)
    con = ctx.con
    with tempfile.TemporaryDirectory(prefix="caa-cur-") as tmp, ctx.progress("cur: billing periods", len(found)) as advance:
        for p in found:
            advance(1)
            label = f"{p.export + '/' if p.export else ''}BILLING_PERIOD={p.period:%Y-%m}"
            source = (scope.source or "").rstrip("/") + (f"/{p.export}" if p.export else "")
            manifest = None
            if p.manifest is not None:
                try:
                    manifest = json.loads(src.read_bytes(p.manifest))
                except (ValueError, UnicodeDecodeError):
                    result.skip(p.manifest.key, "the manifest is not JSON; every data file of the period is read")
            files = current_files(p, manifest)
            if not files:
                for f in p.other:  # a period of files caa cannot read would otherwise pass without a word
                    result.skip(f.key, f"not a CUR 2.0 data file (*.parquet or *.csv.gz); fix: {FIX_EXPORT}")
                continue
            if {(f.key, f.etag) for f in files} == _ledger(con, source, p.period):
                unchanged += 1
                continue
            con.execute(f"CREATE OR REPLACE TEMP TABLE {STAGE} AS SELECT * FROM cur_line_items LIMIT 0")
            staged: list[tuple[TrailObject, int]] = []
            for f in files:
                try:
                    with src.local(f, Path(tmp)) as path:
                        staged.append((f, stage_file(con, path, source, p.period)))
                except BadFile as e:
                    result.skip(f.key, f"{e}; {label} keeps its previous rows")
                    break
            else:
                if not coarse and con.execute(f"SELECT count(*) FROM {STAGE} WHERE line_item_type = 'Usage' AND "
                                              "usage_end_at - usage_start_at > INTERVAL 1 DAY").fetchone()[0]:
                    coarse = True
                    echo(f"note: {label} of {source} has usage lines longer than a day (a monthly export): caa "
                         "puts a line on the UTC day its usage starts, so the bill's daily figures gather on the "
                         "1st; create the export with daily or hourly granularity (README: the bill)")
                rows, others = load_period(con, source, p.period, staged)
                result.rows += rows
                read += 1
                for other in others:
                    echo(f"note: {label} of {source} replaces the same payer's bill for {p.period:%Y-%m} "
                         f"collected from {other} (the same export under another name, or a second export of "
                         "it): it is counted once; drop one of the two from [cur] sources")
            con.execute(f"DROP TABLE IF EXISTS {STAGE}")
    result.window = f"periods={len(found)} read={read} unchanged={unchanged}"
    return result


SPEC = CollectorSpec(NAME, collect, scopes)
