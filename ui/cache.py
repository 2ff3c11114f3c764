"""The read side of the precomputed dashboard views (table page_cache, core/schema/006_page_cache.sql):
the key of one load and its lookup. ui/precompute.py writes the rows; ui/common.py reads them.

The key covers the load (its function's name), its args, the filters, and a fingerprint of what the
result depends on besides the data: the settings sections analytics reads (ANALYTICS_SETTINGS; never
credentials, and the settings themselves are never stored) and the code that computes and shapes it
(CODE: analytics/ with its SQL, and the loads in ui/views.py). A new collection bumps the store version,
so rows of older versions are never read.

Reads: page_cache, store_meta (and, for the run list in the Overview, collector_runs). Writes nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import duckdb

from analytics import overview
from analytics.filters import Filters
from core.settings import Settings

MISS = object()  # lookup() found nothing usable
# The Settings sections analytics/ reads (grep `settings.` there): prices (costs, forecast, spikes, overview),
# teams and costs (attribution), cleanup (the policy, backtest_days), spikes (detector). Accounts, AWS
# endpoints, e-mail, alerts and schedules change nothing a page shows, so a collector run with its own
# endpoints (the demo) precomputes what the dashboard with the plain caa.toml reads.
ANALYTICS_SETTINGS = ("prices", "teams", "cleanup", "costs", "spikes")
ROOT = Path(__file__).resolve().parents[1]
CODE = ("analytics/*.py", "analytics/sql/*.sql", "ui/views.py")  # the loads, their SQL, the pickled classes


def code_files() -> list[Path]:
    """The files whose change invalidates every stored view (CODE), sorted."""
    return sorted(p for pattern in CODE for p in ROOT.glob(pattern))


@cache
def code_fingerprint() -> str:
    """sha256 of code_files(): a changed query or loader never reads old rows."""
    h = hashlib.sha256()
    for path in code_files():
        h.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def settings_fingerprint(settings: Settings) -> str:
    """sha256 of the ANALYTICS_SETTINGS sections (in file order: the first matching team wins)."""
    body = json.dumps(settings.model_dump(mode="json", include=set(ANALYTICS_SETTINGS)), separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def _plain(value: Any) -> str:
    """A load argument JSON has no type for (dates), with its type: the key never confuses two types."""
    if isinstance(value, datetime | date):
        return f"{type(value).__name__}:{value.isoformat()}"
    return f"{type(value).__name__}:{value!r}"


def page_key(name: str, args: tuple, filters: Filters, settings: Settings) -> str:
    """The page_cache key of one load (`name`: its function's name in ui/views.py): sha256 hex of the name,
    args, filters, settings and code fingerprints."""
    body = json.dumps([name, list(args), dataclasses.asdict(filters), settings_fingerprint(settings),
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
        found = pickle.loads(row[0])  # noqa: S301 - written by ui/precompute.py into the user's own store
    except Exception:  # noqa: BLE001 - e.g. a class that changed shape: compute live instead
        return MISS
    if isinstance(found, overview.Overview):  # the sidebar's last runs: views outlive runs that load nothing
        found = dataclasses.replace(found, freshness=overview.collector_freshness(con))
    return found
