"""Every dashboard page under AppTest on the demo estate: no exception, numbers equal SQL over the store,
filters from the URL change the numbers, and an empty store shows the hint on every page."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from analytics import billing, cleanup, costs, forecast, overview, spikes, usage
from analytics.filters import Filters
from analytics.reports import read_table
from core import store
from core.settings import load_settings
from dashboard import PAGES
from tests.fixtures.small_store import build_empty_store
from tests.helpers import rows, run_page

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "dashboard.py")
NO_DATA = "No data yet: run `make demo` or `caa collect`."


@pytest.fixture
def demo(demo_store, monkeypatch, tmp_path):
    db, truth = demo_store(11, 20_000)
    monkeypatch.setenv("CAA_DB", str(db))
    (tmp_path / "caa.toml").write_text("")
    monkeypatch.setenv("CAA_CONFIG", str(tmp_path / "caa.toml"))
    return db


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_on_the_demo_estate(demo, page):
    at = run_page(page=page)
    assert at.title[0].value == "CodeArtifact Analytics"
    assert at.sidebar.radio[0].value == page
    assert not [i for i in at.info if i.value == NO_DATA]


def test_health_page_numbers_equal_sql(demo):
    at = run_page(page="health")
    (ok,), = rows(demo, "SELECT count(*) FROM (SELECT status FROM collector_runs QUALIFY row_number() OVER "
                       "(PARTITION BY collector, scope ORDER BY started_at DESC, run_id DESC) = 1) WHERE status = 'ok'")
    assert metrics(at)["Collector scopes OK"] == str(ok)
    counts = at.dataframe[-1].value
    (events,), = rows(demo, "SELECT count(*) FROM events")
    assert int(counts.loc[counts["table_name"] == "events", "row_count"].iloc[0]) == events


def test_a_domain_filter_in_the_url_changes_the_numbers(demo):
    everything = metrics(run_page())["Downloads (30 d)"]
    at = run_page(domains=["acme"])
    (acme,), = rows(demo, "SELECT count(*) FROM downloads WHERE domain = 'acme' AND event_at >= "
                          "(SELECT max(event_at)::DATE - 29 FROM events WHERE domain = 'acme')")
    assert metrics(at)["Downloads (30 d)"] == f"{acme:,}" != everything
    assert at.sidebar.multiselect(key="f_domains").value == ["acme"]
    assert at.query_params["domains"] in ("acme", ["acme"])  # AppTest shows a one-item list as its value


def test_values_that_are_not_in_the_store_are_ignored(demo):
    everything = metrics(run_page())["Downloads (30 d)"]
    at = run_page(domains=["<img src=x onerror=alert(1)>", "x' OR '1'='1"], start="garbage")
    assert metrics(at)["Downloads (30 d)"] == everything
    assert at.sidebar.multiselect(key="f_domains").value == []


@pytest.mark.parametrize("page", list(PAGES))
def test_an_empty_store_shows_the_hint_on_every_page(tmp_path, monkeypatch, page):
    db = tmp_path / "caa.duckdb"
    build_empty_store(db)
    monkeypatch.setenv("CAA_DB", str(db))
    (tmp_path / "caa.toml").write_text("")
    monkeypatch.setenv("CAA_CONFIG", str(tmp_path / "caa.toml"))
    at = run_page(page=page)
    assert [i.value for i in at.info] == [NO_DATA]


@pytest.mark.parametrize("page", ["overview", "costs"])
def test_a_store_with_only_the_bill_says_what_the_cost_pages_need(tmp_path, monkeypatch, page):
    """A FinOps user who collected the bill first read 'No data yet: run make demo or caa collect', after
    running caa collect."""
    from collectors import cur
    from tests.fixtures.cur2_export import write_export
    from tests.helpers import collect, make_settings

    db = tmp_path / "caa.duckdb"
    export = write_export(tmp_path / "export")
    assert collect(db, [cur.SPEC], make_settings(db=db, cur={"sources": [str(export.root)]})) == 0
    monkeypatch.setenv("CAA_DB", str(db))
    (tmp_path / "caa.toml").write_text("")
    monkeypatch.setenv("CAA_CONFIG", str(tmp_path / "caa.toml"))
    (info,) = [i.value for i in run_page(page=page).info]
    assert info.startswith("The bill is collected (2026-10-01 to 2026-11-30, 2 billing period(s)), but the cost "
                           "model needs usage") and "`caa collect inventory` and `caa collect cloudtrail`" in info
    assert [i.value for i in run_page(page="usage").info] == [NO_DATA]  # nothing of the bill to show there


# ---------------------------------------------------------------- each page's numbers = analytics/ directly

def direct(db: Path, fn, filters: Filters | None = None):  # noqa: ANN001 - fn(con, settings)
    """fn(con, settings) on the reader snapshot with `filters` applied, as the dashboard's loaders run it."""
    settings = load_settings(db=db)  # CAA_CONFIG is the empty caa.toml the app reads too
    with store.open_reader(db) as con:
        (filters or Filters()).apply(con)
        return fn(con, settings)


