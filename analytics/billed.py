"""Billed allocation (`caa report costs --basis billed`): the bill's CodeArtifact amounts, after credits
and discounts, allocated down to repository, package, version, principal and team with the model's shares.

Reads: the bill's lines (analytics/billing.py) and the model's shares: sql/cost_asset_shares.sql (a
domain's storage over its assets), sql/cost_request_items.sql (a day's requests by repository, package,
version and principal) and the transfer model's bytes (analytics/transfer.py). Writes nothing.

How (per UTC day, account and region):
1. Each usage line's cost is its net unblended cost (after discounts) when the export has it, else its
   unblended cost. Credits, refunds and, when the usage lines carry no net cost, discount lines are spread
   over their account and billing period's usage lines pro rata: line x (1 + adjustments / usage of the
   whole period), so a full period adds up to usage + adjustments. Tax is not allocated (`tax_usd`).
2. A line lands where the bill puts it: storage on its domain, requests and transfer on their repository
   (or on the domain, for domain-level requests). A line without a resource id (an export without
   resource IDs) is split over the model's domains (storage, by GB-months), repositories (requests, by
   requests) or repositories' billed transfer bytes of that day, account and region.
3. Below that, the model's shares: storage over the domain's asset rows, requests over the day's request
   items of the repository, transfer over the packages' bytes served out of the region.
So the amounts of a domain and day add up to the bill's for that domain and day; what the model cannot
place (a day without modeled requests) stays on the level above, never lost.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import duckdb
import pandas as pd

from analytics import billing, costs, transfer
from analytics.queries import run
from core.errors import ConfigError
from core.settings import Settings

KINDS = ("storage", "requests", "transfer", "other_usage")
ADJUSTING = ("credit", "refund", "discount")
SITE = ["usage_date", "account_id", "region"]
FINE = [*SITE, "domain", "repository", "format", "namespace", "package", "version", "principal_arn"]
VALUES = ["storage_usd", "requests_usd", "transfer_usd", "other_usd", "cost_usd"]


AMOUNTS = ["usd", "gross", "qty"]  # what _split spreads: billed after adjustments, unblended, usage amount


def usage_lines(con: duckdb.DuckDBPyConnection, since: date, until: date, spread: tuple[str, ...] = ADJUSTING
                ) -> tuple[pd.DataFrame, float]:
    """The bill's usage lines in [since, until] with `usd` after their share of the `spread` adjustments
    (credits, refunds, discounts), `gross` (unblended) and `qty` (usage amount; 0 for Global-* free-tier
    lines, whose usage the regional lines already count), and the window's tax."""
    b = billing.lines(con, since.replace(day=1), costs.next_month_start(until) - timedelta(days=1))
    period_keys = ["billing_period", "account_id"]
    usage = b[b["kind"].isin(KINDS)].copy()
    netted = usage.groupby(period_keys)["has_net"].any().rename("netted").reset_index()
    adj = b[b["kind"].isin(spread)].merge(netted, on=period_keys, how="left")
    adj = adj[~((adj["kind"] == "discount") & adj["netted"].fillna(False).astype(bool))]
    usage["cost"] = usage["net_cost"].where(usage["has_net"], usage["unblended_cost"]).astype(float)
    totals = usage.groupby(period_keys, as_index=False)["cost"].sum().rename(columns={"cost": "period_usage"})
    adjust = adj.groupby(period_keys, as_index=False)["unblended_cost"].sum().rename(
        columns={"unblended_cost": "period_adjust"})
    usage = usage.merge(totals, on=period_keys, how="left").merge(adjust, on=period_keys, how="left")
    factor = (usage["period_adjust"].fillna(0.0) / usage["period_usage"]).where(usage["period_usage"] != 0, 0.0)
    usage["usd"] = usage["cost"] * (1 + factor)
    usage["gross"] = usage["unblended_cost"].astype(float)
    usage["qty"] = usage["quantity"].astype(float)
    inside = (usage["usage_date"] >= since) & (usage["usage_date"] <= until)
    tax = b[(b["kind"] == "tax") & (b["usage_date"] >= since) & (b["usage_date"] <= until)]["unblended_cost"].sum()
    return usage[inside].reset_index(drop=True), float(tax)


def _split(rows: pd.DataFrame, shares: pd.DataFrame, on: list[str], weight: str) -> pd.DataFrame:
    """Each row of `rows` (with AMOUNTS) spread over the `shares` rows that match it `on`, by `weight`; a
    row with no match is kept whole with the share columns empty."""
    if rows.empty:
        return rows
    s = shares[shares[weight] > 0].copy()
    s["_w"] = s[weight] / s.groupby(on, dropna=False)[weight].transform("sum")
    cols = [c for c in s.columns if c not in rows.columns or c in on]
    out = rows.merge(s[cols], on=on, how="left")
    for c in AMOUNTS:
        out[c] = out[c] * out["_w"].fillna(1.0)
    return out.drop(columns=[c for c in ("_w", weight) if c in out.columns])


