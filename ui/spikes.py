"""Spikes page: downloads and access-denied events per day with the spike windows marked, the spikes with
their size and cost, and the drivers (principal, user agent, source IP with shares) of the chosen spike
(layout only).

Reads: the store through its load (ui/views.spikes_view). Writes nothing.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analytics.reports import flatten_lists
from core.settings import Settings
from ui import figures, views
from ui.common import DefaultLoads, Earlier, View, count, no_data, usd

WINDOWS = {30: "30 days", 90: "90 days", 365: "365 days"}
DEFAULT_DAYS = 90  # the window's default, which default_loads declares for ui/precompute.py
COLUMNS = {
    "#": st.column_config.NumberColumn("#", width="small"), "kind": "Kind", "signal": "Signal",
    "level": "Level", "domain": "Domain", "repository": "Repository", "format": "Format",
    "namespace": "Namespace", "package": "Package", "principal_arn": "Principal",
    "start": st.column_config.DatetimeColumn("Start (UTC)", format="YYYY-MM-DD HH:mm"),
    "end": st.column_config.DatetimeColumn("End (UTC)", format="YYYY-MM-DD HH:mm"),
    "score": st.column_config.NumberColumn("Score", format="%.1f"),
    "observed": st.column_config.NumberColumn("Observed", format="localized"),
    "baseline": st.column_config.NumberColumn("Baseline", format="%.0f"),
    "excess": st.column_config.NumberColumn("Excess", format="localized"), "unit": "Of",
    "excess_requests": st.column_config.NumberColumn("Excess requests", format="localized",
                                                     help="With the metadata requests of the same sessions"),
    "free_tier": st.column_config.TextColumn("Free tier", help="within: the account's month stays under the "
                                             "free requests; pushed past: the spike crossed it; past: all billed"),
    "excess_cost_usd": st.column_config.NumberColumn("Excess cost", format="$%.4f"),
    "top_principals": "Top principals", "top_user_agents": "Top user agents", "top_source_ips": "Top source IPs",
}


def window_ui() -> int:
    return st.radio("Window", list(WINDOWS), index=list(WINDOWS).index(DEFAULT_DAYS), horizontal=True,
                    format_func=WINDOWS.get,
                    key="spike_days")


def kpis_ui(found: pd.DataFrame) -> None:
    total, downloads, auth, cost = st.columns(4)
    total.metric("Spikes", count(len(found)), border=True)
    downloads.metric("Download spikes", count(int((found["kind"] == "download").sum())), border=True)
    auth.metric("Auth-failure bursts", count(int((found["kind"] == "auth").sum())), border=True)
    cost.metric("Excess cost", usd(float(found["excess_cost_usd"].sum())), border=True,
                help="The excess requests (downloads and the metadata of their sessions) that the account's "
                     "monthly free tier does not cover, at the region's request price.")


def table_ui(found: pd.DataFrame) -> None:
    st.subheader("Spikes")
    shown = flatten_lists(found).assign(**{"#": range(1, len(found) + 1)})
    st.dataframe(shown[["#", *[c for c in COLUMNS if c != "#"]]], hide_index=True, column_config=COLUMNS)


def drivers_ui(found: pd.DataFrame) -> None:
    st.subheader("Drivers")
    rows = list(found.index)
    pick = st.selectbox("Spike", rows, key="spike_pick", format_func=lambda i: (
        f"#{i + 1}: {found.at[i, 'kind']} ({found.at[i, 'signal']}, {found.at[i, 'level']} level), "
        f"{pd.Timestamp(found.at[i, 'start']):%Y-%m-%d %H:%M} UTC, score {found.at[i, 'score']:.1f}"))
    spike = found.loc[pick]
    drivers = views.spike_drivers(spike)
    excess, cost = st.columns(2)
    excess.metric("Excess over the baseline", count(int(spike["excess"])), border=True,
                  help=f"Observed {spike['observed']:,.0f} vs baseline {spike['baseline']:,.0f} ({spike['unit']}); "
                       f"signal {spike['signal']} at the {spike['level']} level.")
    cost.metric("Its cost", usd(float(spike["excess_cost_usd"])), border=True,
                help=f"{spike['billable_requests']:,.0f} billable of {spike['excess_requests']:,.0f} excess requests "
                     f"(free tier: {spike['free_tier']}).")
    st.plotly_chart(figures.spike_drivers(drivers))
    st.dataframe(drivers, hide_index=True, column_config={
        "driver": "Driver", "value": st.column_config.TextColumn("Value", width="large"),
        "share_pct": st.column_config.NumberColumn("Share of excess", format="%.0f%%")})


def default_loads(settings: Settings, earlier: Earlier) -> DefaultLoads:
    yield views.spikes_view, (None, None, DEFAULT_DAYS)


def page(view: View) -> None:
    days = window_ui()
    data: views.SpikesView | None = view.load(views.spikes_view, view.filters.start, view.filters.end, days)
    if data is None:
        no_data(view)
        return
    st.caption(f"Spikes ending from {data.since:%Y-%m-%d} to {data.until:%Y-%m-%d} (UTC; the filters' dates "
               "win over the window). Orange: download spikes; red: auth-failure bursts.")
    kpis_ui(data.spikes)
    st.plotly_chart(figures.spike_timeline(data.timeline, data.spikes))
    if data.spikes.empty:
        st.caption("No spike in this window.")
        return
    table_ui(data.spikes)
    drivers_ui(data.spikes)
