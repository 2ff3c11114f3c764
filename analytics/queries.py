"""The only reader of analytics/sql/: load a named query and run it with named parameters.

Reads: analytics/sql/<name>.sql (one question per file; its header gives purpose, $params, columns and
grain). Writes nothing. Values reach SQL only as DuckDB `$name` parameters; a query name is checked
against the files present, never interpolated.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from analytics import filters
from core import lake

SQL_DIR = Path(__file__).parent / "sql"
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def names() -> list[str]:
    """Every query name available, sorted."""
    return sorted(p.stem for p in SQL_DIR.glob("*.sql"))


@cache
def sql(name: str) -> str:
    """The text of query `name` (the file analytics/sql/<name>.sql)."""
    path = SQL_DIR / f"{name}.sql"
    if not _NAME_RE.match(name) or not path.is_file():
        raise KeyError(f"no query named {name!r} in {SQL_DIR} (known: {', '.join(names())})")
    return path.read_text(encoding="utf-8")


def run(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> pd.DataFrame:
    """Run query `name` with `params` bound to its `$name` parameters; return the result as a DataFrame."""
    return con.execute(sql(name), params).df()


def run_objects(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> pd.DataFrame:
    """run's result with its text columns as Python str objects (decimals as float, as run gives them), for
    the large frames a caller iterates (cleanup's 120,000 versions): fetched through Arrow, since DuckDB's
    own DataFrame conversion cost ~100 ms more for those rows, and pandas' Arrow-backed strings cost
    ~0.5 us an element to iterate (5M iterations judging them, 3 s)."""
    table = con.sql(sql(name), params=params).to_arrow_table()
    for i, f in enumerate(table.schema):
        if pa.types.is_decimal(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(pa.float64()))
    df = table.to_pandas()
    return df.astype({c: object for c, t in df.dtypes.items() if pd.api.types.is_string_dtype(t)})


@contextmanager
def events_within(con: duckdb.DuckDBPyConnection, spans: Iterable[tuple[datetime, datetime]]) -> Iterator[None]:
    """Within the block `events` (and the downloads view over it) reads only the lake files that can hold
    events of one of `spans` ((lo, hi) pairs): a query of a few days never opens a store's other days.
    Where a filter shadows `events` on this connection, its scope (the files of its dates) is narrowed to
    the spans' files instead, and its conditions still apply."""
    shadows = dict(con.execute("SELECT view_name, sql FROM duckdb_views() WHERE temporary AND view_name IN "
                               "('events', ?)", [filters.EVENTS_SCOPE]).fetchall())
    scope = shadows.get(filters.EVENTS_SCOPE)
    if scope is None:
        if "events" in shadows:  # an outer window already narrows it
            yield
            return
        with lake.window(con, *spans):
            yield
        return
    con.execute(f"CREATE OR REPLACE TEMP VIEW {filters.EVENTS_SCOPE} AS {lake.window_sql(con, *spans)}")
    try:
        yield
    finally:  # the filter's own scope again
        con.execute(scope.replace("CREATE TEMP VIEW", "CREATE OR REPLACE TEMP VIEW", 1))
