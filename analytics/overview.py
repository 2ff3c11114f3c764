"""The Overview page's numbers: storage, downloads, requests, modeled month-to-date cost, freshness.

Reads (through analytics.queries): events, the downloads view, storage_snapshots, collector_runs.
Writes nothing. Every function takes an open connection (the caller opens and closes it).

Time is relative to the store, not the wall clock: `as_of(con)` is the newest event, "the last 30 days"
are the 30 UTC days ending on that event's day, and "this month" is that day's calendar month. So an
estate collected days ago still shows its data, and the page says which day it is "as of".
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import duckdb
import pandas as pd

from analytics.queries import run
from core.clock import utc_midnight
from core.settings import Prices

WINDOW_DAYS = 30


@dataclass(frozen=True)
class AsOf:
    """The store's "now" (its newest event) and the windows derived from it, all in UTC."""

    latest_event_at: datetime

    @property
    def day(self) -> date:
        return self.latest_event_at.astimezone(UTC).date()

    @property
    def window_first_day(self) -> date:
        """First day of the last-30-days window (the window ends with `day`, inclusive)."""
        return self.day - timedelta(days=WINDOW_DAYS - 1)

    @property
    def month_start(self) -> date:
        return self.day.replace(day=1)

    @property
    def next_month_start(self) -> date:
        return (self.month_start + timedelta(days=32)).replace(day=1)

    @property
    def days_in_month(self) -> int:
        return calendar.monthrange(self.day.year, self.day.month)[1]


@dataclass(frozen=True)
class MonthCost:
    """Modeled month-to-date cost from the price table (not the AWS bill)."""

    storage_usd: float
    requests_usd: float
    by_account_region: pd.DataFrame  # account_id, region, gb_month, requests, storage_usd, requests_usd, cost_usd

    @property
    def total_usd(self) -> float:
        return self.storage_usd + self.requests_usd


@dataclass(frozen=True)
class Overview:
    """Everything the Overview page shows, loaded in one go."""

    as_of: AsOf
    storage: pd.DataFrame  # storage_by_domain()
    downloads_30d: int
    requests_this_month: int
    cost: MonthCost
    downloads_by_day: pd.DataFrame  # day, format, downloads
    freshness: pd.DataFrame  # collector_freshness()

    @property
    def storage_gb(self) -> float:
        return float(self.storage["storage_gb"].sum())


def as_of(con: duckdb.DuckDBPyConnection) -> AsOf | None:
    """The newest event in the store, or None when there are no events (the page's empty state)."""
    latest = run(con, "as_of")["latest_event_at"].iloc[0]
    if pd.isna(latest):
        return None
    return AsOf(pd.Timestamp(latest).to_pydatetime().astimezone(UTC))


def storage_by_domain(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Current storage per domain (latest snapshot; deleted domains left out), GB = bytes / 1024**3."""
    return run(con, "storage_by_domain")


def downloads_last_30_days(con: duckdb.DuckDBPyConnection, when: AsOf) -> int:
    """Successful downloads in the 30 UTC days ending on the store's newest event day."""
    df = run(con, "downloads_count", start_at=utc_midnight(when.window_first_day), end_at=utc_midnight(when.day + timedelta(days=1)))
    return int(df["downloads"].iloc[0])


def requests_this_month(con: duckdb.DuckDBPyConnection, when: AsOf) -> int:
    """Successful CodeArtifact requests in the calendar month of the "as of" day."""
    return int(run(con, "requests_count", start_at=utc_midnight(when.month_start),
                   end_at=utc_midnight(when.next_month_start))["requests"].iloc[0])


def month_to_date_cost(con: duckdb.DuckDBPyConnection, when: AsOf, prices: Prices) -> MonthCost:
    """Modeled cost this month to date (the 1st through the "as of" day), from the one cost model:
    analytics.costs.daily_cost (free tiers used up in date order per account, as AWS bills them)."""
    from analytics import costs
    from core.settings import Settings

    daily = costs.daily_cost(con, Settings.model_construct(prices=prices), when.month_start, when.day)
    keys = ["account_id", "region"]
    wide = daily.pivot_table(index=keys, columns="kind", values=["quantity", "cost_usd"], aggfunc="sum",
                             fill_value=0.0)
    df = pd.DataFrame({
        "gb_month": wide.get(("quantity", "storage"), 0.0),
        "requests": wide.get(("quantity", "requests"), 0.0),
        "storage_usd": wide.get(("cost_usd", "storage"), 0.0),
        "requests_usd": wide.get(("cost_usd", "requests"), 0.0),
    }, index=wide.index).reset_index() if len(daily) else pd.DataFrame(
        columns=[*keys, "gb_month", "requests", "storage_usd", "requests_usd"])
    df["requests"] = df["requests"].astype("int64")
    df["cost_usd"] = df["storage_usd"] + df["requests_usd"]
    df = df.sort_values(keys, ignore_index=True)[[*keys, "gb_month", "requests", "storage_usd", "requests_usd",
                                                  "cost_usd"]]
    return MonthCost(float(df["storage_usd"].sum()), float(df["requests_usd"].sum()), df)


def downloads_by_day(con: duckdb.DuckDBPyConnection, when: AsOf, days: int = WINDOW_DAYS) -> pd.DataFrame:
    """Downloads per UTC day and format over the `days` days ending on the newest event day (0-filled)."""
    first = when.day - timedelta(days=days - 1)
    return run(con, "downloads_by_day", start_at=utc_midnight(first), end_at=utc_midnight(when.day + timedelta(days=1)))


def collector_freshness(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per collector: worst latest status over its scopes, when it last ran, and one error if any."""
    return run(con, "collector_freshness")


def overview(con: duckdb.DuckDBPyConnection, prices: Prices) -> Overview | None:
    """Everything on the Overview page, or None when the store holds no events yet."""
    when = as_of(con)
    if when is None:
        return None
    return Overview(
        as_of=when,
        storage=storage_by_domain(con),
        downloads_30d=downloads_last_30_days(con, when),
        requests_this_month=requests_this_month(con, when),
        cost=month_to_date_cost(con, when, prices),
        downloads_by_day=downloads_by_day(con, when),
        freshness=collector_freshness(con),
    )
