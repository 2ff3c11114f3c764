"""Costs page: modeled cost by domain, repository, package or team (treemap and table), daily cost by
storage and requests, the 3/6/12-month forecast with its interval, backtest error and the cleanup
what-if, and modeled cost against the CUR 2.0 bill (per kind, domain and repository, data transfer, free
tier, credits and tax), or against Cost Explorer when no bill is collected (layout only).

Reads: the store through its loads (ui/views.py). Writes nothing.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from analytics import costs, forecast
from core.settings import Settings
from ui import figures, views
from ui.common import DefaultLoads, Earlier, View, no_data, pct, settings_policy, usd

LEVELS = {"domain": "Domain", "repository": "Repository", "package": "Package", "team": "Team"}
PATHS = {"domain": ["domain"], "repository": ["domain", "repository"],
         "package": ["domain", "repository", "package"], "team": ["team"]}
HORIZONS = (3, 6, 12)
# The widgets' defaults, which default_loads declares for ui/precompute.py.
DEFAULT_LEVEL = "domain"
DEFAULT_HORIZON = 3
MONEY = {c: st.column_config.NumberColumn(label, format="$%.2f") for c, label in (
    ("cost_usd", "Cost"), ("storage_usd", "Storage"), ("requests_usd", "Requests cost"),
    ("modeled_usd", "Modeled"), ("actual_usd", "Cost Explorer"), ("expected_usd", "Expected"),
    ("lower_usd", "Low (interval)"), ("upper_usd", "High (interval)"))}


def level_ui() -> str:
    return st.selectbox("Break down by", list(LEVELS), index=list(LEVELS).index(DEFAULT_LEVEL),
                        format_func=LEVELS.get, key="cost_level")


def breakdown_ui(view: View, level: str, since: date, until: date) -> pd.DataFrame:
    df: pd.DataFrame = view.load(views.cost_report, level, since, until)
    total, storage, requests = st.columns(3)
    total.metric("Modeled cost in the window", usd(float(df["cost_usd"].sum())), border=True,
                 help="Storage attributed to assets by their share of the domain's bytes, requests pro rata; "
                      "from the price table in settings (free tier taken off), not the AWS bill.")
    storage.metric("Storage", usd(float(df["storage_usd"].sum())), border=True)
    requests.metric("Requests", usd(float(df["requests_usd"].sum())), border=True)
    st.plotly_chart(figures.cost_breakdown(df, PATHS[level]))
    keys = [k for k in costs.LEVELS[level] if k != "region"]
    st.dataframe(df[[*keys, "gb_month", "requests", "storage_usd", "requests_usd", "cost_usd", "share_pct"]],
                 hide_index=True, column_config={
                     **MONEY, "gb_month": st.column_config.NumberColumn("GB-months", format="%.3f"),
                     "share_pct": st.column_config.NumberColumn("Share", format="%.1f%%"),
                     "account_id": "Account", "domain": "Domain", "repository": "Repository",
                     "namespace": "Namespace", "package": "Package", "format": "Format", "team": "Team",
                     "requests": st.column_config.NumberColumn("Requests", format="localized")})
    return df


def daily_ui(view: View, since: date, until: date) -> None:
    st.subheader("Cost per day by storage and requests")
    st.plotly_chart(figures.daily_cost(view.load(views.daily_cost, since, until)))


def forecast_ui(view: View) -> None:
    st.subheader("Forecast")
    months = st.radio("Months ahead", HORIZONS, index=HORIZONS.index(DEFAULT_HORIZON), horizontal=True, key="cost_horizon",
                      format_func=lambda m: f"{m} months")
    fc: forecast.Forecast = view.load(views.forecast_with_cleanup, months, *settings_policy(view))
    total = fc.baseline[fc.baseline["kind"] == "total"]
    after = fc.monthly[fc.monthly["kind"] == "total"]
    a, b, c = st.columns(3)
    a.metric(f"Next {months} months (expected)", usd(float(total["expected_usd"].iloc[1:].sum())), border=True,
             help=f"Full months after this one; {fc.level:.0%} interval per month in the chart.")
    b.metric("After the cleanup policy", usd(float(after["expected_usd"].iloc[1:].sum())), border=True,
             help="The same forecast with the permanently reclaimable bytes of the cleanup policy in settings "
                  "taken off each domain from tomorrow on (see the Cleanup page).")
    c.metric("Backtest error (MAPE)", pct(fc.backtest_mape), border=True,
             help=f"Daily cost forecast refit without the last {int(fc.backtest['holdout_days'].max())} days "
                  "and compared with them (mean absolute percentage error).")
    st.plotly_chart(figures.forecast_months(fc.monthly, fc.baseline, fc.level))
    table = total[["month", "actual_usd", "expected_usd", "lower_usd", "upper_usd"]].merge(
        after[["month", "expected_usd"]].rename(columns={"expected_usd": "with_cleanup_usd"}), on="month")
    st.dataframe(table, hide_index=True, column_config={
        **MONEY, "month": st.column_config.DateColumn("Month", format="MMM YYYY"),
        "actual_usd": st.column_config.NumberColumn("To date (USD)", format="$%.2f"),
        "with_cleanup_usd": st.column_config.NumberColumn("After cleanup (USD)", format="$%.2f")})
    for note in fc.notes:
        st.text(note)


def reconcile_ui(view: View, since: date | None, until: date | None) -> None:
    bill: views.BillView = view.load(views.bill_view, since, until)
    if bill.note is None:
        billed_ui(view, bill)
        return
    st.subheader("Modeled vs Cost Explorer")
    daily: pd.DataFrame = view.load(views.reconcile, since, until)
    if daily.empty:
        st.caption("No bill to compare with: set [cur] sources (a CUR 2.0 export) and run `caa collect cur`, or run "
                   "`caa collect costs` for Cost Explorer.")
        return
    st.caption(f"The CUR 2.0 bill is not here ({bill.note}); Cost Explorer's daily totals per usage type stand in.")
    summary = costs.reconcile_summary(daily)
    every = summary[summary["account_id"] == "all"]
    cols = st.columns(len(every) + 1)
    m, a = float(every["modeled_usd"].sum()), float(every["actual_usd"].sum())
    cols[0].metric("Modeled vs actual", pct((m - a) / a * 100 if a else float("nan")), border=True,
                   help=f"Modeled {usd(m)} vs Cost Explorer {usd(a)} from {every['first_day'].min()} "
                        f"to {every['last_day'].max()}.")
    for col, r in zip(cols[1:], every.itertuples(index=False), strict=True):
        col.metric(f"Difference, {r.kind}", pct(r.diff_pct), border=True)
    st.plotly_chart(figures.reconcile(daily))
    st.dataframe(summary, hide_index=True, column_config={**MONEY, **RECONCILE, "account_id": "Account"})


RECONCILE = {"kind": "Kind", "first_day": st.column_config.DateColumn("From"),
             "last_day": st.column_config.DateColumn("To"),
             "diff_usd": st.column_config.NumberColumn("Diff ($)", format="$%.4f"),
             "diff_pct": st.column_config.NumberColumn("Diff (cost)", format="%.3f%%"),
             "modeled_quantity": st.column_config.NumberColumn("Modeled quantity", format="%.2f"),
             "actual_quantity": st.column_config.NumberColumn("Billed quantity", format="%.2f"),
             "quantity_diff_pct": st.column_config.NumberColumn("Diff (quantity)", format="%.3f%%")}
ADJUST = {"billing_period": st.column_config.DateColumn("Period", format="MMM YYYY"), "account_id": "Account",
          "kind": "Line", "lines": st.column_config.NumberColumn("Lines", format="localized"),
          "usage_amount": st.column_config.NumberColumn("Usage", format="%.2f"),
          "amount_usd": st.column_config.NumberColumn("Billed", format="$%.2f"),
          "list_value_usd": st.column_config.NumberColumn("Worth at list price", format="$%.2f")}


def billed_ui(view: View, bill: views.BillView) -> None:
    """Modeled vs the CUR 2.0 bill: per kind, per domain (storage), per repository (requests), data transfer,
    and the lines that are not usage."""
    st.subheader("Modeled vs billed (CUR 2.0)")
    first, last = bill.window
    m, a = float(bill.kinds["modeled_usd"].sum()), float(bill.kinds["actual_usd"].sum())
    cols = st.columns(len(bill.kinds) + 1)
    cols[0].metric("Modeled vs billed", pct((m - a) / a * 100 if a else float("nan")), border=True,
                   help=f"Modeled {usd(m)} vs the bill's usage lines {usd(a)} (unblended, before credits and tax), "
                        f"{first:%Y-%m-%d} to {last:%Y-%m-%d}.")
    for col, r in zip(cols[1:], bill.kinds.itertuples(index=False), strict=True):
        col.metric(f"Billed {r.kind}", usd(r.actual_usd), delta=f"model {usd(r.modeled_usd)}", delta_color="off",
                   border=True)
    st.plotly_chart(figures.reconcile(bill.daily, "CUR 2.0 bill"))
    st.markdown("**Storage per domain** (the bill ties storage to domains)")
    if bill.domains_note:
        st.caption(bill.domains_note)
    else:
        st.plotly_chart(figures.modeled_vs_billed(bill.domains, "domain"))
        st.dataframe(bill.domains, hide_index=True, column_config={**MONEY, **RECONCILE, "account_id": "Account",
                                                                    "domain": "Domain", "actual_usd": "Billed"})
        with st.expander("Requests per repository (the bill ties most requests to repositories)"):
            st.dataframe(bill.repositories, hide_index=True, column_config={
                **MONEY, **RECONCILE, "domain": "Domain", "repository": "Repository", "actual_usd": "Billed"})
    st.markdown("**Free tier, credits, discounts and tax** (lines that are not priced usage)")
    st.dataframe(bill.adjustments, hide_index=True, column_config=ADJUST)
    st.markdown("**Data transfer out**: bytes served per repository by where the client was (its source IP "
                "against AWS's published IP ranges)")
    st.plotly_chart(figures.transfer_bytes(bill.transfer))


def default_loads(settings: Settings, earlier: Earlier) -> DefaultLoads:
    yield views.cost_window, (None, None, None)
    window = earlier(views.cost_window, None, None, None)
    if window is None:
        return
    yield views.cost_report, (DEFAULT_LEVEL, *window)
    yield views.cost_window, (None, None, views.TREND_DAYS)
    trend = earlier(views.cost_window, None, None, views.TREND_DAYS)
    if trend is not None:
        yield views.daily_cost, tuple(trend)
    yield views.forecast_with_cleanup, (DEFAULT_HORIZON, *views.settings_policy(settings))
    yield views.bill_view, (None, None)
    bill = earlier(views.bill_view, None, None)
    if bill is None or bill.note is not None:  # no bill: the page reconciles with Cost Explorer
        yield views.reconcile, (None, None)


def page(view: View) -> None:
    window = view.load(views.cost_window, view.filters.start, view.filters.end, None)
    if window is None:
        no_data(view, view.load(views.bill_only))
        return
    since, until = window
    st.caption(f"Window: {since:%Y-%m-%d} to {until:%Y-%m-%d} (UTC days; this month to the last full day, or "
               f"the last full month in the first {costs.EARLY_DAYS} days of a month, unless the filters set dates).")
    level = level_ui()
    breakdown_ui(view, level, since, until)
    trend = view.load(views.cost_window, view.filters.start, view.filters.end, views.TREND_DAYS)
    daily_ui(view, *trend)
    forecast_ui(view)
    reconcile_ui(view, view.filters.start, view.filters.end)
