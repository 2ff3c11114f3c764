"""The pure half of `caa apply`: which report rows are approved, when the report was made, the re-check
rules, the batches and their API parameters, and the summaries. No I/O except reading the report file
(and its bytes for the content hash); no clock.

Reads: the cleanup report given to `caa apply` (through analytics.reports.read_table). Writes nothing.

Report time (the cut-off for "downloaded after the report"): a `generated_at` column when the report has
one, else the earlier of the time stamp in the default file name (`cleanup-YYYYmmddTHHMMZ.<ext>`, written
by `caa report cleanup`) and the file's mtime. mtime moves when a reviewer saves the file, so on top of
the cut-off every row is also compared with its own `last_downloaded_at`: any download in the store newer
than the last one the report counted means the report judged the version on old data.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from analytics.cleanup import ROW_NAMES, row_key
from core.errors import DataError

BATCH_SIZE = 100  # the model's limit on `versions` for every write operation
APPROVED = {"yes", "true", "x"}
REQUIRED = ["account_id", "domain", "repository", "format", "namespace", "package", "version", "status"]
TOLERANCE = timedelta(seconds=1)  # report timestamps may lose sub-second precision (XLSX)
_NAME_STAMP = re.compile(r"(\d{8}T\d{4})Z")


@dataclass(frozen=True)
class ActionSpec:
    """One API action: the boto3 operation, its IAM action, the target status and whether the operation
    takes versionRevisions (DeletePackageVersions does not; see the botocore model)."""

    name: str
    operation: str
    iam_action: str
    target_status: str | None
    revisions: bool
    frees_storage: bool


ACTIONS = {
    "unlist": ActionSpec("unlist", "update_package_versions_status",
                         "codeartifact:UpdatePackageVersionsStatus", "Unlisted", True, False),
    "archive": ActionSpec("archive", "update_package_versions_status",
                          "codeartifact:UpdatePackageVersionsStatus", "Archived", True, False),
    "dispose": ActionSpec("dispose", "dispose_package_versions", "codeartifact:DisposePackageVersions",
                          "Disposed", True, True),
    "delete": ActionSpec("delete", "delete_package_versions", "codeartifact:DeletePackageVersions",
                         "Deleted", False, True),
}
STAGED = {"staged:archive": ACTIONS["archive"], "staged:dispose": ACTIONS["dispose"]}


@dataclass
class Row:
    """One approved report row and what became of it."""

    line: int  # 1-based data row of the report (the header is row 0)
    account_id: str
    domain: str
    repository: str
    format: str
    namespace: str | None
    package: str
    version: str
    status: str  # the status the report saw
    revision: str | None = None  # only when the report carries a `revision` column
    last_downloaded_at: datetime | None = None
    reclaimable_bytes: int = 0
    monthly_savings_usd: float = 0.0
    region: str = ""
    action: str = ""  # unlist / archive / dispose / delete / staged:archive / staged:dispose
    expected_status: str | None = None
    expected_revision: str | None = None
    result: str | None = None  # ok / failed / skipped / planned; None while still in play
    error_code: str | None = None
    message: str | None = None
    new_status: str | None = None
    new_revision: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def package_key(self) -> tuple:
        return (self.account_id, self.region, self.domain, self.repository, self.format, self.namespace,
                self.package)

    @property
    def key(self) -> tuple:
        return (*self.package_key, self.version)

    @property
    def label(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.domain}/{self.repository} {self.format} {ns}{self.package}@{self.version}"

    @property
    def open(self) -> bool:
        return self.result is None

    def skip(self, why: str, code: str | None = None) -> None:
        self.result, self.message, self.error_code = "skipped", why, code


def is_approved(value: Any) -> bool:
    """yes / true / x, case-insensitive and trimmed (a Parquet/JSON boolean True counts too)."""
    if value is True:
        return True
    return isinstance(value, str) and value.strip().lower() in APPROVED


def _text(v: Any) -> str | None:
    if v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return None
    return str(v)


def parse_time(v: Any) -> datetime | None:
    """A report timestamp (ISO text, XLSX naive UTC, or a Timestamp) as an aware UTC datetime."""
    text = _text(v)
    if text is None or text.strip() == "":
        return None
    try:
        t = pd.Timestamp(v) if not isinstance(v, str) else pd.Timestamp(text.strip())
    except (ValueError, TypeError):
        return None
    if t is pd.NaT:
        return None
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.to_pydatetime()


def _number(v: Any, kind: type) -> Any:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return kind(0)
    return kind(0) if math.isnan(x) else kind(x)


def rows_from_frame(df: pd.DataFrame, path: Path, select_all: bool) -> list[Row]:
    """The approved rows (every row with select_all). Names are taken exactly as read_table returns them."""
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise DataError(f"the report lacks the column(s) {', '.join(missing)}", where=str(path),
                        fix="pass a file written by `caa report cleanup` (columns kept as written)")
    if not select_all and "approve" not in df.columns:
        raise DataError("the report has no approve column", where=str(path),
                        fix="mark rows yes/true/x in an approve column, or pass --all --yes")
    has_revision = "revision" in df.columns
    has_last = "last_downloaded_at" in df.columns
    has_key = "row_key" in df.columns  # a row added by hand has none: nothing to check it against
    out = []
    for i, rec in enumerate(df.to_dict(orient="records"), start=1):
        if not select_all and not is_approved(rec.get("approve")):
            continue
        values = {c: _text(rec[c]) for c in REQUIRED}
        blank = [c for c in REQUIRED if c != "namespace" and not values[c]]
        if blank:
            raise DataError(f"row {i} has no {', '.join(blank)}", where=str(path),
                            fix="restore the row as `caa report cleanup` wrote it, or clear its approve cell")
        values["namespace"] = values["namespace"] or None
        row = Row(line=i, **values,
                  revision=_text(rec.get("revision")) if has_revision else None,
                  last_downloaded_at=parse_time(rec.get("last_downloaded_at")) if has_last else None,
                  reclaimable_bytes=_number(rec.get("reclaimable_bytes"), int),
                  monthly_savings_usd=_number(rec.get("monthly_savings_usd"), float))
        token = _text(rec.get("row_key")) if has_key else None
        if token and token.strip() != row_key(*(values[c] for c in ROW_NAMES)):
            row.skip("its names are not the ones the report wrote (a spreadsheet saves version 1.10 as 1.1, or "
                     "account 012345678901 as 12345678901): open the CSV with every column as text, or review "
                     "the XLSX report", "CHANGED")
        out.append(row)
    return out


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def report_time(path: Path, df: pd.DataFrame) -> tuple[datetime, str]:
    """When the report was made, and where that came from (see the module docstring)."""
    if "generated_at" in df.columns:
        times = [t for t in (parse_time(v) for v in df["generated_at"]) if t is not None]
        if times:
            return min(times), "its generated_at column"
    path = Path(path)
    mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    m = _NAME_STAMP.search(path.stem)
    if m:
        named = datetime.strptime(m.group(1), "%Y%m%dT%H%M").replace(tzinfo=UTC)
        if named <= mtime:
            return named, "the time in its file name"
    return mtime, "the file's modification time"


def download_skip(row: Row, newest: datetime | None, count: int, report_at: datetime,
                  counted_last: bool) -> str | None:
    """Why `row` must be skipped for a download newer than the report knew, or None.

    newest/count: the newest download of the version in the store and how many there are after the cut-off;
    counted_last: the report has a last_downloaded_at column (empty = no download up to the report).
    """
    if newest is None:
        return None
    if newest > report_at:
        return (f"downloaded after the report: {count} download(s) since {report_at:%Y-%m-%d %H:%M}Z, "
                f"the last at {newest:%Y-%m-%d %H:%M:%S}Z")
    if counted_last and (row.last_downloaded_at is None or newest > row.last_downloaded_at + TOLERANCE):
        known = f"{row.last_downloaded_at:%Y-%m-%d %H:%M:%S}Z" if row.last_downloaded_at else "none"
        return (f"downloaded at {newest:%Y-%m-%d %H:%M:%S}Z, which the report did not count "
                f"(its last download: {known}); make a new report")
    return None


def fresh_skip(row: Row, fresh: dict[str, Any] | None, target_status: str | None) -> str | None:
    """Compare a row's expected status and revision with the fresh list_package_versions entry."""
    if fresh is None:
        return "no longer in the repository (list_package_versions does not show it)"
    status, revision = fresh.get("status"), fresh.get("revision")
    if status != row.expected_status:
        hint = (" (a previous, interrupted run may have changed it; its call would fail safe anyway)"
                if status == target_status else "")
        return f"status changed: {status} now, {row.expected_status} expected{hint}"
    if row.expected_revision is None:
        return "no revision known to guard the change: run `caa collect inventory` and make a new report"
    if revision != row.expected_revision:
        return f"revision changed: {revision} now, {row.expected_revision} expected"
    return None


