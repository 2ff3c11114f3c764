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


MARGIN = {"l": 10, "r": 10, "t": 30, "b": 10}
KIND_COLORS = {"storage": "#1f77b4", "requests": "#ff7f0e"}


def _empty(fig: go.Figure, df: pd.DataFrame, text: str) -> go.Figure:
    if df.empty:
        fig.add_annotation(text=text, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    return fig


def _unique(labels: list[str], extra: list[str]) -> list[str]:
    """Labels made unique (plotly merges equal category names) by adding `extra` where two are equal."""
    twice = {x for x in labels if labels.count(x) > 1}
    return [f"{x} ({e})" if x in twice else x for x, e in zip(labels, extra, strict=True)]


def downloads_by(df: pd.DataFrame, column: str = "series", legend: str = "Series") -> go.Figure:
    """Stacked daily bars of downloads by `column` (e.g. repository or package), from day, column, downloads."""
    return downloads_over_time(df.rename(columns={column: "format"})).update_layout(legend_title_text=legend)


def cost_trend(history: pd.DataFrame, band: pd.DataFrame) -> go.Figure:
    """Daily modeled cost stacked by kind (history: usage_date, kind, cost_usd) and the forecast to the
    month end as a line with its interval (band: usage_date, expected_usd, lower_usd, upper_usd)."""
    fig = go.Figure()
    for kind, part in history.groupby("kind", sort=True):
        fig.add_bar(x=part["usage_date"], y=part["cost_usd"], name=plain(kind),
                    marker_color=KIND_COLORS.get(str(kind)),
                    hovertemplate="%{fullData.name}<br>%{x|%Y-%m-%d}: $%{y:,.4f}<extra></extra>")
    if not band.empty:
        fig.add_scatter(x=band["usage_date"], y=band["upper_usd"], mode="lines", line_width=0, showlegend=False,
                        hoverinfo="skip", name="upper")
        fig.add_scatter(x=band["usage_date"], y=band["lower_usd"], mode="lines", line_width=0, fill="tonexty",
                        fillcolor="rgba(44,160,44,0.2)", name="Forecast interval", hoverinfo="skip")
        fig.add_scatter(x=band["usage_date"], y=band["expected_usd"], mode="lines", name="Forecast",
                        line={"color": "#2ca02c", "dash": "dash"},
                        hovertemplate="forecast %{x|%Y-%m-%d}: $%{y:,.4f}<extra></extra>")
    fig.update_layout(barmode="stack", legend_title_text="Cost", margin=MARGIN, xaxis_title=None,
                      yaxis_title="Modeled cost per day (USD)")
    fig.update_yaxes(rangemode="tozero", tickprefix="$")
    return _empty(fig, history, "No cost in this window")


def cost_movers(df: pd.DataFrame) -> go.Figure:
    """Horizontal bars of each repository's cost change (df: account_id, region, domain, repository,
    change_usd, cost_usd, prev_cost_usd), rises red, falls green, biggest on top."""
    labels = [plain(x) for x in _unique(
        [f"{d}/{r}" if isinstance(r, str) else f"{d}/(domain-level requests)"
         for d, r in zip(df["domain"], df["repository"], strict=True)],
        [f"{a} {g}" for a, g in zip(df["account_id"], df["region"], strict=True)])]
    fig = go.Figure(go.Bar(
        x=df["change_usd"], y=labels, orientation="h",
        marker_color=["#d62728" if v > 0 else "#2ca02c" for v in df["change_usd"]],
        customdata=df[["prev_cost_usd", "cost_usd"]].to_numpy(),
        hovertemplate="%{y}<br>$%{customdata[0]:,.2f} -> $%{customdata[1]:,.2f} (%{x:+$,.2f})<extra></extra>"))
    fig.update_layout(margin=MARGIN, xaxis_title="Change in modeled cost vs previous period (USD)",
                      yaxis_title=None, yaxis_autorange="reversed", height=max(250, 40 * len(df) + 80))
    fig.update_xaxes(tickprefix="$", zeroline=True)
    return _empty(fig, df, "No repository's cost changed")


def cost_breakdown(df: pd.DataFrame, path: list[str], value: str = "cost_usd") -> go.Figure:
    """A treemap of `value` over the hierarchy of `path` columns (e.g. domain > repository > package).
    A missing name shows as "(none)"; ids are the path itself, so equal names under different parents
    stay apart."""
    ids, labels, parents, values = [], [], [], []
    seen: dict[str, int] = {}
    rows = df[[*path, value]].itertuples(index=False, name=None)
    for *names, v in rows:
        names = [plain("(none)" if n is None or n != n else n) for n in names]
        for depth in range(len(names)):
            node = "\x1f".join(names[: depth + 1])
            if node not in seen:
                seen[node] = len(ids)
                ids.append(node)
                labels.append(names[depth])
                parents.append("\x1f".join(names[:depth]))
                values.append(0.0)
            values[seen[node]] += float(v)
    fig = go.Figure(go.Treemap(ids=ids, labels=labels, parents=parents, values=values, branchvalues="total",
                               hovertemplate="%{label}<br>$%{value:,.2f}<br>%{percentRoot:.1%} of the total"
                                             "<extra></extra>", texttemplate="%{label}<br>$%{value:,.2f}"))
    fig.update_layout(margin=MARGIN)
    return _empty(fig, df, "No cost in this window")


def daily_cost(df: pd.DataFrame) -> go.Figure:
    """Daily modeled cost stacked by storage and requests (usage_date, kind, cost_usd)."""
    return cost_trend(df, pd.DataFrame())


def forecast_months(monthly: pd.DataFrame, baseline: pd.DataFrame, level: float = 0.8) -> go.Figure:
    """Expected total cost per month with its interval (baseline: forecast without cleanup) and the what-if
    after the cleanup policy (monthly), from forecast.Forecast frames (kind == 'total' rows)."""
    base = baseline[baseline["kind"] == "total"]
    what_if = monthly[monthly["kind"] == "total"]
    fig = go.Figure()
    fig.add_bar(x=base["month"], y=base["expected_usd"], name="Forecast", marker_color="#1f77b4",
                error_y={"type": "data", "symmetric": False, "array": base["upper_usd"] - base["expected_usd"],
                         "arrayminus": base["expected_usd"] - base["lower_usd"]},
                customdata=base[["lower_usd", "upper_usd"]].to_numpy(),
                hovertemplate="%{x|%B %Y}: $%{y:,.2f} ($%{customdata[0]:,.2f} to $%{customdata[1]:,.2f})"
                              "<extra></extra>")
    fig.add_scatter(x=what_if["month"], y=what_if["expected_usd"], mode="lines+markers",
                    name="After the cleanup policy", line={"color": "#2ca02c", "dash": "dash"},
                    hovertemplate="after cleanup %{x|%B %Y}: $%{y:,.2f}<extra></extra>")
    fig.update_layout(margin=MARGIN, xaxis_title=None, yaxis_title="Modeled cost per month (USD)",
                      legend_title_text=f"{level:.0%} interval")
    fig.update_xaxes(tickformat="%b %Y", dtick="M1")
    fig.update_yaxes(rangemode="tozero", tickprefix="$")
    return _empty(fig, base, "Nothing to forecast")


def reconcile(daily: pd.DataFrame, actual: str = "Cost Explorer") -> go.Figure:
    """Modeled vs the bill's cost per day (reconcile(): usage_date, modeled_usd, actual_usd, any kind
    and account, added up); `actual` names the bill (Cost Explorer, or the CUR 2.0 export)."""
    d = daily.groupby("usage_date", as_index=False)[["modeled_usd", "actual_usd"]].sum() if len(daily) else daily
    fig = go.Figure()
    fig.add_scatter(x=d.get("usage_date", []), y=d.get("actual_usd", []), name=f"{actual} (actual)",
                    mode="lines", line={"color": "#7f7f7f", "width": 4},
                    hovertemplate="actual %{x|%Y-%m-%d}: $%{y:,.4f}<extra></extra>")
    fig.add_scatter(x=d.get("usage_date", []), y=d.get("modeled_usd", []), name="Modeled", mode="lines",
                    line={"color": "#1f77b4", "dash": "dot"},
                    hovertemplate="modeled %{x|%Y-%m-%d}: $%{y:,.4f}<extra></extra>")
    fig.update_layout(margin=MARGIN, xaxis_title=None, yaxis_title="Cost per day (USD)")
    fig.update_yaxes(rangemode="tozero", tickprefix="$")
    return _empty(fig, d, f"No {actual} data to compare with")


def modeled_vs_billed(df: pd.DataFrame, label: str) -> go.Figure:
    """Modeled and billed cost side by side per row (billing.summary: `label` column, modeled_usd, actual_usd)."""
    names = [plain("(none)" if n is None or n != n else n) for n in df.get(label, [])]
    fig = go.Figure()
    fig.add_bar(x=names, y=df.get("actual_usd", []), name="Billed (CUR 2.0)", marker_color="#7f7f7f",
                hovertemplate="%{x}: billed $%{y:,.2f}<extra></extra>")
    fig.add_bar(x=names, y=df.get("modeled_usd", []), name="Modeled", marker_color="#1f77b4",
                hovertemplate="%{x}: modeled $%{y:,.2f}<extra></extra>")
    fig.update_layout(barmode="group", margin=MARGIN, xaxis_title=None, yaxis_title="Cost (USD)", height=320)
    fig.update_yaxes(tickprefix="$")
    return _empty(fig, df, "No billed lines to compare with")


def transfer_bytes(df: pd.DataFrame, top: int = 12) -> go.Figure:
    """Bytes served per repository, stacked by where the clients were (transfer.by_repository's columns)."""
    d = df.head(top)
    names = [plain(f"{a}/{b}" if isinstance(b, str) else f"{a}") for a, b in zip(d.get("domain", []),
                                                                                 d.get("repository", []), strict=True)]
    fig = go.Figure()
    for col, name, color in (("internet_bytes", "Internet (billed)", "#d62728"),
                             ("other_region_bytes", "Another AWS region (billed)", "#ff7f0e"),
                             ("in_region_bytes", "Same region or VPC endpoint", "#2ca02c")):
        fig.add_bar(x=names, y=d.get(col, pd.Series(dtype=float)) / 1024**3, name=name, marker_color=color,
                    hovertemplate="%{x}: %{y:,.2f} GB<extra>" + name + "</extra>")
    fig.update_layout(barmode="stack", margin=MARGIN, xaxis_title=None, yaxis_title="Served (GB)", height=320)
    return _empty(fig, d, "No downloads with a known size in this window")


def origin_share(df: pd.DataFrame) -> go.Figure:
    """A donut of downloads by origin (usage_origin_share: origin_type, downloads, share_pct)."""
    fig = go.Figure(go.Pie(labels=[plain(o) for o in df["origin_type"]], values=df["downloads"], hole=0.5,
                           sort=False, hovertemplate="%{label}: %{value:,} downloads (%{percent})<extra></extra>"))
    fig.update_layout(margin=MARGIN, legend_title_text="Origin", height=300)
    return _empty(fig, df, "No downloads in this window")


SPIKE_COLORS = {"download": "rgba(255,127,14,0.25)", "auth": "rgba(214,39,40,0.25)"}


def spike_timeline(timeline: pd.DataFrame, spikes: pd.DataFrame) -> go.Figure:
    """Downloads per day (bars) and access-denied events per day (line, right axis) with each spike's
    window shaded (orange: downloads, red: auth) and numbered as in the spikes table (#1 = first row)."""
    fig = go.Figure()
    fig.add_bar(x=timeline["day"], y=timeline["downloads"], name="Downloads", marker_color="#1f77b4",
                hovertemplate="%{x|%Y-%m-%d}: %{y:,} downloads<extra></extra>")
    fig.add_scatter(x=timeline["day"], y=timeline["denied"], name="Access denied", yaxis="y2", mode="lines",
                    line={"color": "#d62728"}, hovertemplate="%{x|%Y-%m-%d}: %{y:,} denied<extra></extra>")
    xs, texts, colors = [], [], []
    for i, r in enumerate(spikes.itertuples(index=False), start=1):
        start, end = pd.Timestamp(r.start), pd.Timestamp(r.end)
        fig.add_vrect(x0=start, x1=max(end, start + pd.Timedelta(hours=12)), line_width=0, layer="below",
                      fillcolor=SPIKE_COLORS.get(r.kind, "rgba(127,127,127,0.25)"))
        xs.append(start)
        colors.append("#d62728" if r.kind == "auth" else "#ff7f0e")
        what = r.package if isinstance(r.package, str) else r.principal_arn
        texts.append(plain(f"#{i} {r.kind}: {what}"))
    if xs:
        fig.add_scatter(x=xs, y=[1.0] * len(xs), yaxis="y3", mode="markers+text", name="Spikes",
                        text=[f"#{i}" for i in range(1, len(xs) + 1)], textposition="top center",
                        marker={"symbol": "triangle-down", "size": 10, "color": colors},
                        hovertext=texts, hovertemplate="%{hovertext}<br>%{x|%Y-%m-%d %H:%M} UTC<extra></extra>")
    fig.update_layout(
        margin=MARGIN, xaxis_title=None,
        yaxis={"title": {"text": "Downloads per day (UTC)"}, "rangemode": "tozero", "tickformat": ","},
        yaxis2={"title": {"text": "Access-denied events per day"}, "overlaying": "y", "side": "right",
                "rangemode": "tozero", "showgrid": False, "tickformat": ",d"},
        yaxis3={"overlaying": "y", "range": [0, 1.15], "visible": False},
        legend={"orientation": "h", "y": 1.12, "x": 0})
    return _empty(fig, timeline, "No events in this window")


def _short(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def spike_drivers(df: pd.DataFrame) -> go.Figure:
    """Horizontal bars of one spike's drivers (spike_drivers(): driver, value, share_pct), in table order;
    axis labels are shortened, the hover shows the whole value."""
    full = [f"{d}: {v}" for d, v in zip(df["driver"], df["value"], strict=True)]
    colors = {"principal": "#1f77b4", "user agent": "#9467bd", "source IP": "#8c564b"}
    fig = go.Figure(go.Bar(x=df["share_pct"], y=list(range(len(df))), orientation="h",
                           marker_color=[colors.get(d, "#7f7f7f") for d in df["driver"]],
                           hovertext=[plain(t) for t in full],
                           hovertemplate="%{hovertext}: %{x:.0f}% of the excess<extra></extra>"))
    fig.update_layout(margin=MARGIN, xaxis_title="Share of the spike's excess (%)", yaxis_title=None,
                      height=max(200, 35 * len(df) + 80),
                      yaxis={"autorange": "reversed", "tickmode": "array", "tickvals": list(range(len(df))),
                             "ticktext": [plain(_short(t)) for t in full]})
    fig.update_xaxes(range=[0, 100], ticksuffix="%")
    return _empty(fig, df, "No drivers recorded")


def cleanup_by_domain(by_domain: list[dict]) -> go.Figure:
    """Reclaimable GB per domain, stacked permanent and refetchable (cleanup.summary()["by_domain"])."""
    labels = [plain(x) for x in _unique([str(d["domain"]) for d in by_domain],
                                        [f"{d['account_id']} {d['region']}" for d in by_domain])]
    fig = go.Figure()
    for part, color in (("permanent", "#2ca02c"), ("refetchable", "#bcbd22")):
        fig.add_bar(x=[d["reclaimable_gb"][part] for d in by_domain], y=labels, orientation="h",
                    name=part.capitalize(), marker_color=color,
                    customdata=[[d["monthly_savings_usd"][part], d["candidates"]] for d in by_domain],
                    hovertemplate="%{y}: %{x:,.2f} GB " + part + " ($%{customdata[0]:,.2f}/month)<extra></extra>")
    fig.update_layout(barmode="stack", margin=MARGIN, xaxis_title="Reclaimable GB", yaxis_title=None,
                      legend_title_text="Reclaimable", height=max(200, 45 * len(by_domain) + 100))
    return _empty(fig, pd.DataFrame(by_domain), "No cleanup candidates")


def projection_by_domain(df: pd.DataFrame) -> go.Figure:
    """This month's projected cost per domain, stacked storage and requests (forecast.Forecast.by_domain:
    account_id, region, domain, storage_usd, requests_usd, expected_usd), the largest on top."""
    df = df.sort_values("expected_usd", ascending=False, kind="stable")
    labels = [plain(x) for x in _unique([str(d) for d in df["domain"]],
                                        [f"{a} {r}" for a, r in zip(df["account_id"], df["region"], strict=True)])]
    fig = go.Figure()
    for part, color in (("storage_usd", "#1f77b4"), ("requests_usd", "#ff7f0e")):
        fig.add_bar(x=df[part], y=labels, orientation="h", name=part.split("_")[0].capitalize(), marker_color=color,
                    hovertemplate="%{y}: %{x:$,.2f} " + part.split("_")[0] + "<extra></extra>")
    fig.update_layout(barmode="stack", margin=MARGIN, xaxis_title="Projected month-end cost (USD)", yaxis_title=None,
                      yaxis_autorange="reversed", legend_title_text="Cost", height=max(200, 40 * len(df) + 100))
    fig.update_xaxes(tickprefix="$")
    return _empty(fig, df, "Nothing to project")