def usd(v: float) -> str:
    return f"${v:,.2f}"


def test_overview_cost_kpis_equal_the_analytics(demo):
    at = run_page(page="overview")
    m = metrics(at)

    def expected(con, s):
        when = overview.as_of(con)
        month, _ = costs.month_to_date(con)  # the month projected
        last = (month - timedelta(days=1)).replace(day=1)
        projection = forecast.month_end_projection(con, s)
        return (projection.loc[projection["kind"] == "total", "expected_usd"].iloc[0],
                costs.daily_cost(con, s, last, month - timedelta(days=1))["cost_usd"].sum(), last,
                len(spikes.detect_spikes(con, s, when.day - timedelta(days=6))),
                cleanup.summary(cleanup.report_cleanup(con, s))["monthly_savings_usd"]["permanent"])

    projected, last_month, last, open_spikes, savings = direct(demo, expected)
    assert m["Projected month-end cost"] == usd(projected)
    assert m[f"Last month ({last:%B %Y})"] == usd(last_month)
    assert m["Open spikes (7 d)"] == f"{open_spikes:,}"
    assert m["Cleanup savings ($/month)"] == usd(savings) != "$0.00"
    assert len(at.get("plotly_chart")) == 4  # projection by domain, cost trend, downloads, movers
    with store.open_reader(demo) as con:
        early = costs.early_in_month(*costs.month_to_date(con))
    # the first days of a month lead with last month's final cost
    assert (m.get(f"{last:%B %Y}, final modeled cost") == usd(last_month)) is early


def test_costs_page_totals_equal_cost_report_and_the_forecast(demo):
    at = run_page(page="costs")
    m = metrics(at)

    def expected(con, s):
        report = costs.cost_report(con, s)  # default window: this month to the last full day
        reclaimed = cleanup.reclaimed_bytes_by_domain(cleanup.report_cleanup(con, s))
        fc = forecast.forecast(con, s, 3, reclaimed_bytes_by_domain=reclaimed)
        domains = billing.summary(billing.reconcile(con, s, grain="domain"), ["account_id", "domain"])
        return report, fc, domains

    report, fc, domains = direct(demo, expected)
    assert m["Modeled cost in the window"] == usd(report["cost_usd"].sum())
    table = at.dataframe[0].value  # the breakdown by domain (the default level)
    by_domain = report.groupby("domain")["cost_usd"].sum()
    assert dict(zip(table["domain"], table["cost_usd"], strict=True)) == pytest.approx(by_domain.to_dict())
    base = fc.baseline[fc.baseline["kind"] == "total"]["expected_usd"].iloc[1:].sum()
    after = fc.monthly[fc.monthly["kind"] == "total"]["expected_usd"].iloc[1:].sum()
    assert m["Next 3 months (expected)"] == usd(base)
    assert m["After the cleanup policy"] == usd(after) != usd(base)
    assert m["Backtest error (MAPE)"] == f"{fc.backtest_mape:,.1f}%"
    # the demo collects its CUR 2.0 bill: modeled vs billed per domain, beside its chart
    shown = next(d.value for d in at.dataframe if "domain" in d.value and "actual_usd" in d.value)
    assert dict(zip(shown["domain"], shown["actual_usd"], strict=True)) == pytest.approx(
        dict(zip(domains["domain"], domains["actual_usd"], strict=True)))
    assert m["Modeled vs billed"].endswith("%")
    assert len(at.get("plotly_chart")) == 6  # breakdown, daily, forecast, billed per day, per domain, transfer


