"""What a spike costs: its excess requests, and how much of them the account pays for.

A download spike's excess downloads come with other requests: the metadata a package manager fetches in
the same session (the npm packument, the pypi simple index, maven-metadata.xml). Inside the spike's
window, the sessions (core/schema/008_definitions.sql session_key) that downloaded its series made
`other` billed requests per `downloads` downloads (sql/spike_session_requests.sql), so

    excess_requests = excess downloads x (1 + other / downloads)

A request-volume spike (a principal's requests) and a token burst are requests already; denied calls
are not billed. The first prices.free_requests_per_month requests of an account and calendar month are
free, so what the excess costs is what it adds to the account's month (sql/spike_account_months.sql,
the whole store whatever the filters):

    billable = max(0, month - free) - max(0, month - excess_requests - free)
    excess_cost_usd = billable / 10,000 x the region's request price

and `free_tier` says "within" (the month stays under the free tier: the spike cost nothing), "pushed
past" (without the spike the month was under it) or "past" (the account pays for every request).

Reads: downloads, events, event_days (through analytics/sql). Writes nothing.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd

from analytics.queries import run
from core.settings import Settings

WINDOW_KEYS = ["account_id", "region", "domain", "repository", "format", "namespace", "package", "principal_arn"]


def window_params(rows: list[dict], level: str) -> dict:
    """The window lists the spike_* queries take ($window_ids, $account_ids, ..., $from_at, $to_at)."""
    plural = {"principal_arn": "principals", "repository": "repositories"}
    return {"level": level, "window_ids": list(range(len(rows))),
            **{plural.get(k, f"{k}s"): [r[k] for r in rows] for k in WINDOW_KEYS},
            "from_at": [r["from_at"] for r in rows], "to_at": [r["to_at"] for r in rows]}


def session_requests(con: duckdb.DuckDBPyConnection, rows: list[dict], level: str) -> None:
    """Set each download spike's `excess_requests` from its sessions' requests per download."""
    if not rows:
        return
    got = run(con, "spike_session_requests", **window_params(rows, level)).set_index("window_id")
    for wid, r in enumerate(rows):
        per = 1.0
        if wid in got.index and got.at[wid, "downloads"] > 0:
            per += float(got.at[wid, "other"]) / float(got.at[wid, "downloads"])
        r["excess_requests"] = round(r["excess"] * per)


def _month(at: pd.Timestamp | object) -> date:
    t = pd.Timestamp(at)
    return date(t.year, t.month, 1)


def price(con: duckdb.DuckDBPyConnection, settings: Settings, rows: list[dict]) -> None:
    """Set billable_requests, excess_cost_usd and free_tier on every spike row (excess_requests set)."""
    if not rows:
        return
    months = sorted({_month(r["from_at"]) for r in rows})
    totals = {(a, pd.Timestamp(m).date()): int(n)
              for a, m, n in run(con, "spike_account_months", months=months).itertuples(index=False)}
    free = settings.prices.free_requests_per_month
    for r in rows:
        x = int(r.get("excess_requests") or 0)
        month = totals.get((r["account_id"], _month(r["from_at"])), 0)
        month = max(month, x)  # (a filtered or partial store may know fewer requests than the spike made)
        billable = max(0, month - free) - max(0, month - x - free)
        rate = settings.prices.for_region(r["region"] or "")[1]
        r["billable_requests"] = billable
        r["excess_cost_usd"] = billable / 10_000 * rate
        r["free_tier"] = ("within" if month <= free else "pushed past" if month - x < free else "past")
