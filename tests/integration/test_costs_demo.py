"""analytics/costs and analytics/forecast over the demo estate built by the real collectors: the modeled
cost reconciles with its Cost Explorer actuals, and the forecast has finite intervals and a backtest."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from analytics import costs
from analytics import forecast as fc
from core import store
from tests.helpers import make_settings

SEED, EVENTS = 11, 20_000


@pytest.fixture(scope="module")
def con(demo_store):
    db, _ = demo_store(SEED, EVENTS)
    c = store.open_reader(db)
    yield c
    c.close()


@pytest.fixture(scope="module")
def settings():
    return make_settings()


@pytest.fixture(scope="module")
def forecast(con, settings):
    largest = costs.cost_report(con, settings, by="domain").iloc[0]
    key = (largest["account_id"], largest["region"], largest["domain"])
    return fc.forecast(con, settings, horizon_months=3, reclaimed_bytes_by_domain={key: 2 * 1024**3}), key


def test_modeled_cost_reconciles_with_cost_explorer_within_2_percent(con, settings):
    daily = costs.reconcile(con, settings)
    cov = costs.coverage(con)
    assert daily["usage_date"].max() == min(cov.last_full_day, cov.last_actual_date)
    assert daily["usage_date"].nunique() > 300  # 13 months of full days on both sides
    summary = costs.reconcile_summary(daily)
    storage = summary[summary["kind"] == "storage"]
    assert storage["actual_usd"].gt(0).all()
    assert storage["diff_pct"].abs().max() <= 2.0, storage.to_string()
    # every account's requests and GB-months, and their cost (the demo stays under the free tier: $0 both sides)
    assert summary["quantity_diff_pct"].abs().max() <= 2.0, summary.to_string()
    assert summary["diff_pct"].abs().max() <= 2.0, summary.to_string()
    # day by day, storage too
    day_storage = daily[daily["kind"] == "storage"]
    assert day_storage["diff_pct"].abs().max() <= 2.0


def test_cost_report_levels_all_add_up_to_the_window_total(con, settings):
    until = costs.coverage(con).last_full_day
    since = date(until.year, 1, 1) if until.month > 1 else until.replace(day=1)
    total = costs.daily_cost(con, settings, since, until)["cost_usd"].sum()
    assert total > 0
    for by in costs.LEVELS:
        df = costs.cost_report(con, settings, since, until, by=by)
        assert list(df.columns) == [*costs.LEVELS[by], *costs.REPORT_VALUES]
        assert df["cost_usd"].sum() == pytest.approx(total), by
        assert df["share_pct"].sum() == pytest.approx(100.0), by
    teams = costs.cost_report(con, settings, since, until, by="team")
    assert costs.UNASSIGNED not in set(teams.loc[teams["storage_usd"] > 0, "team"])  # every repository is tagged


def test_forecast_has_finite_ordered_intervals_and_a_backtest(forecast):
    f, _ = forecast
    assert f.level == 0.8
    assert len(f.monthly) == 4 * 3  # the current month and three more, storage/requests/total
    values = f.monthly[["expected_usd", "lower_usd", "upper_usd"]].to_numpy()
    assert np.isfinite(values).all()
    assert (f.monthly["lower_usd"] <= f.monthly["expected_usd"] + 1e-9).all()
    assert (f.monthly["expected_usd"] <= f.monthly["upper_usd"] + 1e-9).all()
    storage = f.baseline[f.baseline["kind"] == "storage"]
    assert (storage["upper_usd"] - storage["lower_usd"]).is_monotonic_increasing  # uncertainty grows
    assert 0 <= f.backtest_mape < 10, f.backtest.to_string()
    assert set(f.backtest["kind"]) == {"storage", "requests", "cost"}
    assert f.models["model"].str.startswith("ETS").all()


def test_forecast_what_if_saves_the_reclaimed_bytes(forecast):
    f, _ = forecast
    whatif = f.monthly.set_index(["month", "kind"])["expected_usd"]
    baseline = f.baseline.set_index(["month", "kind"])["expected_usd"]
    future = sorted(f.monthly["month"].unique())[1:]  # whole months: 2 GiB x $0.05 = $0.10 a month
    for month in future:
        assert baseline[(month, "storage")] - whatif[(month, "storage")] == pytest.approx(0.10, rel=1e-2)


def test_month_end_projection_starts_from_the_modeled_month_to_date(con, settings):
    proj = fc.month_end_projection(con, settings).set_index("kind")
    end = costs.coverage(con).last_full_day
    month = (end + timedelta(days=1)).replace(day=1)
    expected_actual = costs.daily_cost(con, settings, month, end)["cost_usd"].sum() if month <= end else 0.0
    assert proj.loc["total", "actual_usd"] == pytest.approx(expected_actual)
    assert proj.loc["total", "expected_usd"] >= proj.loc["total", "actual_usd"]
