"""Seed a moto server with the demo estate's AWS/Usage metrics and Cost Explorer results.

`caa demo` starts moto on 127.0.0.1 (start_moto), seeds it from the estate's daily billing rows
(seed_costs, seed_usage_metrics) and then runs the real `cloudwatch` and `costs` collectors against it,
with settings.aws.endpoints = collector_endpoints(url) and every account given role_arn =
demo_role_arn(account). Reads nothing from disk and writes nothing to disk; only the moto server's
memory changes.

How moto separates accounts (moto 5.2.5, moto/core/responses.py get_current_account): MOTO_ACCOUNT_ID
in the environment wins (it would put every account in one backend, so demo_environment() removes
it), then an `x-moto-account-id` header, then the account owning the request's access key. Keys
returned by moto's sts:AssumeRole belong to the account in the role ARN (the role need not exist), so
a session that assumed `arn:aws:iam::<id>:role/caa-demo` reads and writes account <id>'s backends.
Both the seeding here and the collectors (core.aws.Clients assumes each account's role_arn)
go through that, so each account scope sees only its own series and its own Cost Explorer queue.
Without role_arn every scope would land in moto's default account 123456789012.

Cost Explorer in moto (moto/ce/models.py get_cost_and_usage) returns queued results one per call, FIFO,
per account and regardless of the parameters; a repeated identical request returns the result it got
the first time, and a new request with nothing queued returns no rows. So seed_costs queues, per
account, exactly the pages the costs collector requests for the window [start, end): page 1 without a
token, then one page per NextPageToken. Seed again before every costs run over a new window.

Cost convention (the price table is settings.Prices; region codes in REGION_CODES):
- `<CODE>-TimedStorage-ByteHrs`, unit GB-Mo, one row per account, region and day:
  quantity = byte_hours / (1024**3 * hours in that calendar month); cost = quantity * storage price of
  the region, less the free storage allowance (prices.free_storage_gb_month, default 0) which is
  consumed per account and calendar month in date order, regions in name order, at $0.
- `<CODE>-Requests`, unit Requests, one row per account, region and day: quantity = ALL requests of
  that region and day; cost = billable requests * request price / 10,000.
- The first prices.free_requests_per_month requests of each calendar month per account are free,
  consumed in date order and, within a day, in region-name order (counting from the 1st of the month
  even when `start` is later). `Global-Requests`, unit Requests, cost $0, one row per account and day
  with free requests: quantity = the free requests of that day. They are ALREADY included in the
  regional `-Requests` quantities: do not add the two.
So a month's request cost per account = max(0, requests - 100,000) / 10,000 * $0.05 with defaults.
"""

from __future__ import annotations

import calendar
import contextlib
import io
import logging
import os
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import requests

from core.clock import utc_midnight
from core.errors import DataError

REGION_CODES = {"us-east-1": "USE1", "us-east-2": "USE2", "us-west-2": "USW2", "eu-west-1": "EU",
                "eu-central-1": "EUC1"}
DEMO_ROLE = "caa-demo"
DEMO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo",
                    "AWS_DEFAULT_REGION": "us-east-1"}
MOTO_API = "http://motoapi.amazonaws.com"  # what mock_aws intercepts when there is no server
GROUP_DEFINITIONS = [{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}, {"Type": "DIMENSION", "Key": "USAGE_TYPE"}]
# Share of CodeArtifact requests per API operation, and relative load per UTC hour (busier 07-18).
OPERATIONS = {"ReadFromRepository": 0.86, "GetAuthorizationToken": 0.04, "GetRepositoryEndpoint": 0.03,
              "ListPackages": 0.02, "ListPackageVersions": 0.02, "DescribePackageVersion": 0.02,
              "PublishPackageVersion": 0.01}
HOUR_WEIGHTS = [2, 2, 2, 2, 2, 3, 5, 8, 10, 10, 10, 10, 9, 10, 10, 10, 9, 8, 6, 4, 3, 3, 2, 2]


# ---------------------------------------------------------------- server, credentials, settings

