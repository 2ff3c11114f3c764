"""The demo estate's bill: an AWS Data Exports CUR 2.0 export (Parquet) written from the generator's truth.

Reads: the ground truth of demo/truth.py (storage per domain and day, requests per repository and day,
bytes served per repository and client IP) and the price table. Writes
`<root>/caa-demo-cur2/data/BILLING_PERIOD=YYYY-MM/caa-demo-cur2-00001.snappy.parquet` and the period's
`metadata/.../caa-demo-cur2-Manifest.json`, the layout AWS delivers (an "overwrite" export).

It differs from caa's model the way a real bill does:
- AWS applies the free tier to lines in its own order (by day, region, resource), not pro rata, so a
  repository's cost early in a month is $0 where the model spreads the free requests over everyone;
- amounts are rounded to 10 decimals per line (storage in GB-months, costs in USD);
- data transfer out is billed (the first 100 GB of internet transfer a month free), which the
  request/storage model does not include;
- a promotional credit on the month before the last, and sales tax on every period (cents);
- line items of other services (S3, EC2) that a reader must leave out;
- `through` cuts the open period short: a first delivery, which a later one replaces.
"""

from __future__ import annotations

import calendar
import json
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from analytics import ip_ranges
from core.aws import codeartifact_arn
from demo.moto_seed import REGION_CODES

EXPORT = "caa-demo-cur2"
GIB = 1024**3
FREE_REQUESTS = 100_000
FREE_INTERNET_GB = 100.0
TAX_RATE = 0.08
CREDIT_USD = -1.0
TS = pa.timestamp("ms")
SCHEMA = pa.schema([
    ("bill_bill_type", pa.string()), ("bill_payer_account_id", pa.string()),
    ("bill_billing_period_start_date", TS), ("bill_billing_period_end_date", TS),
    ("identity_line_item_id", pa.string()), ("identity_time_interval", pa.string()),
    ("line_item_usage_account_id", pa.string()), ("line_item_line_item_type", pa.string()),
    ("line_item_usage_start_date", TS), ("line_item_usage_end_date", TS),
    ("line_item_product_code", pa.string()), ("line_item_usage_type", pa.string()),
    ("line_item_operation", pa.string()), ("line_item_resource_id", pa.string()),
    ("line_item_usage_amount", pa.float64()), ("line_item_unblended_rate", pa.string()),
    ("line_item_unblended_cost", pa.float64()), ("line_item_net_unblended_cost", pa.float64()),
    ("line_item_currency_code", pa.string()), ("line_item_line_item_description", pa.string()),
    ("product_region_code", pa.string()), ("product_servicecode", pa.string()),
    ("product", pa.map_(pa.string(), pa.string())), ("pricing_unit", pa.string()),
    ("resource_tags", pa.map_(pa.string(), pa.string())),
])


def _dt(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC).replace(tzinfo=None)


def _month(d: date) -> date:
    return d.replace(day=1)


def _next_month(d: date) -> date:
    return (d.replace(day=28) + timedelta(days=4)).replace(day=1)


class Bill:
    """Rows of one billing period, as CUR 2.0 writes them."""

    def __init__(self, period: date, payer: str):
        self.period, self.payer, self.rows = period, payer, []

    def add(self, account: str, day: date | None, *, kind: str = "Usage", product: str = "AWSCodeArtifact",
            usage_type: str, operation: str, resource: str | None, amount: float, rate: float, cost: float,
            description: str, region: str | None, unit: str | None, tags: dict[str, str] | None = None) -> None:
        start = _dt(day) if day else _dt(self.period)
        end = _dt(day + timedelta(days=1)) if day else _dt(_next_month(self.period))
        cost = round(cost, 10)
        self.rows.append({
            "bill_bill_type": "Anniversary", "bill_payer_account_id": self.payer,
            "bill_billing_period_start_date": _dt(self.period),
            "bill_billing_period_end_date": _dt(_next_month(self.period)),
            "identity_line_item_id": f"{self.period:%Y%m}-{len(self.rows):07d}",
            "identity_time_interval": f"{start:%Y-%m-%dT%H:%M:%SZ}/{end:%Y-%m-%dT%H:%M:%SZ}",
            "line_item_usage_account_id": account, "line_item_line_item_type": kind,
            "line_item_usage_start_date": start, "line_item_usage_end_date": end,
            "line_item_product_code": product, "line_item_usage_type": usage_type,
            "line_item_operation": operation, "line_item_resource_id": resource or "",
            "line_item_usage_amount": round(amount, 10), "line_item_unblended_rate": f"{rate:.10f}",
            "line_item_unblended_cost": cost, "line_item_net_unblended_cost": cost,
            "line_item_currency_code": "USD", "line_item_line_item_description": description,
            "product_region_code": region or "", "product_servicecode": product,
            "product": [("region", region or ""), ("servicename", product)], "pricing_unit": unit or "",
            "resource_tags": list((tags or {}).items()),
        })


