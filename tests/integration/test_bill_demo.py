"""The bill on the demo estate: the demo's CUR 2.0 export is written from the generator's truth (bytes per
client IP, requests per repository, storage per domain), the model from what the collectors stored. So
reconciling them checks the model; allocating the bill must keep every domain and day to the cent."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

import pandas as pd
import pytest

from analytics import billed, billing, costs, transfer
from core import store
from core.settings import load_settings
from tests.helpers import NO_CONFIG, rows


@pytest.fixture(scope="module")
def demo(demo_store):
    db, truth = demo_store(11, 20_000)
    return db, truth


def reader(db):
    return store.open_reader(db), load_settings(NO_CONFIG, db=db)


def last_full_month(db) -> tuple[date, date]:
    con, settings = reader(db)
    try:
        return costs.last_full_month(costs.coverage(con).last_full_day)
    finally:
        con.close()


def test_the_bill_splits_across_domains_and_days_to_the_cent(demo):
    db, _ = demo
    first, last = last_full_month(db)
    con, settings = reader(db)
    try:
        alloc, tax = billed.allocation(con, settings, first, last)
        by_version, _ = billed.billed_report(con, settings, first, last, by="version")
    finally:
        con.close()
    # the bill per domain and day, after the account's credits for the month, from the lines themselves
    factor = {a: 1 + c / u for a, u, c in rows(db, (
        "SELECT account_id, sum(unblended_cost) FILTER (WHERE line_item_type = 'Usage'), "
        "coalesce(sum(unblended_cost) FILTER (WHERE line_item_type IN ('Credit', 'Refund')), 0) "
        "FROM cur_line_items WHERE billing_period = ? GROUP BY ALL"), [first])}
    want = defaultdict(float)
    for a, d, day, cost in rows(db, (
            "SELECT account_id, domain, usage_date, sum(unblended_cost) FROM cur_line_items "
            "WHERE line_item_type = 'Usage' AND billing_period = ? "
            "GROUP BY ALL"), [first]):
        want[(d, day)] += cost * factor[a]
    got = alloc.groupby(["domain", "usage_date"], dropna=False)["usd"].sum()
    assert len(got) == len(want)
    for (d, day), total in want.items():
        assert got[(d, day)] == pytest.approx(total, abs=0.005), (d, day)  # to the cent
    # down to versions and principals nothing is lost, and the tax is reported apart
    assert by_version["cost_usd"].sum() == pytest.approx(sum(want.values()), abs=0.005)
    assert tax == pytest.approx(rows(db, "SELECT sum(unblended_cost) FROM cur_line_items WHERE line_item_type = 'Tax' "
                                         "AND billing_period = ?", [first])[0][0])
    assert by_version["version"].notna().mean() > 0.9  # the model placed almost all of it on versions


def test_modeled_storage_per_domain_matches_the_bill(demo):
    db, _ = demo
    first, last = last_full_month(db)
    con, settings = reader(db)
    try:
        daily = billing.reconcile(con, settings, first, last, grain="domain")
        modeled = costs.storage_daily(con, settings, first, last).groupby("domain")["storage_usd"].sum()
    finally:
        con.close()
    per = billing.summary(daily, ["domain"]).set_index("domain")
    billed_storage = dict(rows(db, (
        "SELECT domain, sum(unblended_cost) FROM cur_line_items WHERE usage_type LIKE '%TimedStorage%' "
        "AND line_item_type = 'Usage' AND usage_date BETWEEN ? AND ? GROUP BY ALL"), [first, last]))
    assert per["actual_usd"].to_dict() == pytest.approx(billed_storage)
    assert per["modeled_usd"].to_dict() == pytest.approx(modeled.to_dict())
    assert (per["diff_pct"].abs() < 1).all()  # the inventory's domain sizes are the bill's


def test_modeled_transfer_bytes_match_the_bills_per_class(demo):
    """Downloads x inventory sizes, classed by source IP against AWS's ranges, against the bill's GB (the
    generator counted the bytes it served per client IP)."""
    db, _ = demo
    first, last = last_full_month(db)
    con, settings = reader(db)
    try:
        model = transfer.daily(con, settings, first, last)
    finally:
        con.close()
    got = model.groupby(["account_id", "region", "transfer_class"])["gb"].sum().to_dict()
    want = defaultdict(float)
    for a, r, usage_type, gb in rows(db, (
            "SELECT account_id, region, usage_type, sum(usage_amount) FROM cur_line_items WHERE line_item_type = "
            "'Usage' AND (usage_type LIKE '%DataTransfer%' OR usage_type LIKE '%-AWS-Out-Bytes') "
            "AND usage_date BETWEEN ? AND ? GROUP BY ALL"), [first, last]):
        want[(a, r, transfer.bill_class(usage_type))] += gb
    assert {k for k, v in want.items() if v} == {k for k, v in got.items() if v}
    assert got == pytest.approx(dict(want), rel=0.02)
    assert any(c == "other_region" for _, _, c in got)  # the us-west-2 runner pulls from us-east-1


RAW_SERVED = """
WITH sizes AS (SELECT account_id, region, domain, repository, format, namespace, package, version, asset,
                      max(size_bytes) AS size_bytes FROM assets GROUP BY ALL)
