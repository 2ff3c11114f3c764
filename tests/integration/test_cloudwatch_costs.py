"""The cloudwatch and costs collectors against moto (in-process, and one run against a moto server),
seeded by demo.moto_seed, plus Stubber for a denied Cost Explorer."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from collectors import cloudwatch, costexplorer
from collectors.base import RunContext, run_collectors
from core import settings
from demo import moto_seed
from tests.helpers import writer

A, B = "111111111111", "222222222222"
NOW = datetime(2025, 7, 15, 10, 30, tzinfo=UTC)
GIB = 1024**3


def make_settings(accounts: list[str], endpoint_url: str | None = None, regions=("us-east-1",)):
    return settings.load_settings(
        Path("/nonexistent"),
        accounts=[{"id": a, "role_arn": moto_seed.demo_role_arn(a), "regions": list(regions)} for a in accounts],
        aws={"endpoints": moto_seed.collector_endpoints(endpoint_url) if endpoint_url else {}},
    )


def billing_rows(account: str, region: str, start: date, end: date, requests: int, gb: float) -> list[dict]:
    rows, d = [], start
    while d < end:
        rows.append({"date": d.isoformat(), "account_id": account, "region": region, "requests": requests,
                     "storage_byte_hours": int(gb * GIB * 24)})
        d += timedelta(days=1)
    return rows


@pytest.fixture
def aws():
    with moto_seed.demo_environment(), mock_aws():
        yield


@pytest.fixture
def db(tmp_path):
    with writer(tmp_path / "caa.duckdb") as con:
        yield con


def ctx_for(con, s, **kw) -> RunContext:
    return RunContext(settings=s, con=con, now=NOW, show_progress=False, **kw)


def tables(con) -> dict[str, list]:
    return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
            for t in ("usage_metrics", "cost_actuals", "watermarks")}


def runs(con) -> list[tuple]:
    return con.execute("SELECT collector, account_id, status, rows, error FROM collector_runs ORDER BY run_id").fetchall()


# ------------------------------------------------------------------ cloudwatch

def test_cloudwatch_collects_each_accounts_own_series(aws, db):
    billing = (billing_rows(A, "us-east-1", date(2025, 7, 1), date(2025, 7, 16), 24_000, 1)
               + billing_rows(B, "us-east-1", date(2025, 7, 1), date(2025, 7, 16), 2_400, 1))
    moto_seed.seed_usage_metrics(None, billing, NOW)
    expected = {k: sum(d["Value"] for d in v) for k, v in moto_seed.usage_datums(billing, NOW).items()}

    assert run_collectors([cloudwatch.SPEC], ctx_for(db, make_settings([A, B]))) == 0

    got = dict(((a, r), v) for a, r, v in db.execute(
        "SELECT account_id, region, sum(value) FROM usage_metrics GROUP BY ALL").fetchall())
    assert got == {(A, "us-east-1"): expected[(A, "us-east-1")], (B, "us-east-1"): expected[(B, "us-east-1")]}
    assert got[(A, "us-east-1")] > got[(B, "us-east-1")]  # not one shared moto account
    ops = {r for (r,) in db.execute("SELECT DISTINCT resource FROM usage_metrics").fetchall()}
    assert {"ReadFromRepository", "GetAuthorizationToken"} <= ops
    first, last = db.execute("SELECT min(metric_at), max(metric_at) FROM usage_metrics").fetchone()
    assert first >= NOW - timedelta(days=14, hours=1) and last == datetime(2025, 7, 15, 9, tzinfo=UTC)


def test_empty_namespace_is_ok_with_zero_rows(aws, db, capsys):
    assert run_collectors([cloudwatch.SPEC], ctx_for(db, make_settings([A]))) == 0
    assert runs(db) == [("cloudwatch", A, "ok", 0, None)]
    out = capsys.readouterr()
    assert "rows=0" in out.out and "no AWS/Usage series" in out.out and out.err == ""


def test_cloudwatch_takes_the_account_from_sts_when_none_is_configured(aws, db):
    default = boto3.client("sts").get_caller_identity()["Account"]
    moto_seed.seed_usage_metrics(None, billing_rows(default, "us-east-1", date(2025, 7, 14), date(2025, 7, 15),
                                                    500, 0), NOW)
    assert run_collectors([cloudwatch.SPEC], ctx_for(db, make_settings([]))) == 0
    assert db.execute("SELECT DISTINCT account_id FROM usage_metrics").fetchall() == [(default,)]
    assert db.execute("SELECT sum(value) FROM usage_metrics").fetchone()[0] == 500
    assert db.execute("SELECT scope FROM watermarks").fetchall() == [(f"account={default} region=us-east-1",)]


# ------------------------------------------------------------------ costs

def test_costs_pages_through_next_page_token_and_stores_every_row(aws, db, capsys):
    s = make_settings([A, B])
    window = costexplorer.window_for(ctx_for(db, s), None)
    billing = (billing_rows(A, "us-east-1", window.start, window.end, 5_000, 3)
               + billing_rows(B, "eu-west-1", date(2025, 1, 1), window.end, 9_000, 0.5))
    queued = moto_seed.seed_costs(None, billing, s.prices, [A, B], window.start, window.end, page_days=30)
    assert queued[A] > 10  # 13+ months of days in 30-day pages

    assert run_collectors([costexplorer.SPEC], ctx_for(db, s)) == 0

    results = moto_seed.cost_results(billing, s.prices, [A, B], window.start, window.end)
    n_groups = {a: sum(len(r["Groups"]) for r in results[a]) for a in (A, B)}
    counts = dict(db.execute("SELECT account_id, count(*) FROM cost_actuals GROUP BY ALL").fetchall())
    assert counts == n_groups
    assert db.execute("SELECT min(usage_date), max(usage_date) FROM cost_actuals WHERE account_id = ?",
                      [A]).fetchone() == (window.start, window.end - timedelta(days=1))
    assert f"pages={queued[A]}" in capsys.readouterr().out
    assert db.execute("SELECT value FROM watermarks WHERE collector = 'costs' ORDER BY scope").fetchall() == [
        (window.end.isoformat(),)] * 2


def test_a_month_of_cost_equals_the_hand_computed_bill(aws, db):
    s = make_settings([A])
    by_day = billing_rows(A, "us-east-1", date(2025, 6, 1), date(2025, 7, 1), 100_000, 250)
    by_day[14]["requests"] += 100_000  # 3,100,000 requests in June
    moto_seed.seed_costs(None, by_day, s.prices, [A], date(2025, 6, 1), date(2025, 7, 1))

    assert run_collectors([costexplorer.SPEC], ctx_for(db, s, since=date(2025, 6, 1))) == 0

    june = db.execute("SELECT sum(cost_usd) FROM cost_actuals WHERE account_id = ? AND usage_date >= '2025-06-01' "
                      "AND usage_date < '2025-07-01'", [A]).fetchone()[0]
    assert june == pytest.approx(250 * 0.05 + (3_100_000 - 100_000) / 10_000 * 0.05) == pytest.approx(27.50)


def test_the_same_window_twice_leaves_identical_tables(aws, db):
    s = make_settings([A, B], regions=("us-east-1", "eu-west-1"))
    since = date(2025, 7, 2)
    billing = [*billing_rows(A, "us-east-1", date(2025, 6, 20), date(2025, 7, 16), 30_000, 2),
               *billing_rows(B, "eu-west-1", date(2025, 6, 20), date(2025, 7, 16), 7_000, 9)]
    moto_seed.seed_usage_metrics(None, billing, NOW)
    moto_seed.seed_costs(None, billing, s.prices, [A, B], since, NOW.date(), page_days=5)
    specs = [cloudwatch.SPEC, costexplorer.SPEC]

    assert run_collectors(specs, ctx_for(db, s, since=since)) == 0
    first = tables(db)
    assert run_collectors(specs, ctx_for(db, s, since=since)) == 0  # moto repeats a repeated request's answer

    assert tables(db) == first
    assert len(first["usage_metrics"]) > 0 and len(first["cost_actuals"]) > 0


def test_denied_cost_explorer_fails_that_scope_with_the_iam_action(db, capsys):
    ce = boto3.client("ce", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")

    class StubClients:
        def client(self, scope, service, region=None):
            assert service == "ce"
            return ce

    s = settings.load_settings(Path("/nonexistent"), accounts=[{"id": A}])
    with Stubber(ce) as stub:
        stub.add_client_error("get_cost_and_usage", service_error_code="AccessDeniedException",
                              service_message="User is not authorized", http_status_code=400)
        assert run_collectors([costexplorer.SPEC], ctx_for(db, s, clients=StubClients())) == 1

    [(collector, account, status, rows, error)] = runs(db)
    assert (collector, account, status, rows) == ("costs", A, "failed", 0)
    assert "ce:GetCostAndUsage" in error and "\n" not in error
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "ce:GetCostAndUsage" in err and err.startswith("failed costs account=")
    assert db.execute("SELECT count(*) FROM watermarks").fetchone()[0] == 0


# ------------------------------------------------------------------ a real moto server, as `caa demo` uses it

@pytest.mark.slow
def test_both_collectors_against_a_moto_server(tmp_path):
    server, url = moto_seed.start_moto()
    try:
        assert url.startswith("http://127.0.0.1:")
        s = make_settings([A, B], endpoint_url=url)
        billing = [*billing_rows(A, "us-east-1", date(2025, 5, 1), date(2025, 7, 16), 50_000, 20),
                   *billing_rows(B, "us-east-1", date(2025, 5, 1), date(2025, 7, 16), 1_000, 1)]
        with moto_seed.demo_environment(), writer(tmp_path / "caa.duckdb") as con:
            ctx = ctx_for(con, s)
            window = costexplorer.window_for(ctx, None)
            moto_seed.seed_costs(url, billing, s.prices, [A, B], window.start, window.end)
            moto_seed.seed_usage_metrics(url, billing, NOW)

            assert run_collectors([cloudwatch.SPEC, costexplorer.SPEC], ctx) == 0

            june_a = con.execute("SELECT sum(cost_usd) FROM cost_actuals WHERE account_id = ? "
                                 "AND usage_date BETWEEN '2025-06-01' AND '2025-06-30'", [A]).fetchone()[0]
            assert june_a == pytest.approx(20 * 0.05 + (1_500_000 - 100_000) / 10_000 * 0.05)
            b_calls = con.execute("SELECT sum(value) FROM usage_metrics WHERE account_id = ?", [B]).fetchone()[0]
            assert 0 < b_calls < 15_000
            # Incremental: the watermark makes the next run in the same hour a no-op.
            assert run_collectors([cloudwatch.SPEC], ctx) == 0
            assert con.execute("SELECT count(*) FROM collector_runs WHERE rows = 0").fetchone()[0] == 2
    finally:
        server.stop()