def _tags(repo_tags: dict[tuple[str, str], dict[str, str]], domain: str, repository: str | None) -> dict[str, str]:
    """CUR 2.0 spells an enabled user tag `team` as the key `user_team`."""
    return {f"user_{k.replace('-', '_')}": v for k, v in repo_tags.get((domain, repository or ""), {}).items()}


def bills(truth: dict[str, Any], prices: Any, accounts: list[str], repo_tags: dict[tuple[str, str], dict[str, str]],
          through: date) -> dict[date, Bill]:
    """Every period's rows up to and including `through`."""
    payer = accounts[0]
    out: dict[date, Bill] = {}

    def bill(d: date) -> Bill:
        return out.setdefault(_month(d), Bill(_month(d), payer))

    for r in truth["billing_domains"]:
        d = date.fromisoformat(r["date"])
        if d > through or not r["storage_byte_hours"]:
            continue
        price = prices.for_region(r["region"])[0]
        gb_mo = r["storage_byte_hours"] / (GIB * calendar.monthrange(d.year, d.month)[1] * 24)
        bill(d).add(r["account_id"], d, usage_type=f"{REGION_CODES[r['region']]}-TimedStorage-ByteHrs",
                    operation="Storage", resource=codeartifact_arn(r["account_id"], r["region"], r["domain"], None),
                    amount=gb_mo, rate=price, cost=round(gb_mo, 10) * price, region=r["region"], unit="GB-Mo",
                    description=f"${price} per GB-Mo of storage", tags=_tags(repo_tags, r["domain"], None))
    free: dict[tuple[str, date], float] = defaultdict(lambda: float(FREE_REQUESTS))
    order = sorted(truth["billing_repositories"], key=lambda r: (r["account_id"], r["date"], r["region"],
                                                                 r["domain"] or "", r["repository"] or ""))
    for r in order:
        d = date.fromisoformat(r["date"])
        if d > through or not r["domain"]:
            continue
        price = prices.for_region(r["region"])[1] / 10_000
        left = free[(r["account_id"], _month(d))]
        gratis = min(left, r["requests"])
        free[(r["account_id"], _month(d))] = left - gratis
        common = {"usage_type": f"{REGION_CODES[r['region']]}-Requests", "operation": "Requests",
                  "resource": codeartifact_arn(r["account_id"], r["region"], r["domain"], r["repository"]),
                  "region": r["region"], "unit": "Requests", "tags": _tags(repo_tags, r["domain"], r["repository"])}
        if gratis:
            bill(d).add(r["account_id"], d, amount=gratis, rate=0.0, cost=0.0, **common,
                        description="$0.00 per request - first 100,000 requests per month free")
        if r["requests"] > gratis:
            n = r["requests"] - gratis
            bill(d).add(r["account_id"], d, amount=n, rate=price, cost=n * price, **common,
                        description=f"${price * 10_000:.2f} per 10,000 requests")
    _transfer(truth, prices, through, bill, repo_tags)
    periods = sorted(out)
    for period in periods:
        b = out[period]
        for account in sorted({r["line_item_usage_account_id"] for r in b.rows}):
            usage = sum(r["line_item_unblended_cost"] for r in b.rows if r["line_item_usage_account_id"] == account)
            if account == accounts[0] and len(periods) >= 2 and period == periods[-2]:
                b.add(account, None, kind="Credit", usage_type="", operation="", resource=None, amount=0.0,
                      rate=0.0, cost=CREDIT_USD, region=None, unit=None, description="AWS Promotional Credit")
            b.add(account, None, kind="Tax", usage_type="Tax", operation="", resource=None, amount=0.0, rate=0.0,
                  cost=round(usage * TAX_RATE, 2), region=None, unit=None, description="Tax for product code AWSCodeArtifact")
            for day in sorted({r["line_item_usage_start_date"].date() for r in b.rows
                               if r["line_item_usage_account_id"] == account}):
                for product, usage_type, cost in (("AmazonS3", "TimedStorage-ByteHrs", 0.41),
                                                  ("AmazonEC2", "BoxUsage:m6i.large", 2.30)):
                    b.add(account, day, product=product, usage_type=usage_type, operation="Other", resource=None,
                          amount=1.0, rate=cost, cost=cost, region="us-east-1", unit="Hrs",
                          description=f"{product} usage (not CodeArtifact)")
    return out


