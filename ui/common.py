"""What every dashboard page shares: the View (store, filters, settings), the cached loader and
formatting. A load first looks for the view precomputed after the last collection (ui/precompute.py,
table page_cache, keyed on the store version); otherwise it applies the global filters to the reader
snapshot and calls analytics/ live (ui.views.LOADERS). Both are cached on the snapshot's
version, so a new collection shows on the next rerun without a restart.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from analytics.filters import Filters
from core import store
from core.settings import Settings
from ui import precompute, views

NO_DATA = "No data yet: run `make demo` or `caa collect`."
LOADERS = views.LOADERS  # kind -> function(con, settings, *args)
LIVE: Counter[str] = Counter()  # loads computed live in this process, by kind (precomputed ones are not)


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
        settings = Settings.model_validate_json(settings_json)
        found = precompute.lookup(con, precompute.page_key(kind, args, filters, settings))
        if found is not precompute.MISS:
            return found
        if kind != "options":
            filters.apply(con)
        if not con.execute("SELECT count(*) > 0 FROM collector_runs").fetchone()[0]:
            return None
        LIVE[kind] += 1
        return LOADERS[kind](con, settings, *args)


def settings_policy(view: View) -> tuple:
    """The settings' cleanup policy as loader args (so the Overview shares the Cleanup page's cache)."""
    return views.settings_policy(view.settings)


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
