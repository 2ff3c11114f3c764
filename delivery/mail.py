"""The cost e-mail: month-to-date cost vs projection vs last month per domain, a cost-trend chart, the top
cost movers, the top cleanup savings and the open spikes, for the whole estate or one owner's slice.

Reads (through analytics.costs, forecast, cleanup, spikes): the store's tables, on a read-only
connection; `repositories.tags['owner']` for owners. Writes nothing: delivery.notify sends the
messages or writes them to the outbox.

The numbers are computed once over the whole estate, then sliced per owner by repository key
(account, region, domain, repository), so an owner's amounts are their attributed part of the bill and
the owners' slices add up to the estate's total. A repository filter on the connection
(analytics.filters) would not give that: storage is billed per domain and storage_snapshots has no
repository, so a filtered store hands one owner the whole domain's storage, the free tier would be
re-applied per owner, and cleanup would stop seeing the other repositories' versions that keep an asset
alive. The dashboard link of an owner's e-mail does carry the owner's repository filter.

Projections: analytics.forecast's month-end projection per domain (Forecast.by_domain); an owner gets
their share of each domain's cost over last month and this month to date. In the first days of a month
(costs.early_in_month: nothing or one day to date) the headline is last month's final cost. Every data-derived string in the HTML goes
through html.escape; the chart is a PNG rendered locally by kaleido with the system's Chromium.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from fnmatch import fnmatchcase
from urllib.parse import urlencode

import duckdb
import pandas as pd

from analytics import cleanup, costs, forecast, spikes
from analytics.filters import Filters
from analytics.overview import as_of
from core.errors import CaaError, first_line
from core.settings import Settings

REPO = ["account_id", "region", "domain", "repository"]
DOMAIN = ["account_id", "region", "domain"]
PACKAGE = [*REPO, "format", "namespace", "package"]
TOP = 5
CHART_DAYS = 90
ADDRESS_RE = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")
OWNER_TAGS_SQL = ("SELECT account_id, region, domain, repository, tags['owner'] AS tag_owner FROM repositories "
                  "QUALIFY row_number() OVER (PARTITION BY account_id, region, domain, repository "
                  "ORDER BY last_seen_at DESC) = 1 ORDER BY ALL")


@dataclass
class Estate:
    """The whole estate's numbers, computed once; `digest()` slices them."""

    month_start: date
    until: date  # the last full day (month to date = month_start..until; until < month_start: none yet)
    last_month_start: date
    last_month_end: date
    mtd: pd.DataFrame  # cost_report by package, this month to date
    previous: pd.DataFrame  # cost_report by package, the same days of last month
    moving: pd.DataFrame  # the movers' current side by package: mtd, or last month early in a month
    moved_from: pd.DataFrame  # the movers' other side: `previous`, or the month before last early in a month
    last_month: pd.DataFrame  # cost_report by repository, all of last month
    projected: pd.DataFrame  # DOMAIN, expected_usd: forecast.Forecast.by_domain, the current month
    storage_daily: pd.DataFrame  # usage_date, account_id, region, domain, storage_usd (chart window)
    storage_shares: pd.DataFrame  # REPO + share of the domain's storage (chart window)
    requests_daily: pd.DataFrame  # usage_date, REPO, requests_usd (chart window)
    cleanup: pd.DataFrame  # report_cleanup(), region as a column
    spikes: pd.DataFrame  # detect_spikes() since alerts.since_days before the store's newest day
    spikes_since: date
    repositories: pd.DataFrame  # REPO + tag_owner