def _place(rows: pd.DataFrame, anchor: str, model: pd.DataFrame, weight: str) -> pd.DataFrame:
    """Lines whose resource id gave them `anchor` (domain or repository) stay there; the others (an export
    without resource IDs) are spread over the `model` rows of their day, account and region by `weight`."""
    loose = rows[rows[anchor].isna()].drop(columns=[c for c in model.columns if c in rows.columns and c not in SITE])
    return pd.concat([rows[rows[anchor].notna()], _split(loose, model, SITE, weight)], ignore_index=True)


def allocation(con: duckdb.DuckDBPyConnection, settings: Settings, since: date, until: date,
               spread: tuple[str, ...] = ADJUSTING) -> tuple[pd.DataFrame, float]:
    """The finest billed rows: FINE keys, kind, usd, gross, qty. Returns (rows, tax_usd of the window)."""
    usage, tax = usage_lines(con, since, until, spread)
    items = costs.request_attribution(con, settings, since, until)[[*FINE, "requests"]]
    items["usage_date"] = pd.to_datetime(items["usage_date"]).dt.date
    storage_model = costs.storage_daily(con, settings, since, until)[[*SITE, "domain", "gb_month"]]
    storage_model["usage_date"] = pd.to_datetime(storage_model["usage_date"]).dt.date
    moved = transfer.by_repository(con, settings, since, until, level="package")
    moved["usage_date"] = pd.to_datetime(moved["usage_date"]).dt.date
    moved["out_bytes"] = moved["internet_bytes"] + moved["other_region_bytes"]
    base = usage[[*SITE, "domain", "repository", "kind", *AMOUNTS]]
    repo = [*SITE, "domain", "repository"]
    parts = []
    # storage: on the domain, else over the model's domains; then over the domain's asset rows
    placed = _place(base[base["kind"] == "storage"], "domain", storage_model, "gb_month")
    start_at = datetime.combine(since, time(0), tzinfo=UTC)
    end_at = datetime.combine(until + timedelta(days=1), time(0), tzinfo=UTC)
    shares = run(con, "cost_asset_shares", split=settings.costs.shared_asset_split, start_at=start_at, end_at=end_at,
                 level="asset")
    keys = ["account_id", "region", "domain"]
    parts.append(_split(placed.drop(columns="repository"), shares[[*keys, *FINE[4:9], "share"]], keys, "share"))
    # requests and other usage: on the repository (or domain), else over the day's repositories
    per_repo = items.groupby(repo, dropna=False, as_index=False)["requests"].sum()
    placed = _place(base[base["kind"].isin(("requests", "other_usage"))], "domain", per_repo, "requests")
    parts.append(_split(placed, items, repo, "requests"))
    # transfer: on the repository, else over the day's repositories by bytes served out of the region
    repo_bytes = moved.groupby(repo, dropna=False, as_index=False)["out_bytes"].sum()
    placed = _place(base[base["kind"] == "transfer"], "repository", repo_bytes, "out_bytes")
    parts.append(_split(placed, moved[[*repo, *FINE[5:8], "out_bytes"]], repo, "out_bytes"))
    out = pd.concat([p.reindex(columns=[*FINE, "kind", *AMOUNTS]) for p in parts], ignore_index=True)
    return out, tax


def billed_report(con: duckdb.DuckDBPyConnection, settings: Settings, since: date | None = None,
                  until: date | None = None, by: str = "repository") -> tuple[pd.DataFrame, float]:
    """The bill allocated `by` one of costs.LEVELS over [since, until] (default: as cost_report).

    Columns: LEVELS[by], storage_usd, requests_usd, transfer_usd, other_usd, cost_usd, share_pct; rows add
    up to the window's billed CodeArtifact usage after credits and discounts. Returns (table, tax_usd).
    """
    if by not in costs.LEVELS:
        raise ConfigError(f"cannot group costs by {by!r}", where="cost report", fix=f"use one of {', '.join(costs.LEVELS)}")
    if not billing.has_bill(con):
        raise ConfigError("no bill collected yet, so there is nothing billed to allocate", where="--basis billed",
                          fix="set [cur] sources and run `caa collect cur`, or use --basis modeled")
    since, until = costs.default_window(con, since, until)
    rows, tax = allocation(con, settings, since, until)
    keys = costs.LEVELS[by]
    if by == "team":
        rows = costs._with_team(rows, costs.repository_teams(con, settings), settings)  # noqa: SLF001
    names = {"storage": "storage_usd", "requests": "requests_usd", "transfer": "transfer_usd",
             "other_usage": "other_usd"}
    for kind, col in names.items():
        rows[col] = rows["usd"].where(rows["kind"] == kind, 0.0)
    df = rows.groupby(keys, dropna=False, as_index=False)[VALUES[:-1]].sum()
    df["cost_usd"] = df[VALUES[:-1]].sum(axis=1)
    df = df[df[VALUES[:-1]].abs().sum(axis=1) > 0]
    total = df["cost_usd"].sum()
    df["share_pct"] = df["cost_usd"] / total * 100 if total else 0.0
    return df.sort_values(["cost_usd", *keys], ascending=[False, *[True] * len(keys)],
                          ignore_index=True)[[*keys, *VALUES, "share_pct"]], tax
