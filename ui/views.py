"""What the dashboard pages show that is a combination of existing analytics: the windows a page works
over, the Overview's cost trend and movers, downloads over time by any dimension, the spike timeline,
spike drivers as a table, and report bytes for download buttons.

Every load a page makes is a function here that takes (con, settings, *args) and is listed in LOADS (at
the end): pages call `view.load(views.cost_report, level, since, until)` (ui/common.py, cached), and
declare their default loads the same way (`default_loads` in each page module), which ui/precompute.py
computes after a collection.

Reads (through analytics.costs, forecast, cleanup, spikes, usage, overview and the existing queries
downloads_by_day, spike_download_series and spike_auth_series): events, the downloads view,
storage_snapshots. Writes nothing but a temporary file in `report_bytes`. Every function takes an open
(read-only, possibly filtered) connection; no SQL lives here.

Time is the store's (analytics.overview.as_of / costs.coverage), never the wall clock.
"""

from __future__ import annotations

import calendar
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from analytics import billing, cleanup, costs, filters, forecast, health, overview, spikes, transfer, usage
from analytics.queries import run
from analytics.reports import write_table
from core import store
from core.clock import utc_midnight
from core.settings import Settings

TREND_DAYS = 90
MOVER_DAYS = 30
OPEN_SPIKE_DAYS = 7
OTHER = "(other)"
DOWNLOAD_DIMENSIONS = ("format", "repository", "package")
POLICY_FIELDS = ("unused_days", "keep_latest", "keep_latest_per_major", "min_age_days", "protect")


def window(last: date, start: date | None, end: date | None, days: int) -> tuple[date, date]:
    """(since, until), both inclusive: the global filter's dates when set, else the `days` days ending on
    `last` (the store's newest day). until never goes past `last`."""
    until = min(end, last) if end else last
    since = start or until - timedelta(days=days - 1)
    return min(since, until), until


# ---------------------------------------------------------------- Overview

@dataclass(frozen=True)
class OverviewCosts:
    """The Overview's cost numbers: month-end projection, last month, trend with forecast band, movers."""

    projection: pd.DataFrame  # forecast.month_end_projection(): month, kind, actual_usd, expected_usd, ...
    history_end: date  # the last full day
    last_month: date  # first day of the previous calendar month
    last_month_usd: float
    trend: pd.DataFrame  # usage_date, kind, cost_usd (TREND_DAYS days to history_end)
    band: pd.DataFrame  # usage_date, expected_usd, lower_usd, upper_usd (to the month end)
    movers: pd.DataFrame  # cost_movers()
    open_spikes: int
    by_domain: pd.DataFrame = field(default_factory=pd.DataFrame)  # forecast.Forecast.by_domain
    early: bool = False  # costs.early_in_month: last month's final cost is the headline

    def projected(self, column: str = "expected_usd") -> float:
        return float(self.projection.loc[self.projection["kind"] == "total", column].iloc[0])


def daily_cost(con: duckdb.DuckDBPyConnection, settings: Settings, since: date,
                       until: date) -> pd.DataFrame:
    """costs.daily_cost added up per day and kind. Columns: usage_date, kind, quantity, cost_usd."""
    d = costs.daily_cost(con, settings, since, until)
    out = d.groupby(["usage_date", "kind"], as_index=False)[["quantity", "cost_usd"]].sum()
    out["usage_date"] = pd.to_datetime(out["usage_date"])
    return out


def forecast_daily_cost(daily: pd.DataFrame, history: pd.DataFrame, unit_days: int = 30) -> pd.DataFrame:
    """forecast.daily quantities priced at the effective unit price of the last `unit_days` days of
    `history` (daily_cost: cost / quantity per kind, so the free tier and regional prices weigh in
    as they did lately). The band adds the kinds' quantiles: an approximation of the total's interval.
    Columns: usage_date, expected_usd, lower_usd, upper_usd."""
    cols = ["usage_date", "expected_usd", "lower_usd", "upper_usd"]
    if daily.empty:
        return pd.DataFrame(columns=cols)
    recent = history[history["usage_date"] > history["usage_date"].max() - pd.Timedelta(days=unit_days)]
    sums = recent.groupby("kind")[["quantity", "cost_usd"]].sum()
    price = {k: (sums.at[k, "cost_usd"] / sums.at[k, "quantity"] if k in sums.index and sums.at[k, "quantity"]
                 else 0.0) for k in costs.KINDS}
    d = daily.copy()
    days = pd.to_datetime(d["usage_date"])
    # storage: GiB held that day -> GB-months (GiB / days in the month); requests: requests that day
    per_unit = [(1 / calendar.monthrange(t.year, t.month)[1]) * price["storage"] if k == "storage"
                else price["requests"] for t, k in zip(days, d["kind"], strict=True)]
    for c in ("expected", "lower", "upper"):
        d[f"{c}_usd"] = d[c] * per_unit
    d["usage_date"] = days
    return d.groupby("usage_date", as_index=False)[cols[1:]].sum()[cols]


