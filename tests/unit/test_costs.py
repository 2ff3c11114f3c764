"""analytics/costs and analytics/forecast on small hand-built stores whose costs are worked out by hand
with the AWS price-list arithmetic ($0.05 per GB-month where a GB is 1024^3 bytes, $0.05 per 10,000
requests, 100,000 free requests per account and calendar month)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from analytics import costs, overview
from analytics import forecast as fc
from core import store
from demo.moto_seed import cost_results
from tests.fixtures.small_store import build_small_store
from tests.helpers import make_settings, writer

GIB = 1024**3
A, B = "111111111111", "222222222222"
JUNE = (date(2025, 6, 1), date(2025, 6, 30))
EVENT_COLS = "event_id, event_at, event_name, account_id, region, domain, repository, format, namespace, " \
             "package, version, asset, principal_arn, error_code"


def snapshots(con, account, region, domain, gib, first=JUNE[0], last=JUNE[1]):
    con.execute(
        "INSERT INTO storage_snapshots SELECT CAST(d AS DATE), $a, $r, $dom, $bytes, d + INTERVAL 23 HOUR "
        "FROM range(CAST($first AS TIMESTAMP), CAST($last AS TIMESTAMP) + INTERVAL 1 DAY, INTERVAL 1 DAY) t(d)",
        {"a": account, "r": region, "dom": domain, "bytes": int(gib * GIB), "first": first, "last": last})


def requests(con, account, region, n, first=datetime(2025, 6, 1, tzinfo=UTC), days=30, repository="app",
             principal="arn:aws:iam::111111111111:user/ci", package="lib", version=None, tag="r"):
    """n successful requests spread evenly over `days` days from `first` (plus one failed call)."""
    con.execute(
        f"INSERT INTO event_rows ({EVENT_COLS}) SELECT $prefix || i, $first + to_seconds(i * $secs // $n), "
        "'ReadFromRepository', $a, $r, 'acme', $repo, 'npm', NULL, $pkg, $ver, NULL, $p, NULL FROM range($n) t(i)",
        {"prefix": f"{tag}-{account}-{region}-", "a": account, "r": region, "n": n, "first": first, "secs": days * 86400, "repo": repository,
         "pkg": package, "ver": version, "p": principal})
    con.execute(f"INSERT INTO event_rows ({EVENT_COLS}) VALUES (?, ?, 'ReadFromRepository', ?, ?, 'acme', ?, 'npm', "
                "NULL, 'x', NULL, NULL, ?, 'AccessDenied')",
                [f"{tag}-failed-{account}{region}", first, account, region, repository, principal])


def last_event(con, at=datetime(2025, 6, 30, 23, 30, tzinfo=UTC)):
    """An event late on June 30, so June 30 is a full day."""
    con.execute(f"INSERT INTO event_rows ({EVENT_COLS}) VALUES ('late', ?, 'GetAuthorizationToken', ?, "
                "'us-east-1', 'acme', NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'AccessDenied')", [at, A])


def open_store(tmp_path, fill):
    db = tmp_path / "x.duckdb"
    with writer(db) as con:
        fill(con)
        store.bump_version(con)
    return store.open_reader(db)


def by(df, *keys):
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r for r in df.to_dict("records")}


# ---------------------------------------------------------------- the price-list arithmetic

def test_250_gib_for_a_30_day_month_and_3_1_million_requests_cost_12_50_plus_15_00(tmp_path):
    def fill(con):
        snapshots(con, A, "us-east-1", "acme", 250)
        requests(con, A, "us-east-1", 3_100_000)
        last_event(con)
    con = open_store(tmp_path, fill)
    row = costs.cost_report(con, make_settings(), *JUNE, by="account").iloc[0]
    assert row["gb_month"] == pytest.approx(250.0)  # GiB x days / days in month: GB-Mo counts 1024^3 bytes
    assert row["requests"] == 3_100_000  # the failed call is not a request
    assert row["storage_usd"] == pytest.approx(12.50)
    assert row["requests_usd"] == pytest.approx(15.00)  # (3,100,000 - 100,000) / 10,000 x $0.05
    assert row["cost_usd"] == pytest.approx(27.50)
    day = costs.cost_report(con, make_settings(), *JUNE, by="day")
    assert day["gb_month"].to_list() == pytest.approx([250 / 30] * 30)  # one day = 250 GiB x 24 h / 720 h
    assert costs.storage_daily(con, make_settings(), *JUNE)["byte_hours"].iloc[0] == 250 * GIB * 24


def test_the_free_tier_is_per_account_and_calendar_month_and_used_up_in_date_order(tmp_path):
    def fill(con):
        requests(con, A, "us-east-1", 150_000, tag="a")  # 5,000 a day: free through June 20
        requests(con, B, "us-east-1", 90_000, tag="b")  # under the free tier
        requests(con, A, "us-east-1", 120_000, first=datetime(2025, 5, 1, tzinfo=UTC), days=31, tag="may")
        last_event(con)
    con = open_store(tmp_path, fill)
    s = make_settings()
    acc = by(costs.cost_report(con, s, *JUNE, by="account"), "account_id")
    assert acc[A]["requests_usd"] == pytest.approx(50_000 / 10_000 * 0.05)  # May's use does not carry over
    assert acc[B]["requests_usd"] == 0.0
    may = by(costs.cost_report(con, s, date(2025, 5, 1), date(2025, 5, 31), by="account"), "account_id")
    assert may[A]["requests_usd"] == pytest.approx(0.10)
    daily = costs.requests_daily(con, s, *JUNE)
    a = daily[daily["account_id"] == A].set_index("usage_date")["billable_requests"]
    assert a.loc[:"2025-06-20"].sum() == 0 and a.loc["2025-06-21":].sum() == 50_000
    # a window starting mid-month still counts the free tier from the 1st
    late = costs.cost_report(con, s, date(2025, 6, 21), date(2025, 6, 30), by="account")
    assert by(late, "account_id")[A]["requests_usd"] == pytest.approx(0.25)
    # a larger free tier from the settings
    bigger = make_settings(prices={"free_requests_per_month": 200_000})
    assert costs.cost_report(con, bigger, *JUNE, by="account")["requests_usd"].sum() == 0.0


def test_per_region_overrides_price_storage_and_requests(tmp_path):
    def fill(con):
        snapshots(con, A, "eu-west-1", "acme-eu", 30)
        snapshots(con, A, "us-east-1", "acme", 30)
        requests(con, A, "us-east-1", 100_000, tag="use1")  # uses up the free tier first (region order
        requests(con, A, "us-west-2", 50_000, tag="usw2")  # within a day), then 50,000 billable
        last_event(con)
    con = open_store(tmp_path, fill)
    s = make_settings(prices={"regions": {"eu-west-1": {"storage_usd_per_gb_month": 0.10},
                                          "us-west-2": {"request_usd_per_10k": 0.20}}})
    reg = by(costs.cost_report(con, s, *JUNE, by="region"), "account_id", "region")
    assert reg[(A, "eu-west-1")]["storage_usd"] == pytest.approx(3.00)
    assert reg[(A, "us-east-1")]["storage_usd"] == pytest.approx(1.50)
    # 5,000 requests a day (2/3 us-east-1, 1/3 us-west-2) use the free tier up by June 20; the last 10
    # days' 50,000 are billable: 33,333 at $0.05 and 16,667 at $0.20 per 10,000
    assert reg[(A, "us-east-1")]["requests_usd"] == pytest.approx(33_333 / 10_000 * 0.05, abs=1e-3)
    assert reg[(A, "us-west-2")]["requests_usd"] == pytest.approx(16_667 / 10_000 * 0.20, abs=1e-3)
    assert costs.requests_daily(con, s, *JUNE)["billable_requests"].sum() == 50_000


def test_daily_model_matches_the_overview_month_to_date_cost(tmp_path):
    build_small_store(tmp_path / "small.duckdb")
    con = store.open_reader(tmp_path / "small.duckdb")
    s = make_settings()  # one price everywhere, so the free tier's split over regions cannot matter
    mtd = overview.month_to_date_cost(con, overview.as_of(con), s.prices)
    d = costs.daily_cost(con, s, *JUNE)
    assert d.loc[d["kind"] == "storage", "cost_usd"].sum() == pytest.approx(mtd.storage_usd)
    assert d.loc[d["kind"] == "requests", "cost_usd"].sum() == pytest.approx(mtd.requests_usd)


# ---------------------------------------------------------------- attribution

def shared_asset_store(con, published_b=datetime(2024, 2, 1, tzinfo=UTC), origin_b="EXTERNAL", downloads=(1, 3)):
    """Domain acme (200 GiB all June = $10.00): asset X (150 GiB) in repositories `app` (INTERNAL,
    published 2024-01-01) and `cache`; asset Y (50 GiB) in `cache` only."""
    snapshots(con, A, "us-east-1", "acme", 200)
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    for repo, ver, origin, pub in (("app", "1.0", "INTERNAL", t0), ("cache", "1.0", origin_b, published_b),
                                   ("cache", "2.0", origin_b, published_b)):
        con.execute("INSERT INTO package_versions VALUES (?, 'us-east-1', 'acme', ?, 'npm', NULL, 'lib', ?, "
                    "'Published', 'r1', ?, ?, ?, ?, NULL, NULL)", [A, repo, ver, origin, pub, t0, t0])
    for repo, ver, asset, sha, gib in (("app", "1.0", "lib-1.0.tgz", "X", 150), ("cache", "1.0", "lib-1.0.tgz", "X", 150),
                                       ("cache", "2.0", "lib-2.0.tgz", "Y", 50)):
        con.execute("INSERT INTO assets_rows VALUES (?, 'us-east-1', 'acme', ?, 'npm', NULL, 'lib', ?, ?, ?, ?)",
                    [A, repo, ver, asset, gib * GIB, sha])
    for repo, n in zip(("app", "cache"), downloads, strict=True):
        if n:
            requests(con, A, "us-east-1", n, repository=repo, version="1.0", tag=f"dl-{repo}")
            con.execute("UPDATE event_rows SET asset = 'lib-1.0.tgz' WHERE event_id LIKE ?", [f"dl-{repo}%"])
    for repo, team in (("app", "apps"), ("cache", None)):
        con.execute("INSERT INTO repositories (account_id, region, domain, repository, tags, last_seen_at) "
                    "VALUES (?, 'us-east-1', 'acme', ?, map(?::VARCHAR[], ?::VARCHAR[]), ?)",
                    [A, repo, ["team"] if team else [], [team] if team else [], t0])
    last_event(con)


@pytest.mark.parametrize(("split", "app_usd", "cache_usd"), [
    ("equal", 3.75, 6.25),  # X: 75 GiB each; Y: 50 GiB to cache
    ("first_publisher", 7.50, 2.50),  # X wholly to app (INTERNAL)
    ("download_share", 1.875, 8.125),  # X by downloads of lib 1.0 in June, 1 : 3
])
def test_each_split_rule_on_two_repositories_sharing_one_asset(tmp_path, split, app_usd, cache_usd):
    con = open_store(tmp_path, shared_asset_store)
    s = make_settings(costs={"shared_asset_split": split})
    repo = by(costs.cost_report(con, s, *JUNE, by="repository"), "repository")
    assert repo["app"]["storage_usd"] == pytest.approx(app_usd)
    assert repo["cache"]["storage_usd"] == pytest.approx(cache_usd)
    for level in ("repository", "package", "version", "team"):  # adds up to the domain's $10.00
        assert costs.cost_report(con, s, *JUNE, by=level)["storage_usd"].sum() == pytest.approx(10.00)


def test_first_publisher_is_the_earliest_when_neither_is_internal_and_download_share_falls_back_to_equal(tmp_path):
    con = open_store(tmp_path, lambda c: shared_asset_store(c, published_b=datetime(2023, 6, 1, tzinfo=UTC),
                                                           origin_b="INTERNAL", downloads=(0, 0)))
    first = by(costs.cost_report(con, make_settings(costs={"shared_asset_split": "first_publisher"}), *JUNE),
               "repository")
    assert first["cache"]["storage_usd"] == pytest.approx(10.00)  # both INTERNAL, cache published first
    share = by(costs.cost_report(con, make_settings(costs={"shared_asset_split": "download_share"}), *JUNE),
               "repository")
    assert share["app"]["storage_usd"] == pytest.approx(3.75)  # no downloads: as 'equal'



def test_download_share_counts_the_downloads_a_client_spelled_otherwise(tmp_path):
    """The inventory lists the PyPI name CodeArtifact stores (`zope-interface`); pip may fetch `Zope.Interface`,
    and CloudTrail records that. Those downloads still weigh the split (1 : 3, not the equal fallback)."""
    def fill(con):
        shared_asset_store(con)
        con.execute("UPDATE package_versions SET format = 'pypi', package = 'zope-interface'")
        con.execute("UPDATE assets_rows SET format = 'pypi', package = 'zope-interface'")
        con.execute("UPDATE event_rows SET format = 'pypi', package = 'Zope.Interface' WHERE package = 'lib'")
    con = open_store(tmp_path, fill)
    repo = by(costs.cost_report(con, make_settings(costs={"shared_asset_split": "download_share"}), *JUNE,
                                by="repository"), "repository")
    assert (repo["app"]["storage_usd"], repo["cache"]["storage_usd"]) == (pytest.approx(1.875), pytest.approx(8.125))


def test_equal_split_is_per_repository_when_one_repository_holds_an_asset_twice(tmp_path):
    def fill(con):
        shared_asset_store(con)  # and X again in cache, under version 2.0's second file: cache holds it twice
        con.execute("INSERT INTO assets_rows VALUES (?, 'us-east-1', 'acme', 'cache', 'npm', NULL, 'lib', '2.0', "
                    "'lib-2.0-bundle.tgz', ?, 'X')", [A, 150 * GIB])
    con = open_store(tmp_path, fill)
    s = make_settings(costs={"shared_asset_split": "equal"})
    repo = by(costs.cost_report(con, s, *JUNE, by="repository"), "repository")
    assert repo["app"]["storage_usd"] == pytest.approx(3.75)  # X: 75 GiB to app, not a third of 150
    assert repo["cache"]["storage_usd"] == pytest.approx(6.25)  # X: 75 GiB over its two rows; Y: 50 GiB
    rows = costs.storage_attribution(con, s, *JUNE)
    assert sorted(rows.loc[rows["sha256"] == "X", "attributed_bytes"] / GIB) == pytest.approx([37.5, 37.5, 75])

@pytest.mark.parametrize("level", ["version", "package", "repository", "domain"])
def test_storage_shares_summed_to_a_level_in_sql_are_the_asset_rows_summed(tmp_path, level):
    """A cost report reads the shares already summed to its level (a report by repository of a
    120,000-version inventory took 710 ms, most of it moving every asset row to pandas)."""
    con = open_store(tmp_path, shared_asset_store)
    s = make_settings(costs={"shared_asset_split": "download_share"})
    keys = costs.LEVELS[level]
    values = ["size_bytes", "attributed_bytes", "share", "gb_month", "storage_usd"]
    assets = costs.storage_attribution(con, s, *JUNE)
    assert level == "version" or len(assets) > len(assets.drop_duplicates(keys))  # the level sums rows
    want = assets.groupby(keys, dropna=False, as_index=False)[values].sum()
    full = costs.storage_attribution(con, s, *JUNE, level=level)
    got = full[[*keys, *values]]
    pd.testing.assert_frame_equal(*(df.astype({k: object for k in keys}).fillna({k: "" for k in keys})
                                    .sort_values(keys, ignore_index=True) for df in (got, want)), check_dtype=False)
    below = [c for c in costs.VERSION_KEYS + ["asset", "sha256"] if c not in keys]
    assert full[below].isna().all().all()


@pytest.mark.parametrize("split", ["equal", "first_publisher", "download_share"])
def test_each_versions_downloads_are_shown_at_the_version_and_asset_levels_whatever_the_split(tmp_path, split):
    """The query reads the downloads only when it uses them: the download_share split weighs by them, and the
    version and asset levels show them; every other level shows none."""
    con = open_store(tmp_path, shared_asset_store)  # June: lib 1.0 downloaded once in app, 3 times in cache
    s = make_settings(costs={"shared_asset_split": split})
    for level in ("version", "asset"):
        got = costs.storage_attribution(con, s, *JUNE, level=level)
        assert {(r.repository, r.version): r.downloads for r in got.itertuples()} == {
            ("app", "1.0"): 1, ("cache", "1.0"): 3, ("cache", "2.0"): 0}
    for level in ("package", "repository", "domain"):
        assert costs.storage_attribution(con, s, *JUNE, level=level)["downloads"].isna().all()


def test_storage_attribution_adds_up_when_the_inventory_differs_from_the_domain_size(tmp_path):
    def fill(con):
        shared_asset_store(con)
        snapshots(con, A, "us-east-1", "other", 10)  # a domain without inventory keeps its cost
    con = open_store(tmp_path, fill)
    s = make_settings()
    rep = costs.cost_report(con, s, *JUNE, by="repository")
    dom = by(costs.cost_report(con, s, *JUNE, by="domain"), "domain")
    assert rep["storage_usd"].sum() == pytest.approx(dom["acme"]["storage_usd"] + dom["other"]["storage_usd"])
    assert dom["other"]["storage_usd"] == pytest.approx(0.50)


def test_teams_come_from_settings_globs_before_the_team_tag(tmp_path):
    con = open_store(tmp_path, shared_asset_store)
    tags_only = by(costs.cost_report(con, make_settings(), *JUNE, by="team"), "team")
    assert tags_only["apps"]["storage_usd"] == pytest.approx(3.75)
    assert tags_only[costs.UNASSIGNED]["storage_usd"] == pytest.approx(6.25)  # cache has no team tag
    s = make_settings(teams={"platform": ["cach*"], "web": ["app"]})
    teams = costs.repository_teams(con, s).set_index("repository")
    assert teams.loc["app", "team"] == "web" and teams.loc["app", "team_source"] == "settings"
    got = by(costs.cost_report(con, s, *JUNE, by="team"), "team")
    assert set(got) == {"web", "platform"}
    assert got["platform"]["storage_usd"] == pytest.approx(6.25)


def test_requests_are_attributed_to_repository_package_and_principal(tmp_path):
    ci, dev = "arn:aws:iam::111111111111:user/ci", "arn:aws:iam::111111111111:user/dev"

    def fill(con):
        requests(con, A, "us-east-1", 150_000, principal=ci, repository="app", package="a", tag="ci")
        requests(con, A, "us-east-1", 50_000, principal=dev, repository="web", package="b", tag="dev")
        last_event(con)
    con = open_store(tmp_path, fill)
    s = make_settings()
    total = 100_000 / 10_000 * 0.05
    for level, key, expected in (("principal", "principal_arn", {ci: 0.75 * total, dev: 0.25 * total}),
                                 ("repository", "repository", {"app": 0.75 * total, "web": 0.25 * total}),
                                 ("package", "package", {"a": 0.75 * total, "b": 0.25 * total})):
        got = {k: r["requests_usd"] for k, r in by(costs.cost_report(con, s, *JUNE, by=level), key).items()}
        assert got == pytest.approx(expected)


# ---------------------------------------------------------------- reconciliation and forecast

def test_reconcile_equals_cost_explorer_built_by_the_demos_billing_model(tmp_path):
    def fill(con):
        snapshots(con, A, "us-east-1", "acme", 250)
        snapshots(con, A, "eu-west-1", "acme-eu", 20)
        requests(con, A, "us-east-1", 180_000, tag="use1")
        requests(con, A, "eu-west-1", 40_000, tag="euw1")
        last_event(con)
        billing = [{"date": r[0].isoformat(), "account_id": r[1], "region": r[2], "requests": r[3],
                    "storage_byte_hours": r[4]} for r in con.execute(
            "SELECT d, account_id, region, sum(req), sum(bh) FROM ("
            " SELECT CAST(event_at AS DATE) d, account_id, region, count(*) req, 0 bh FROM events"
            " WHERE error_code IS NULL GROUP BY ALL UNION ALL"
            " SELECT snapshot_date, account_id, region, 0, sum(asset_size_bytes) * 24 FROM storage_snapshots GROUP BY ALL"
            ") GROUP BY ALL").fetchall()]
        prices = make_settings(prices={"regions": {"eu-west-1": {"request_usd_per_10k": 0.10}}}).prices
        for day in cost_results(billing, prices, [A], *JUNE[0:1], JUNE[1] + timedelta(days=1))[A]:
            for g in day["Groups"]:
                m = g["Metrics"]
                con.execute("INSERT INTO cost_actuals VALUES (?, ?, ?, ?, ?, ?)",
                            [day["TimePeriod"]["Start"], A, g["Keys"][1], float(m["UnblendedCost"]["Amount"]),
                             float(m["UsageQuantity"]["Amount"]), m["UsageQuantity"]["Unit"]])
    con = open_store(tmp_path, fill)
    s = make_settings(prices={"regions": {"eu-west-1": {"request_usd_per_10k": 0.10}}})
    daily = costs.reconcile(con, s)
    assert (daily["usage_date"].min(), daily["usage_date"].max()) == JUNE
    assert daily["diff_pct"].abs().max() < 1e-6
    summary = by(costs.reconcile_summary(daily), "account_id", "kind")
    # 120,000 billable requests, some at $0.05 (us-east-1), some at $0.10 (eu-west-1) per 10,000
    assert 0.60 < summary[("all", "requests")]["actual_usd"] < 1.20
    assert summary[("all", "requests")]["modeled_usd"] == pytest.approx(summary[("all", "requests")]["actual_usd"])
    assert summary[("all", "storage")]["modeled_usd"] == pytest.approx(270 * 0.05)
    assert summary[("all", "requests")]["actual_quantity"] == 220_000  # Global-Requests not added twice


def test_forecast_of_a_steady_trend_prices_the_months_ahead_and_subtracts_a_cleanup(tmp_path):
    def fill(con):
        # +1 GiB a day from 100 GiB over 120 days (Mar 3 .. Jun 30), and a weekly request pattern
        con.execute("INSERT INTO storage_snapshots SELECT CAST(d AS DATE), $a, 'us-east-1', 'acme', "
                    "CAST((100 + i) * $gib AS BIGINT), d + INTERVAL 23 HOUR FROM (SELECT d, row_number() OVER "
                    "(ORDER BY d) - 1 AS i FROM range(TIMESTAMP '2025-03-03', TIMESTAMP '2025-07-01', "
                    "INTERVAL 1 DAY) t(d))", {"a": A, "gib": GIB})
        con.execute(  # 900 requests on weekdays, 100 on Saturdays and Sundays
            f"INSERT INTO event_rows ({EVENT_COLS}) SELECT 'w-' || i || '-' || d, d + i * INTERVAL 9 SECOND, "
            "'ReadFromRepository', $a, 'us-east-1', 'acme', 'app', 'npm', NULL, 'lib', NULL, NULL, NULL, NULL "
            "FROM range(TIMESTAMPTZ '2025-03-03 00:00+00', TIMESTAMPTZ '2025-07-01 00:00+00', INTERVAL 1 DAY) t(d), "
            "range(900) r(i) WHERE i < CASE WHEN dayofweek(d) IN (0, 6) THEN 100 ELSE 900 END", {"a": A})
        last_event(con)
    con = open_store(tmp_path, fill)
    s = make_settings(prices={"free_requests_per_month": 10_000})
    f = fc.forecast(con, s, horizon_months=3, reclaimed_bytes_by_domain={(A, "us-east-1", "acme"): 50 * GIB})
    assert f.history_end == JUNE[1]
    assert list(f.monthly["month"].unique()) == [date(2025, m, 1) for m in (7, 8, 9, 10)]
    m = f.monthly.set_index(["month", "kind"])
    base = f.baseline.set_index(["month", "kind"])
    assert len(f.monthly) == 4 * 3  # July (history ends June 30) plus 3 months, 3 kinds each
    july = base.loc[(date(2025, 7, 1), "storage")]
    # +1 GiB a day from 219 GiB on June 30: July averages 235 GiB -> $11.75 (a damped trend bends a little)
    assert july["expected_usd"] == pytest.approx(235 * 0.05, rel=0.03)
    assert july["lower_usd"] <= july["expected_usd"] <= july["upper_usd"]
    assert base.loc[(date(2025, 7, 1), "requests")]["expected_usd"] == pytest.approx(
        (23 * 900 + 8 * 100 - 10_000) / 10_000 * 0.05, rel=0.05)  # July 2025: 23 weekdays, 8 weekend days
    saved = base.loc[(date(2025, 8, 1), "storage")]["expected_usd"] - m.loc[(date(2025, 8, 1), "storage")]["expected_usd"]
    assert saved == pytest.approx(50 * 0.05, rel=1e-3)  # 50 GiB reclaimed = $2.50 a month
    assert np.isfinite(f.monthly[["lower_usd", "upper_usd"]].to_numpy()).all()
    assert f.backtest_mape < 5  # an almost noiseless trend and season are learnt
    total = m.loc[(date(2025, 9, 1), "total")]
    assert total["expected_usd"] == pytest.approx(m.loc[(date(2025, 9, 1), "storage")]["expected_usd"]
                                                  + m.loc[(date(2025, 9, 1), "requests")]["expected_usd"])
