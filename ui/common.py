"""What every dashboard page shares: the View (store, filters, settings), the cached loader and
formatting. Loaders open the reader snapshot, apply the global filters and call analytics/; they are
cached on the snapshot's version, so a new collection shows on the next rerun without a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from analytics import costs, health, overview, pageviews
from analytics.filters import Filters, options
from collectors import store
from settings import Settings

NO_DATA = "No data yet: run `make demo` or `caa collect`."

LOADERS: dict[str, Callable[..., Any]] = {
    "overview": lambda con, s: overview.overview(con, s.prices),
    "health": lambda con, s: health.health(con),
    "options": lambda con, s: options(con),
    # Overview: month-end projection, last month, cost trend and movers, open spikes
    "overview_costs": lambda con, s: pageviews.overview_costs(con, s),
    # Costs: (level, since, until), (since, until), (horizon_months, *policy), (since, until)
    "cost_report": lambda con, s, by, since, until: costs.cost_report(con, s, since, until, by=by),
    "cost_window": lambda con, s, start, end, days: pageviews.cost_window(con, start, end, days),
    "daily_cost": lambda con, s, since, until: pageviews.daily_cost_by_kind(con, s, since, until),
    "forecast": lambda con, s, months, *policy: pageviews.forecast_with_cleanup(
        con, s, months, **pageviews.policy_overrides(policy)),
    "reconcile": lambda con, s, since, until: costs.reconcile(con, s, since, until),
    # Usage: (start, end) -> window; (window..., by) -> series
    "usage_window": lambda con, s, start, end: pageviews.usage_window(con, start, end),
    "usage": lambda con, s, since, until: pageviews.usage_view(con, s, since, until),
    "downloads_over_time": lambda con, s, by, since, until: pageviews.downloads_over_time(con, by, since, until),
    # Spikes: (start, end, days)
    "spikes": lambda con, s, start, end, days: pageviews.spikes_view(con, s, start, end, days),
    # Cleanup: policy = (unused_days, keep_latest, keep_latest_per_major, min_age_days, protect tuple)
    "cleanup": lambda con, s, *policy: pageviews.cleanup_view(con, s, **pageviews.policy_overrides(policy)),
    "cleanup_backtest": lambda con, s, *policy: pageviews.cleanup_backtest(con, s,
                                                                           **pageviews.policy_overrides(policy)),
}


@dataclass(frozen=True)
class View:
    db: str
    version: tuple[int, int] | None
    filters: Filters
    settings_json: str

    @property
    def settings(self) -> Settings:
        return Settings.model_validate_json(self.settings_json)

    def load(self, kind: str, *args: Any) -> Any:
        """The result of LOADERS[kind] over the filtered snapshot, or None when there is no store yet."""
        return _cached(kind, self.db, self.version, self.filters, self.settings_json, args)


@st.cache_data(show_spinner="Loading the store...", max_entries=64)
def _cached(kind: str, db: str, version: tuple[int, int] | None, filters: Filters, settings_json: str,
            args: tuple) -> Any:
    con = store.open_reader(Path(db))
    if con is None:
        return None
    with con:
        if kind != "options":
            filters.apply(con)
        if not con.execute("SELECT count(*) > 0 FROM collector_runs").fetchone()[0]:
            return None
        return LOADERS[kind](con, Settings.model_validate_json(settings_json), *args)


def settings_policy(view: View) -> tuple:
    """The settings' cleanup policy as loader args (so the Overview shares the Cleanup page's cache)."""
    c = view.settings.cleanup
    return (c.unused_days, c.keep_latest, c.keep_latest_per_major, c.min_age_days, tuple(c.protect))


def gb(value: float) -> str:
    return f"{value:,.2f}"


def count(value: int) -> str:
    return f"{value:,}"


def usd(value: float) -> str:
    return f"${value:,.2f}"


def pct(value: float) -> str:
    return "n/a" if value != value else f"{round(value, 1) + 0.0:,.1f}%"  # + 0.0: never "-0.0%"


def no_data() -> None:
    st.info(NO_DATA)
