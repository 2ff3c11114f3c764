"""The dashboard's default views, computed when data is loaded instead of when a page is first opened.

A page opened in a fresh dashboard process used to compute its default view live: ETS fits for the
forecast, the cleanup policy and its backtest, seconds per page. After a collection (`caa collect`, the
demo build, `caa refresh`, the scheduler's analytics job) `refresh` runs every load the pages make with no
filters, their widgets at their defaults and the cleanup policy of the settings, on the writer connection,
and stores each pickled result in page_cache (schema/006_page_cache.sql) under the store version it was
computed from. ui/common.py looks a load up there (`lookup(page_key(...))`) before computing it; anything
else (a filter, another policy, another level) is computed live as before.

The key covers the loader kind, its args, the filters, and a fingerprint of what the result depends on
besides the data: the settings sections analytics reads (ANALYTICS_SETTINGS; never credentials, and the
settings themselves are never stored) and the analytics code. A new collection bumps the store version,
so rows of older versions are never read, and each refresh deletes them. A run that loads no rows only
records itself in collector_runs: `carry_forward` re-keys the views to the new version instead of
recomputing them, and `lookup` reads the Overview's list of last runs live.

Reads: the store through ui.views.LOADERS, store_meta. Writes: page_cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import pickle
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import duckdb

from analytics import overview
from analytics.filters import Filters
from core import store
from core.clock import utc_now
from core.errors import first_line
from core.settings import Settings
from ui import views

log = logging.getLogger("caa.precompute")

MISS = object()  # lookup() found nothing usable
# The Settings sections analytics/ reads (grep `settings.` there): prices (costs, forecast, spikes, overview),
# teams and costs (attribution), cleanup (the policy, backtest_days), spikes (detector). Accounts, AWS
# endpoints, e-mail, alerts and schedules change nothing a page shows, so a collector run with its own
# endpoints (the demo) precomputes what the dashboard with the plain caa.toml reads.
ANALYTICS_SETTINGS = ("prices", "teams", "cleanup", "costs", "spikes")
CODE = Path(__file__).parent  # analytics/: the loaders, their SQL and the classes that are pickled

# The pages' widget defaults (ui/costs.py level_ui and forecast_ui, ui/usage.py over_time_ui, ui/spikes.py
# window_ui). tests/integration/test_page_cache.py fails when a page asks for a default this list misses.
COST_LEVEL = "domain"
FORECAST_MONTHS = 3
USAGE_BY = "format"
SPIKE_DAYS = 90
COST_TREND_DAYS = 90
# Default loads that are never precomputed: health's freshness ages are measured against the wall clock, so
# a stored one would read "0.1 hours" all night (and it takes ~0.02 s live).
CLOCK_KINDS = ("health",)


@cache
def code_fingerprint() -> str:
    """sha256 of analytics/*.py and analytics/sql/*.sql: a changed query or loader never reads old rows."""
    h = hashlib.sha256()
    for path in sorted([*CODE.glob("*.py"), *CODE.glob("sql/*.sql")]):
        h.update(path.relative_to(CODE).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def settings_fingerprint(settings: Settings) -> str:
    """sha256 of the ANALYTICS_SETTINGS sections (in file order: the first matching team wins)."""
    body = json.dumps(settings.model_dump(mode="json", include=set(ANALYTICS_SETTINGS)), separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def _plain(value: Any) -> str:
    """A loader argument JSON has no type for (dates), with its type: the key never confuses two types."""
    if isinstance(value, datetime | date):
        return f"{type(value).__name__}:{value.isoformat()}"
    return f"{type(value).__name__}:{value!r}"


def page_key(kind: str, args: tuple, filters: Filters, settings: Settings) -> str:
    """The page_cache key of one load: sha256 hex of kind, args, filters, settings and code fingerprints."""
    body = json.dumps([kind, list(args), dataclasses.asdict(filters), settings_fingerprint(settings),
                       code_fingerprint()], default=_plain, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def lookup(con: duckdb.DuckDBPyConnection, key: str) -> Any:
    """The result stored under `key` for the store's current version, or MISS (also for a snapshot written
    before page_cache existed, or a payload this code cannot read back)."""
    try:
        row = con.execute(
            "SELECT c.payload FROM page_cache c WHERE c.key = $key AND c.store_version = "
            "(SELECT m.value FROM store_meta m WHERE m.key = 'store_version')", {"key": key}).fetchone()
    except duckdb.CatalogException:
        return MISS
    if row is None:
        return MISS
    try:
        found = pickle.loads(row[0])  # noqa: S301 - written by refresh() into the user's own store
    except Exception:  # noqa: BLE001 - e.g. a class that changed shape: compute live instead
        return MISS
    if isinstance(found, overview.Overview):  # the sidebar's last runs: views outlive runs that load nothing
        found = dataclasses.replace(found, freshness=overview.collector_freshness(con))
    return found


def default_loads(con: duckdb.DuckDBPyConnection, settings: Settings) -> Iterator[tuple[str, tuple]]:
    """Every page's loads with no filters and default widgets, in page order (dashboard.PAGES), as
    (kind, args). Args that a page takes from an earlier load (the Costs and Usage windows) come from that
    load here too, and where the page stops ("no data") this stops too. Repeats are left in."""
    def earlier(kind: str, *args: Any) -> Any:
        try:
            return views.LOADERS[kind](con, settings, *args)
        except Exception:  # noqa: BLE001 - refresh() runs (and logs) this same load; the page stops here
            return None

    policy = views.settings_policy(settings)
    yield "options", ()  # the sidebar's filter choices, on every page
    # Overview (ui/overview.py)
    yield "overview", ()
    yield "overview_costs", ()
    yield "cleanup", policy
    # Costs (ui/costs.py)
    yield "cost_window", (None, None, None)
    window = earlier("cost_window", None, None, None)
    if window is not None:
        yield "cost_report", (COST_LEVEL, *window)
        yield "cost_window", (None, None, COST_TREND_DAYS)
        trend = earlier("cost_window", None, None, COST_TREND_DAYS)
        if trend is not None:
            yield "daily_cost", tuple(trend)
        yield "forecast", (FORECAST_MONTHS, *policy)
        yield "reconcile", (None, None)
    # Usage (ui/usage.py)
    yield "usage_window", (None, None)
    window = earlier("usage_window", None, None)
    if window is not None:
        yield "usage", tuple(window)
        yield "downloads_over_time", (USAGE_BY, *window)
    # Spikes, Cleanup, Data health (ui/spikes.py, ui/cleanup.py, ui/health.py)
    yield "spikes", (None, None, SPIKE_DAYS)
    yield "cleanup", policy
    yield "cleanup_backtest", policy
    yield "health", ()


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
    """Compute default_loads() (but CLOCK_KINDS) on this (writer) connection and store them for the current
    store version, replacing the rows of older versions, in one transaction. A loader that fails is logged (one line) and
    skipped. Without any collector run the pages show "no data", so nothing is stored."""
    t0 = time.monotonic()
    store.prepare_publish(con)  # the rollups of the days this session loaded: the views read them
    version = con.execute("SELECT value FROM store_meta WHERE key = 'store_version'").fetchone()[0]
    rows: dict[str, tuple] = {}
    failed: dict[str, str] = {}  # key -> kind
    for kind, args in default_loads(con, settings) if _has_runs(con) else ():
        key = page_key(kind, args, Filters(), settings)
        if key in rows or key in failed or kind in CLOCK_KINDS:
            continue
        t = time.monotonic()
        try:
            result = views.LOADERS[kind](con, settings, *args)
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