def cost_movers(con: duckdb.DuckDBPyConnection, settings: Settings, until: date, days: int = MOVER_DAYS,
                top: int = 10) -> pd.DataFrame:
    """Repositories whose modeled cost changed most: cost_report(by="repository") over the `days` days
    ending on `until` against the `days` days before. Columns: account_id, region, domain, repository,
    cost_usd, prev_cost_usd, change_usd, change_pct (NaN when the previous window cost nothing);
    the `top` by |change_usd|."""
    keys = costs.LEVELS["repository"]
    since = until - timedelta(days=days - 1)
    now = costs.cost_report(con, settings, since, until, by="repository")[[*keys, "cost_usd"]]
    prev = costs.cost_report(con, settings, since - timedelta(days=days), since - timedelta(days=1),
                             by="repository")[[*keys, "cost_usd"]].rename(columns={"cost_usd": "prev_cost_usd"})
    df = now.merge(prev, on=keys, how="outer")
    df[["cost_usd", "prev_cost_usd"]] = df[["cost_usd", "prev_cost_usd"]].fillna(0.0)
    df["change_usd"] = df["cost_usd"] - df["prev_cost_usd"]
    df["change_pct"] = (df["change_usd"] / df["prev_cost_usd"].where(df["prev_cost_usd"] > 0) * 100)
    df = df[df["change_usd"].abs() > 1e-9]
    return df.reindex(df["change_usd"].abs().sort_values(ascending=False, kind="stable").index).head(top).reset_index(
        drop=True)


def overview_costs(con: duckdb.DuckDBPyConnection, settings: Settings) -> OverviewCosts | None:
    """The Overview's cost numbers; one forecast (this month only, no backtest), or None without data."""
    when = overview.as_of(con)
    end = costs.coverage(con).last_full_day
    if when is None or end is None:
        return None
    fc = forecast.forecast(con, settings, horizon_months=0, backtest=False)  # = month_end_projection()
    month = (end + timedelta(days=1)).replace(day=1)  # the month projected (costs.month_to_date, from `end`)
    last_month = (month - timedelta(days=1)).replace(day=1)
    before = costs.daily_cost(con, settings, last_month, month - timedelta(days=1))
    trend = daily_cost(con, settings, end - timedelta(days=TREND_DAYS - 1), end)
    return OverviewCosts(
        projection=fc.monthly, history_end=end, last_month=last_month,
        last_month_usd=float(before["cost_usd"].sum()), trend=trend[["usage_date", "kind", "cost_usd"]],
        band=forecast_daily_cost(fc.daily, trend), movers=cost_movers(con, settings, end),
        open_spikes=len(spikes.detect_spikes(con, settings, when.day - timedelta(days=OPEN_SPIKE_DAYS - 1))),
        by_domain=fc.by_domain, early=costs.early_in_month(month, end))


# ---------------------------------------------------------------- Costs

def cost_window(con: duckdb.DuckDBPyConnection, settings: Settings, start: date | None, end: date | None,
                days: int | None = None) -> tuple[date, date] | None:
    """The Costs page's window: the filter's dates, else this month to the last full day, or the last full
    month in the first days of a month (costs.early_in_month), or `days` days."""
    last = costs.coverage(con).last_full_day
    if last is None:
        return None
    if days is None and not start:
        if end:
            until = min(end, last)
            return until.replace(day=1), until
        return costs.month_window(last)
    return window(last, start, end, days or TREND_DAYS)


# ---------------------------------------------------------------- Usage

def usage_window(con: duckdb.DuckDBPyConnection, settings: Settings, start: date | None, end: date | None,
                 days: int = overview.WINDOW_DAYS) -> tuple[date, date] | None:
    """The last `days` days of data (to the newest event's day), or the filter's dates."""
    when = overview.as_of(con)
    return None if when is None else window(when.day, start, end, days)


