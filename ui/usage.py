"""Usage page: downloads over time by format, repository or package; the top packages and consumers;
internal vs upstream share; repositories without traffic; versions downloaded by one principal
(layout only). The window is the last 30 days of data, or the filter's dates when set.

Reads: the store through its loads (ui/views.py). Writes nothing.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from core.settings import Settings
from ui import figures, views
from ui.common import DefaultLoads, Earlier, View, count, no_data

BY = {"format": "Format", "repository": "Repository", "package": "Package"}
DEFAULT_BY = "format"  # the chart's default split, which default_loads declares for ui/precompute.py
GROWTH = st.column_config.NumberColumn("Growth vs previous window", format="%+.0f%%")
COLUMNS = {"format": "Format", "namespace": "Namespace", "package": "Package", "version": "Version",
           "account_id": "Account", "region": "Region", "domain": "Domain", "repository": "Repository",
           "principal_arn": "Principal", "repositories": "Repositories", "packages": "Packages",
           "downloads": st.column_config.NumberColumn("Downloads", format="localized"),
           "principals": "Principals", "prev_downloads": st.column_config.NumberColumn("Previous window",
                                                                                        format="localized"),
           "growth_pct": GROWTH,
           "created_at": st.column_config.DatetimeColumn("Created (UTC)", format="YYYY-MM-DD"),
           "last_event_at": st.column_config.DatetimeColumn("Last request (UTC)", format="YYYY-MM-DD HH:mm"),
           "last_download_at": st.column_config.DatetimeColumn("Last download (UTC)", format="YYYY-MM-DD HH:mm")}


def over_time_ui(view: View, since: date, until: date) -> None:
    st.subheader("Downloads per day")
    by = st.selectbox("By", list(BY), index=list(BY).index(DEFAULT_BY), format_func=BY.get, key="usage_by")
    df = view.load(views.downloads_over_time, by, since, until)
    st.plotly_chart(figures.downloads_by(df, "series", BY[by]))


def kpis_ui(t: dict[str, pd.DataFrame]) -> None:
    downloads, internal, idle, single = st.columns(4)
    share = t["origin_share"]
    downloads.metric("Downloads in the window", count(int(share["downloads"].sum())), border=True)
    inside = float(share.loc[share["origin_type"] == "INTERNAL", "share_pct"].sum())
    internal.metric("Internal share", f"{inside:.1f}%", border=True,
                    help="Downloads of versions published into CodeArtifact; the rest were cached from upstream "
                         "(or are no longer in the inventory).")
    idle.metric("Repositories without traffic", count(len(t["idle_repositories"])), border=True)
    single.metric("Versions with one consumer", count(len(t["single_consumer_versions"])), border=True)


def top_ui(t: dict[str, pd.DataFrame]) -> None:
    packages, consumers = st.columns(2)
    with packages:
        st.subheader("Top packages")
        st.dataframe(t["packages"], hide_index=True, column_config=COLUMNS)
    with consumers:
        st.subheader("Top consumers")
        st.dataframe(t["consumers"], hide_index=True, column_config=COLUMNS)


def origin_ui(t: dict[str, pd.DataFrame]) -> None:
    chart, repos = st.columns([1, 2])
    with chart:
        st.subheader("Internal vs upstream")
        st.plotly_chart(figures.origin_share(t["origin_share"]))
    with repos:
        st.subheader("Top repositories")
        st.dataframe(t["repositories"], hide_index=True, column_config=COLUMNS)


def idle_ui(t: dict[str, pd.DataFrame]) -> None:
    st.subheader("Repositories without traffic")
    if t["idle_repositories"].empty:
        st.caption("Every repository had a successful request in the window.")
    else:
        st.dataframe(t["idle_repositories"], hide_index=True, column_config=COLUMNS)
    st.subheader("Versions downloaded by one principal")
    st.dataframe(t["single_consumer_versions"], hide_index=True, column_config=COLUMNS)


def default_loads(settings: Settings, earlier: Earlier) -> DefaultLoads:
    yield views.usage_window, (None, None)
    window = earlier(views.usage_window, None, None)
    if window is not None:
        yield views.usage_view, tuple(window)
        yield views.downloads_over_time, (DEFAULT_BY, *window)


def page(view: View) -> None:
    window = view.load(views.usage_window, view.filters.start, view.filters.end)
    if window is None:
        no_data(view)
        return
    since, until = window
    st.caption(f"Window: {since:%Y-%m-%d} to {until:%Y-%m-%d} (UTC days; the last 30 days of data unless the "
               "filters set dates). Growth compares with the window of the same length before it.")
    tables = view.load(views.usage_view, since, until)
    kpis_ui(tables)
    over_time_ui(view, since, until)
    top_ui(tables)
    origin_ui(tables)
    idle_ui(tables)
