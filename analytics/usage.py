"""Who downloads what: top packages, versions, repositories and consumers over a window, with growth
against the previous window of the same length; internal vs upstream-cached share; idle repositories;
versions with a single consumer.

Reads (through analytics.queries, sql/usage_*.sql): the downloads view, events, package_versions,
repositories. Writes nothing. Windows are half-open [since, until) of whole UTC days.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd

from analytics.queries import run
from core.clock import utc_midnight
from core.settings import Settings

KEYS = ("packages", "versions", "repositories", "consumers", "origin_share", "idle_repositories",
        "single_consumer_versions")


def usage_report(con: duckdb.DuckDBPyConnection, settings: Settings, since: date, until: date,
                 top: int = 20) -> dict[str, pd.DataFrame]:
    """The usage tables for [since, until) (UTC days), keyed by KEYS.

    packages / versions / repositories / consumers: the `top` by downloads, with downloads, principals,
    prev_downloads (the previous window of the same length, ending at `since`) and growth_pct.
    origin_share: downloads and share_pct per origin_type of the downloaded version.
    idle_repositories: repositories without a successful event in the window.
    single_consumer_versions: versions downloaded by exactly one principal in the window.
    `settings` is accepted for symmetry with the other reports (nothing here depends on it yet).
    """
    if until <= since:
        raise ValueError(f"the window is empty: since {since} is not before until {until}")
    start, end = utc_midnight(since), utc_midnight(until)
    prev = utc_midnight(since - (until - since))
    window = {"start_at": start, "end_at": end}
    out = {name: run(con, f"usage_top_{name}", prev_start_at=prev, top=top, **window)
           for name in ("packages", "versions", "repositories", "consumers")}
    out["origin_share"] = run(con, "usage_origin_share", **window)
    out["idle_repositories"] = run(con, "usage_idle_repositories", **window)
    out["single_consumer_versions"] = run(con, "usage_single_consumer_versions", **window)
    return out
