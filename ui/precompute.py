"""The dashboard's default views, computed when data is loaded instead of when a page is first opened.

A page opened in a fresh dashboard process used to compute its default view live: ETS fits for the
forecast, the cleanup policy and its backtest, seconds per page. After a collection (`caa collect`, the
demo build, `caa refresh`, the scheduler's analytics job) `refresh` runs every load the pages declare
(each page module's `default_loads`: no filters, widgets at their defaults, the cleanup policy of the
settings) on the writer connection, and stores each pickled result in page_cache
(core/schema/006_page_cache.sql) under the store version it was computed from, keyed as ui/cache.py keys
it. ui/common.py looks a load up there before computing it; anything else (a filter, another policy,
another level) is computed live as before.

A new collection bumps the store version, so rows of older versions are never read, and each refresh
deletes them. A run that loads no rows only records itself in collector_runs: `carry_forward` re-keys
the views to the new version instead of recomputing them, and ui/cache.lookup reads the Overview's list
of last runs live.

Reads: the store through the loads of ui/views.py, store_meta. Writes: page_cache.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb

from analytics.filters import Filters
from core import store
from core.clock import utc_now
from core.errors import first_line
from core.settings import Settings
from ui import cache, sidebar, views
from ui.pages import PAGES

log = logging.getLogger("caa.precompute")

# Default loads that are never precomputed: health's freshness ages are measured against the wall clock, so
# a stored one would read "0.1 hours" all night (and it takes ~0.02 s live).
CLOCK_LOADS = (views.health_view,)


def default_loads(con: duckdb.DuckDBPyConnection, settings: Settings) -> Iterator[tuple[views.Load, tuple]]:
    """What each page declares it loads with no filters and default widgets (its `default_loads`), the
    sidebar first, then the pages in menu order (ui/pages.py), as (load, args). A load whose result later
    args depend on is computed here too (`earlier`); where it has none, the page stops (its "no data").
    Repeats are left in."""
    def earlier(load: views.Load, *args: Any) -> Any:
        try:
            return load(con, settings, *args)
        except Exception:  # noqa: BLE001 - refresh() runs (and logs) this same load; the page stops here
            return None

    for module in (sidebar, *(module for _, module in PAGES.values())):
        yield from module.default_loads(settings, earlier)


@dataclass(frozen=True)
class Summary:
    views: int  # rows written for this store version
    seconds: float  # the whole refresh
    store_version: int
    failed: tuple[str, ...] = ()  # kinds the pages will compute live

    @property
    def line(self) -> str:
        text = f"dashboard views: {self.views} precomputed in {self.seconds:.1f} s"
        if self.failed:
            text += f"; {len(self.failed)} failed, the pages compute them live: {', '.join(self.failed)}"
        return text


def _has_runs(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute("SELECT count(*) > 0 FROM collector_runs").fetchone()[0])


def refresh(con: duckdb.DuckDBPyConnection, settings: Settings) -> Summary:
    """Compute default_loads() (but CLOCK_LOADS) on this (writer) connection and store them for the current
    store version, replacing the rows of older versions, in one transaction. A loader that fails is logged (one line) and
    skipped. Without any collector run the pages show "no data", so nothing is stored."""
    t0 = time.monotonic()
    store.prepare_publish(con)  # the rollups of the days this session loaded (the views read them), compacted
    version = store.store_version(con)
    rows: dict[str, tuple] = {}
    failed: dict[str, str] = {}  # key -> kind
    with views.sharing_reports():  # the Cleanup page and the Costs forecast judge the versions once
        for load, args in default_loads(con, settings) if _has_runs(con) else ():
            kind = load.__name__
            key = cache.page_key(kind, args, Filters(), settings)
            if key in rows or key in failed or load in CLOCK_LOADS:
                continue
            t = time.monotonic()
            try:
                result = load(con, settings, *args)
            except Exception as e:  # noqa: BLE001 - never fail the collection for a view: the page computes it live
                first = first_line(e, 200)
                log.warning(f"dashboard view {kind} not precomputed, the page computes it live: "
                            f"{type(e).__name__}: {first}")
                failed[key] = kind
                continue
            payload = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
            rows[key] = (key, kind, version, payload, utc_now(), time.monotonic() - t)
    _store(con, version, list(rows.values()))
    return Summary(len(rows), time.monotonic() - t0, version, tuple(failed.values()))


def _store(con: duckdb.DuckDBPyConnection, version: int, rows: list[tuple]) -> None:
    with store.transaction(con):
        con.execute("DELETE FROM page_cache WHERE store_version <> $v OR list_contains($keys::VARCHAR[], key)",
                    {"v": version, "keys": [r[0] for r in rows]})
        if rows:
            con.executemany("INSERT INTO page_cache (key, kind, store_version, payload, computed_at, seconds) "
                            "VALUES (?, ?, ?, ?, ?, ?)", rows)


def carry_forward(con: duckdb.DuckDBPyConnection) -> int:
    """Re-key the newest views to the current store version; for a run that recorded itself in
    collector_runs but loaded no data, so the views are still right (the Overview's run list is read live
    by lookup()). Returns how many views were kept."""
    version = store.store_version(con)
    with store.transaction(con):
        kept = con.execute("UPDATE page_cache SET store_version = $v WHERE store_version = "
                           "(SELECT max(store_version) FROM page_cache)", {"v": version}).fetchone()[0]
    return kept


def refresh_after_collection(con: duckdb.DuckDBPyConnection, settings: Settings, loaded: bool = True) -> str:
    """refresh() as the last step of a collection: its summary line, or one line saying why nothing was
    precomputed (the pages then compute live). With `loaded` False (the run loaded no rows) the existing
    views are carried forward instead of recomputed, when there are any. Never fails the collection."""
    try:
        if not loaded and (kept := carry_forward(con)):
            return f"dashboard views: no new data, {kept} kept"
        return refresh(con, settings).line
    except Exception as e:  # noqa: BLE001 - the collected data is committed; the views are an optimisation
        first = first_line(e, 200)
        return f"dashboard views: not precomputed ({type(e).__name__}: {first}); the pages compute them live"