def downloads_over_time(con: duckdb.DuckDBPyConnection, settings: Settings, by: str, since: date, until: date,
                        top: int = 8) -> pd.DataFrame:
    """Downloads per UTC day in [since, until] by format, repository ("domain/repository") or package
    ("namespace/package", every repository). The `top` series by downloads keep their name, the rest
    are OTHER. Columns: day, series, downloads (0-filled per day and series)."""
    if by not in DOWNLOAD_DIMENSIONS:
        raise ValueError(f"downloads by {by!r}: use one of {DOWNLOAD_DIMENSIONS}")
    start_at, end_at = utc_midnight(since), utc_midnight(until + timedelta(days=1))
    if by == "format":
        df = run(con, "downloads_by_day", start_at=start_at, end_at=end_at).rename(columns={"format": "series"})
    else:
        df = spikes.session_series(con, "repository" if by == "repository" else "package", "day", start_at, end_at)
        if by == "repository":
            df["series"] = df["domain"].fillna("") + "/" + df["repository"].fillna("")
        else:
            df["series"] = [f"{ns}/{p}" if isinstance(ns, str) and ns else str(p)
                            for ns, p in zip(df["namespace"], df["package"], strict=True)]
        df["day"] = pd.to_datetime(df["bucket_at"]).dt.normalize()
    if df.empty:
        return pd.DataFrame(columns=["day", "series", "downloads"])
    totals = df.groupby("series")["downloads"].sum().sort_values(ascending=False, kind="stable")
    keep = set(totals.index[:top])
    df["series"] = df["series"].where(df["series"].isin(keep), OTHER)
    df["day"] = pd.to_datetime(df["day"])
    wide = df.pivot_table(index="day", columns="series", values="downloads", aggfunc="sum", fill_value=0)
    wide = wide.reindex(pd.date_range(pd.Timestamp(since), pd.Timestamp(until), freq="D"), fill_value=0)
    wide.index.name = "day"
    out = wide.reset_index().melt(id_vars="day", var_name="series", value_name="downloads")
    out["downloads"] = out["downloads"].astype("int64")
    return out


def usage_view(con: duckdb.DuckDBPyConnection, settings: Settings, since: date, until: date,
               top: int = 20) -> dict[str, pd.DataFrame]:
    """usage.usage_report over [since, until] (inclusive days)."""
    return usage.usage_report(con, settings, since, until + timedelta(days=1), top=top)


# ---------------------------------------------------------------- Spikes

@dataclass(frozen=True)
class SpikesView:
    since: date
    until: date
    spikes: pd.DataFrame  # spikes.detect_spikes(since=since)
    timeline: pd.DataFrame  # spike_timeline()


def spike_timeline(con: duckdb.DuckDBPyConnection, since: date, until: date) -> pd.DataFrame:
    """Downloads and access-denied events per UTC day in [since, until]. Columns: day, downloads, denied."""
    start_at, end_at = utc_midnight(since), utc_midnight(until + timedelta(days=1))
    d = run(con, "downloads_by_day", start_at=start_at, end_at=end_at).groupby("day")["downloads"].sum()
    a = spikes.auth_series(con, start_at, end_at)
    a["day"] = pd.to_datetime(a["hour_at"]).dt.normalize()
    denied = a.groupby("day")["denied"].sum()
    days = pd.date_range(pd.Timestamp(since), pd.Timestamp(until), freq="D", name="day")
    d.index = pd.to_datetime(d.index)
    return pd.DataFrame({"downloads": d.reindex(days, fill_value=0).astype("int64"),
                         "denied": denied.reindex(days, fill_value=0).astype("int64")}).reset_index()


def spikes_view(con: duckdb.DuckDBPyConnection, settings: Settings, start: date | None, end: date | None,
                days: int) -> SpikesView | None:
    """The spikes ending in the window (detect_spikes(since)) and the timeline over it."""
    w = usage_window(con, settings, start, end, days)
    if w is None:
        return None
    since, until = w
    found = spikes.detect_spikes(con, settings, since)
    if end:
        found = found[pd.to_datetime(found["start"], utc=True) < pd.Timestamp(utc_midnight(until + timedelta(days=1)))]
    return SpikesView(since, until, found.reset_index(drop=True), spike_timeline(con, since, until))


def spike_drivers(row: pd.Series) -> pd.DataFrame:
    """One spike's top_principals / top_user_agents / top_source_ips ("name (share%)") as rows.
    Columns: driver ('principal' | 'user agent' | 'source IP'), value, share_pct."""
    out = []
    for col, label in (("top_principals", "principal"), ("top_user_agents", "user agent"),
                       ("top_source_ips", "source IP")):
        items = row.get(col)
        for item in items if isinstance(items, list | tuple) else []:
            name, sep, share = str(item).rpartition(" (")
            try:
                pct = float(share.rstrip(")").rstrip("%")) if sep else float("nan")
            except ValueError:
                name, pct = str(item), float("nan")
            out.append({"driver": label, "value": name if sep else str(item), "share_pct": pct})
    return pd.DataFrame(out, columns=["driver", "value", "share_pct"])