@dataclass
class Digest:
    """One e-mail's content: the estate, or the slice of one owner's repositories."""

    recipients: list[str]
    owner: str | None
    estate: Estate
    domains: pd.DataFrame  # DOMAIN, mtd_usd, projected_usd, last_month_usd
    movers: pd.DataFrame  # PACKAGE, mtd_usd, previous_usd, delta_usd
    savings: pd.DataFrame  # PACKAGE, versions, reclaimable_gb, monthly_savings_usd
    savings_total: dict  # cleanup.summary()["monthly_savings_usd"]
    spikes: pd.DataFrame
    daily: pd.DataFrame  # usage_date, storage_usd, requests_usd
    dashboard_url: str
    repositories: list[tuple] = field(default_factory=list)  # the slice's keys (empty: the estate)

    @property
    def mtd_usd(self) -> float:
        return float(self.domains["mtd_usd"].sum())

    @property
    def projected_usd(self) -> float:
        return float(self.domains["projected_usd"].sum())

    @property
    def last_month_usd(self) -> float:
        return float(self.domains["last_month_usd"].sum())

    @property
    def early(self) -> bool:
        """The first days of a month: last month's final cost is the headline."""
        return costs.early_in_month(self.estate.month_start, self.estate.until)


def estate_numbers(con: duckdb.DuckDBPyConnection, settings: Settings) -> Estate:
    """Every number the e-mails show, over the whole store (slice it with digest())."""
    month_start, until = costs.month_to_date(con)
    last_end = month_start - timedelta(days=1)
    last_start = last_end.replace(day=1)
    same_days = min(last_start + (until - month_start), last_end)
    mtd = _report(con, settings, month_start, until, "package")
    previous = _report(con, settings, last_start, same_days, "package")
    moving, moved_from = mtd, previous
    if costs.early_in_month(month_start, until):  # movers: last month against the month before it
        before_end = last_start - timedelta(days=1)
        moving = _report(con, settings, last_start, last_end, "package")
        moved_from = _report(con, settings, before_end.replace(day=1), before_end, "package")
    fc = forecast.forecast(con, settings, horizon_months=0, backtest=False)
    chart_start = max(until - timedelta(days=CHART_DAYS - 1), costs.coverage(con).first_day or until)
    shares = costs.storage_attribution(con, settings, chart_start, until, level="repository").groupby(
        REPO, dropna=False, as_index=False)["share"].sum()
    req = costs.request_attribution(con, settings, chart_start, until).groupby(
        ["usage_date", *REPO], dropna=False, as_index=False)["requests_usd"].sum()
    when = as_of(con)
    since = when.day - timedelta(days=settings.alerts.since_days) if when else until
    clean = cleanup.report_cleanup(con, settings)
    return Estate(
        month_start=month_start, until=until, last_month_start=last_start, last_month_end=last_end, mtd=mtd,
        previous=previous, moving=moving, moved_from=moved_from,
        last_month=_report(con, settings, last_start, last_end, "repository"),
        projected=fc.by_domain[[*DOMAIN, "expected_usd"]],
        storage_daily=costs.storage_daily(con, settings, chart_start, until)[["usage_date", *DOMAIN, "storage_usd"]],
        storage_shares=shares, requests_daily=req,
        cleanup=clean.reset_index() if len(clean) else clean.reset_index().reindex(columns=["region", *clean.columns]),
        spikes=spikes.detect_spikes(con, settings, since), spikes_since=since,
        repositories=con.execute(OWNER_TAGS_SQL).df(),
    )


def _report(con: duckdb.DuckDBPyConnection, settings: Settings, since: date, until: date, by: str) -> pd.DataFrame:
    """costs.cost_report over [since, until], or its empty frame when the window has no day (the 1st)."""
    if since <= until:
        return costs.cost_report(con, settings, since, until, by=by)
    return pd.DataFrame(columns=[*costs.LEVELS[by], "gb_month", "requests", "storage_usd", "requests_usd",
                                 "cost_usd", "share_pct"])


# ---------------------------------------------------------------- owners

def valid_address(addr: str) -> bool:
    """A bare e-mail address without display name, spaces, newlines or list separators."""
    return isinstance(addr, str) and bool(ADDRESS_RE.match(addr)) and parseaddr(addr)[1] == addr


