"""Data transfer out, the third cost component: bytes served per repository and package, by where the
client was, priced at AWS's standard transfer rates, and the bill's transfer lines beside it.

Reads: sql/transfer_clients.sql and sql/transfer_served.sql (the transfer_days rollup, download_ip_days for
packages), the AWS IP ranges (analytics/ip_ranges.py), settings.prices.transfer_*; the bill's lines come in from analytics/billing.py.
Writes nothing.

The model: a download serves its asset's bytes (the size the inventory had for it when the download's day was
rolled up, or once it first had the asset: core/schema/016_transfer_days.sql). Where the client was is its CloudTrail source IP against
AWS's published ranges (ip_ranges.CLASSES): 'internet' is billed at transfer_internet_usd_per_gb,
'other_region' at transfer_inter_region_usd_per_gb, and 'same_region', 'private' (a VPC endpoint) and
'aws_internal' are not billed as transfer out. A GB is 1024^3 bytes, as AWS bills data transfer.
AWS's free internet transfer (100 GB a month) is shared by every service of an account; the daily model
takes prices.free_transfer_out_gb_month off CodeArtifact's own (set it to 0 when other services use it up).
Per repository and package (by_repository) the cost is before that allowance.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd

from analytics import ip_ranges
from analytics.queries import run
from core.settings import Settings

GIB = 1024**3
BILLED = ("internet", "other_region")
KEYS = ["usage_date", "account_id", "region", "domain", "repository", "format", "namespace", "package", "version"]


def price_per_gb(settings: Settings, transfer_class: str) -> float:
    p = settings.prices
    return {"internet": p.transfer_internet_usd_per_gb,
            "other_region": p.transfer_inter_region_usd_per_gb}.get(transfer_class, 0.0)


LEVELS = {"account": KEYS[1:3], "repository": KEYS[1:5], "package": KEYS[1:8]}  # transfer_served.sql's $level


def served(con: duckdb.DuckDBPyConnection, settings: Settings, since: date, until: date, level: str = "package",
           per_day: bool = True, ranges: ip_ranges.IpRanges | None = None) -> pd.DataFrame:
    """Bytes served in [since, until] per transfer class and [usage_date and] `level` ('account',
    'repository' or 'package', LEVELS), with the class's cost.

    Columns: KEYS but version (NULL where not part of `level`; usage_date NULL unless `per_day`),
    transfer_class (ip_ranges.CLASSES), downloads, unsized_downloads, bytes, gb, transfer_usd.
    Grain: sql/transfer_served.sql's. The clients are classed here (sql/transfer_clients.sql: a pair per
    source IP and region), the bytes summed per class in DuckDB.
    """
    if level not in LEVELS:
        raise ValueError(f"transfer by {level!r}: use one of {tuple(LEVELS)}")
    ranges = ranges or ip_ranges.load(settings.db)
    pairs = run(con, "transfer_clients", start=since, end=until)
    ips = [ip if isinstance(ip, str) else None for ip in pairs["source_ip"]]
    regions = [r if isinstance(r, str) else None for r in pairs["region"]]
    classes = [ranges.classify(ip, region) for ip, region in zip(ips, regions, strict=True)]
    df = run(con, "transfer_served", start=since, end=until, level=level, per_day=per_day, ips=ips,
             regions=regions, classes=classes)
    df["gb"] = df["bytes"] / GIB
    df["transfer_usd"] = df["gb"] * df["transfer_class"].map(lambda c: price_per_gb(settings, c)).astype(float)
    return df


BYTES = ["downloads", "bytes", "internet_bytes", "other_region_bytes", "in_region_bytes", "transfer_usd"]


def by_repository(con: duckdb.DuckDBPyConnection, settings: Settings, since: date, until: date,
                  level: str = "repository", per_day: bool = True) -> pd.DataFrame:
    """Modeled transfer per day (or over the window) and repository (or package), one column per class of
    bytes, largest first.

    Columns: [usage_date,] account_id, region, domain, repository[, format, namespace, package], then
    BYTES: downloads, bytes, internet_bytes, other_region_bytes, in_region_bytes (same_region + private +
    aws_internal), transfer_usd (before the free allowance).
    """
    level = "repository" if level == "repository" else "package"
    df = served(con, settings, since, until, level=level, per_day=per_day)
    keys = (["usage_date"] if per_day else []) + LEVELS[level]
    for name, classes in (("internet_bytes", ("internet",)), ("other_region_bytes", ("other_region",)),
                          ("in_region_bytes", ("same_region", "private", "aws_internal"))):
        df[name] = df["bytes"].where(df["transfer_class"].isin(classes), 0.0)
    out = df.groupby(keys, dropna=False, as_index=False)[BYTES].sum()
    return out if per_day else out.sort_values("bytes", ascending=False, ignore_index=True)


def daily(con: duckdb.DuckDBPyConnection, settings: Settings, since: date, until: date) -> pd.DataFrame:
    """Modeled transfer per day, account, region and billed class ('internet' | 'other_region'), with the
    free internet allowance (prices.free_transfer_out_gb_month per account and calendar month, consumed
    in date order, then region order, from the 1st of the month) taken off.

    Columns: usage_date, account_id, region, transfer_class, gb, billable_gb, transfer_usd."""
    df = served(con, settings, since.replace(day=1), until, level="account")
    df = df[df["transfer_class"].isin(BILLED)]
    df = df.groupby(["usage_date", "account_id", "region", "transfer_class"], as_index=False)[["gb"]].sum()
    df = df.sort_values(["account_id", "usage_date", "region", "transfer_class"], ignore_index=True)
    month = pd.to_datetime(df["usage_date"]).dt.to_period("M")
    internet = df["gb"].where(df["transfer_class"] == "internet", 0.0)
    cum = internet.groupby([df["account_id"], month]).cumsum()
    free = settings.prices.free_transfer_out_gb_month
    free_used = (cum.clip(upper=free) - (cum - internet).clip(upper=free)).clip(lower=0)
    df["billable_gb"] = df["gb"] - free_used
    df["transfer_usd"] = df["billable_gb"] * df["transfer_class"].map(lambda c: price_per_gb(settings, c)).astype(float)
    return df[pd.to_datetime(df["usage_date"]).dt.date >= since].reset_index(drop=True)


def bill_class(usage_type: str | None) -> str:
    """The transfer class of a bill usage type: <R>-DataTransfer-Out-Bytes -> 'internet',
    <R1>-<R2>-AWS-Out-Bytes -> 'other_region', anything else (regional, inbound) -> 'in_region'."""
    u = usage_type or ""
    if u.endswith("-AWS-Out-Bytes"):
        return "other_region"
    if "DataTransfer-Out" in u:
        return "internet"
    return "in_region"
