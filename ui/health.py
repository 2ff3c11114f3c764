"""Data health page: last run and status per collector and scope, freshness per source, errors with
their fix, skipped files and row counts (layout only).

Reads: the store through its load (ui/views.health_view). Writes nothing.
"""

from __future__ import annotations

import streamlit as st

from analytics import health
from core.settings import Settings
from ui import views
from ui.common import DefaultLoads, Earlier, View, no_data


def default_loads(settings: Settings, earlier: Earlier) -> DefaultLoads:
    yield views.health_view, ()  # (never stored: its ages are against the clock, ui/precompute.CLOCK_LOADS)


def page(view: View) -> None:
    data: health.Health | None = view.load(views.health_view)
    if data is None:
        no_data(view)
        return
    failing = data.failing
    ok, bad, rows = st.columns(3)
    ok.metric("Collector scopes OK", int((data.runs["status"] == "ok").sum()), border=True)
    bad.metric("Scopes needing attention", failing, border=True,
               help="Latest run failed, was interrupted, or skipped files (partial).")
    rows.metric("Skipped items (latest runs)", len(data.skipped), border=True)
    st.subheader("Freshness per source")
    st.dataframe(data.freshness, hide_index=True, column_config={
        "source": "Source",
        "newest_at": st.column_config.DatetimeColumn("Newest data (UTC)", format="YYYY-MM-DD HH:mm"),
        "age_hours": st.column_config.NumberColumn("Age (hours)", format="%.1f"),
    })
    st.subheader("Errors")
    if data.errors.empty:
        st.caption("No collector error in the latest runs.")
    else:
        st.dataframe(data.errors, hide_index=True, column_config={
            "collector": "Collector", "scope": "Scope", "status": "Status",
            "error": st.column_config.TextColumn("Error and fix", width="large")})
    st.subheader("Latest run per collector and scope")
    st.dataframe(data.runs.drop(columns=["skipped_items", "error"]), hide_index=True, column_config={
        "collector": "Collector", "scope": "Scope", "status": "Status",
        "started_at": st.column_config.DatetimeColumn("Started (UTC)", format="YYYY-MM-DD HH:mm:ss"),
        "finished_at": st.column_config.DatetimeColumn("Finished (UTC)", format="YYYY-MM-DD HH:mm:ss"),
        "secs": st.column_config.NumberColumn("Seconds", format="%.1f"), "rows": "Rows", "skipped": "Skipped"})
    st.subheader("Skipped files and records")
    if data.skipped.empty:
        st.caption("Nothing was skipped in the latest runs.")
    else:
        st.dataframe(data.skipped, hide_index=True,
                     column_config={"collector": "Collector", "scope": "Scope", "item": "Item and reason"})
    st.subheader("Row counts")
    st.dataframe(data.counts, hide_index=True, column_config={"table_name": "Table", "row_count": "Rows"})
