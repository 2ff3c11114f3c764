"""Golden payloads -> rows for the cloudwatch and costs collectors, their windows, and the demo's price
arithmetic (demo.moto_seed)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from botocore.stub import Stubber

from collectors import cloudwatch, costexplorer
from core import settings
from demo import moto_seed

ACCT = "111122223333"  # scrubbed
GIB = 1024**3


def _dims(resource: str, klass: str = "None") -> list[dict[str, str]]:
    return [{"Name": "Service", "Value": "CodeArtifact"}, {"Name": "Type", "Value": "API"},
            {"Name": "Resource", "Value": resource}, {"Name": "Class", "Value": klass}]


# What ListMetrics + GetMetricData return (shape validated against the botocore model below).
CW_LIST = {"Metrics": [
    {"Namespace": "AWS/Usage", "MetricName": "CallCount", "Dimensions": _dims("ReadFromRepository")},
    {"Namespace": "AWS/Usage", "MetricName": "CallCount", "Dimensions": _dims("ListPackages")},
    {"Namespace": "AWS/Usage", "MetricName": "CallCount", "Dimensions": _dims("ReadFromRepository", "Other")},
]}
T0 = datetime(2025, 3, 2, 9, tzinfo=UTC)
T1 = datetime(2025, 3, 2, 10, tzinfo=UTC)
CW_DATA = {"MetricDataResults": [
    {"Id": "m0", "Label": "CallCount", "Timestamps": [T0, T1], "Values": [120.0, 80.0], "StatusCode": "Complete"},
    {"Id": "m1", "Label": "CallCount", "Timestamps": [T1], "Values": [3.0], "StatusCode": "Complete"},
    {"Id": "m2", "Label": "CallCount", "Timestamps": [T1], "Values": [5.0], "StatusCode": "Complete"},
]}

CE_PAGE_1 = {
    "GroupDefinitions": moto_seed.GROUP_DEFINITIONS,
    "NextPageToken": "token-2",
    "ResultsByTime": [{
        "TimePeriod": {"Start": "2025-03-01", "End": "2025-03-02"}, "Total": {}, "Estimated": False,
        "Groups": [
            {"Keys": [ACCT, "USE1-TimedStorage-ByteHrs"],
             "Metrics": {"UnblendedCost": {"Amount": "0.4032258065", "Unit": "USD"},
                         "UsageQuantity": {"Amount": "8.0645161290", "Unit": "GB-Mo"}}},
            {"Keys": [ACCT, "Global-Requests"],
             "Metrics": {"UnblendedCost": {"Amount": "0", "Unit": "USD"},
                         "UsageQuantity": {"Amount": "50000", "Unit": "Requests"}}},
        ]}],
    "DimensionValueAttributes": [],
}
CE_PAGE_2 = {
    "GroupDefinitions": moto_seed.GROUP_DEFINITIONS,
    "ResultsByTime": [
        {"TimePeriod": {"Start": "2025-03-01", "End": "2025-03-02"}, "Total": {}, "Estimated": False,
         "Groups": [{"Keys": [ACCT, "USE1-Requests"],
                     "Metrics": {"UnblendedCost": {"Amount": "0.0000000000", "Unit": "USD"},
                                 "UsageQuantity": {"Amount": "50000", "Unit": "Requests"}}}]},
        {"TimePeriod": {"Start": "2025-03-02", "End": "2025-03-03"}, "Total": {}, "Estimated": True, "Groups": []},
    ],
    "DimensionValueAttributes": [],
}


def test_golden_payloads_match_the_botocore_model():
    cw = boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    ce = boto3.client("ce", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(cw) as s1, Stubber(ce) as s2:  # add_response validates against the output shape
        s1.add_response("list_metrics", CW_LIST)
        s1.add_response("get_metric_data", CW_DATA)
        s2.add_response("get_cost_and_usage", CE_PAGE_1)
        s2.add_response("get_cost_and_usage", CE_PAGE_2)


def test_cloudwatch_rows_are_hourly_sums_per_operation():
    rows = cloudwatch.normalize([{"metrics": CW_LIST["Metrics"]}, {"page": CW_DATA}], ACCT, "eu-west-1")
    base = {"account_id": ACCT, "region": "eu-west-1", "metric": "CallCount"}
    assert rows == [
        {**base, "metric_at": T0, "resource": "ReadFromRepository", "value": 120.0},
        {**base, "metric_at": T1, "resource": "ListPackages", "value": 3.0},
        {**base, "metric_at": T1, "resource": "ReadFromRepository", "value": 85.0},  # two Classes summed
    ]


def test_cloudwatch_normalize_accepts_iso_strings_and_nothing():
    page = {"MetricDataResults": [{"Id": "m1", "Timestamps": ["2025-03-02T10:00:00Z"], "Values": [2]}]}
    rows = cloudwatch.normalize([{"metrics": CW_LIST["Metrics"]}, {"page": page}], ACCT, "us-east-1")
    assert [(r["metric_at"], r["resource"], r["value"]) for r in rows] == [(T1, "ListPackages", 2.0)]
    assert cloudwatch.normalize([{"metrics": []}], ACCT, "us-east-1") == []


def test_cost_rows_from_every_page():
    rows = costexplorer.normalize([CE_PAGE_1, CE_PAGE_2])
    assert [(r["usage_date"], r["usage_type"], r["cost_usd"], r["usage_quantity"], r["unit"]) for r in rows] == [
        (date(2025, 3, 1), "Global-Requests", 0.0, 50000.0, "Requests"),
        (date(2025, 3, 1), "USE1-Requests", 0.0, 50000.0, "Requests"),
        (date(2025, 3, 1), "USE1-TimedStorage-ByteHrs", 0.4032258065, 8.064516129, "GB-Mo"),
    ]
    assert {r["account_id"] for r in rows} == {ACCT}


def _ctx(now: datetime, since: date | None = None) -> SimpleNamespace:
    return SimpleNamespace(now=now, since=since)


def test_cost_window_first_run_watermark_and_since():
    now = datetime(2026, 1, 15, 8, tzinfo=UTC)
    assert costexplorer.window_for(_ctx(now), None) == costexplorer.Window(date(2024, 12, 1), date(2026, 1, 15))
    assert costexplorer.window_for(_ctx(now), "2026-01-10").start == date(2026, 1, 7)  # CE restates 3 days
    assert costexplorer.window_for(_ctx(now, date(2025, 6, 1)), "2026-01-10").start == date(2025, 6, 1)


def test_cloudwatch_window_is_whole_hours():
    now = datetime(2026, 1, 15, 8, 42, 7, tzinfo=UTC)
    w = cloudwatch.window_for(_ctx(now), None)
    assert (w.start, w.end) == (datetime(2026, 1, 1, 8, tzinfo=UTC), datetime(2026, 1, 15, 8, tzinfo=UTC))
    w = cloudwatch.window_for(_ctx(now), "2026-01-15T05:00:00+00:00")
    assert w.start == datetime(2026, 1, 15, 5, tzinfo=UTC)


# ------------------------------------------------------------------ the demo's price arithmetic

PRICES = settings.load_settings(Path("/nonexistent")).prices


def _month(account: str, region: str, days: int, byte_hours_per_day: int, requests_by_day: dict[int, int],
           year: int = 2025, month: int = 6) -> list[dict]:
    return [{"date": date(year, month, d).isoformat(), "account_id": account, "region": region,
             "requests": requests_by_day.get(d, 0), "storage_byte_hours": byte_hours_per_day}
            for d in range(1, days + 1)]


def _groups(results: list[dict]) -> list[tuple[str, str, float, float]]:
    return [(r["TimePeriod"]["Start"], g["Keys"][1], float(g["Metrics"]["UnblendedCost"]["Amount"]),
             float(g["Metrics"]["UsageQuantity"]["Amount"])) for r in results for g in r["Groups"]]


def test_250_gb_for_a_30_day_month_costs_12_50():
    billing = _month(ACCT, "us-east-1", 30, 250 * GIB * 24, {})
    groups = _groups(moto_seed.cost_results(billing, PRICES, [ACCT], date(2025, 6, 1), date(2025, 7, 1))[ACCT])
    assert {g[1] for g in groups} == {"USE1-TimedStorage-ByteHrs"}
    assert sum(g[3] for g in groups) == pytest.approx(250.0)  # GB-Mo
    assert sum(g[2] for g in groups) == pytest.approx(250 * 0.05) == pytest.approx(12.50)


def test_3_1_million_requests_in_a_month_cost_15_00_after_the_free_100k():
    by_day = {d: 100_000 for d in range(1, 31)} | {15: 200_000}  # 3,100,000 in June
    billing = _month(ACCT, "us-east-2", 30, 0, by_day)
    groups = _groups(moto_seed.cost_results(billing, PRICES, [ACCT], date(2025, 6, 1), date(2025, 7, 1))[ACCT])
    regional = [g for g in groups if g[1] == "USE2-Requests"]
    free = [g for g in groups if g[1] == "Global-Requests"]
    assert sum(g[3] for g in regional) == 3_100_000  # all requests, free ones included
    assert sum(g[2] for g in regional) == pytest.approx((3_100_000 - 100_000) / 10_000 * 0.05) == 15.00
    assert [(g[0], g[2], g[3]) for g in free] == [("2025-06-01", 0.0, 100_000)]  # the free part, at $0
    assert regional[0][2] == 0.0  # day 1 is entirely free


def test_free_requests_restart_each_month_and_count_from_the_first():
    billing = (_month(ACCT, "eu-west-1", 30, 0, {d: 10_000 for d in range(1, 31)})
               + _month(ACCT, "eu-west-1", 31, 0, {d: 10_000 for d in range(1, 32)}, month=7))
    # The window starts mid-June: June 1-9 already used 90,000 of the free 100,000.
    groups = _groups(moto_seed.cost_results(billing, PRICES, [ACCT], date(2025, 6, 10), date(2025, 8, 1))[ACCT])
    june = sum(g[2] for g in groups if g[0] < "2025-07" and g[1] == "EU-Requests")
    july = sum(g[2] for g in groups if g[0] >= "2025-07" and g[1] == "EU-Requests")
    assert june == pytest.approx((300_000 - 100_000) / 10_000 * 0.05)
    assert july == pytest.approx((310_000 - 100_000) / 10_000 * 0.05)
    assert groups[0][:2] == ("2025-06-10", "EU-Requests")


def test_region_prices_and_codes_come_from_the_table():
    prices = settings.load_settings(Path("/nonexistent"), prices={
        "free_requests_per_month": 0, "regions": {"eu-central-1": {"request_usd_per_10k": 0.06}}}).prices
    billing = [{"date": "2025-06-01", "account_id": ACCT, "region": "eu-central-1", "requests": 10_000,
                "storage_byte_hours": 0}]
    groups = _groups(moto_seed.cost_results(billing, prices, [ACCT], date(2025, 6, 1), date(2025, 6, 2))[ACCT])
    assert groups == [("2025-06-01", "EUC1-Requests", pytest.approx(0.06), 10_000)]
    with pytest.raises(Exception, match="ap-south-1"):
        moto_seed.cost_results([{**billing[0], "region": "ap-south-1"}], prices, [ACCT],
                               date(2025, 6, 1), date(2025, 6, 2))


def test_cost_pages_chain_by_token_and_cover_every_day():
    results = moto_seed.cost_results([], PRICES, [ACCT], date(2025, 6, 1), date(2025, 7, 1))[ACCT]
    pages = moto_seed.cost_pages(ACCT, results, page_days=7)
    assert len(pages) == 5 and len(results) == 30
    assert [("NextPageToken" in p) for p in pages] == [True] * 4 + [False]
    assert sum(len(p["ResultsByTime"]) for p in pages) == 30


def test_usage_datums_spread_each_days_requests_over_finished_hours():
    now = datetime(2025, 6, 3, 12, 20, tzinfo=UTC)
    billing = [{"date": f"2025-06-0{d}", "account_id": ACCT, "region": "us-east-1", "requests": 1000,
                "storage_byte_hours": 0} for d in (1, 2, 3)]
    datums = moto_seed.usage_datums(billing, now, days=14)[(ACCT, "us-east-1")]
    by_day: dict[int, float] = {}
    for d in datums:
        assert d["Timestamp"] < datetime(2025, 6, 3, 12, tzinfo=UTC)
        by_day[d["Timestamp"].day] = by_day.get(d["Timestamp"].day, 0) + d["Value"]
    assert by_day[1] == by_day[2] == 1000  # whole days: every request accounted for
    assert 0 < by_day[3] < 1000  # today: only the hours already over
    ops = {next(x["Value"] for x in d["Dimensions"] if x["Name"] == "Resource") for d in datums}
    assert "ReadFromRepository" in ops and "GetAuthorizationToken" in ops
