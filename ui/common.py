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

from analytics import health, overview
from analytics.filters import Filters, options
from collectors import store
from settings import Settings

NO_DATA = "No data yet: run `make demo` or `caa collect`."

LOADERS: dict[str, Callable[..., Any]] = {
    "overview": lambda con, s: overview.overview(con, s.prices),
    "health": lambda con, s: health.health(con),
    "options": lambda con, s: options(con),
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


def gb(value: float) -> str:
    return f"{value:,.2f}"


def count(value: int) -> str:
    return f"{value:,}"


def usd(value: float) -> str:
    return f"${value:,.2f}"


def no_data() -> None:
    st.info(NO_DATA)
