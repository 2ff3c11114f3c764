"""Precomputed dashboard views (ui/precompute.py, table page_cache) on the demo estate: each page
opened with an empty cache reads them and computes nothing live, yet shows what the live computation
shows; a filter or another cleanup policy is computed live; a new collection is refreshed (or, with
`--no-refresh`, computed live until `caa refresh`), never shown stale."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from analytics import cleanup, costs
from analytics.filters import Filters
from core import store
from core.settings import load_settings
from dashboard import PAGES
from tests.fixtures.trails import trail_files, write_local
from tests.helpers import make_settings, rows, run_page, writer
from ui import cache, common

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config(tmp_path, monkeypatch):
    """An empty caa.toml for the app (and the `caa` processes); returns a function to write it."""
    path = tmp_path / "caa.toml"
    path.write_text("")
    monkeypatch.setenv("CAA_CONFIG", str(path))
    return path.write_text


@pytest.fixture
def demo(demo_store, monkeypatch, config):
    db, _ = demo_store(11, 20_000)
    monkeypatch.setenv("CAA_DB", str(db))
    return db


@pytest.fixture
def copy(demo_store, tmp_path, monkeypatch, config):
    """A copy of the demo store (with its reader snapshot) that a test may write to."""
    db = tmp_path / "store" / "caa.duckdb"
    db.parent.mkdir()
    store.copy_store(demo_store(11, 20_000)[0], db)  # with its events lake
    with writer(db):  # points the copy's events at its own lake and publishes its snapshot
        pass
    monkeypatch.setenv("CAA_DB", str(db))
    return db


def cold(**query):  # -> (AppTest, {kind: live computations})
    """The page as a fresh dashboard process shows it: st.cache_data empty, live computations counted."""
    common._cached.clear()
    common.LIVE.clear()
    at = run_page(**query)
    return at, dict(common.LIVE)


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def steady(df: pd.DataFrame) -> pd.DataFrame:
    """A table without the columns measured against the clock (health's freshness age)."""
    return df.drop(columns=["age_hours"], errors="ignore")


def caa(*args: str) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, cwd=ROOT,
                         env=dict(os.environ), timeout=300)
    assert res.returncode == 0, res.stderr
    return res


def version_rows(db: Path) -> tuple[int, int, int]:
    """(store version, page_cache rows for it, rows for other versions) in the published snapshot."""
    return rows(db, "SELECT m.value, count(c.key) FILTER (WHERE c.store_version = m.value), "
                    "count(c.key) FILTER (WHERE c.store_version <> m.value) "
                    "FROM store_meta m LEFT JOIN page_cache c ON true WHERE m.key = 'store_version' GROUP BY 1")[0]


def new_day_of_downloads(db: Path, root: Path) -> Path:
    """Trail files for the day after the store's newest event (npm downloads in acme)."""
    (latest,), = rows(db, "SELECT max(event_at) FROM events")
    day = datetime.combine(latest.date() + timedelta(days=1), datetime.min.time(), UTC)
    return write_local(root, trail_files(n_files=3, per_file=40, start=day + timedelta(hours=2)))


def downloads_30d(db: Path) -> str:
    (n,), = rows(db, "SELECT count(*) FROM downloads WHERE event_at >= (SELECT max(event_at)::DATE - 29 FROM events)")
    return f"{n:,}"


# ---------------------------------------------------------------- (a) every page from the precomputed views

@pytest.mark.parametrize("page", list(PAGES))
def test_each_page_reads_the_precomputed_views_and_shows_the_live_numbers(demo, page, monkeypatch):
    at, live = cold(page=page)
    # health's freshness ages are measured against the clock, so it is always computed (in ~0.02 s)
    assert live == ({"health_view": 1} if page == "health" else {})
    shown = metrics(at), [steady(d.value) for d in at.dataframe], [c.value for c in at.caption]

    monkeypatch.setattr(cache, "lookup", lambda con, key: cache.MISS)
    at, live = cold(page=page)
    assert live, "the live run computed nothing"
    assert metrics(at) == shown[0] and metrics(at)
    assert [c.value for c in at.caption] == shown[2]
    assert len(at.dataframe) == len(shown[1])
    for got, want in zip((steady(d.value) for d in at.dataframe), shown[1], strict=True):
        pd.testing.assert_frame_equal(got, want)


def test_a_page_served_from_the_views_never_imports_statsmodels(demo):
    script = ("import sys\nfrom streamlit.testing.v1 import AppTest\n"
              "for page in ('overview', 'costs'):\n"
              "    at = AppTest.from_file(sys.argv[1]); at.query_params['page'] = page; at.run(timeout=60)\n"
              "    assert not at.exception, [e.value for e in at.exception]\n"
              "print('statsmodels' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", script, str(ROOT / "dashboard.py")], capture_output=True,
                         text=True, cwd=ROOT, env=dict(os.environ), timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split()[-1] == "False"


# ---------------------------------------------------------------- (b) a filter is computed live

