"""The dashboard run headless (streamlit AppTest) over the small store and over no store at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import store
from tests.fixtures.small_store import PRICES_TOML, build_empty_store, build_small_store

APP = str(Path(__file__).resolve().parents[2] / "dashboard.py")
NO_DATA = "No data yet: run `make demo` or `caa collect`."


@pytest.fixture
def use_db(tmp_path, monkeypatch):
    """Point the app at a store under tmp_path, with the fixture's price table as caa.toml."""
    config = tmp_path / "caa.toml"
    config.write_text(PRICES_TOML, encoding="utf-8")
    monkeypatch.setenv("CAA_CONFIG", str(config))

    def use(name: str = "caa.duckdb") -> Path:
        db = tmp_path / name
        monkeypatch.setenv("CAA_DB", str(db))
        return db

    return use


def run_app() -> AppTest:
    at = AppTest.from_file(APP)
    at.run(timeout=30)
    assert not at.exception, [e.value for e in at.exception]
    return at


def direct(db: Path, sql: str):
    """One value computed straight from the store's snapshot, without the analytics code."""
    with store.open_reader(db) as con:
        return con.execute(sql).fetchone()[0]


def test_overview_shows_the_stores_numbers(use_db):
    db = use_db()
    expected = build_small_store(db)
    at = run_app()

    assert at.title[0].value == "CodeArtifact Analytics"
    assert "As of 2025-06-30 18:00 UTC" in at.caption[0].value
    metrics = {m.label: m.value for m in at.metric}

    storage_gb = direct(db, """
        SELECT sum(asset_size_bytes) / 1024 ^ 3 FROM storage_snapshots s
        WHERE snapshot_date = (SELECT max(snapshot_date) FROM storage_snapshots
                               WHERE account_id = s.account_id AND region = s.region)""")
    downloads = direct(db, """
        SELECT count(*) FROM downloads
        WHERE event_at >= (SELECT max(event_at)::DATE - 29 FROM events)""")
    requests = direct(db, """
        SELECT count(*) FROM events WHERE error_code IS NULL
          AND date_trunc('month', event_at) = (SELECT date_trunc('month', max(event_at)) FROM events)""")
    assert metrics["Storage (GB)"] == f"{storage_gb:,.2f}" == "286.00"
    assert metrics["Downloads (30 d)"] == f"{downloads:,}" == "6"
    assert metrics["Requests this month"] == f"{requests:,}" == "120,003"
    assert metrics["Modeled cost month-to-date"] == f"${expected['cost_usd']:,.2f}" == "$14.54"

    assert at.get("plotly_chart"), "the downloads chart is missing"
    domains = at.dataframe[0].value
    assert set(domains["domain"]) == {"acme", "beta", "gamma"}
    freshness = at.sidebar.dataframe[0].value
    assert dict(zip(freshness["collector"], freshness["status"], strict=True)) == expected["freshness"]


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_no_data_shows_the_hint_and_nothing_else(use_db, kind):
    db = use_db()
    if kind == "empty":
        build_empty_store(db)
    at = run_app()
    assert [i.value for i in at.info] == [NO_DATA]
    assert not at.metric and not at.get("plotly_chart") and not at.error


def test_a_new_collection_shows_without_a_restart(use_db):
    db = use_db()
    at = AppTest.from_file(APP)
    at.run(timeout=30)
    assert [i.value for i in at.info] == [NO_DATA]
    build_small_store(db)
    at.run(timeout=30)
    assert not at.exception and not at.info
    assert {m.label: m.value for m in at.metric}["Downloads (30 d)"] == "6"


def test_a_bad_setting_is_one_line_not_a_traceback(use_db, tmp_path, monkeypatch):
    use_db()
    (tmp_path / "caa.toml").write_text("[prices]\nstorage_usd_per_gb_month = -1\n", encoding="utf-8")
    at = run_app()
    assert len(at.error) == 1 and "prices.storage_usd_per_gb_month" in at.error[0].value


def test_db_after_double_dash_beats_caa_db(use_db, tmp_path, monkeypatch):
    use_db("elsewhere.duckdb")  # CAA_DB points at a store that does not exist
    db = tmp_path / "given.duckdb"
    build_small_store(db)
    # `streamlit run dashboard.py -- --db PATH` leaves sys.argv == ["dashboard.py", "--db", PATH]
    monkeypatch.setattr("sys.argv", ["dashboard.py", "--db", str(db)])
    at = run_app()
    assert {m.label: m.value for m in at.metric}["Requests this month"] == "120,003"


PAGES_AFTER_PRELOAD = """
import json, sys
from streamlit.testing.v1 import AppTest
from ui.serve import preload

preload()
before = set(sys.modules)
for page in sys.argv[2:]:
    at = AppTest.from_file(sys.argv[1])
    at.query_params["page"] = page
    at.run(timeout=120)
    assert not at.exception, (page, [e.value for e in at.exception])
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_the_servers_preload_leaves_the_pages_nothing_to_import(demo_store):
    """`caa dashboard` serves from a process that imported the dashboard's modules first (ui/serve.py), so the
    first page a user opens does not wait for pandas, plotly and the pages to import (on the demo estate half of
    a cold page's second). In a fresh process after preload(), every page's first run imports only Streamlit's
    own modules (its component scan, which the server runs at its start): a page or figure that needs a module
    the preload misses shows up here."""
    from ui.pages import PAGES

    db, _ = demo_store()
    out = subprocess.run([sys.executable, "-c", PAGES_AFTER_PRELOAD, APP, *PAGES], capture_output=True, text=True,
                         env={**os.environ, "CAA_DB": str(db), "CAA_CONFIG": os.devnull}, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    imported = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(imported) < 20 and {name.split(".")[0] for name in imported} <= {"streamlit", "packaging"}, imported