def batches(rows: list[Row]) -> list[list[Row]]:
    """Open rows grouped by package and expected status (one expectedStatus per call), ≤ BATCH_SIZE each,
    in report order."""
    groups: dict[tuple, list[Row]] = defaultdict(list)
    for r in rows:
        if r.open:
            groups[(*r.package_key, r.action, r.expected_status)].append(r)
    return [g[i:i + BATCH_SIZE] for g in groups.values() for i in range(0, len(g), BATCH_SIZE)]


def call_params(spec: ActionSpec, batch: list[Row]) -> dict[str, Any]:
    """The API parameters of one batch: names exactly as in the report, expectedStatus and (where the
    operation has it) versionRevisions."""
    r = batch[0]
    params: dict[str, Any] = {"domain": r.domain, "domainOwner": r.account_id, "repository": r.repository,
                              "format": r.format, "package": r.package, "versions": [b.version for b in batch],
                              "expectedStatus": r.expected_status}
    if r.namespace is not None:
        params["namespace"] = r.namespace
    if spec.revisions:
        params["versionRevisions"] = {b.version: b.expected_revision for b in batch}
    if spec.operation == "update_package_versions_status":
        params["targetStatus"] = spec.target_status
    return params


def record_response(batch: list[Row], response: dict[str, Any]) -> None:
    """Mark each version of a batch ok or failed from successfulVersions / failedVersions."""
    ok, failed = response.get("successfulVersions", {}), response.get("failedVersions", {})
    for r in batch:
        if r.version in ok:
            r.result, r.new_status, r.new_revision = "ok", ok[r.version].get("status"), ok[r.version].get("revision")
        elif r.version in failed:
            r.result, r.error_code = "failed", failed[r.version].get("errorCode")
            r.message = failed[r.version].get("errorMessage") or r.error_code
        else:
            r.result, r.error_code = "failed", "NOT_REPORTED"
            r.message = "the response named this version neither successful nor failed"


