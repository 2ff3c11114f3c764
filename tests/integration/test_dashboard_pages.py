"""Every dashboard page under AppTest on the demo estate: no exception, numbers equal SQL over the store,
filters from the URL change the numbers, and an empty store shows the hint on every page."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import PAGES
from tests.fixtures.small_store import build_empty_store
from tests.helpers import rows

APP = str(Path(__file__).resolve().parents[2] / "dashboard.py")
NO_DATA = "No data yet: run `make demo` or `caa collect`."


@pytest.fixture
def demo(demo_store, monkeypatch, tmp_path):
    db, truth = demo_store(11, 20_000)
    monkeypatch.setenv("CAA_DB", str(db))
    (tmp_path / "caa.toml").write_text("")
    monkeypatch.setenv("CAA_CONFIG", str(tmp_path / "caa.toml"))
    return db


def run(**query) -> AppTest:
    at = AppTest.from_file(APP)
    for k, v in query.items():
        at.query_params[k] = v
    at.run(timeout=60)
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_on_the_demo_estate(demo, page):
    at = run(page=page)
    assert at.title[0].value == "CodeArtifact Analytics"
    assert at.sidebar.radio[0].value == page
    assert not [i for i in at.info if i.value == NO_DATA]


def test_health_page_numbers_equal_sql(demo):
    at = run(page="health")
    (ok,), = rows(demo, "SELECT count(*) FROM (SELECT status FROM collector_runs QUALIFY row_number() OVER "
                       "(PARTITION BY collector, scope ORDER BY started_at DESC, run_id DESC) = 1) WHERE status = 'ok'")
    assert metrics(at)["Collector scopes OK"] == str(ok)
    counts = at.dataframe[-1].value
    (events,), = rows(demo, "SELECT count(*) FROM events")
    assert int(counts.loc[counts["table_name"] == "events", "row_count"].iloc[0]) == events


def test_a_domain_filter_in_the_url_changes_the_numbers(demo):
    everything = metrics(run())["Downloads (30 d)"]
    at = run(domains=["acme"])
    (acme,), = rows(demo, "SELECT count(*) FROM downloads WHERE domain = 'acme' AND event_at >= "
                          "(SELECT max(event_at)::DATE - 29 FROM events WHERE domain = 'acme')")
    assert metrics(at)["Downloads (30 d)"] == f"{acme:,}" != everything
    assert at.sidebar.multiselect(key="f_domains").value == ["acme"]
    assert at.query_params["domains"] in ("acme", ["acme"])  # AppTest shows a one-item list as its value


def test_values_that_are_not_in_the_store_are_ignored(demo):
    everything = metrics(run())["Downloads (30 d)"]
    at = run(domains=["<img src=x onerror=alert(1)>", "x' OR '1'='1"], start="garbage")
    assert metrics(at)["Downloads (30 d)"] == everything
    assert at.sidebar.multiselect(key="f_domains").value == []


@pytest.mark.parametrize("page", list(PAGES))
def test_an_empty_store_shows_the_hint_on_every_page(tmp_path, monkeypatch, page):
    db = tmp_path / "caa.duckdb"
    build_empty_store(db)
    monkeypatch.setenv("CAA_DB", str(db))
    (tmp_path / "caa.toml").write_text("")
    monkeypatch.setenv("CAA_CONFIG", str(tmp_path / "caa.toml"))
    at = run(page=page)
    assert [i.value for i in at.info] == [NO_DATA]
