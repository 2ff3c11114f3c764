"""Data health: last run and status per collector and scope, freshness per source, errors with their fix
text, skipped files, and row counts. Reads collector_runs and every table's newest row; writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd

from analytics import queries
from core.clock import utc_now


@dataclass(frozen=True)
class Health:
    runs: pd.DataFrame  # health_latest_runs.sql
    freshness: pd.DataFrame  # health_freshness.sql
    counts: pd.DataFrame  # health_row_counts.sql
    errors: pd.DataFrame  # runs that failed: collector, scope, error (with its fix)
    skipped: pd.DataFrame  # one row per skipped item of the latest runs: collector, scope, item

    @property
    def failing(self) -> int:
        return int((self.runs["status"] != "ok").sum())


def health(con: duckdb.DuckDBPyConnection, now: datetime | None = None) -> Health:
    runs = queries.run(con, "health_latest_runs")
    errors = runs.loc[runs["error"].notna(), ["collector", "scope", "status", "error"]].reset_index(drop=True)
    skipped = (runs[["collector", "scope", "skipped_items"]].explode("skipped_items")
               .dropna(subset=["skipped_items"]).rename(columns={"skipped_items": "item"}).reset_index(drop=True))
    return Health(runs=runs, freshness=queries.run(con, "health_freshness", now=now or utc_now()),
                  counts=queries.run(con, "health_row_counts"), errors=errors, skipped=skipped)