def by_domain(rows: list[Row]) -> list[dict[str, Any]]:
    """Versions, reclaimable bytes and $/month per (account, region, domain) of the open rows."""
    sums: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        if not r.open and r.result != "planned":
            continue
        s = sums.setdefault((r.account_id, r.region, r.domain), {"versions": 0, "bytes": 0, "usd": 0.0})
        s["versions"] += 1
        s["bytes"] += r.reclaimable_bytes
        s["usd"] += r.monthly_savings_usd
    return [{"account_id": k[0], "region": k[1], "domain": k[2], **v} for k, v in sorted(sums.items())]


RESULT_COLUMNS = ["run_id", "line", "account_id", "region", "domain", "repository", "format", "namespace",
                  "package", "version", "action", "expected_status", "expected_revision", "result",
                  "error_code", "message", "new_status", "new_revision"]


def result_frame(rows: list[Row], run_id: int) -> pd.DataFrame:
    recs = [{"run_id": run_id, **{c: getattr(r, c) for c in RESULT_COLUMNS[1:]}} for r in rows]
    return pd.DataFrame(recs, columns=RESULT_COLUMNS).astype(object)


def result_path(path: Path) -> Path:
    """`<input stem>.result.<ext>` beside the input."""
    path = Path(path)
    return path.with_name(f"{path.stem}.result{path.suffix}")


def adopt_archived(rows: list[Row]) -> None:
    """Staged rows already Archived in the report and in AWS (re-checked by check_fresh) but never archived
    by caa: no call is made; the archived window starts now."""
    for r in rows:
        if r.open and r.action == "staged:archive" and r.expected_status == "Archived":
            r.result, r.new_status, r.new_revision = "ok", "Archived", r.expected_revision
            r.message = "already Archived before this run: no call made; its archived window starts now"


def print_plan(rows: list[Row], action: str, echo: Callable[[str], None], title: str) -> None:
    spec = ACTIONS.get(action)
    echo(title)
    for d in by_domain(rows):
        frees = (f"frees {d['bytes'] / 1024**3:,.2f} GiB, ${d['usd']:,.2f}/month" if spec is None or spec.frees_storage
                 else f"frees nothing yet ({d['bytes'] / 1024**3:,.2f} GiB, ${d['usd']:,.2f}/month once disposed)")
        echo(f"  {d['account_id']} {d['region']} {d['domain']}: {d['versions']:,} versions; {frees}")
    skipped = [r for r in rows if r.result == "skipped"]
    for r in skipped[:50]:
        echo(f"  skipped row {r.line} {r.label}: {r.message}")
    if len(skipped) > 50:
        echo(f"  ... {len(skipped) - 50:,} more skipped rows in the result file")


def confirm_domains(rows: list[Row], action: str, ask: Callable[[str], str], yes: bool,
                    echo: Callable[[str], None]) -> None:
    """Each domain must be confirmed by typing its name exactly (a stray Enter confirms nothing)."""
    if yes:
        return
    for d in by_domain(rows):
        typed = ask(f"Type the domain name to {action} {d['versions']:,} versions in {d['account_id']} "
                    f"{d['region']} {d['domain']} (anything else skips this domain)")
        if (typed or "").strip() != d["domain"]:
            echo(f"  {d['domain']}: not confirmed, nothing done there")
            for r in rows:
                if r.open and (r.account_id, r.region, r.domain) == (d["account_id"], d["region"], d["domain"]):
                    r.skip("not confirmed at the prompt")
