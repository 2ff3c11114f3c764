"""Plotly figures for the dashboard: small pure functions from DataFrames to figures (no I/O).

Labels that come from data are passed through `plain()`, because plotly reads a small set of HTML
tags (<b>, <br>, <a href>) in text: a hostile package or format name must show as typed.
"""

from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go


def plain(text: object) -> str:
    """`text` escaped so plotly shows it literally instead of reading tags in it."""
    return html.escape(str(text), quote=False)


def downloads_over_time(df: pd.DataFrame) -> go.Figure:
    """Stacked daily bars of downloads by format, from columns day, format, downloads."""
    fig = go.Figure()
    for fmt, part in df.groupby("format", sort=True):
        fig.add_bar(
            x=part["day"], y=part["downloads"], name=plain(fmt),
            hovertemplate="%{fullData.name}<br>%{x|%Y-%m-%d}: %{y:,} downloads<extra></extra>",
        )
    fig.update_layout(
        barmode="stack", legend_title_text="Format", legend_traceorder="normal",
        margin={"l": 10, "r": 10, "t": 30, "b": 10}, xaxis_title=None, yaxis_title="Downloads per day (UTC)",
    )
    peak = int(df.groupby("day")["downloads"].sum().max()) if not df.empty else 0
    fig.update_yaxes(rangemode="tozero", tickformat=",", dtick=1 if peak <= 5 else None)
    if df.empty or int(df["downloads"].sum()) == 0:
        fig.add_annotation(text="No downloads in this window", showarrow=False,
                           xref="paper", yref="paper", x=0.5, y=0.5)
    return fig
