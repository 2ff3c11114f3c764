"""The dashboard's figures (ui/figures.py): their traces and axis titles, and that hostile names from
the data reach the figure as text, never as markup plotly would read."""

from __future__ import annotations

import html
import json
from datetime import date

import pandas as pd
import pytest

from tests.fixtures.hostile import HOSTILE
from ui import figures, views

EVIL = HOSTILE["html-img"]  # plotly reads <b>, <br>, <a href>... in text: this must stay a literal name


def shows_literally(fig, name: str = EVIL) -> None:
    """`name` is in the figure only escaped: plotly decodes the entities and shows exactly `name`."""
    text = json.dumps(json.loads(fig.to_json()), ensure_ascii=False)
    escaped = figures.plain(name)
    assert escaped in text and html.unescape(escaped) == name
    assert name not in text  # the raw tag never reaches plotly


def days(n: int = 3) -> pd.DatetimeIndex:
    return pd.date_range("2026-11-01", periods=n, freq="D")


def test_downloads_by_stacks_one_trace_per_series_with_hostile_names():
    df = pd.DataFrame({"day": list(days()) * 2, "series": ["acme/app"] * 3 + [EVIL] * 3,
                       "downloads": [1, 2, 3, 4, 5, 6]})
    fig = figures.downloads_by(df, "series", "Repository")
    assert sorted(t.name for t in fig.data) == sorted(["acme/app", figures.plain(EVIL)])
    assert fig.layout.barmode == "stack" and fig.layout.legend.title.text == "Repository"
    assert fig.layout.yaxis.title.text == "Downloads per day (UTC)"
    assert sum(sum(t.y) for t in fig.data) == 21
    shows_literally(fig)


def test_cost_trend_has_kinds_and_the_forecast_band():
    history = pd.DataFrame({"usage_date": list(days()) * 2, "kind": ["storage"] * 3 + ["requests"] * 3,
                            "cost_usd": [1.0, 1.1, 1.2, 0.1, 0.1, 0.2]})
    band = pd.DataFrame({"usage_date": pd.date_range("2026-11-04", periods=2), "expected_usd": [1.3, 1.4],
                         "lower_usd": [1.2, 1.2], "upper_usd": [1.4, 1.6]})
    fig = figures.cost_trend(history, band)
    assert [t.name for t in fig.data] == ["requests", "storage", "upper", "Forecast interval", "Forecast"]
    assert fig.data[3].fill == "tonexty"
    assert fig.layout.yaxis.title.text == "Modeled cost per day (USD)"
    assert [t.name for t in figures.daily_cost(history).data] == ["requests", "storage"]


def test_cost_movers_colours_rises_and_falls_and_escapes_names():
    df = pd.DataFrame({"account_id": ["1", "1", "2"], "region": ["r"] * 3, "domain": ["acme", "acme", "acme"],
                       "repository": [EVIL, None, EVIL], "cost_usd": [3.0, 1.0, 1.0],
                       "prev_cost_usd": [1.0, 2.0, 0.5], "change_usd": [2.0, -1.0, 0.5]})
    fig = figures.cost_movers(df)
    bar = fig.data[0]
    assert list(bar.marker.color) == ["#d62728", "#2ca02c", "#d62728"]
    assert bar.y[1] == "acme/(domain-level requests)"
    assert len(set(bar.y)) == 3  # the same repository name in two accounts stays two bars
    assert fig.layout.xaxis.title.text == "Change in modeled cost vs previous period (USD)"
    shows_literally(fig)


def test_cost_breakdown_is_a_treemap_whose_parents_add_up():
    df = pd.DataFrame({"domain": ["acme", "acme", "beta"], "repository": [EVIL, "libs", None],
                       "cost_usd": [2.0, 1.0, 4.0]})
    fig = figures.cost_breakdown(df, ["domain", "repository"])
    tree = fig.data[0]
    assert tree.type == "treemap" and tree.branchvalues == "total"
    values = dict(zip(tree.ids, tree.values, strict=True))
    assert values["acme"] == 3.0 and values["beta"] == 4.0 and values["beta\x1f(none)"] == 4.0
    assert set(tree.parents) == {"", "acme", "beta"}
    shows_literally(fig)


def test_forecast_months_shows_the_interval_and_the_what_if():
    months = [date(2026, 11, 1), date(2026, 12, 1)]
    base = pd.DataFrame({"month": months * 2, "kind": ["total"] * 2 + ["storage"] * 2,
                         "expected_usd": [5.0, 6.0, 5.0, 6.0], "lower_usd": [4.5, 5.0, 0, 0],
                         "upper_usd": [5.5, 7.0, 0, 0]})
    after = base.assign(expected_usd=[4.0, 4.5, 4.0, 4.5])
    fig = figures.forecast_months(after, base)
    bars, line = fig.data
    assert bars.name == "Forecast" and list(bars.y) == [5.0, 6.0]
    assert list(bars.error_y.array) == [0.5, 1.0] and list(bars.error_y.arrayminus) == [0.5, 1.0]
    assert line.name == "After the cleanup policy" and list(line.y) == [4.0, 4.5]
    assert fig.layout.yaxis.title.text == "Modeled cost per month (USD)"