def test_a_filtered_view_is_computed_live_and_right(demo):
    everything = metrics(cold(page="costs")[0])["Modeled cost in the window"]
    at, live = cold(page="costs", domains=["acme"])
    assert {"cost_window", "cost_report", "forecast_with_cleanup", "bill_view"} <= set(live)  # the demo has a bill
    assert "filter_options" not in live  # the sidebar's choices do not depend on the filters
    settings = load_settings(db=demo)
    with store.open_reader(demo) as con:
        Filters(domains=("acme",)).apply(con)
        total = costs.cost_report(con, settings)["cost_usd"].sum()
    assert metrics(at)["Modeled cost in the window"] == f"${total:,.2f}" != everything


# ---------------------------------------------------------------- (d) another cleanup policy in caa.toml

def test_another_cleanup_policy_in_the_settings_is_computed_live(demo, config):
    default = metrics(cold(page="cleanup")[0])["Candidates"]
    config("[cleanup]\nunused_days = 30\n")
    at, live = cold(page="cleanup")
    assert {"cleanup_view", "cleanup_backtest"} <= set(live)
    settings = load_settings(db=demo)
    with store.open_reader(demo) as con:
        expected = cleanup.summary(cleanup.report_cleanup(con, settings))["candidates"]
    assert metrics(at)["Candidates"] == f"{expected:,}" != default


def test_only_the_settings_analytics_reads_change_the_key():
    base = cache.settings_fingerprint(make_settings())
    elsewhere = make_settings(aws={"endpoints": {"s3": "http://127.0.0.1:5000"}},
                              accounts=[{"id": "123456789012", "regions": ["eu-west-1"]}],
                              email={"to": ["finops@example.com"]}, db=Path("/elsewhere/caa.duckdb"))
    assert cache.settings_fingerprint(elsewhere) == base
    for changed in ({"cleanup": {"unused_days": 30}}, {"prices": {"storage_usd_per_gb_month": 0.06}},
                    {"teams": {"apps": ["app-*"]}}, {"spikes": {"score_threshold": 8.0}},
                    {"costs": {"shared_asset_split": "first_publisher"}}):
        assert cache.settings_fingerprint(make_settings(**changed)) != base, changed


# ---------------------------------------------------------------- (c, e) a new collection

def test_a_new_collection_is_precomputed_and_shows_its_numbers(copy, tmp_path):
    before_version, before_rows, _ = version_rows(copy)
    assert before_rows > 0  # the demo build precomputed its views
    before = metrics(cold(page="overview")[0])["Downloads (30 d)"]
    trails = new_day_of_downloads(copy, tmp_path / "trails")
    out = caa("collect", "cloudtrail", "--source", str(trails), "--db", str(copy)).stdout
    assert "dashboard views: " in out and " precomputed in " in out
    version, fresh, stale = version_rows(copy)
    assert version > before_version and fresh > 0 and stale == 0
    at, live = cold(page="overview")
    assert live == {}
    assert metrics(at)["Downloads (30 d)"] == downloads_30d(copy) != before


def test_collect_no_refresh_computes_live_until_caa_refresh(copy, tmp_path):
    trails = new_day_of_downloads(copy, tmp_path / "trails")
    out = caa("collect", "cloudtrail", "--source", str(trails), "--no-refresh", "--db", str(copy)).stdout
    assert "dashboard views" not in out
    assert version_rows(copy)[1] == 0  # nothing for the new version: the rows left are never read
    at, live = cold(page="overview")
    assert {"overview_view", "overview_costs", "cleanup_view"} <= set(live)
    shown = metrics(at)
    assert shown["Downloads (30 d)"] == downloads_30d(copy)

    out = caa("refresh", "--db", str(copy)).stdout
    (line,) = [ln for ln in out.splitlines() if ln.startswith("dashboard views: ")]
    n = int(line.split()[2])
    _, fresh, stale = version_rows(copy)
    assert fresh == n > 0 and stale == 0
    at, live = cold(page="overview")
    assert live == {} and metrics(at) == shown


def test_a_run_that_loads_nothing_keeps_the_views_and_the_sidebar_shows_it(copy, tmp_path):
    trails = new_day_of_downloads(copy, tmp_path / "trails")
    caa("collect", "cloudtrail", "--source", str(trails), "--db", str(copy))
    _, fresh_before, _ = version_rows(copy)
    out = caa("collect", "cloudtrail", "--source", str(trails), "--db", str(copy)).stdout  # the same files again
    assert f"dashboard views: no new data, {fresh_before} kept" in out
    assert version_rows(copy)[1:] == (fresh_before, 0)  # re-keyed to the new version, nothing recomputed
    at, live = cold(page="overview")
    assert live == {}
    newest = rows(copy, "SELECT max(finished_at) FROM collector_runs WHERE collector = 'cloudtrail'")[0][0]
    sidebar = at.sidebar.dataframe[0].value
    shown = sidebar.loc[sidebar["collector"] == "cloudtrail", "last_finished_at"].iloc[0]
    assert pd.Timestamp(shown) == pd.Timestamp(newest)  # the run list is read live, not from the views