def owner_repositories(estate: Estate, settings: Settings) -> dict[str, set[tuple]]:
    """Owner address -> repository keys: every settings.email.owners entry whose globs match the repository
    name, else the addresses of the repository's "owner" tag (comma-separated). A tag holding anything but
    bare addresses (a display name, a newline, a header) is ignored."""
    out: dict[str, set[tuple]] = {}
    names = estate.repositories[REPO].itertuples(index=False, name=None)
    for key, tag in zip(names, estate.repositories["tag_owner"], strict=True):
        owners = [o for o, globs in settings.email.owners.items() if any(fnmatchcase(key[3], g) for g in globs)]
        if not owners and isinstance(tag, str):
            owners = [t.strip() for t in re.split(r"[,;]", tag) if t.strip()]
            if not all(valid_address(o) for o in owners):  # a tag is data: any junk in it voids it whole
                owners = []
        for owner in owners:
            if valid_address(owner):
                out.setdefault(owner, set()).add(key)
    return out


# ---------------------------------------------------------------- slicing

def _keys(df: pd.DataFrame) -> pd.Series:
    return pd.Series(list(df[REPO].astype(object).where(df[REPO].notna(), None).itertuples(index=False, name=None)),
                     index=df.index, dtype=object)


def _slice(df: pd.DataFrame, keys: set[tuple] | None) -> pd.DataFrame:
    if keys is None or df.empty:
        return df
    return df[_keys(df).isin(keys)]


def digest(estate: Estate, settings: Settings, recipients: list[str], owner: str | None = None,
           keys: set[tuple] | None = None) -> Digest:
    """The e-mail content for `recipients`: the whole estate (keys None) or the repositories `keys`."""
    mtd, last = _slice(estate.mtd, keys), _slice(estate.last_month, keys)
    by_domain = mtd.groupby(DOMAIN, dropna=False)["cost_usd"].sum().rename("mtd_usd")
    last_by_domain = last.groupby(DOMAIN, dropna=False)["cost_usd"].sum().rename("last_month_usd")
    projected = estate.projected.set_index(DOMAIN)["expected_usd"].rename("projected_usd")
    if keys is not None:  # the slice's part of each domain's projection: its share of the domain's recent cost
        recent = pd.concat([estate.mtd, estate.last_month]).groupby(DOMAIN, dropna=False)["cost_usd"].sum()
        mine = pd.concat([mtd, last]).groupby(DOMAIN, dropna=False)["cost_usd"].sum()
        share = (mine / recent.reindex(mine.index)).where(lambda x: x.notna(), 0.0)
        projected = (projected.reindex(share.index) * share).dropna().rename("projected_usd")
    domains = pd.concat([by_domain, projected, last_by_domain], axis=1).fillna(0.0).reset_index()
    domains = domains[(domains[["mtd_usd", "projected_usd", "last_month_usd"]].abs() > 0).any(axis=1)]
    domains = domains.sort_values(["projected_usd", *DOMAIN], ascending=[False, True, True, True],
                                  ignore_index=True)

    a = _slice(estate.moving, keys).groupby(PACKAGE, dropna=False)["cost_usd"].sum().rename("mtd_usd")
    b = _slice(estate.moved_from, keys).groupby(PACKAGE, dropna=False)["cost_usd"].sum().rename("previous_usd")
    movers = pd.concat([a, b], axis=1).fillna(0.0).reset_index()
    movers["delta_usd"] = movers["mtd_usd"] - movers["previous_usd"]
    movers = movers[movers["delta_usd"].abs() > 0.005].copy()
    movers["_abs"] = movers["delta_usd"].abs()
    movers = movers.sort_values(["_abs", *PACKAGE], ascending=[False, *[True] * len(PACKAGE)]).head(TOP)
    movers = movers.drop(columns="_abs").reset_index(drop=True)

    clean = _slice(estate.cleanup, keys)
    total = cleanup.summary(clean.set_index("region", drop=False))["monthly_savings_usd"] if len(clean) else {
        "permanent": 0.0, "refetchable": 0.0, "total": 0.0}
    savings = (clean.assign(reclaimable_gb=clean["reclaimable_bytes"].astype(float) / cleanup.GIB)
               .groupby(PACKAGE, dropna=False, as_index=False)
               .agg(versions=("version", "count"), reclaimable_gb=("reclaimable_gb", "sum"),
                    monthly_savings_usd=("monthly_savings_usd", "sum"))
               .sort_values(["monthly_savings_usd", *PACKAGE], ascending=[False, *[True] * len(PACKAGE)])
               .head(TOP).reset_index(drop=True)) if len(clean) else pd.DataFrame(
        columns=[*PACKAGE, "versions", "reclaimable_gb", "monthly_savings_usd"])

    sp = _slice(estate.spikes, keys) if keys is not None else estate.spikes
    sp = sp.sort_values(["excess", "start"], ascending=[False, True]).reset_index(drop=True)

    shares = _slice(estate.storage_shares, keys).groupby(DOMAIN, as_index=False)["share"].sum()
    storage = estate.storage_daily.merge(shares, on=DOMAIN) if keys is not None else estate.storage_daily.assign(
        share=1.0)
    storage = (storage["storage_usd"] * storage["share"]).groupby(storage["usage_date"]).sum()
    requests = _slice(estate.requests_daily, keys).groupby("usage_date")["requests_usd"].sum()
    daily = pd.concat([storage.rename("storage_usd"), requests.rename("requests_usd")], axis=1).fillna(0.0)
    daily = daily.rename_axis("usage_date").reset_index().sort_values("usage_date", ignore_index=True)

    url = settings.email.dashboard_url
    if keys is not None:
        query = Filters(repositories=tuple(sorted({k[3] for k in keys}))).to_query()
        url = f"{url}{'&' if '?' in url else '?'}{urlencode(query, doseq=True)}"
    return Digest(recipients=recipients, owner=owner, estate=estate, domains=domains, movers=movers,
                  savings=savings, savings_total=total, spikes=sp, daily=daily, dashboard_url=url,
                  repositories=sorted(keys or []))


