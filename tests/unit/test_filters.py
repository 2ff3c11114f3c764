"""Global filters: every analytics query sees only the filtered rows; values stay parameters."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from analytics.filters import Filters, options
from core import store
from tests.fixtures.small_store import build_small_store


@pytest.fixture
def con(tmp_path):
    db = tmp_path / "caa.duckdb"
    build_small_store(db)
    c = store.open_reader(db)
    yield c
    c.close()


def count(con, sql):
    return con.execute(sql).fetchone()[0]


def test_domain_filter_reaches_tables_and_the_downloads_view(con):
    all_events = count(con, "SELECT count(*) FROM events")
    acme = count(con, "SELECT count(*) FROM events WHERE domain = 'acme'")
    acme_downloads = count(con, "SELECT count(*) FROM downloads WHERE domain = 'acme'")
    Filters(domains=("acme",)).apply(con)
    assert count(con, "SELECT count(*) FROM events") == acme < all_events
    assert count(con, "SELECT count(*) FROM downloads") == acme_downloads
    assert count(con, "SELECT count(DISTINCT domain) FROM storage_snapshots") == 1
    Filters().apply(con)  # clearing the filters restores everything
    assert count(con, "SELECT count(*) FROM events") == all_events


def test_date_range_is_inclusive_of_both_days(con):
    day = con.execute("SELECT max(event_at)::DATE FROM events").fetchone()[0]
    expected = count(con, f"SELECT count(*) FROM events WHERE event_at::DATE = DATE '{day}'")
    Filters(start=day, end=day).apply(con)
    assert count(con, "SELECT count(*) FROM events") == expected > 0


def test_hostile_values_are_parameters_not_sql(con):
    before = count(con, "SELECT count(*) FROM events")
    Filters(domains=("x' OR '1'='1", "'); DROP TABLE events; --")).apply(con)
    assert count(con, "SELECT count(*) FROM events") == 0
    Filters().apply(con)
    assert count(con, "SELECT count(*) FROM events") == before


def test_url_round_trip_and_garbage_dates_are_ignored():
    f = Filters(accounts=("111122223333",), formats=("npm", "pypi"), start=date(2026, 1, 1), end=date(2026, 1, 31))
    q = {k: v if isinstance(v, list) else [v] for k, v in f.to_query().items()}
    assert Filters.from_query(q) == f
    assert Filters.from_query({"start": ["not-a-date"], "domains": ["a", "a", ""]}) == Filters(domains=("a",))


def test_options_list_every_value_from_the_unfiltered_store(con):
    Filters(domains=("acme",)).apply(con)
    assert "acme" in options(con)["domains"] and len(options(con)["domains"]) > 1


def test_options_offer_every_value_of_the_events_and_the_inventory(con):
    """Also a value only events have (a repository deleted since, a domain the inventory never listed)."""
    want = {}
    for name, col, table in (("accounts", "account_id", "domains"), ("regions", "region", "domains"),
                             ("domains", "domain", "domains"), ("repositories", "repository", "repositories"),
                             ("formats", "format", "package_versions")):
        want[name] = [v for (v,) in con.execute(
            f"SELECT {col} FROM {table} UNION SELECT {col} FROM events EXCEPT SELECT NULL ORDER BY 1").fetchall()]
        only_events = con.execute(f"SELECT count(*) FROM (SELECT {col} FROM events EXCEPT SELECT {col} FROM {table})"
                                  ).fetchone()[0]
        if name == "repositories":
            assert only_events > 0, "the small store has a repository only its events name"
    assert options(con) == want


def test_read_only_connection_still_refuses_writes_to_real_tables(con):
    Filters(domains=("acme",)).apply(con)
    with pytest.raises(duckdb.Error):
        con.execute('DELETE FROM "caa".main.events')