def test_the_key_changes_with_the_analytics_code_the_sql_and_the_loads():
    """A changed query or load must never read views computed by the old code (the fingerprint once
    hashed the folder precompute sat in, which lost analytics/ when the module moved to ui/)."""
    files = {p.relative_to(cache.ROOT).as_posix() for p in cache.code_files()}
    assert {"analytics/costs.py", "analytics/sql/cost_storage_daily.sql", "analytics/sql/rollup_event_days.sql",
            "ui/views.py"} <= files
    assert not any(f.startswith(("collectors/", "delivery/", "ui/costs.py")) for f in files)  # layout only


def test_a_page_can_only_load_the_loads_of_views():
    view = common.View("/nonexistent.duckdb", None, Filters(), make_settings().model_dump_json())
    with pytest.raises(ValueError, match="not a load of ui/views.py"):
        view.load(costs.cost_report)  # an analytics function, not a load: it would bypass the cache key


def test_precompute_judges_the_versions_once_for_the_cleanup_page_and_the_forecast(copy, monkeypatch):
    """The Cleanup page's candidates and the Costs forecast's what-if come from one judging of every version
    per precompute (4-7 s at 200M events each); outside precompute a page judges afresh, so it never shows
    candidates of a store it no longer reads."""
    from ui import precompute, views

    judged = []
    real = cleanup.report_cleanup

    def counted(con, settings, **policy):
        judged.append(policy)
        return real(con, settings, **policy)

    monkeypatch.setattr(cleanup, "report_cleanup", counted)
    settings = load_settings(db=copy)
    with writer(copy) as con:
        assert precompute.refresh(con, settings).views > 0
    loads = {k for (k,) in rows(copy, "SELECT DISTINCT kind FROM page_cache")}
    assert {"cleanup_view", "forecast_with_cleanup"} <= loads
    assert len(judged) == 1
    judged.clear()
    policy = views.settings_policy(settings)
    with store.open_reader(copy) as con:
        first = views.report(con, settings, policy)
        again = views.report(con, settings, policy)
    assert len(judged) == 2 and len(first) > 0
    pd.testing.assert_frame_equal(first, again)


def test_another_policy_judges_the_same_snapshot_without_reading_it_again_and_never_a_stale_one(copy, tmp_path,
                                                                                                 monkeypatch):
    """The Cleanup page's controls: a new policy over the snapshot the page already judged reuses what no
    policy changes (cleanup.facts: the versions' downloads, ranks, dependencies, assets), and judges exactly
    as a fresh process would; the next collection's snapshot is read again."""
    settings = load_settings(db=copy)
    queried = []
    real = cleanup.run_objects
    monkeypatch.setattr(cleanup, "run_objects", lambda con, name, **p: queried.append(name) or real(con, name, **p))
    cleanup._FACTS.clear()
    with store.open_reader(copy) as con:
        cleanup.evaluate(con, settings, unused_days=60)
    with store.open_reader(copy) as con:  # another session of the dashboard, another policy
        again = cleanup.evaluate(con, settings, unused_days=30, keep_latest=1)
    assert queried.count("cleanup_versions") == 1
    cleanup._FACTS.clear()
    with store.open_reader(copy) as con:
        fresh = cleanup.evaluate(con, settings, unused_days=30, keep_latest=1)
    pd.testing.assert_frame_equal(again, fresh)
    assert again["candidate"].any()
    caa("collect", "cloudtrail", "--source", str(new_day_of_downloads(copy, tmp_path / "trails")), "--db", str(copy),
        "--no-refresh")
    with store.open_reader(copy) as con:
        after = cleanup.evaluate(con, settings, unused_days=30, keep_latest=1)
    assert queried.count("cleanup_versions") == 3
    assert after.attrs["as_of"] > fresh.attrs["as_of"]  # the new day's downloads were judged


def test_two_stores_at_one_path_and_version_are_never_taken_for_each_other(tmp_path):
    """A store deleted and collected again while the dashboard runs can reach the version the old one had:
    its random store_id (migration 017) keeps the dashboard from judging it by the old store's facts. A
    writer's store changes under it, so it is never kept."""
    from tests.fixtures.small_store import build_small_store

    db = tmp_path / "caa.duckdb"
    keys = []
    for _ in range(2):
        build_small_store(db)
        with store.open_reader(db) as con:
            keys.append(cleanup._facts_key(con, None))
        for p in tmp_path.glob("caa.*"):  # the store, its snapshot and its lake: gone
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    assert keys[0][0] == keys[1][0] and keys[0][2] == keys[1][2]  # the same path, the same version
    assert keys[0] != keys[1]
    with writer(tmp_path / "w.duckdb") as con:
        assert cleanup._facts_key(con, None) is None


def test_make_benchs_query_timer_computes_every_query_in_every_run(demo):
    """`make bench` times every default load's queries over several runs and takes each one's median: the
    facts a first judging keeps (cleanup.facts) must not let a later run skip cleanup_versions, which
    crashed the bench after its first run."""
    from bench import dashboard

    got = dashboard.query_times(demo, runs=2)["queries"]
    assert set(got) == {"unfiltered", "filtered"}
    for times in got.values():
        assert "cleanup_versions" in times and all(t > 0 for t in times.values())
