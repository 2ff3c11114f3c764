"""`caa demo` end to end on a small estate: the real collectors' store equals the generator's truth,
and the dashboard shows the store's numbers."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from demo.estate import build_estate
from tests.helpers import rows, writer

APP = str(Path(__file__).resolve().parents[2] / "dashboard.py")
SEED, EVENTS = 11, 20_000


@pytest.fixture
def demo(demo_store):
    return demo_store(SEED, EVENTS)


def test_downloads_and_events_equal_the_generators_ground_truth_exactly(demo):
    db, truth = demo
    assert rows(db, "SELECT count(*) FROM downloads") == [(truth["downloads_unique"],)]
    assert rows(db, "SELECT count(*), count(DISTINCT event_id) FROM events") == [(truth["events_unique"],) * 2]
    by_day = dict(rows(db, "SELECT strftime(event_at, '%Y-%m-%d'), count(*) FROM downloads GROUP BY 1"))
    assert by_day == {d: n for d, n in truth["downloads_by_day"].items() if n}
    by_pkg = {(r["domain"], r["repository"], r["format"], r["namespace"], r["package"]): r["downloads"]
              for r in truth["downloads_by_package"] if r["downloads"]}
    got = {tuple(r[:5]): r[5] for r in rows(db, "SELECT domain, repository, format, namespace, package, count(*) "
                                                "FROM downloads GROUP BY ALL")}
    assert got == by_pkg


def test_the_estate_has_the_promised_shape(demo):
    db, _ = demo
    (accounts, regions, domains), = rows(db, "SELECT count(DISTINCT account_id), count(DISTINCT region), "
                                             "count(*) FROM domains")
    assert accounts >= 2 and regions >= 2 and domains >= 3
    repos = {(r[0], r[1]): (r[2], r[3]) for r in rows(
        db, "SELECT domain, repository, upstreams, external_connections FROM repositories")}
    assert len(repos) >= 10
    for (domain, _), (upstreams, external) in repos.items():  # every upstream chain ends in an external connection
        seen, todo = set(), list(upstreams)
        reaches_external = bool(external)
        while todo:
            nxt = todo.pop()
            if nxt in seen:
                continue
            seen.add(nxt)
            ups, ext = repos[(domain, nxt)]
            reaches_external |= bool(ext)
            todo += ups
        assert reaches_external or not upstreams
    formats = {f for (f,) in rows(db, "SELECT DISTINCT format FROM package_versions")}
    assert formats == {"npm", "pypi", "maven"}
    assert rows(db, "SELECT count(*) FROM package_versions WHERE format = 'npm' AND namespace IS NOT NULL")[0][0] > 0
    shared = rows(db, "SELECT count(*) FROM (SELECT domain, sha256 FROM assets GROUP BY ALL "
                      "HAVING count(DISTINCT repository) > 1)")[0][0]
    assert shared > 0


def test_storage_history_equals_the_estate_domain_sizes(demo):
    db, truth = demo
    end = datetime.fromisoformat(truth["end"])
    estate = build_estate(SEED, end=end)
    days = (estate.end.date() - estate.start.date()).days
    assert rows(db, "SELECT count(DISTINCT snapshot_date) FROM storage_snapshots")[0][0] == days + 1
    for d in estate.domains:
        for day in (estate.start.date() + timedelta(days=100), estate.end.date() - timedelta(days=1)):
            got = rows(db, "SELECT asset_size_bytes FROM storage_snapshots WHERE domain = ? AND snapshot_date = ?",
                       [d.name, day])
            assert got == [(d.asset_size_bytes(datetime.combine(day, time(23, 59, 59), UTC)),)]


def test_cost_explorer_requests_equal_the_billed_requests(demo):
    db, truth = demo
    billed = sum(b["requests"] for b in truth["billing"])
    (ce,), = rows(db, "SELECT sum(usage_quantity) FROM cost_actuals WHERE usage_type LIKE '%-Requests' "
                      "AND usage_type NOT LIKE 'Global-%'")
    assert ce == billed
    assert rows(db, "SELECT count(*) FROM collector_runs WHERE status <> 'ok'") == [(0,)]


def test_dashboard_overview_on_the_demo_estate_matches_sql(demo, monkeypatch, tmp_path):
    db, _ = demo
    monkeypatch.setenv("CAA_DB", str(db))
    monkeypatch.setenv("CAA_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    at = AppTest.from_file(APP)
    at.run(timeout=60)
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    (downloads,), = rows(db, "SELECT count(*) FROM downloads WHERE event_at >= (SELECT max(event_at)::DATE - 29 "
                             "FROM events)")
    (requests,), = rows(db, "SELECT count(*) FROM events WHERE error_code IS NULL AND date_trunc('month', event_at)"
                            " = (SELECT date_trunc('month', max(event_at)) FROM events)")
    (storage,), = rows(db, "SELECT sum(asset_size_bytes) / 1024 ^ 3 FROM storage_snapshots "
                           "WHERE snapshot_date = (SELECT max(snapshot_date) FROM storage_snapshots)")
    assert downloads > 0 and requests > 0 and storage > 1
    assert metrics["Downloads (30 d)"] == f"{downloads:,}"
    assert metrics["Requests this month"] == f"{requests:,}"
    assert metrics["Storage (GB)"] == f"{storage:,.2f}"
    assert metrics["Modeled cost month-to-date"].startswith("$")


def test_demo_refuses_to_overwrite_a_store_it_did_not_build(tmp_path):
    db = tmp_path / "real.duckdb"

    with writer(db):
        pass
    out = subprocess.run([sys.executable, "-m", "cli", "demo", "--events", "1000", "--no-serve", "--db", str(db)],
                         capture_output=True, text=True)
    assert out.returncode == 1
    assert "holds collected data, not a demo estate" in out.stderr and "--db data/demo.duckdb" in out.stderr
