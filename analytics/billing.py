"""The bill (CUR 2.0) next to the model: reconciliation at the finest grain the bill has, the lines that
are not usage (free tier, credits, discounts, refunds, tax), and the bill's team tags.

Reads (through analytics.queries): sql/bill_*.sql over cur_line_items; the model through
analytics.costs and analytics.transfer. Writes nothing.

Grains (CodeArtifact's user guide, tagging and cost allocation: storage costs are tied to domains, most
request usage to repositories), each per UTC day, account and region:
- 'usage_type': every kind (storage, requests, transfer) of an account and region;
- 'domain': storage per domain;
- 'repository': requests per repository (domain-level requests, e.g. GetAuthorizationToken, have
  repository NULL).
The last two need an export with resource IDs; without them they are empty and `grain_note` says why.
Amounts are the bill's unblended cost of its usage lines (gross: credits, discounts and tax are shown
apart by `adjustments`), set beside the model's cost of the same day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import numpy as np
import pandas as pd

from analytics import costs, transfer
from analytics.queries import run
from core.settings import Settings

GRAINS: dict[str, list[str]] = {
    "usage_type": ["usage_date", "account_id", "region", "kind"],
    "domain": ["usage_date", "account_id", "region", "domain", "kind"],
    "repository": ["usage_date", "account_id", "region", "domain", "repository", "kind"],
}
USAGE_KINDS = ("storage", "requests", "transfer")
ADJUSTMENTS = ("free_tier", "credit", "discount", "refund", "tax", "fee")
COLUMNS = ["modeled_usd", "actual_usd", "diff_usd", "diff_pct", "modeled_quantity", "actual_quantity",
           "quantity_diff_pct"]


@dataclass(frozen=True)
class BillCoverage:
    first_date: date | None
    last_date: date | None
    periods: int
    lines: int
    with_resources: int
    usage_lines: int

    @property
    def has_resources(self) -> bool:
        return self.with_resources > 0


def coverage(con: duckdb.DuckDBPyConnection) -> BillCoverage:
    r = run(con, "bill_coverage").iloc[0]
    day = costs._date  # noqa: SLF001 - the same NULL-safe date conversion
    return BillCoverage(day(r.first_date), day(r.last_date), int(r.periods), int(r.lines),
                        int(r.with_resources or 0), int(r.usage_lines or 0))


def has_bill(con: duckdb.DuckDBPyConnection) -> bool:
    return coverage(con).lines > 0


def lines(con: duckdb.DuckDBPyConnection, since: date, until: date) -> pd.DataFrame:
    """sql/bill_lines.sql over [since, until]."""
    df = run(con, "bill_lines", start=since, end=until)
    df["usage_date"] = pd.to_datetime(df["usage_date"]).dt.date
    return df


def window(con: duckdb.DuckDBPyConnection, since: date | None, until: date | None) -> tuple[date, date] | None:
    """The full days both the bill and the model cover, narrowed to [since, until]; None when none."""
    bill, cov = coverage(con), costs.coverage(con)
    firsts = [bill.first_date, cov.first_snapshot_date, cov.first_full_day]
    lasts = [bill.last_date, cov.last_full_day]
    if any(d is None for d in (*firsts, *lasts)):
        return None
    start = max([*firsts, *([since] if since else [])])
    end = min([*lasts, *([until] if until else [])])
    return (start, end) if start <= end else None


def window_note(con: duckdb.DuckDBPyConnection, since: date | None, until: date | None,
                asked_as: str = "--since/--until") -> str:
    """Why window(con, since, until) found no day: what the bill and the model each cover, and what to run
    or ask for (call it when window() answered None; `asked_as` names what set since and until)."""
    bill, cov = coverage(con), costs.coverage(con)
    billed = f"{bill.first_date}..{bill.last_date}" if bill.first_date and bill.last_date else "no day"
    if cov.first_snapshot_date is None or cov.first_full_day is None or cov.last_full_day is None:
        return (f"no day to reconcile: the bill covers {billed}, the model none (it prices storage snapshots and "
                "events: run `caa collect inventory` and `caa collect cloudtrail`)")
    modeled = f"{max(cov.first_snapshot_date, cov.first_full_day)}..{cov.last_full_day}"
    asked = f" within {asked_as} ({since or '...'}..{until or '...'})" if since or until else ""
    return f"no day to reconcile{asked}: the bill covers {billed}, the model {modeled}"


def grain_note(con: duckdb.DuckDBPyConnection, grain: str) -> str | None:
    """Why a grain has no rows, or None."""
    bill = coverage(con)
    if bill.lines == 0:
        return "no bill collected yet: set [cur] sources and run `caa collect cur`"
    if grain != "usage_type" and not bill.has_resources:
        return ("the CUR 2.0 export has no resource IDs, so the bill has no per-domain or per-repository "
                "lines: turn on \"Include resource IDs\" in the export (AWS Data Exports) and the next "
                "delivery brings them")
    return None


# ---------------------------------------------------------------- the model at the bill's grains

def _modeled(con: duckdb.DuckDBPyConnection, settings: Settings, start: date, end: date, grain: str) -> pd.DataFrame:
    """Modeled cost and quantity at `grain`: columns GRAINS[grain], modeled_usd, modeled_quantity (the domain
    grain is storage only, the repository grain requests only, as the bill ties them)."""
    keys = GRAINS[grain]
    parts = []
    if grain in ("usage_type", "domain"):
        parts.append(costs.storage_daily(con, settings, start, end).rename(
            columns={"storage_usd": "modeled_usd", "gb_month": "modeled_quantity"}).assign(kind="storage"))
    if grain in ("usage_type", "repository"):
        parts.append(costs.request_attribution(con, settings, start, end, keys=[k for k in keys if k != "kind"]).rename(
            columns={"requests_usd": "modeled_usd", "requests": "modeled_quantity"}).assign(kind="requests"))
    if grain == "usage_type":
        parts.append(transfer.daily(con, settings, start, end).rename(
            columns={"transfer_usd": "modeled_usd", "gb": "modeled_quantity"}).assign(kind="transfer"))
    df = pd.concat([p.reindex(columns=[*keys, "modeled_usd", "modeled_quantity"]) for p in parts], ignore_index=True)
    df["modeled_quantity"] = df["modeled_quantity"].astype(float)
    return df.groupby(keys, dropna=False, as_index=False)[["modeled_usd", "modeled_quantity"]].sum()


def _billed(bill: pd.DataFrame, grain: str) -> pd.DataFrame:
    keys = GRAINS[grain]
    usage = bill[bill["kind"].isin(USAGE_KINDS)]
    if grain == "domain":
        usage = usage[(usage["kind"] == "storage") & usage["domain"].notna()]
    elif grain == "repository":
        usage = usage[(usage["kind"] == "requests") & usage["domain"].notna()]
    return usage.groupby(keys, dropna=False, as_index=False).agg(
        actual_usd=("unblended_cost", "sum"), actual_quantity=("quantity", "sum"))


def _with_diffs(df: pd.DataFrame) -> pd.DataFrame:
    """diff_usd, diff_pct and quantity_diff_pct of modeled vs actual, added to `df`."""
    df["diff_usd"] = df["modeled_usd"] - df["actual_usd"]
    df["diff_pct"] = costs._diff_pct(df["modeled_usd"], df["actual_usd"])  # noqa: SLF001
    df["quantity_diff_pct"] = costs._diff_pct(df["modeled_quantity"], df["actual_quantity"])  # noqa: SLF001
    return df


def reconcile(con: duckdb.DuckDBPyConnection, settings: Settings, since: date | None = None,
              until: date | None = None, grain: str = "usage_type") -> pd.DataFrame:
    """Modeled vs billed per day at `grain` (GRAINS), over the days both cover.

    Columns: GRAINS[grain], then modeled_usd, actual_usd (the bill's usage lines, unblended), diff_usd
    (modeled - actual), diff_pct, modeled_quantity, actual_quantity (GB-Mo, requests or GB),
    quantity_diff_pct. Empty when the bill and the model share no full day (or the grain needs resource
    IDs the export lacks: grain_note).
    """
    keys = GRAINS[grain]
    days = window(con, since, until)
    if days is None or grain_note(con, grain):
        return pd.DataFrame(columns=[*keys, *COLUMNS])
    modeled = _modeled(con, settings, *days, grain)
    billed = _billed(lines(con, *days), grain)
    for df in (modeled, billed):
        df["usage_date"] = pd.to_datetime(df["usage_date"]).dt.date
    df = modeled.merge(billed, on=keys, how="outer")
    for c in ("modeled_usd", "actual_usd", "modeled_quantity", "actual_quantity"):
        df[c] = df[c].astype(float).fillna(0.0)
    return _with_diffs(df).sort_values(keys, ignore_index=True, na_position="first")[[*keys, *COLUMNS]]


def summary(daily: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """reconcile()'s rows added up `by` (e.g. ["account_id", "kind"] or ["domain"]), with the first and last
    day and the differences. Columns: by, first_day, last_day, COLUMNS."""
    values = ["modeled_usd", "actual_usd", "modeled_quantity", "actual_quantity"]
    if daily.empty:
        return pd.DataFrame(columns=[*by, "first_day", "last_day", *COLUMNS])
    df = daily.groupby(by, dropna=False, as_index=False).agg(
        first_day=("usage_date", "min"), last_day=("usage_date", "max"), **{v: (v, "sum") for v in values})
    return _with_diffs(df)[[*by, "first_day", "last_day", *COLUMNS]]


# ---------------------------------------------------------------- what is not usage

def adjustments(con: duckdb.DuckDBPyConnection, settings: Settings, since: date, until: date) -> pd.DataFrame:
    """The bill's lines that are not priced usage, per billing period and account: the free tier (usage
    AWS charged $0 for, with what it would have cost at the price table), credits, discounts, refunds,
    tax and fees.

    Columns: billing_period, account_id, kind (ADJUSTMENTS), lines, usage_amount, amount_usd (as billed:
    credits and discounts negative, the free tier $0), list_value_usd (the free tier's usage at list
    price; NaN for the others). Grain: one row per (billing_period, account_id, kind) with lines.
    """
    b = lines(con, since, until)
    free = b[b["free_tier"]].assign(kind="free_tier")
    other = b[b["kind"].isin(ADJUSTMENTS)]
    df = pd.concat([free, other], ignore_index=True)
    if df.empty:
        return pd.DataFrame(columns=["billing_period", "account_id", "kind", "lines", "usage_amount",
                                     "amount_usd", "list_value_usd"])
    storage, request = zip(*(settings.prices.for_region(r if isinstance(r, str) else "") for r in df["region"]),
                           strict=True)
    is_req = df["usage_type"].fillna("").str.contains("Requests")
    rate = np.where(is_req, np.array(request) / 10_000, np.array(storage))
    df["list_value_usd"] = np.where(df["kind"] == "free_tier", df["usage_amount"].fillna(0) * rate, np.nan)
    out = df.groupby(["billing_period", "account_id", "kind"], as_index=False).agg(
        lines=("kind", "size"), usage_amount=("usage_amount", "sum"), amount_usd=("unblended_cost", "sum"),
        list_value_usd=("list_value_usd", "sum"))
    out.loc[out["kind"] != "free_tier", "list_value_usd"] = np.nan
    out["billing_period"] = pd.to_datetime(out["billing_period"]).dt.date
    return out


def tag_teams(con: duckdb.DuckDBPyConnection, settings: Settings) -> pd.DataFrame:
    """The team the bill's cost-allocation tag (settings.costs.bill_team_tag) names for each repository:
    the repository's own tag, else its domain's. Columns: account_id, region, domain, repository, team."""
    key = settings.costs.bill_team_tag
    cols = ["account_id", "region", "domain", "repository", "team"]
    if not key:
        return pd.DataFrame(columns=cols)
    tags = run(con, "bill_resource_tags", key=key)
    tags = tags[tags["team"].notna()]
    repos = tags[tags["repository"].notna()][cols]
    domains = tags[tags["repository"].isna()][["account_id", "region", "domain", "team"]]
    return pd.concat([repos, domains.assign(repository=None)[cols]], ignore_index=True)
