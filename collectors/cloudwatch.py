"""CloudWatch collector: hourly `AWS/Usage` CallCount sums for Service=CodeArtifact, per account and region.

Reads: cloudwatch ListMetrics and GetMetricData (and sts GetCallerIdentity once, when a scope has no
configured account). Writes: `usage_metrics` (the window's rows of the scope are replaced) and the
`watermarks` row (collector "cloudwatch"), in one transaction, then bumps the store version.

CodeArtifact documents no metrics of its own; whether it publishes `AWS/Usage` series is unverified
(CODEARTIFACT.md §1), so an empty namespace is a normal outcome: rows=0, status ok.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from collectors.base import (
    CollectorSpec,
    RunContext,
    ScopeResult,
    account_region_scopes,
    clients,
    resolve_account,
)
from core import store
from core.aws import Scope

NAME = "cloudwatch"
NAMESPACE = "AWS/Usage"
METRIC = "CallCount"
SERVICE_DIMENSION = {"Name": "Service", "Value": "CodeArtifact"}
PERIOD_SECONDS = 3600
LOOKBACK = timedelta(days=14)
MAX_QUERIES = 500  # GetMetricData limit per call
IAM_ACTIONS = ("cloudwatch:ListMetrics", "cloudwatch:GetMetricData", "sts:GetCallerIdentity")


@dataclass(frozen=True)
class Window:
    start: datetime  # inclusive, UTC, on the hour
    end: datetime  # exclusive, UTC, on the hour

    @property
    def label(self) -> str:
        return f"{self.start:%Y-%m-%dT%H:%MZ}..{self.end:%Y-%m-%dT%H:%MZ}"


# ---------------------------------------------------------------- window, fetch, normalize, load

def floor_hour(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def window_for(ctx: RunContext, watermark: str | None) -> Window:
    """[ctx.since, else the watermark, else now - 14 days; now rounded down to the hour)."""
    end = floor_hour(ctx.now)
    if ctx.since is not None:
        start = datetime.combine(ctx.since, time(0), UTC)
    elif watermark:
        start = datetime.fromisoformat(watermark)
    else:
        start = ctx.now - LOOKBACK
    return Window(floor_hour(start), end)


def fetch(client: Any, window: Window) -> Iterator[dict[str, Any]]:
    """Yield {"metrics": [...]} from ListMetrics, then the raw GetMetricData pages for those series.

    Query ids are `m<i>`, where i indexes the metrics list of the first payload.
    """
    unique: dict[tuple[Any, ...], dict[str, Any]] = {}
    for page in client.get_paginator("list_metrics").paginate(
            Namespace=NAMESPACE, MetricName=METRIC, Dimensions=[SERVICE_DIMENSION]):
        for m in page.get("Metrics", []):  # moto lists a series once per data point: keep one
            dims = tuple(sorted((d["Name"], d["Value"]) for d in m.get("Dimensions", [])))
            unique.setdefault((m["Namespace"], m["MetricName"], dims), m)
    metrics = list(unique.values())
    yield {"metrics": metrics}
    for lo in range(0, len(metrics), MAX_QUERIES):
        queries = [
            {"Id": f"m{i}", "ReturnData": True,
             "MetricStat": {"Metric": metrics[i], "Period": PERIOD_SECONDS, "Stat": "Sum"}}
            for i in range(lo, min(lo + MAX_QUERIES, len(metrics)))
        ]
        for page in client.get_paginator("get_metric_data").paginate(
                MetricDataQueries=queries, StartTime=window.start, EndTime=window.end,
                ScanBy="TimestampAscending"):
            yield {"page": page}


def _utc(ts: Any) -> datetime:
    t = datetime.fromisoformat(ts.replace("Z", "+00:00")) if isinstance(ts, str) else ts
    if t.tzinfo is None:
        raise ValueError(f"naive timestamp {ts!r} in a GetMetricData result")
    return t.astimezone(UTC)


def normalize(raw: Iterable[dict[str, Any]], account_id: str, region: str) -> list[dict[str, Any]]:
    """ListMetrics + GetMetricData payloads -> usage_metrics rows (pure).

    Series that differ only in dimensions other than Resource (e.g. Class) are summed into one row per
    (metric_at, metric, resource), so the rows are unique on that key.
    """
    metrics: list[dict[str, Any]] = []
    sums: dict[tuple[datetime, str, str], float] = {}
    for payload in raw:
        if "metrics" in payload:
            metrics = payload["metrics"]
            continue
        for result in payload["page"].get("MetricDataResults", []):
            metric = metrics[int(result["Id"][1:])]
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            resource = dims.get("Resource", "")
            for ts, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=True):
                key = (_utc(ts), metric["MetricName"], resource)
                sums[key] = sums.get(key, 0.0) + float(value)
    return [
        {"metric_at": at, "account_id": account_id, "region": region, "metric": metric,
         "resource": resource, "value": value}
        for (at, metric, resource), value in sorted(sums.items())
    ]


ROW_TYPES = {"metric_at": pa.timestamp("us", tz="UTC"), "account_id": pa.string(), "region": pa.string(),
             "metric": pa.string(), "resource": pa.string(), "value": pa.float64()}


def load(con: duckdb.DuckDBPyConnection, scope: Scope, window: Window, rows: list[dict[str, Any]]) -> None:
    """Replace the scope's rows in the window and advance the watermark, in one transaction."""
    with store.load_transaction(con):
        con.execute("DELETE FROM usage_metrics WHERE account_id = ? AND region = ? "
                    "AND metric_at >= ? AND metric_at < ?",
                    [scope.account_id, scope.region, window.start, window.end])
        store.insert_rows(con, "usage_metrics", rows, ROW_TYPES)
        old = store.read_watermark(con, NAME, scope.label)
        mark = window.end if old is None else max(window.end, datetime.fromisoformat(old))
        store.write_watermark(con, NAME, scope.label, mark.isoformat())


def collect(ctx: RunContext, scope: Scope) -> ScopeResult:
    from core.aws import aws_errors

    scope = resolve_account(ctx, scope)
    window = window_for(ctx, store.read_watermark(ctx.con, NAME, scope.label))
    if window.start >= window.end:
        return ScopeResult(window=f"{window.label} (already collected up to this hour)")
    client = clients(ctx).client(scope, "cloudwatch")
    with aws_errors(scope, "cloudwatch", f"namespace {NAMESPACE}"):
        raw = list(fetch(client, window))
    rows = normalize(raw, scope.account_id, scope.region)
    load(ctx.con, scope, window, rows)
    label = window.label
    if not raw or not raw[0]["metrics"]:
        label += f" (no {NAMESPACE} series for CodeArtifact here; nothing to collect)"
    return ScopeResult(rows=len(rows), window=label)


SPEC = CollectorSpec(NAME, collect, account_region_scopes)