def test_costs_level_selector_changes_the_breakdown(demo):
    at = run_page(page="costs")
    at.selectbox(key="cost_level").set_value("team").run(timeout=60)
    assert not at.exception
    teams = direct(demo, lambda con, s: costs.cost_report(con, s, by="team"))
    got = at.dataframe[0].value
    assert list(got["team"]) == list(teams["team"])
    assert got["cost_usd"].sum() == pytest.approx(teams["cost_usd"].sum())


def test_usage_page_top_package_equals_usage_report(demo):
    at = run_page(page="usage")

    def expected(con, s):
        day = overview.as_of(con).day
        return usage.usage_report(con, s, day - timedelta(days=29), day + timedelta(days=1))

    tables = direct(demo, expected)
    top = at.dataframe[0].value
    assert top.iloc[0]["package"] == tables["packages"].iloc[0]["package"]
    assert list(top["downloads"]) == list(tables["packages"]["downloads"])
    m = metrics(at)
    assert m["Downloads in the window"] == f"{tables['origin_share']['downloads'].sum():,}"
    assert m["Repositories without traffic"] == f"{len(tables['idle_repositories']):,}"
    for by in ("repository", "package"):
        at.selectbox(key="usage_by").set_value(by).run(timeout=60)
        assert not at.exception
        assert at.get("plotly_chart")


def test_spikes_page_lists_what_detect_spikes_finds(demo):
    at = run_page(page="spikes")

    def expected(con, s):
        return spikes.detect_spikes(con, s, overview.as_of(con).day - timedelta(days=89))

    found = direct(demo, expected)
    assert len(found) > 0
    m = metrics(at)
    assert m["Spikes"] == f"{len(found):,}"
    assert m["Auth-failure bursts"] == f"{int((found['kind'] == 'auth').sum()):,}"
    table = at.dataframe[0].value
    assert len(table) == len(found)
    # choosing a spike shows its drivers
    last = len(found) - 1
    at.selectbox(key="spike_pick").set_value(last).run(timeout=60)
    drivers = at.dataframe[1].value
    assert list(drivers["value"]) == [v.rpartition(" (")[0] for col in ("top_principals", "top_user_agents",
                                                                          "top_source_ips")
                                      for v in found.iloc[last][col]]


def test_cleanup_page_totals_and_backtest_equal_the_analytics(demo):
    at = run_page(page="cleanup")
    m = metrics(at)
    s, b = direct(demo, lambda con, st: (cleanup.summary(cleanup.report_cleanup(con, st)),
                                         cleanup.backtest(con, st)))
    assert m["Candidates"] == f"{s['candidates']:,}"
    assert m["Reclaimable GB"] == f"{s['reclaimable_gb']['permanent']:,.2f}"
    assert m["Refetchable GB"] == f"{s['reclaimable_gb']['refetchable']:,.2f}"
    assert m["Savings ($/month)"] == usd(s["monthly_savings_usd"]["permanent"])
    assert m["Selected then"] == f"{b['selected']:,}"
    assert m["Requested afterwards"] == f"{b['requested_after']:,}"
    assert m["False-deletion rate"] == f"{b['false_deletion_rate'] * 100:,.1f}%"


def test_a_policy_control_recomputes_the_candidates(demo):
    at = run_page(page="cleanup")
    before = metrics(at)["Candidates"]
    at.number_input(key="cleanup_unused_days").set_value(30).run(timeout=60)
    assert not at.exception
    s = direct(demo, lambda con, st: cleanup.summary(cleanup.report_cleanup(con, st, unused_days=30)))
    assert metrics(at)["Candidates"] == f"{s['candidates']:,}" != before
    at.text_area(key="cleanup_protect").set_value("*").run(timeout=60)  # protect every package
    assert metrics(at)["Candidates"] == "0"