def _transfer(truth: dict[str, Any], prices: Any, through: date, bill: Any,
              repo_tags: dict[tuple[str, str], dict[str, str]]) -> None:
    """Internet and inter-region transfer out per day and repository; the first 100 GB of internet transfer
    of an account's month free."""
    ranges = ip_ranges.load()
    out: dict[tuple, float] = defaultdict(float)
    for r in truth["served_bytes"]:
        d = date.fromisoformat(r["date"])
        cls = ranges.classify(r["source_ip"], r["region"])
        if d > through or cls not in ("internet", "other_region"):
            continue
        to = ranges.region(r["source_ip"]) if cls == "other_region" else None
        out[(r["account_id"], r["date"], r["region"], r["domain"], r["repository"], cls, to)] += r["bytes"]
    free: dict[tuple[str, date], float] = defaultdict(lambda: FREE_INTERNET_GB)
    for (account, day, region, domain, repo, cls, to), nbytes in sorted(out.items(), key=lambda kv: tuple(
            "" if x is None else x for x in kv[0])):
        d = date.fromisoformat(day)
        gb = nbytes / GIB
        code = REGION_CODES[region]
        common = {"resource": codeartifact_arn(account, region, domain, repo), "region": region, "unit": "GB",
                  "tags": _tags(repo_tags, domain, repo)}
        if cls == "internet":
            rate = prices.transfer_internet_usd_per_gb
            gratis = min(free[(account, _month(d))], gb)
            free[(account, _month(d))] -= gratis
            ut = f"{code}-DataTransfer-Out-Bytes"
            if gratis:
                bill(d).add(account, d, usage_type=ut, operation="Transfer", amount=gratis, rate=0.0, cost=0.0,
                            description="$0.00 per GB - first 100 GB of data transfer out free per month", **common)
            if gb > gratis:
                bill(d).add(account, d, usage_type=ut, operation="Transfer", amount=gb - gratis, rate=rate,
                            cost=(gb - gratis) * rate, description=f"${rate} per GB - data transfer out", **common)
        else:
            rate = prices.transfer_inter_region_usd_per_gb
            bill(d).add(account, d, usage_type=f"{code}-{REGION_CODES.get(to, 'USW2')}-AWS-Out-Bytes",
                        operation="InterRegion", amount=gb, rate=rate, cost=gb * rate,
                        description=f"${rate} per GB - inter-region data transfer out", **common)


def write(root: Path, periods: dict[date, Bill], only: list[date] | None = None) -> list[Path]:
    """Write (replace) each period's data file and manifest; returns the data files written."""
    written = []
    for period, b in sorted(periods.items()):
        if only is not None and period not in only:
            continue
        part = f"BILLING_PERIOD={period:%Y-%m}"
        data = root / EXPORT / "data" / part
        data.mkdir(parents=True, exist_ok=True)
        path = data / f"{EXPORT}-00001.snappy.parquet"
        tmp = path.with_name("." + path.name + ".tmp")
        pq.write_table(pa.Table.from_pylist(b.rows, schema=SCHEMA), tmp, compression="snappy")
        tmp.replace(path)
        meta = root / EXPORT / "metadata" / part
        meta.mkdir(parents=True, exist_ok=True)
        (meta / f"{EXPORT}-Manifest.json").write_text(json.dumps({
            "exportName": EXPORT, "billingPeriod": {"start": f"{period}T00:00:00.000Z",
                                                    "end": f"{_next_month(period)}T00:00:00.000Z"},
            "dataFiles": [f"s3://demo-billing/{EXPORT}/data/{part}/{path.name}"]}, indent=1))
        written.append(path)
    return written
