"""Cleanup candidates on the demo estate collected by the real collectors (the session `demo_store`)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from analytics import cleanup as C
from core import store
from tests.helpers import make_settings


@pytest.fixture(scope="module")
def demo(demo_store):
    db, truth = demo_store()
    con = store.open_reader(db)
    settings = make_settings()
    yield con, settings, C.evaluate(con, settings), truth
    con.close()


def test_candidates_exist_and_each_names_its_rules(demo):
    con, settings, evaluated, _ = demo
    report = C.report_cleanup(con, settings)
    assert len(report) > 0
    assert list(report.columns) == C.REPORT_COLUMNS
    assert report["reason"].str.contains(r"unused|never downloaded").all()
    assert report["reason"].str.contains("age").all()
    assert report["status"].isin(settings.cleanup.statuses).all()
    assert evaluated.loc[~evaluated["candidate"], "kept_because"].str.len().gt(0).all()


def test_no_candidate_was_downloaded_within_unused_days(demo):
    con, settings, evaluated, _ = demo
    cand = evaluated[evaluated["candidate"]]
    as_of = C.store_as_of(con)
    recent = con.execute(
        "SELECT DISTINCT account_id, region, domain, repository, format, namespace, package, version FROM downloads "
        "WHERE event_at >= $since", {"since": as_of - timedelta(days=settings.cleanup.unused_days)}).fetchall()
    assert recent, "the demo has recent downloads"
    assert not set(recent) & set(cand[C.KEY].itertuples(index=False, name=None))
    assert (cand["age_days"] >= settings.cleanup.min_age_days).all()


def test_reclaimable_bytes_are_assets_held_only_by_candidates_and_fit_in_the_domain(demo):
    con, _, evaluated, _ = demo
    report = C.report_cleanup(con, make_settings())
    got = report.groupby(["account_id", "domain"])["reclaimable_bytes"].sum().to_dict()
    # the same total, straight from the store: sha256s whose every stored holder in the domain is a candidate
    con.register("cand", evaluated.loc[evaluated["candidate"], C.KEY])
    try:
        want = dict(con.execute("""
            WITH held AS (
                SELECT a.account_id, a.domain, a.sha256, max(a.size_bytes) AS size_bytes,
                       bool_and(c.version IS NOT NULL) AS only_candidates
                FROM assets a
                JOIN package_versions v USING (account_id, region, domain, repository, format, package, version)
                LEFT JOIN cand c
                  ON c.account_id = a.account_id AND c.region = a.region AND c.domain = a.domain
                 AND c.repository = a.repository AND c.format = a.format AND c.package = a.package
                 AND c.version = a.version AND c.namespace IS NOT DISTINCT FROM a.namespace
                WHERE v.namespace IS NOT DISTINCT FROM a.namespace AND v.status NOT IN ('Disposed', 'Deleted')
                GROUP BY ALL)
            SELECT account_id || '/' || domain, sum(size_bytes) FROM held WHERE only_candidates GROUP BY ALL
        """).fetchall())
        sizes = dict(con.execute("SELECT account_id || '/' || domain, asset_size_bytes FROM domains").fetchall())
    finally:
        con.unregister("cand")
    assert {f"{a}/{d}": v for (a, d), v in got.items() if v} == {k: v for k, v in want.items() if v}
    for (account, domain), freed in got.items():
        assert 0 <= freed <= sizes[f"{account}/{domain}"]
    total = C.summary(report)
    assert total["reclaimable_bytes"]["total"] == sum(got.values()) > 0
    assert total["reclaimable_bytes"]["permanent"] == sum(C.reclaimed_bytes_by_domain(report).values())


def test_external_candidates_are_refetchable_and_the_backtest_replays_the_past(demo):
    con, settings, evaluated, _ = demo
    cand = evaluated[evaluated["candidate"]]
    assert cand.loc[cand["origin_type"] == "INTERNAL", "refetchable"].eq(False).all()
    external = cand[cand["origin_type"] == "EXTERNAL"]
    assert external["refetchable"].eq(external["origin_upstream"] != "BLOCK").all()
    bt = C.backtest(con, settings)
    assert bt["days"] == settings.cleanup.backtest_days
    assert 0 <= bt["requested_after"] <= bt["selected"]
    assert 0.0 <= bt["false_deletion_rate"] <= 1.0