def test_download_buttons_serve_the_files_caa_report_cleanup_writes(demo, monkeypatch, tmp_path):
    """What a click on each button downloads (Streamlit calls the button's `data` on the click: the files are
    written then, not on every view of the page) equals the file `caa report cleanup` writes."""
    made = {}
    original = MediaFileManager.add_deferred

    def spy(self, data_callable, mimetype, coordinates, file_name=None, **kw):  # noqa: ANN001
        made[file_name] = data_callable
        return original(self, data_callable, mimetype, coordinates, file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", spy)
    at = run_page(page="cleanup")
    at.number_input(key="cleanup_unused_days").set_value(60).run(timeout=60)
    at.number_input(key="cleanup_keep_latest").set_value(2).run(timeout=60)
    assert [b.label for b in at.download_button] == ["Download CSV", "Download XLSX"]
    served = {name: make() for name, make in made.items()}  # the last run's buttons: the policy set above
    for fmt in ("csv", "xlsx"):
        out = tmp_path / f"cli.{fmt}"
        res = subprocess.run([sys.executable, "-m", "cli", "report", "cleanup", "--format", fmt, "--out", str(out),
                              "--unused-days", "60", "--keep-latest", "2", "--db", str(demo)],
                             capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert res.returncode == 0, res.stderr
        page_file = tmp_path / f"page.{fmt}"
        page_file.write_bytes(served[f"cleanup.{fmt}"])
        if fmt == "csv":  # byte for byte
            assert served["cleanup.csv"] == out.read_bytes()
        # XLSX stores its creation time, so compare what a reviewer opens
        pd.testing.assert_frame_equal(read_table(page_file), read_table(out))
    assert len(read_table(out)) > 0


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_honours_a_domain_filter(demo, page):
    at = run_page(page=page, domains=["acme"])
    assert not at.error
    if page == "costs":
        total = direct(demo, lambda con, s: costs.cost_report(con, s)["cost_usd"].sum(),
                       Filters(domains=("acme",)))
        assert metrics(at)["Modeled cost in the window"] == usd(total)
    if page == "cleanup":
        s = direct(demo, lambda con, st: cleanup.summary(cleanup.report_cleanup(con, st)), Filters(domains=("acme",)))
        assert metrics(at)["Candidates"] == f"{s['candidates']:,}"
        assert set(at.dataframe[0].value["domain"]) == {"acme"}



@pytest.mark.parametrize("page", ["overview", "costs", "usage", "spikes"])
def test_filters_that_leave_nothing_say_what_the_store_holds_not_that_it_is_empty(demo, page):
    """Dates before the store's first event said 'No data yet: run make demo or caa collect' to someone
    whose store is full: the filter, not the store, is empty."""
    (first, last), = rows(demo, "SELECT min(day), max(day) FROM event_days")
    infos = [i.value for i in run_page(page=page, start="2020-01-01", end="2020-01-31").info]
    assert infos == [f"Nothing matches the filters (dates 2020-01-01 to 2020-01-31): the store holds events from "
                     f"{first} to {last}. Widen the dates or clear the filters in the sidebar."], infos
    if page == "overview":  # names are counted, not shown (st.info reads markdown; names are hostile input)
        infos = [i.value for i in run_page(page=page, domains=["acme"], end="2020-01-31").info]
        assert infos[0].startswith("Nothing matches the filters (dates ... to 2020-01-31; domains: 1 chosen): "), infos


def test_a_bill_that_shares_no_day_with_the_usage_says_what_each_covers(tmp_path):
    """The Costs page's bill section said only 'the bill and the store's usage share no full day in this
    window'; it says which days each covers, as `caa report reconcile` does."""
    from collectors import cur
    from tests.fixtures.cur2_export import write_export
    from tests.fixtures.small_store import build_small_store
    from tests.helpers import collect, make_settings
    from ui import views

    db = tmp_path / "caa.duckdb"
    build_small_store(db)  # usage in June 2025
    export = write_export(tmp_path / "export")  # the bill of 2026-10-01..2026-11-30
    assert collect(db, [cur.SPEC], make_settings(db=db, cur={"sources": [str(export.root)]})) == 0
    with store.open_reader(db) as con:
        note = views.bill_view(con, make_settings(db=db), date(2025, 6, 1), date(2025, 6, 30)).note
    assert note.startswith("no day to reconcile within the date filter (2025-06-01..2025-06-30): the bill covers "
                           "2026-10-01..2026-11-30, the model 2025-"), note