# ---------------------------------------------------------------- Cleanup

@dataclass(frozen=True)
class CleanupView:
    report: pd.DataFrame  # cleanup.report_cleanup(): the candidates
    summary: dict  # cleanup.summary(report)
    assets: bool = True  # False: the inventory holds no assets yet, so nothing was judged

    def file(self, fmt: str) -> bytes:
        """The bytes `caa report cleanup --format <fmt>` writes for this policy. Built when asked (the page's
        download buttons call it on a click): the CSV and XLSX of 94,000 candidates took 2.3 and 7.3 s at
        200M events, which every view of the page paid before."""
        return report_bytes(self.report, fmt)


def _has_assets(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the inventory holds any asset (without, the page says to collect the inventory)."""
    return not run(con, "cleanup_assets").empty


def policy_overrides(values: tuple) -> dict[str, Any]:
    """(unused_days, keep_latest, keep_latest_per_major, min_age_days, protect) -> report_cleanup kwargs."""
    out = dict(zip(POLICY_FIELDS, values, strict=True))
    out["protect"] = list(out["protect"]) if out["protect"] is not None else None
    return out


def report_bytes(df: pd.DataFrame, fmt: str) -> bytes:
    """The file analytics.reports.write_table writes for `df` in `fmt` (as `caa report` does), as bytes."""
    with tempfile.TemporaryDirectory() as folder:
        return write_table(df, Path(folder) / f"report.{fmt}", fmt).read_bytes()


_SHARED: dict[tuple, pd.DataFrame] | None = None  # report()'s candidates within sharing_reports()


@contextmanager
def sharing_reports() -> Iterator[None]:
    """Within the block, report() judges each connection, store version, filters, settings and policy once:
    precompute (ui/precompute.py) computes the Cleanup page's candidates and the Costs forecast's what-if
    from the same judging of every version (120,000 took 4-7 s at 200M events) instead of twice. Outside
    it (a page computing live), report() always judges afresh."""
    global _SHARED
    outer, _SHARED = _SHARED, {}
    try:
        yield
    finally:
        _SHARED = outer


def report(con: duckdb.DuckDBPyConnection, settings: Settings, policy: tuple) -> pd.DataFrame:
    """cleanup.report_cleanup for the policy (POLICY_FIELDS values); within sharing_reports() computed once
    per connection, store version, filters, settings and policy, each caller getting its own copy."""
    if _SHARED is None:
        return cleanup.report_cleanup(con, settings, **policy_overrides(policy))
    key = (id(con), store.store_version(con), filters.Filters.applied(con), settings.model_dump_json(), policy)
    if key not in _SHARED:
        _SHARED[key] = cleanup.report_cleanup(con, settings, **policy_overrides(policy))
    return _SHARED[key].copy()


def cleanup_view(con: duckdb.DuckDBPyConnection, settings: Settings, *policy: Any) -> CleanupView | None:
    """The candidates for the policy (POLICY_FIELDS values) with their totals and report files, or None
    without events."""
    if cleanup.store_as_of(con) is None:
        return None
    df = report(con, settings, policy)
    return CleanupView(df, cleanup.summary(df), _has_assets(con))


def cleanup_backtest(con: duckdb.DuckDBPyConnection, settings: Settings, *policy: Any) -> dict | None:
    """cleanup.backtest for the policy (POLICY_FIELDS values), or None when the inventory holds no assets yet."""
    return cleanup.backtest(con, settings, **policy_overrides(policy)) if _has_assets(con) else None


def forecast_with_cleanup(con: duckdb.DuckDBPyConnection, settings: Settings, horizon_months: int,
                          *policy: Any) -> forecast.Forecast:
    """forecast() with the what-if of the cleanup policy (POLICY_FIELDS values)."""
    reclaimed = cleanup.reclaimed_bytes_by_domain(report(con, settings, policy)) if _has_assets(con) else {}
    return forecast.forecast(con, settings, horizon_months=horizon_months, reclaimed_bytes_by_domain=reclaimed)


def cleanup_policy(unused_days: int, keep_latest: int, keep_latest_per_major: int, min_age_days: int,
                   protect: str) -> tuple:
    """A cleanup policy as loader args (POLICY_FIELDS order); `protect` is one glob per line, as typed on
    the Cleanup page (blank lines and surrounding spaces dropped)."""
    globs = tuple(line.strip() for line in protect.splitlines() if line.strip())
    return (int(unused_days), int(keep_latest), int(keep_latest_per_major), int(min_age_days), globs)


def settings_policy(settings: Settings) -> tuple:
    """settings.cleanup as loader args, exactly as the Cleanup page's controls start out (so the Overview,
    the Costs forecast, the Cleanup page and the precomputed views share one key)."""
    c = settings.cleanup
    return cleanup_policy(c.unused_days, c.keep_latest, c.keep_latest_per_major, c.min_age_days,
                          "\n".join(c.protect))


# ---------------------------------------------------------------- the loads that wrap one analytics call

def filter_options(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, list[str]]:
    """The sidebar's filter choices (on every page)."""
    return filters.options(con)


