"""Overview numbers against the small store, whose expected values were worked out by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from analytics import overview, queries
from core import store
from core.settings import Prices
from tests.fixtures.small_store import PRICES, build_empty_store, build_small_store
from ui import figures


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = tmp_path_factory.mktemp("small") / "caa.duckdb"
    expected = build_small_store(path)
    con = store.open_reader(path)
    yield con, expected
    con.close()


@pytest.fixture
def con(small):
    return small[0]


@pytest.fixture
def expected(small):
    return small[1]


@pytest.fixture
def when(con):
    return overview.as_of(con)


def test_as_of_is_the_newest_event_not_the_clock(when, expected):
    assert when.latest_event_at == expected["latest_event_at"]
    assert when.day == expected["as_of_day"]
    assert (when.window_first_day, when.month_start, when.days_in_month) == (date(2025, 6, 1), date(2025, 6, 1), 30)


def test_as_of_windows_cross_month_and_year():
    when = overview.AsOf(datetime(2024, 12, 31, 23, 59, tzinfo=UTC))
    assert when.next_month_start == date(2025, 1, 1)
    assert when.window_first_day == date(2024, 12, 2)
    assert overview.AsOf(datetime(2024, 2, 10, tzinfo=UTC)).days_in_month == 29


def test_storage_is_the_latest_snapshot_per_domain_in_gib(con, expected):
    df = overview.storage_by_domain(con)
    got = {(r.account_id, r.region, r.domain): r.storage_gb for r in df.itertuples()}
    assert got == pytest.approx(expected["storage_gb_by_domain"])
    assert ("111111111111", "us-east-1", "old") not in got  # deleted mid-month: no longer stored


def test_downloads_last_30_days_excludes_failed_metadata_and_older(con, when, expected):
    assert overview.downloads_last_30_days(con, when) == expected["downloads_30d"]


def test_requests_this_month_count_successful_events_only(con, when, expected):
    assert overview.requests_this_month(con, when) == expected["requests_this_month"]


def test_month_to_date_cost(con, when, expected):
    cost = overview.month_to_date_cost(con, when, PRICES)
    assert cost.storage_usd == pytest.approx(expected["storage_usd"])
    assert cost.requests_usd == pytest.approx(expected["requests_usd"])
    assert cost.total_usd == pytest.approx(expected["cost_usd"])
    by_account = cost.by_account_region.groupby("account_id")["requests_usd"].sum().to_dict()
    assert by_account == pytest.approx(expected["requests_usd_by_account"])  # 222 is under the free tier: $0


def test_a_whole_month_of_250_gib_at_5_cents_is_12_50(con, when):
    cost = overview.month_to_date_cost(con, when, PRICES).by_account_region
    acme = cost[(cost.account_id == "111111111111") & (cost.region == "us-east-1")].iloc[0]
    # acme 250 GiB x 30 of 30 days + old 12 GiB x 5 days = 252 GB-months at $0.05
    assert acme.storage_usd == pytest.approx(12.50 + 0.10)


def test_free_storage_and_default_prices(con, when):
    free = Prices(free_storage_gb_month=10.0, free_requests_per_month=200_000)
    cost = overview.month_to_date_cost(con, when, free)
    # 111: 252 - 10 GB-months at $0.05; 222: 15 - 10 at $0.05 (no eu-west-1 override here); 333: 0
    assert cost.storage_usd == pytest.approx(242 * 0.05 + 5 * 0.05)
    assert cost.requests_usd == 0


def test_downloads_by_day_is_zero_filled_per_format(con, when, expected):
    df = overview.downloads_by_day(con, when)
    assert len(df) == 30 * 3
    assert df.groupby("format")["downloads"].sum().to_dict() == expected["downloads_by_format"]
    assert df["downloads"].sum() == expected["downloads_30d"]
    assert (df["day"].min().date(), df["day"].max().date()) == (date(2025, 6, 1), date(2025, 6, 30))


def test_collector_freshness_shows_the_worst_latest_status(con, expected):
    df = overview.collector_freshness(con)
    assert dict(zip(df["collector"], df["status"], strict=True)) == expected["freshness"]
    inventory = df[df.collector == "inventory"].iloc[0]
    assert (inventory.scopes, inventory.failing_scopes) == (3, 1)
    assert "codeartifact:DescribeDomain" in inventory.error


def test_overview_bundles_everything(con, expected):
    data = overview.overview(con, PRICES)
    assert data.storage_gb == pytest.approx(expected["storage_gb"])
    assert (data.downloads_30d, data.requests_this_month) == (expected["downloads_30d"],
                                                               expected["requests_this_month"])
    assert data.cost.total_usd == pytest.approx(expected["cost_usd"])


def test_empty_store_has_no_overview(tmp_path):
    build_empty_store(tmp_path / "caa.duckdb")
    with store.open_reader(tmp_path / "caa.duckdb") as con:
        assert overview.as_of(con) is None
        assert overview.overview(con, Prices()) is None


def test_every_query_has_a_header():
    for name in queries.names():
        head = queries.sql(name).split("\n\n")[0]
        for part in ("Purpose:", "$params:", "Columns:", "Grain:"):
            assert part in head, f"{name}.sql lacks {part}"


def test_unknown_query_names_are_refused():
    with pytest.raises(KeyError):
        queries.sql("../collectors/schema/001_init")


def test_downloads_figure_stacks_formats_and_shows_names_literally(con, when):
    df = overview.downloads_by_day(con, when)
    fig = figures.downloads_over_time(df)
    assert sorted(t.name for t in fig.data) == ["maven", "npm", "pypi"]
    assert sum(sum(t.y) for t in fig.data) == 6
    hostile = df.assign(format="<a href='javascript:x'>npm</a>")
    assert figures.downloads_over_time(hostile).data[0].name.startswith("&lt;a href")


def test_month_to_date_breakdown_per_account_and_region(con, when, expected):
    df = overview.month_to_date_cost(con, when, PRICES).by_account_region
    got_gb = {(r.account_id, r.region): r.gb_month for r in df.itertuples() if r.gb_month}
    got_requests = {(r.account_id, r.region): r.requests for r in df.itertuples() if r.requests}
    assert got_gb == pytest.approx(expected["gb_month_by_account_region"])
    assert got_requests == expected["requests_by_account_region"]