# ---------------------------------------------------------------- rendering

def usd(v: float) -> str:
    """Dollars as the e-mail shows them: 2 decimals, '-' when unknown."""
    return "-" if v is None or v != v else f"${v:,.2f}"


def _name(r) -> str:  # noqa: ANN001 - a row
    ns = r["namespace"] if isinstance(r["namespace"], str) and r["namespace"] else None
    return f"{ns}/{r['package']}" if ns else str(r["package"])


def _where(r) -> str:  # noqa: ANN001
    return f"{r['domain']}/{r['repository']}" if isinstance(r["repository"], str) else str(r["domain"])


def _spike_what(r) -> str:  # noqa: ANN001
    if r["kind"] == "auth":
        return f"auth failures ({r['signal']}) by {r['principal_arn']}"
    if r["unit"] == "requests":
        return f"request spike by {r['principal_arn']} ({r['signal']}, {r['level']} level)"
    return f"download spike of {r['format']} {_name(r)} ({r['signal']}, {r['level']} level)"


def _drivers(r) -> str:  # noqa: ANN001
    parts = []
    for label, col in (("principals", "top_principals"), ("user agents", "top_user_agents"),
                       ("IPs", "top_source_ips")):
        vals = r[col] if isinstance(r[col], list | tuple) else list(r[col]) if r[col] is not None else []
        if len(vals):
            parts.append(f"{label}: " + ", ".join(str(v)[:120] for v in vals))
    return "; ".join(parts)


