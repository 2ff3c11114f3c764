"""Cost Explorer collector ("costs"): daily CodeArtifact cost and usage per linked account and usage type.

Reads: ce GetCostAndUsage (SERVICE = "AWS CodeArtifact", DAILY, grouped by LINKED_ACCOUNT and
USAGE_TYPE), looping on NextPageToken by hand (there is no botocore paginator); sts
GetCallerIdentity once when no account is configured. Writes: `cost_actuals` (the window's dates are
replaced for the scope's account and every account in the results) and the `watermarks` row
(collector "costs"), in one transaction, then bumps the store version.

Cost Explorer is global (us-east-1) and restates recent days, so an incremental run re-reads the
3 days before its watermark. Each page is a billed request ($0.01).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from collectors.base import CollectorSpec, RunContext, ScopeResult, clients, resolve_account
from core import store
from core.aws import Scope

NAME = "costs"
CE_REGION = "us-east-1"
SERVICE = "AWS CodeArtifact"
RESTATEMENT = timedelta(days=3)
HISTORY_MONTHS = 13
ROW_TYPES = {"usage_date": pa.date32(), "account_id": pa.string(), "usage_type": pa.string(),
             "cost_usd": pa.float64(), "usage_quantity": pa.float64(), "unit": pa.string()}
IAM_ACTIONS = ("ce:GetCostAndUsage", "sts:GetCallerIdentity")


@dataclass(frozen=True)
class Window:
    start: date  # inclusive
    end: date  # exclusive (Cost Explorer's TimePeriod.End)

    @property
    def label(self) -> str:
        return f"{self.start}..{self.end}"


def scopes(ctx: RunContext) -> list[Scope]:
    """One scope per configured account (Cost Explorer is global), else the caller's account."""
    if not ctx.settings.accounts:
        return [Scope(account_id=None, region=CE_REGION)]
    return [Scope(a.id, CE_REGION, a.role_arn) for a in ctx.settings.accounts]


def first_day_months_ago(today: date, months: int) -> date:
    index = today.year * 12 + today.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def window_for(ctx: RunContext, watermark: str | None) -> Window:
    """From ctx.since, else the watermark minus 3 days, else the first day of the month 13 months ago;
    to today (exclusive: complete days only)."""
    today = ctx.now.date()
    if ctx.since is not None:
        start = ctx.since
    elif watermark:
        start = date.fromisoformat(watermark) - RESTATEMENT
    else:
        start = first_day_months_ago(today, HISTORY_MONTHS)
    return Window(start, today)


def request(window: Window, token: str | None = None) -> dict[str, Any]:
    """The GetCostAndUsage parameters for one page."""
    params: dict[str, Any] = {
        "TimePeriod": {"Start": window.start.isoformat(), "End": window.end.isoformat()},
        "Granularity": "DAILY",
        "Metrics": ["UnblendedCost", "UsageQuantity"],
        "Filter": {"Dimensions": {"Key": "SERVICE", "Values": [SERVICE]}},
        "GroupBy": [{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"},
                    {"Type": "DIMENSION", "Key": "USAGE_TYPE"}],
    }
    if token:
        params["NextPageToken"] = token
    return params


def fetch(client: Any, window: Window) -> Iterator[dict[str, Any]]:
    """Yield every raw GetCostAndUsage page of the window."""
    token: str | None = None
    while True:
        page = client.get_cost_and_usage(**request(window, token))
        yield page
        token = page.get("NextPageToken")
        if not token:
            return


def normalize(pages: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """GetCostAndUsage pages -> cost_actuals rows (pure). Unique on (usage_date, account_id, usage_type);
    a repeated group replaces the earlier one."""
    rows: dict[tuple[date, str, str], dict[str, Any]] = {}
    for page in pages:
        for period in page.get("ResultsByTime", []):
            day = date.fromisoformat(period["TimePeriod"]["Start"][:10])
            for group in period.get("Groups", []):
                account_id, usage_type = group["Keys"][0], group["Keys"][1]
                m = group.get("Metrics", {})
                cost = m.get("UnblendedCost", {})
                qty = m.get("UsageQuantity", {})
                rows[(day, account_id, usage_type)] = {
                    "usage_date": day, "account_id": account_id, "usage_type": usage_type,
                    "cost_usd": float(cost.get("Amount", 0) or 0),
                    "usage_quantity": float(qty.get("Amount", 0) or 0),
                    "unit": qty.get("Unit") or None,
                }
    return [rows[k] for k in sorted(rows)]


def load(con: duckdb.DuckDBPyConnection, scope: Scope, window: Window, rows: list[dict[str, Any]]) -> None:
    """Replace the window's dates (widened to any returned date) for the scope's account and the
    accounts in the rows, and advance the watermark, in one transaction."""
    accounts = sorted({scope.account_id, *(r["account_id"] for r in rows)} - {None})
    lo = min([window.start, *(r["usage_date"] for r in rows)])
    hi = max([window.end, *(r["usage_date"] + timedelta(days=1) for r in rows)])
    with store.load_transaction(con):
        con.execute("DELETE FROM cost_actuals WHERE usage_date >= ? AND usage_date < ? "
                    "AND list_contains(?, account_id)", [lo, hi, accounts])
        store.insert_rows(con, "cost_actuals", rows, ROW_TYPES)
        old = store.read_watermark(con, NAME, scope.label)
        mark = window.end if old is None else max(window.end, date.fromisoformat(old))
        store.write_watermark(con, NAME, scope.label, mark.isoformat())


def collect(ctx: RunContext, scope: Scope) -> ScopeResult:
    from core.aws import aws_errors

    scope = resolve_account(ctx, scope)
    window = window_for(ctx, store.read_watermark(ctx.con, NAME, scope.label))
    if window.start >= window.end:
        return ScopeResult(window=f"{window.label} (no complete day to collect yet)")
    client = clients(ctx).client(scope, "ce", region=CE_REGION)
    with aws_errors(scope, "ce", "Cost Explorer"):
        pages = list(fetch(client, window))
    rows = normalize(pages)
    load(ctx.con, scope, window, rows)
    label = window.label + (f" pages={len(pages)}" if len(pages) > 1 else "")
    if not rows:
        label += " (no CodeArtifact cost in this window)"
    return ScopeResult(rows=len(rows), window=label)


SPEC = CollectorSpec(NAME, collect, scopes)