def test_reconcile_compares_modeled_and_actual_per_day():
    daily = pd.DataFrame({"usage_date": [date(2026, 11, 1)] * 2 + [date(2026, 11, 2)], "account_id": ["1", "2", "1"],
                          "kind": ["storage"] * 3, "modeled_usd": [1.0, 2.0, 1.5], "actual_usd": [1.0, 2.1, 1.5]})
    fig = figures.reconcile(daily)
    assert [t.name for t in fig.data] == ["Cost Explorer (actual)", "Modeled"]
    assert list(fig.data[0].y) == pytest.approx([3.1, 1.5]) and list(fig.data[1].y) == [3.0, 1.5]
    assert fig.layout.yaxis.title.text == "Cost per day (USD)"
    empty = figures.reconcile(daily.iloc[:0])
    assert empty.layout.annotations[0].text == "No Cost Explorer data to compare with"


def test_origin_share_is_a_donut():
    df = pd.DataFrame({"origin_type": ["EXTERNAL", EVIL], "downloads": [9, 1], "share_pct": [90.0, 10.0]})
    fig = figures.origin_share(df)
    assert fig.data[0].type == "pie" and fig.data[0].hole == 0.5 and list(fig.data[0].values) == [9, 1]
    shows_literally(fig)


def test_spike_timeline_marks_each_spike_and_plots_denied_events():
    timeline = pd.DataFrame({"day": days(5), "downloads": [10, 50, 12, 11, 9], "denied": [0, 0, 0, 40, 0]})
    found = pd.DataFrame({
        "kind": ["download", "auth"], "package": [EVIL, None], "principal_arn": [None, "arn:aws:iam::1:role/ci"],
        "start": pd.to_datetime(["2026-11-02 03:00", "2026-11-04 10:00"], utc=True),
        "end": pd.to_datetime(["2026-11-02 09:00", "2026-11-04 12:00"], utc=True)})
    fig = figures.spike_timeline(timeline, found)
    assert [t.name for t in fig.data] == ["Downloads", "Access denied", "Spikes"]
    assert fig.data[1].yaxis == "y2" and list(fig.data[1].y) == [0, 0, 0, 40, 0]
    assert list(fig.data[2].text) == ["#1", "#2"]
    assert [s.type for s in fig.layout.shapes] == ["rect", "rect"]
    assert fig.layout.yaxis.title.text == "Downloads per day (UTC)"
    assert fig.layout.yaxis2.title.text == "Access-denied events per day"
    shows_literally(fig)
    assert len(figures.spike_timeline(timeline, found.iloc[:0]).data) == 2


def test_spike_drivers_from_the_detectors_top_lists():
    row = pd.Series({"top_principals": [f"{EVIL} (75%)", "arn:aws:iam::1:user/bob (25%)"],
                     "top_user_agents": ["pip/24 (a (b)) (100%)"], "top_source_ips": []})
    drivers = views.spike_drivers(row)
    assert list(drivers["driver"]) == ["principal", "principal", "user agent"]
    assert list(drivers["value"]) == [EVIL, "arn:aws:iam::1:user/bob", "pip/24 (a (b))"]
    assert list(drivers["share_pct"]) == [75.0, 25.0, 100.0]
    fig = figures.spike_drivers(drivers)
    assert list(fig.data[0].x) == [75.0, 25.0, 100.0]
    assert fig.layout.xaxis.title.text == "Share of the spike's excess (%)"
    shows_literally(fig)
    long = figures.spike_drivers(pd.DataFrame({"driver": ["user agent"], "value": ["x" * 300], "share_pct": [1.0]}))
    assert len(long.layout.yaxis.ticktext[0]) <= 70 and "x" * 300 in long.data[0].hovertext[0]


def test_cleanup_by_domain_stacks_permanent_and_refetchable():
    by_domain = [{"account_id": "1", "region": "r", "domain": EVIL, "candidates": 3,
                  "reclaimable_gb": {"permanent": 2.0, "refetchable": 1.0, "total": 3.0},
                  "monthly_savings_usd": {"permanent": 0.1, "refetchable": 0.05, "total": 0.15}}]
    fig = figures.cleanup_by_domain(by_domain)
    assert [t.name for t in fig.data] == ["Permanent", "Refetchable"]
    assert [t.x[0] for t in fig.data] == [2.0, 1.0]
    assert fig.layout.xaxis.title.text == "Reclaimable GB"
    shows_literally(fig)
    assert figures.cleanup_by_domain([]).layout.annotations[0].text == "No cleanup candidates"


@pytest.mark.parametrize("name", HOSTILE.values(), ids=HOSTILE)
def test_every_hostile_name_reaches_a_legend_unchanged_after_decoding(name):
    df = pd.DataFrame({"day": days(1), "series": [name], "downloads": [1]})
    legend = figures.downloads_by(df).data[0].name
    assert html.unescape(legend) == name
    assert "<" not in legend and ">" not in legend