def rows(d: Digest) -> dict[str, list[list[str]]]:
    """The digest's tables as text cells (the same cells go to the plain-text and the HTML part)."""
    return {
        "domains": [[r["account_id"], r["region"], r["domain"], usd(r["mtd_usd"]), usd(r["projected_usd"]),
                     usd(r["last_month_usd"])] for _, r in d.domains.iterrows()],
        "movers": [[_where(r), _name(r), usd(r["previous_usd"]), usd(r["mtd_usd"]),
                    ("+" if r["delta_usd"] >= 0 else "-") + usd(abs(r["delta_usd"]))] for _, r in d.movers.iterrows()],
        "savings": [[_where(r), _name(r), f"{int(r['versions']):,}", f"{r['reclaimable_gb']:,.2f} GB",
                     usd(r["monthly_savings_usd"])] for _, r in d.savings.iterrows()],
        "spikes": [[_spike_what(r), _where(r), f"{r['start']:%Y-%m-%d %H:%M}", f"{r['end']:%Y-%m-%d %H:%M}",
                    f"{r['excess']:,.0f} {r['unit']}", f"${r['excess_cost_usd']:,.4f} ({r['free_tier']} free tier)",
                    _drivers(r)] for _, r in d.spikes.iterrows()],
    }


HEADERS = {
    "domains": ["Account", "Region", "Domain", "Month to date", "Projected month end", "Last month"],
    "movers": ["Where", "Package", "Same days last month", "This month to date", "Change"],
    "savings": ["Where", "Package", "Versions", "Reclaimable", "Saving per month"],
    "spikes": ["What", "Where", "Start (UTC)", "End (UTC)", "Excess", "Cost", "Drivers"],
}
TITLES = {"movers": "Top cost movers", "savings": "Top cleanup savings", "spikes": "Open spikes"}


def headers(d: Digest, key: str) -> list[str]:
    """A table's column names; early in a month the movers compare last month with the month before."""
    if key == "movers" and d.early:
        e = d.estate
        before = (e.last_month_start - timedelta(days=1)).replace(day=1)
        return ["Where", "Package", f"{before:%B}", f"{e.last_month_start:%B}", "Change"]
    return HEADERS[key]


def subject(d: Digest) -> str:
    """The headline: this month to date and its projection, or, in the first EARLY_DAYS days of a month
    (nothing or one day to date), last month's final cost and this month's projection."""
    scope = f" (your {len(d.repositories)} repositories)" if d.owner else ""
    e = d.estate
    if d.early:
        return (f"CodeArtifact cost {e.last_month_start:%B %Y}{scope}: {usd(d.last_month_usd)} final; "
                f"{e.month_start:%B} projected {usd(d.projected_usd)}")
    return (f"CodeArtifact cost {e.month_start:%B %Y}{scope}: {usd(d.mtd_usd)} to date, "
            f"{usd(d.projected_usd)} projected")


def summary_line(d: Digest) -> str:
    e = d.estate
    to_date = (f"Month to date ({e.month_start:%b %d}-{e.until:%b %d}): {usd(d.mtd_usd)}"
               if e.until >= e.month_start else f"Month to date: no full day of {e.month_start:%B} yet")
    last = f"last month ({e.last_month_start:%B}) {usd(d.last_month_usd)}"
    if d.early:
        return f"Last month ({e.last_month_start:%B}), final: {usd(d.last_month_usd)}; {to_date}; projected month end {usd(d.projected_usd)}."
    return f"{to_date}; projected month end {usd(d.projected_usd)}; {last}."


