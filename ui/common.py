"""What every dashboard page shares: the View (store, filters, settings), the cached load and
formatting. `view.load(views.cost_report, ...)` first looks for the result precomputed after the last
collection (ui/cache.py, table page_cache, keyed on the store version); otherwise it applies the global
filters to the reader snapshot and runs the load (a function of ui/views.py) live. Both are cached on
the snapshot's version, so a new collection shows on the next rerun without a restart.

Each page module has `page(view)` and `default_loads(settings, earlier)`: what it loads with no filters
and its widgets at their defaults (DefaultLoads), for ui/precompute.py.

Reads: the reader snapshot (page_cache, then the loads live). Writes nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from analytics.filters import LIST_FIELDS, Filters
from core import store
from core.settings import Settings
from ui import cache, views

# Outside `streamlit run` (a collector precomputing the pages' views) st.cache_data below logs "No runtime
# found" when it is defined: noise on the collector's stderr, where every line is meant for the user.
logging.getLogger("streamlit.runtime.caching.cache_data_api").setLevel(logging.ERROR)

NO_DATA = "No data yet: run `make demo` or `caa collect`."
LIVE: Counter[str] = Counter()  # loads computed live in this process, by name (precomputed ones are not)
# A page's default loads: (load, args) pairs. `earlier(load, *args)` is the result of a load whose result
# a later load's args depend on (the Costs and Usage windows), or None where the page would stop.
Earlier = Callable[..., Any]
DefaultLoads = Iterator[tuple[views.Load, tuple]]


@dataclass(frozen=True)
class View:
    db: str
    version: tuple[int, int] | None
    filters: Filters
    settings_json: str

    @property
    def settings(self) -> Settings:
        return Settings.model_validate_json(self.settings_json)

    def load(self, load: views.Load, *args: Any) -> Any:
        """The result of `load` (a function in views.LOADS) over the filtered snapshot, or None when there
        is no store yet."""
        if views.LOADS.get(load.__name__) is not load:
            raise ValueError(f"{load.__name__} is not a load of ui/views.py (views.LOADS)")
        return _cached(load.__name__, self.db, self.version, self.filters, self.settings_json, args)


# loads that read the whole store whatever the filters: the sidebar's choices, and what an empty page says
UNFILTERED = (views.filter_options.__name__, views.store_span.__name__)


@st.cache_data(show_spinner="Loading the store...", max_entries=64)
def _cached(name: str, db: str, version: tuple[int, int] | None, filters: Filters, settings_json: str,
            args: tuple) -> Any:
    con = store.open_reader(Path(db))
    if con is None:
        return None
    with con:
        settings = Settings.model_validate_json(settings_json)
        found = cache.lookup(con, cache.page_key(name, args, filters, settings))
        if found is not cache.MISS:
            return found
        if name not in UNFILTERED:
            filters.apply(con)
        if not con.execute("SELECT count(*) > 0 FROM collector_runs").fetchone()[0]:
            return None
        LIVE[name] += 1
        return views.LOADS[name](con, settings, *args)


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


def no_data(view: View, instead: str | None = None) -> None:
    """The empty state: what the store holds when the filters leave nothing of it, else NO_DATA, or `instead`
    when the store holds something the page cannot show yet (the bill without the usage that prices it:
    views.bill_only)."""
    f = view.filters
    span = view.load(views.store_span) if f.active else None
    if span is not None:  # names are counted, never shown: st.info reads markdown, and names are hostile input
        chosen = [f"dates {f.start or '...'} to {f.end or '...'}"] if f.start or f.end else []
        chosen += [f"{name}: {len(getattr(f, name))} chosen" for name in LIST_FIELDS if getattr(f, name)]
        st.info(f"Nothing matches the filters ({'; '.join(chosen)}): the store holds events from {span[0]} to "
                f"{span[1]}. Widen the dates or clear the filters in the sidebar.")
        return
    st.info(instead or NO_DATA)