SELECT CAST(d.event_at AT TIME ZONE 'UTC' AS DATE) AS usage_date, d.account_id, d.region, d.domain, d.repository,
       d.format, d.namespace, d.package, d.source_ip, count(*) AS downloads,
       coalesce(sum(s.size_bytes), 0)::DOUBLE AS bytes
FROM downloads AS d LEFT JOIN sizes AS s
  ON d.account_id = s.account_id AND d.region = s.region AND d.domain = s.domain AND d.repository = s.repository
 AND d.format = s.format AND d.namespace IS NOT DISTINCT FROM s.namespace AND d.package = s.package
 AND d.version = s.version AND d.asset = s.asset
WHERE d.event_at >= CAST($start AS TIMESTAMP) AT TIME ZONE 'UTC'
  AND d.event_at < CAST($end + 1 AS TIMESTAMP) AT TIME ZONE 'UTC'
GROUP BY ALL"""


def test_the_transfer_model_from_its_rollup_equals_a_scan_of_downloads(demo):
    """Per day and package, and per repository over the window, each class's bytes and downloads from the
    download_ip_days rollup (summed per class in DuckDB) equal raw downloads x sizes classed IP by IP."""
    from analytics import ip_ranges

    db, _ = demo
    first, last = last_full_month(db)
    con, settings = reader(db)
    try:
        by_package = transfer.by_repository(con, settings, first, last, level="package")
        by_repo = transfer.by_repository(con, settings, first, last, per_day=False)
        raw = con.execute(RAW_SERVED, {"start": first, "end": last}).df()
        ranges = ip_ranges.load(settings.db)
    finally:
        con.close()
    raw["transfer_class"] = [ranges.classify(ip if isinstance(ip, str) else None, r)
                             for ip, r in zip(raw["source_ip"], raw["region"], strict=True)]
    raw["internet_bytes"] = raw["bytes"].where(raw["transfer_class"] == "internet", 0.0)
    raw["in_region_bytes"] = raw["bytes"].where(raw["transfer_class"].isin(("same_region", "private",
                                                                               "aws_internal")), 0.0)
    assert raw["internet_bytes"].sum() > 0 and raw["in_region_bytes"].sum() > 0
    cols = ["downloads", "bytes", "internet_bytes", "in_region_bytes"]
    for got, keys in ((by_package, list(transfer.KEYS[:8])), (by_repo, list(transfer.KEYS[1:5]))):
        want = raw.groupby(keys, dropna=False, as_index=False)[cols].sum().sort_values(keys, ignore_index=True)
        got = got[keys + cols].sort_values(keys, ignore_index=True)
        if "usage_date" in keys:
            got["usage_date"] = got["usage_date"].astype(want["usage_date"].dtype)
        pd.testing.assert_frame_equal(got[keys + cols], want[keys + cols], check_dtype=False)


def test_the_bills_team_tag_names_the_team_when_caa_toml_does_not(demo):
    db, _ = demo
    first, last = last_full_month(db)
    con, settings = reader(db)
    try:
        teams = costs.repository_teams(con, settings)
        report, _ = billed.billed_report(con, settings, first, last, by="team")
    finally:
        con.close()
    tagged = dict(rows(db, "SELECT DISTINCT repository, resource_tags['user_team'] FROM cur_line_items "
                           "WHERE repository IS NOT NULL AND resource_tags['user_team'] IS NOT NULL"))
    assert tagged
    bill_tagged = teams[teams["team_source"] == "bill tag"]
    assert set(bill_tagged["repository"]) == set(tagged) & set(teams["repository"])
    assert all(tagged[r] == t for r, t in zip(bill_tagged["repository"], bill_tagged["team"], strict=True))
    assert set(report["team"]) >= set(tagged.values()) - {None}


def test_adjustments_list_the_free_tier_credit_and_tax_apart(demo):
    db, _ = demo
    first, last = last_full_month(db)
    con, settings = reader(db)
    try:
        adj = billing.adjustments(con, settings, first, last + timedelta(days=0))
    finally:
        con.close()
    kinds = set(adj["kind"])
    assert {"free_tier", "tax"} <= kinds
    free = adj[adj["kind"] == "free_tier"]
    assert (free["amount_usd"] == 0).all() and (free["list_value_usd"] > 0).all()
    assert (adj[adj["kind"] == "tax"]["amount_usd"] > 0).all()
