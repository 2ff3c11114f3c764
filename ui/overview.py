"""Overview page: KPIs (storage, downloads, requests, month-to-date cost vs projection vs last month, open
spikes, cleanup savings), cost trend with the forecast band, top cost movers, storage per domain,
downloads over time, data freshness (layout only).

Reads: the store through its loads (ui/views.py). Writes nothing.
"""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from analytics import overview
from core.settings import Settings
from ui import figures, views
from ui.common import DefaultLoads, Earlier, View, count, gb, no_data, settings_policy, usd


def as_of_ui(data: overview.Overview) -> None:
    when = data.as_of
    st.caption(
        f"As of {when.latest_event_at:%Y-%m-%d %H:%M} UTC, the newest event in the store. "
        f"Last 30 days = {when.window_first_day:%Y-%m-%d} to {when.day:%Y-%m-%d}; "
        f"this month = {when.month_start:%B %Y} to date."
    )


def kpis_ui(data: overview.Overview) -> None:
    storage, downloads, requests, cost = st.columns(4)
    storage.metric("Storage (GB)", gb(data.storage_gb), border=True,
                   help="Latest size of every domain; GB = bytes / 1024³, as AWS bills it.")
    downloads.metric("Downloads (30 d)", count(data.downloads_30d), border=True,
                     help="Successful package asset fetches in the last 30 days.")
    requests.metric("Requests this month", count(data.requests_this_month), border=True,
                    help="Successful CodeArtifact API requests (CloudTrail events without an error code).")
    cost.metric("Modeled cost month-to-date", usd(data.cost.total_usd), border=True,
                help=f"Storage {usd(data.cost.storage_usd)} + requests {usd(data.cost.requests_usd)}, "
                     "from the price table in settings (free tier taken off); not the AWS bill.")


def early_month_ui(c: views.OverviewCosts) -> None:
    """The first days of a month: last month's final cost leads, this month's projection follows."""
    final, note = st.columns([1, 3], vertical_alignment="center")
    final.metric(f"{c.last_month:%B %Y}, final modeled cost", usd(c.last_month_usd), border=True,
                 help="The whole of last month from the same cost model.")
    note.caption(f"The first days of {c.history_end + timedelta(days=1):%B} have too little to date to lead with: "
                 f"{c.last_month:%B}'s final cost comes first, and this month's projection per domain is below.")


def projection_by_domain_ui(c: views.OverviewCosts) -> None:
    st.subheader(f"Projected month-end cost by domain ({c.history_end + timedelta(days=1):%B %Y})")
    if c.by_domain.empty:
        st.caption("No domain has storage or requests to project.")
        return
    st.plotly_chart(figures.projection_by_domain(c.by_domain))


def cost_kpis_ui(c: views.OverviewCosts, savings: dict | None) -> None:
    projected, last_month, spikes, cleanup = st.columns(4)
    expected = c.projected()
    projected.metric(
        "Projected month-end cost", usd(expected), border=True,
        delta=f"{usd(expected - c.last_month_usd)} vs last month" if c.last_month_usd else None,
        delta_color="inverse",
        help=f"Modeled cost to {c.history_end:%Y-%m-%d} ({usd(c.projected('actual_usd'))}) plus the forecast to "
             f"the month end; 80% interval {usd(c.projected('lower_usd'))} to {usd(c.projected('upper_usd'))}.")
    last_month.metric(f"Last month ({c.last_month:%B %Y})", usd(c.last_month_usd), border=True,
                      help="Modeled cost of the previous calendar month, from the same cost model.")
    spikes.metric(f"Open spikes ({views.OPEN_SPIKE_DAYS} d)", count(c.open_spikes), border=True,
                  help="Download spikes and auth-failure bursts ending in the last 7 days of data "
                       "(see the Spikes page).")
    if savings is not None:
        s = savings["monthly_savings_usd"]
        cleanup.metric("Cleanup savings ($/month)", usd(s["permanent"]), border=True,
                       help=f"Permanent storage savings of the cleanup policy in settings "
                            f"({savings['candidates']:,} candidates); another {usd(s['refetchable'])}/month "
                            "is refetchable from upstream. See the Cleanup page.")


def cost_trend_ui(c: views.OverviewCosts) -> None:
    st.subheader(f"Cost per day, last {views.TREND_DAYS} days and the forecast to the month end")
    st.plotly_chart(figures.cost_trend(c.trend, c.band))


def movers_ui(c: views.OverviewCosts) -> None:
    st.subheader(f"Top cost movers: last {views.MOVER_DAYS} days vs the {views.MOVER_DAYS} before")
    if c.movers.empty:
        st.caption("No repository's modeled cost changed.")
        return
    st.plotly_chart(figures.cost_movers(c.movers))


def storage_ui(data: overview.Overview) -> None:
    st.subheader("Storage by domain")
    if data.storage.empty:
        st.caption("No storage snapshots yet: run `caa collect inventory`.")
        return
    st.dataframe(
        data.storage[["domain", "account_id", "region", "storage_gb", "snapshot_date"]],
        hide_index=True,
        column_config={
            "domain": "Domain", "account_id": "Account", "region": "Region",
            "storage_gb": st.column_config.NumberColumn("Storage (GB)", format="%.2f"),
            "snapshot_date": st.column_config.DateColumn("Snapshot"),
        },
    )


def downloads_ui(data: overview.Overview) -> None:
    st.subheader("Downloads per day by format")
    st.plotly_chart(figures.downloads_over_time(data.downloads_by_day))


def freshness_ui(data: overview.Overview) -> None:
    with st.sidebar:
        st.subheader("Data freshness")
        if data.freshness.empty:
            st.caption("No collector runs recorded.")
            return
        st.dataframe(
            data.freshness[["collector", "status", "last_finished_at", "failing_scopes", "scopes", "error"]],
            hide_index=True,
            column_config={
                "collector": "Collector", "status": "Status",
                "last_finished_at": st.column_config.DatetimeColumn("Last finished (UTC)",
                                                                    format="YYYY-MM-DD HH:mm"),
                "failing_scopes": "Failing", "scopes": "Scopes", "error": "Error",
            },
        )


def default_loads(settings: Settings, earlier: Earlier) -> DefaultLoads:
    yield views.overview_view, ()
    yield views.overview_costs, ()
    yield views.cleanup_view, views.settings_policy(settings)  # the cleanup KPI: the settings' policy


def page(view: View) -> None:
    data = view.load(views.overview_view)
    if data is None:
        no_data(view, view.load(views.bill_only))
        return
    as_of_ui(data)
    costs = view.load(views.overview_costs)
    if costs is not None and costs.early:  # the headline on the first days of a month
        early_month_ui(costs)
    kpis_ui(data)
    cleanup = view.load(views.cleanup_view, *settings_policy(view))
    if costs is not None:
        cost_kpis_ui(costs, cleanup.summary if cleanup is not None else None)
        projection_by_domain_ui(costs)
        cost_trend_ui(costs)
    downloads_ui(data)
    if costs is not None:
        movers_ui(costs)
    storage_ui(data)
    freshness_ui(data)