def store_span(con: duckdb.DuckDBPyConnection, settings: Settings) -> tuple[date, date] | None:
    """The first and last UTC day of the store's events (costs.coverage), whatever the filters (not filtered, as
    filter_options): what a page empty under the filters says the store holds. None without events."""
    return costs.coverage(con).event_days


def overview_view(con: duckdb.DuckDBPyConnection, settings: Settings) -> overview.Overview | None:
    return overview.overview(con, settings.prices)


def health_view(con: duckdb.DuckDBPyConnection, settings: Settings) -> health.Health:
    return health.health(con)


def cost_report(con: duckdb.DuckDBPyConnection, settings: Settings, by: str, since: date, until: date) -> pd.DataFrame:
    return costs.cost_report(con, settings, since, until, by=by)


def reconcile(con: duckdb.DuckDBPyConnection, settings: Settings, since: date | None, until: date | None
              ) -> pd.DataFrame:
    return costs.reconcile(con, settings, since, until)


@dataclass(frozen=True)
class BillView:
    """The Costs page's modeled-vs-billed section (CUR 2.0), or why it is empty (`note`)."""

    note: str | None
    window: tuple[date, date] | None = None
    daily: pd.DataFrame = field(default_factory=pd.DataFrame)  # billing.reconcile(grain="usage_type")
    kinds: pd.DataFrame = field(default_factory=pd.DataFrame)  # billing.summary by kind
    domains: pd.DataFrame = field(default_factory=pd.DataFrame)  # storage per domain
    repositories: pd.DataFrame = field(default_factory=pd.DataFrame)  # requests per repository
    domains_note: str | None = None
    adjustments: pd.DataFrame = field(default_factory=pd.DataFrame)  # billing.adjustments
    transfer: pd.DataFrame = field(default_factory=pd.DataFrame)  # modeled bytes per repository by class


def bill_only(con: duckdb.DuckDBPyConnection, settings: Settings) -> str | None:
    """For the Overview and Costs pages when nothing is modeled: what the collected bill covers and what the
    model needs, or None without a bill (then the pages say there is no data)."""
    bill = billing.coverage(con)
    if not bill.lines:
        return None
    return (f"The bill is collected ({bill.first_date} to {bill.last_date}, {bill.periods} billing "
            "period(s)), but the cost model needs usage to price and to allocate it: run `caa collect inventory` "
            "and `caa collect cloudtrail`. Until then `caa report focus` writes the bill's lines.")


def bill_view(con: duckdb.DuckDBPyConnection, settings: Settings, since: date | None, until: date | None
              ) -> BillView:
    if not billing.has_bill(con):
        return BillView(note="no bill collected yet")
    days = billing.window(con, since, until)
    if days is None:
        return BillView(note=billing.window_note(con, since, until, asked_as="the date filter"))
    daily = billing.reconcile(con, settings, *days, grain="usage_type")
    note = billing.grain_note(con, "domain")
    dom = billing.summary(billing.reconcile(con, settings, *days, grain="domain"), ["account_id", "domain"])
    rep = billing.summary(billing.reconcile(con, settings, *days, grain="repository"), ["domain", "repository"])
    return BillView(None, days, daily, billing.summary(daily, ["kind"]), dom, rep, note,
                    billing.adjustments(con, settings, *days),
                    transfer.by_repository(con, settings, *days, per_day=False))


# ---------------------------------------------------------------- every load a page makes

Load = Callable[..., Any]  # (con, settings, *args) -> what the page shows
# name -> load. The name keys the cache (ui/cache.py page_key); ui/common.View.load only runs these.
LOADS: dict[str, Load] = {f.__name__: f for f in (
    filter_options, store_span, overview_view, overview_costs, health_view,
    cost_window, cost_report, daily_cost, forecast_with_cleanup, reconcile, bill_view, bill_only,
    usage_window, usage_view, downloads_over_time,
    spikes_view,
    cleanup_view, cleanup_backtest,
)}