def start_moto() -> tuple[Any, str]:
    """A moto server on 127.0.0.1 (a free port); returns (server, endpoint_url). Call server.stop()."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request log on the demo's terminal
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    with contextlib.redirect_stdout(io.StringIO()):
        server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


@contextlib.contextmanager
def demo_environment() -> Iterator[None]:
    """Dummy AWS credentials in this process's environment only (never in a file), restored on exit.

    Also hides AWS_PROFILE, AWS_SESSION_TOKEN and MOTO_ACCOUNT_ID, which would otherwise win.
    """
    hidden = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "MOTO_ACCOUNT_ID")
    saved = {k: os.environ.get(k) for k in (*DEMO_CREDENTIALS, *hidden)}
    os.environ.update(DEMO_CREDENTIALS)
    for k in hidden:
        os.environ.pop(k, None)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def collector_endpoints(endpoint_url: str) -> dict[str, str]:
    """settings.aws.endpoints for the cloudwatch and costs collectors (sts for the assume-role)."""
    return {"sts": endpoint_url, "cloudwatch": endpoint_url, "ce": endpoint_url}


def demo_role_arn(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:role/{DEMO_ROLE}"


def _account_session(endpoint_url: str | None, account_id: str) -> boto3.session.Session:
    sts = boto3.client("sts", endpoint_url=endpoint_url, region_name="us-east-1",
                       aws_access_key_id="demo", aws_secret_access_key="demo")
    c = sts.assume_role(RoleArn=demo_role_arn(account_id), RoleSessionName="caa-demo-seed")["Credentials"]
    return boto3.session.Session(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                                 aws_session_token=c["SessionToken"])


# ---------------------------------------------------------------- Cost Explorer (pure part)

def region_code(region: str) -> str:
    try:
        return REGION_CODES[region]
    except KeyError:
        raise DataError(f"no Cost Explorer usage-type code for region {region}", where="billing rows",
                        fix=f"add it to REGION_CODES in {__name__}") from None


def hours_in_month(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1] * 24


def _amount(x: float, unit: str) -> dict[str, str]:
    return {"Amount": f"{x:.10f}", "Unit": unit}


def _daily_usage(billing: list[dict[str, Any]]) -> dict[tuple[str, date], dict[str, list[int]]]:
    """(account, day) -> region -> [requests, storage_byte_hours], duplicates summed."""
    out: dict[tuple[str, date], dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for row in billing:
        cell = out[(row["account_id"], date.fromisoformat(row["date"]))][row["region"]]
        cell[0] += int(row.get("requests", 0))
        cell[1] += int(row.get("storage_byte_hours", 0))
    return out


def cost_results(billing: list[dict[str, Any]], prices: Any, accounts: list[str], start: date,
                 end: date) -> dict[str, list[dict[str, Any]]]:
    """account -> ResultsByTime (one entry per day of [start, end), as Cost Explorer returns them)."""
    usage = _daily_usage(billing)
    out: dict[str, list[dict[str, Any]]] = {}
    for account in accounts:
        results = []
        day = start.replace(day=1)  # the free tier counts from the 1st of the month
        free_req = free_gb = 0.0
        while day < end:
            if day.day == 1:
                free_req, free_gb = float(prices.free_requests_per_month), float(prices.free_storage_gb_month)
            groups = []
            free_today = 0
            for region, (reqs, byte_hours) in sorted(usage.get((account, day), {}).items()):
                code = region_code(region)
                storage_price, request_price = prices.for_region(region)
                if byte_hours:
                    gb_mo = byte_hours / (1024**3 * hours_in_month(day))
                    free = min(free_gb, gb_mo)
                    free_gb -= free
                    groups.append((f"{code}-TimedStorage-ByteHrs", (gb_mo - free) * storage_price, gb_mo, "GB-Mo"))
                if reqs:
                    free = int(min(free_req, reqs))
                    free_req -= free
                    free_today += free
                    groups.append((f"{code}-Requests", (reqs - free) * request_price / 10_000, reqs, "Requests"))
            if free_today:
                groups.append(("Global-Requests", 0.0, free_today, "Requests"))
            if day >= start:
                results.append({
                    "TimePeriod": {"Start": day.isoformat(), "End": (day + timedelta(days=1)).isoformat()},
                    "Total": {},
                    "Groups": [{"Keys": [account, usage_type],
                                "Metrics": {"UnblendedCost": _amount(cost, "USD"),
                                            "UsageQuantity": _amount(qty, unit)}}
                               for usage_type, cost, qty, unit in groups],
                    "Estimated": False,
                })
            day += timedelta(days=1)
        out[account] = results
    return out


def cost_pages(account: str, results_by_time: list[dict[str, Any]], page_days: int) -> list[dict[str, Any]]:
    """Split one account's ResultsByTime into GetCostAndUsage pages chained by NextPageToken."""
    chunks = [results_by_time[i:i + page_days] for i in range(0, len(results_by_time), page_days)] or [[]]
    pages = []
    for i, chunk in enumerate(chunks):
        page: dict[str, Any] = {"GroupDefinitions": GROUP_DEFINITIONS, "ResultsByTime": chunk,
                                "DimensionValueAttributes": []}
        if i + 1 < len(chunks):
            page["NextPageToken"] = f"caa-demo-{account}-page-{i + 2}"
        pages.append(page)
    return pages


