"""Global filters (account, region, domain, repository, format, date range) for any analytics query.

`Filters.apply(con)` works on a read-only connection: it loads the chosen values into TEMP tables
(as parameters, never spliced into SQL; dates become literals of `date` objects) and creates TEMP
views with the names of the store's tables (`events`, `package_versions`, `storage_snapshots`, the
rollups, ...) that read the real tables through those filters. Every analytics query, and the `downloads` view, then sees only the filtered rows without
knowing about filters. Filters round-trip through URL query parameters (`to_query` / `from_query`), so
a link reproduces a dashboard view.

Reads/writes: TEMP objects of the given connection only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from datetime import date, timedelta

import duckdb

from core import lake

LIST_FIELDS = ("accounts", "regions", "domains", "repositories", "formats")
EVENTS_SCOPE = "events_scope"  # the TEMP view the filtered `events` reads its rows from (the lake files)
# table -> (its column for each list filter it has, its time column or None)
TABLES: dict[str, tuple[dict[str, str], str | None]] = {
    "events": ({"accounts": "account_id", "regions": "region", "domains": "domain", "repositories": "repository",
                "formats": "format"}, "event_at"),
    "package_versions": ({"accounts": "account_id", "regions": "region", "domains": "domain",
                          "repositories": "repository", "formats": "format"}, None),
    "assets": ({"accounts": "account_id", "regions": "region", "domains": "domain", "repositories": "repository",
                "formats": "format"}, None),
    "packages": ({"accounts": "account_id", "regions": "region", "domains": "domain", "repositories": "repository",
                  "formats": "format"}, None),
    "package_dependencies": ({"accounts": "account_id", "regions": "region", "domains": "domain",
                              "repositories": "repository", "formats": "format"}, None),
    "repositories": ({"accounts": "account_id", "regions": "region", "domains": "domain",
                      "repositories": "repository"}, None),
    "domains": ({"accounts": "account_id", "regions": "region", "domains": "domain"}, None),
    "storage_snapshots": ({"accounts": "account_id", "regions": "region", "domains": "domain"}, "snapshot_date"),
    "usage_metrics": ({"accounts": "account_id", "regions": "region"}, "metric_at"),
    "cost_actuals": ({"accounts": "account_id"}, "usage_date"),
    # the bill: storage lines have no repository, so a repository filter leaves the bill whole
    "cur_line_items": ({"accounts": "account_id", "regions": "region", "domains": "domain"}, "usage_date"),
    "event_days": ({"accounts": "account_id", "regions": "region", "domains": "domain", "repositories": "repository",
                    "formats": "format"}, "day"),
    "download_days": ({"accounts": "account_id", "regions": "region", "domains": "domain",
                       "repositories": "repository", "formats": "format"}, "day"),
    "download_months": ({"accounts": "account_id", "regions": "region", "domains": "domain",
                         "repositories": "repository", "formats": "format"}, "month"),
    "download_principal_days": ({"accounts": "account_id", "regions": "region", "domains": "domain",
                                 "repositories": "repository", "formats": "format"}, "day"),
    "download_ip_days": ({"accounts": "account_id", "regions": "region", "domains": "domain",
                          "repositories": "repository", "formats": "format"}, "day"),
    "transfer_days": ({"accounts": "account_id", "regions": "region", "domains": "domain",
                       "repositories": "repository", "formats": "format"}, "day"),
    "principal_hours": ({"accounts": "account_id", "regions": "region", "domains": "domain"}, "hour_at"),
    "auth_hours": ({"accounts": "account_id", "regions": "region", "domains": "domain"}, "hour_at"),
    # Only its 'package' rows carry every list column; spikes.py reads the others only unfiltered.
    "download_sessions_days": ({"accounts": "account_id", "regions": "region", "domains": "domain",
                                "repositories": "repository", "formats": "format"}, "day"),
}


def lists_filtered(con: duckdb.DuckDBPyConnection, fields: tuple[str, ...] = LIST_FIELDS) -> bool:
    """Whether a list filter among `fields` (default: account, region, domain, repository, format) is
    applied on this connection."""
    applied = Filters.applied(con)
    return any(getattr(applied, name) for name in fields if name in LIST_FIELDS)


@dataclass(frozen=True)
class Filters:
    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    repositories: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()
    start: date | None = None  # first day included
    end: date | None = None  # last day included

    @property
    def active(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def to_query(self) -> dict[str, list[str] | str]:
        """URL query parameters (only the filters that are set)."""
        q: dict[str, list[str] | str] = {name: list(getattr(self, name)) for name in LIST_FIELDS
                                         if getattr(self, name)}
        if self.start:
            q["start"] = self.start.isoformat()
        if self.end:
            q["end"] = self.end.isoformat()
        return q

    @classmethod
    def from_query(cls, query: dict[str, list[str]]) -> Filters:
        """From URL query parameters; values that are not dates are ignored rather than trusted."""
        def day(name: str) -> date | None:
            values = query.get(name) or [""]
            try:
                return date.fromisoformat(values[-1])
            except ValueError:
                return None

        lists = {name: tuple(dict.fromkeys(v for v in query.get(name, []) if v)) for name in LIST_FIELDS}
        return cls(**lists, start=day("start"), end=day("end"))

    def apply(self, con: duckdb.DuckDBPyConnection) -> None:
        """Shadow the store's tables with filtered TEMP views on this connection (idempotent).

        Only the filters that are set become conditions, and without any filter the views are dropped, so
        an unfiltered query reads the tables themselves (with DuckDB's pruning and count shortcuts). The
        dates are written into the views as DATE literals of `date` objects (never text from the URL), so
        DuckDB prunes the time column by its zone maps; list values stay parameters in TEMP tables.
        """
        if not self.active:
            for table in (*TABLES, EVENTS_SCOPE):
                con.execute(f"DROP VIEW IF EXISTS temp.{table}")
            for name in (*LIST_FIELDS, "dates"):
                con.execute(f"DROP TABLE IF EXISTS temp.f_{name}")
            return
        catalog = con.execute("SELECT current_database()").fetchone()[0].replace('"', '""')
        for name in LIST_FIELDS:
            con.execute(f"CREATE OR REPLACE TEMP TABLE f_{name} AS SELECT unnest($v::VARCHAR[]) AS v",
                        {"v": list(getattr(self, name))})
        con.execute("CREATE OR REPLACE TEMP TABLE f_dates AS SELECT $s::DATE AS start, $e::DATE AS stop",
                    {"s": self.start, "e": self.end})
        hi = self.end + timedelta(days=1) if self.end else None
        for table, (columns, time_col) in TABLES.items():
            conds = [f"{col} IN (SELECT v FROM f_{f})" for f, col in columns.items() if getattr(self, f)]
            if time_col and self.start:
                conds.append(f"{time_col} >= {_literal(self.start, time_col)}")
            if time_col and hi:
                conds.append(f"{time_col} < {_literal(hi, time_col)}")
            source = f'"{catalog}".main.{table}'
            if table == "events":  # its rows come from events_scope, which queries.events_within narrows
                scope = f"SELECT * FROM {source}"
                if self.start or hi:  # open only the lake files of the dates
                    lo_at = _literal(self.start, "event_at") if self.start else "TIMESTAMPTZ '0001-01-01 00:00:00+00'"
                    hi_at = _literal(hi, "event_at") if hi else "TIMESTAMPTZ '9999-12-31 00:00:00+00'"
                    lo_v, hi_v = con.execute(f"SELECT {lo_at}, {hi_at}").fetchone()
                    scope = lake.window_sql(con, (lo_v, hi_v))
                con.execute(f"CREATE OR REPLACE TEMP VIEW {EVENTS_SCOPE} AS {scope}")
                source = EVENTS_SCOPE
            con.execute(f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT * FROM {source} "
                        f"WHERE {' AND '.join(conds) or 'TRUE'}")

    @classmethod
    def applied(cls, con: duckdb.DuckDBPyConnection) -> Filters:
        """The filters `apply` left on this connection (none: Filters())."""
        if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = 'f_dates'"
                           ).fetchone()[0]:
            return cls()
        lists = {name: tuple(v for (v,) in con.execute(f"SELECT v FROM f_{name}").fetchall()) for name in LIST_FIELDS}
        start, stop = con.execute("SELECT start, stop FROM f_dates").fetchone()
        return cls(**lists, start=start, end=stop)


@contextmanager
def reaching_back(con: duckdb.DuckDBPyConnection, first: date) -> Iterator[None]:
    """Within the block, a date filter that starts after `first` starts on `first` (its other filters
    unchanged): the spike detectors score the filter's days against the weeks before them, which the
    filter would otherwise hide, so its first weeks looked like a store with no history (every steady
    access-denied call an auth burst, no download spike possible)."""
    f = Filters.applied(con)
    if f.start is None or f.start <= first:
        yield
        return
    replace(f, start=first).apply(con)
    try:
        yield
    finally:
        f.apply(con)


def _literal(day: date, column: str) -> str:
    """A SQL literal for the day's midnight UTC, typed like `column` (a date or a UTC timestamp)."""
    day = date.fromordinal(day.toordinal())  # a real date, whatever subclass came in
    if column.endswith("_at"):
        return f"TIMESTAMPTZ '{day.isoformat()} 00:00:00+00'"
    return f"DATE '{day.isoformat()}'"


def options(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """The values each list filter can take (from the unfiltered store): the inventory's and the events'.
    The events' come from their event_days rollup, which has a row for every value of these five columns
    any event has (five scans of `events` took 2.3 s at 200M events, every time the sidebar was computed)."""
    catalog = con.execute("SELECT current_database()").fetchone()[0].replace('"', '""')
    base = f'"{catalog}".main'
    out = {}
    for name, col, table in (("accounts", "account_id", "domains"), ("regions", "region", "domains"),
                             ("domains", "domain", "domains"), ("repositories", "repository", "repositories"),
                             ("formats", "format", "package_versions")):
        out[name] = [v for (v,) in con.execute(
            f"SELECT DISTINCT {col} FROM {base}.{table} WHERE {col} IS NOT NULL "
            f"UNION SELECT DISTINCT {col} FROM {base}.event_days WHERE {col} IS NOT NULL ORDER BY 1").fetchall()]
    return out