def render_text(d: Digest) -> str:
    t = rows(d)
    out = [subject(d), "", summary_line(d), "", "Cost per domain"]

    def table(key: str) -> None:
        cells = [headers(d, key), *t[key]]
        widths = [min(max(len(c[i]) for c in cells), 60) for i in range(len(cells[0]))]
        for c in cells:
            out.append("  " + "  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip())

    table("domains")
    for key in ("movers", "savings", "spikes"):
        out += ["", TITLES[key]]
        if t[key]:
            table(key)
        else:
            out.append("  none")
        if key == "savings":
            out.append(f"  all candidates: {usd(d.savings_total['permanent'])}/month permanent, "
                       f"{usd(d.savings_total['refetchable'])}/month refetchable")
    out += ["", f"Dashboard: {d.dashboard_url}", "",
            "Modeled from the price table and CloudTrail, not the AWS bill; projections are the month-end "
            "forecast per domain (an owner's part by their share of the domain's recent cost)."]
    return "\n".join(out) + "\n"


def _e(v: object) -> str:
    return html.escape(str(v), quote=True)


def render_html(d: Digest, chart_cid: str | None) -> str:
    t = rows(d)
    th = "padding:4px 8px;text-align:left;border-bottom:1px solid #ccc;font-size:13px"
    td = "padding:4px 8px;border-bottom:1px solid #eee;font-size:13px;vertical-align:top"

    def table(key: str) -> str:
        if not t[key]:
            return "<p>none</p>"
        head = "".join(f'<th style="{th}">{_e(h)}</th>' for h in headers(d, key))
        body = "".join("<tr>" + "".join(f'<td style="{td}">{_e(c)}</td>' for c in r) + "</tr>" for r in t[key])
        return f'<table style="border-collapse:collapse">\n<tr>{head}</tr>\n{body}\n</table>'

    img = (f'<p><img src="cid:{_e(chart_cid)}" alt="Modeled daily cost, last {CHART_DAYS} days" width="720">'
           "</p>" if chart_cid else "")
    parts = [f"<h2>{_e(subject(d))}</h2>", f"<p>{_e(summary_line(d))}</p>", img, "<h3>Cost per domain</h3>",
             table("domains")]
    for key in ("movers", "savings", "spikes"):
        parts += [f"<h3>{_e(TITLES[key])}</h3>", table(key)]
        if key == "savings":
            parts.append(f"<p>All candidates: {_e(usd(d.savings_total['permanent']))}/month permanent, "
                         f"{_e(usd(d.savings_total['refetchable']))}/month refetchable.</p>")
    parts += [f'<p><a href="{_e(d.dashboard_url)}">Open the dashboard</a></p>',
              "<p style=\"color:#666;font-size:12px\">Modeled from the price table and CloudTrail, not the AWS bill; "
              "projections are the month-end forecast per domain (an owner's part by their share of the domain's "
              "recent cost).</p>"]
    return ('<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head>'
            '<body style="font-family:Arial,sans-serif">\n' + "\n".join(p for p in parts if p) + "\n</body></html>\n")


def cost_chart(d: Digest):  # noqa: ANN201 - a plotly Figure
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_bar(x=d.daily["usage_date"], y=d.daily["storage_usd"], name="storage")
    fig.add_bar(x=d.daily["usage_date"], y=d.daily["requests_usd"], name="requests")
    fig.update_layout(barmode="stack", title="Modeled daily cost (USD, UTC days)", width=720, height=300,
                      margin={"l": 50, "r": 10, "t": 40, "b": 30}, legend={"orientation": "h", "y": -0.15})
    fig.update_yaxes(rangemode="tozero", tickprefix="$")
    return fig


# kaleido 1.5.1 can take its new tab's blank-page load event for its own page's and call into the page
# before kaleido_scopes.js has run (a ReferenceError; about 1 render in 15 on a loaded 2-core machine).
# That race, and only that, gets a fresh browser; any other failure is reported at once.
PAGE_RACE_ATTEMPTS = 3
# One browser's start and renders. kaleido bounds each render (90 s) but not the wait for a tab: a Chromium
# that exited while starting left that wait unanswered for ever (a suite on 2026-12-04 hung 20 minutes in
# test_ses_transport_sends_the_raw_multipart_message, no browser left). A scheduled e-mail must end.
RENDER_TIMEOUT_S = 180


def render_pngs(figs: list) -> list[bytes]:
    """The figures as PNGs through kaleido and the local Chromium (one browser for all of them, no
    network). A one-line error when it cannot start, never a silently missing chart."""
    import asyncio

    fix = ("install Debian's chromium (`apt-get install -y chromium`) or point BROWSER_PATH at a Chrome or "
           "Chromium binary, then run again")
    try:
        import kaleido
    except ImportError:
        raise CaaError("cannot render the cost chart: kaleido is not installed", where="e-mail chart",
                       fix="pip install 'kaleido>=1' (caa's dependencies include it)") from None

    async def render() -> list[bytes]:
        # mathjax=False: the default page loads MathJax from a CDN; the charts need no TeX and no network
        async with kaleido.Kaleido(n=1, page_generator=kaleido.PageGenerator(mathjax=False)) as k:
            return [await k.calc_fig(f, opts={"format": "png"}) for f in figs]

    if not figs:
        return []
    try:
        for attempt in range(PAGE_RACE_ATTEMPTS):
            try:
                return asyncio.run(asyncio.wait_for(render(), RENDER_TIMEOUT_S))
            except Exception as e:  # noqa: BLE001 - only kaleido's page race is tried again, in a new browser
                if "kaleido_scopes is not defined" not in str(e) or attempt == PAGE_RACE_ATTEMPTS - 1:
                    raise
    except TimeoutError:
        raise CaaError(f"cannot render the cost chart: Chromium gave no answer in {RENDER_TIMEOUT_S:g} s",
                       where="e-mail chart", fix="run again; if it recurs, check that `chromium --version` runs and that "
                       "the machine has free memory") from None
    except Exception as e:  # kaleido/choreographer raise RuntimeError subclasses with multi-line text
        raise CaaError(f"cannot render the cost chart: kaleido could not start Chromium ({first_line(e)})",
                       where="e-mail chart", fix=fix) from None


def build_message(d: Digest, from_addr: str, png: bytes | None) -> EmailMessage:
    """multipart/alternative: text/plain, then multipart/related (text/html + the chart as image/png)."""
    domain = from_addr.rsplit("@", 1)[-1] or "caa.local"
    cid = make_msgid("cost-trend", domain=domain) if png else None
    msg = EmailMessage()
    msg["Subject"] = subject(d)
    msg["From"] = from_addr
    msg["To"] = ", ".join(d.recipients)
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid("caa-digest", domain=domain)
    msg.set_content(render_text(d))
    msg.add_alternative(render_html(d, cid[1:-1] if cid else None), subtype="html")
    if png:
        msg.get_payload()[1].add_related(png, maintype="image", subtype="png", cid=cid,
                                         filename="cost-trend.png", disposition="inline")
    return msg


def build_digests(con: duckdb.DuckDBPyConnection, settings: Settings, to: list[str] | None = None,
                  chart: bool = True) -> tuple[list[tuple[Digest, EmailMessage]], list[str]]:
    """The e-mails to send and notes for the terminal. `to` (or settings.email.to without it) gets the
    whole estate; without `to`, each owner of settings.email.owners / the "owner" tag gets their slice."""
    full = list(to) if to else list(settings.email.to)
    bad = [a for a in full if not valid_address(a)]
    if bad:
        raise CaaError(f"not an e-mail address: {bad[0]!r}", where="--to or email.to",
                       fix="give bare addresses such as platform@example.com")
    estate = estate_numbers(con, settings)
    digests = [digest(estate, settings, full)] if full else []
    notes = []
    if not to:
        for owner, keys in sorted(owner_repositories(estate, settings).items()):
            if owner in full:
                notes.append(f"{owner} gets the whole estate, not a slice")
                continue
            digests.append(digest(estate, settings, [owner], owner=owner, keys=keys))
        for owner in settings.email.owners:
            if not any(d.owner == owner for d in digests) and owner not in full:
                notes.append(f"owner {owner} matches no repository; no e-mail")
    if not digests:
        raise CaaError("nobody to send the cost e-mail to", where="email.to, email.owners",
                       fix="set email.to or email.owners in caa.toml, tag repositories with owner=, or pass --to")
    pngs = render_pngs([cost_chart(d) for d in digests]) if chart else [None] * len(digests)
    return [(d, build_message(d, settings.email.from_addr, png)) for d, png in zip(digests, pngs, strict=True)], notes