def seed_costs(endpoint_url: str | None, billing: list[dict[str, Any]], prices: Any, accounts: list[str],
               start: date, end: date, page_days: int = 31) -> dict[str, int]:
    """Queue each account's Cost Explorer pages for the window [start, end) in moto; returns pages per account.

    endpoint_url None means moto in-process (`mock_aws`). `start`/`end` must be the window the costs
    collector will request (collectors.costexplorer.window_for). Nothing is queued for an empty window.
    """
    if start >= end:
        return {}
    api = (endpoint_url or MOTO_API).rstrip("/") + "/moto-api/static/ce/cost-and-usage-results"
    queued = {}
    for account, results in cost_results(billing, prices, accounts, start, end).items():
        pages = cost_pages(account, results, page_days)
        resp = requests.post(api, json={"account_id": account, "results": pages}, timeout=30)
        if resp.status_code != 201:
            raise DataError(f"moto refused the Cost Explorer results ({resp.status_code})", where=api,
                            fix="use moto[server] >= 5.1")
        queued[account] = len(pages)
    return queued


# ---------------------------------------------------------------- CloudWatch AWS/Usage

def _split(total: int, weights: list[float]) -> list[int]:
    """Integers proportional to weights that add up to total (largest remainder)."""
    s = sum(weights)
    exact = [total * w / s for w in weights]
    parts = [int(x) for x in exact]
    for i in sorted(range(len(weights)), key=lambda i: parts[i] - exact[i])[: total - sum(parts)]:
        parts[i] += 1
    return parts


def usage_datums(billing: list[dict[str, Any]], now: datetime, days: int = 14
                 ) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(account, region) -> hourly CallCount datums for [now - days, now) rounded to the hour.

    A day's requests are spread over its 24 UTC hours by HOUR_WEIGHTS and over API operations by
    OPERATIONS, in whole calls; hours not yet over (>= now) are left out.
    """
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    out: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for (account, day), regions in sorted(_daily_usage(billing).items()):
        midnight = utc_midnight(day)
        if midnight + timedelta(days=1) <= start or midnight >= end:
            continue
        for region, (reqs, _) in sorted(regions.items()):
            for hour, hour_reqs in enumerate(_split(reqs, HOUR_WEIGHTS)):
                at = midnight + timedelta(hours=hour)
                if not start <= at < end:
                    continue
                for op, calls in zip(OPERATIONS, _split(hour_reqs, list(OPERATIONS.values())), strict=True):
                    if calls:
                        out[(account, region)].append({
                            "MetricName": "CallCount", "Timestamp": at, "Value": float(calls), "Unit": "None",
                            "Dimensions": [{"Name": "Service", "Value": "CodeArtifact"},
                                           {"Name": "Type", "Value": "API"},
                                           {"Name": "Resource", "Value": op},
                                           {"Name": "Class", "Value": "None"}]})
    return dict(out)


def seed_usage_metrics(endpoint_url: str | None, billing: list[dict[str, Any]], now: datetime,
                       days: int = 14) -> int:
    """Put AWS/Usage CallCount series into each account's (assumed-role) CloudWatch; returns datums written."""
    written = 0
    sessions: dict[str, boto3.session.Session] = {}
    for (account, region), datums in usage_datums(billing, now, days).items():
        if account not in sessions:
            sessions[account] = _account_session(endpoint_url, account)
        cw = sessions[account].client("cloudwatch", region_name=region, endpoint_url=endpoint_url)
        for i in range(0, len(datums), 1000):
            cw.put_metric_data(Namespace="AWS/Usage", MetricData=datums[i:i + 1000])
        written += len(datums)
    return written
