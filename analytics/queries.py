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
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from analytics import filters
from core import lake

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# pandas is imported by the first frame, not with this module (170 ms of one core): the collectors read only
# sql() (the rollups). pyarrow still imports it the first time it builds an array from Python or numpy values,
# which a collector that loads anything does; a command that builds neither skips it.

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
    """Run query `name` with `params` bound to its `$name` parameters; return the result as a DataFrame with
    the dtypes DuckDB's own conversion gives (frame)."""
    con.complete()  # as execute() would: finish the connection's last execute() before con.sql() may run
    return frame(con, con.sql(sql(name), params=params).to_arrow_table())


def run_objects(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> pd.DataFrame:
    """run's result with its text columns as Python str objects, for the large frames a caller iterates
    (cleanup's 120,000 versions): pandas' Arrow-backed strings cost ~0.5 us an element to iterate (5M
    iterations judging them, 3 s)."""
    import pandas as pd

    con.complete()
    df = frame(con, con.sql(sql(name), params=params).to_arrow_table(), objects=True)
    # frame's objects are str already; a result DuckDB converted itself (frame's fallback) may hold pandas' str
    # columns. astype({}) would copy every column all the same (3-7 ms for cleanup's 120,000 rows)
    strings = {c: object for c, t in df.dtypes.items() if isinstance(t, pd.StringDtype)}
    return df.astype(strings) if strings else df


@cache
def _nullable() -> dict[pa.DataType, pd.api.extensions.ExtensionDtype]:
    """Arrow's integer and boolean types -> pandas' nullable dtypes."""
    import pandas as pd

    return {pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
            pa.int64(): pd.Int64Dtype(), pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(),
            pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype(), pa.bool_(): pd.BooleanDtype()}


def frame(con: duckdb.DuckDBPyConnection, table: pa.Table, objects: bool = False) -> pd.DataFrame:
    """`table` (a query's Arrow result) as the DataFrame DuckDB's own `.df()` gives, which every caller was
    written against, but converted by Arrow: DuckDB's conversion of text cost 100-280 ms more for 120,000
    to 240,000 rows at 200M events (the cleanup and spike series frames). Text is pandas' str (object None
    when the column holds no value at all), decimals and HUGEINT sums float, dates datetime64[us], integers
    and booleans with NULLs pandas' nullable types; a result with any other type (lists, structs, intervals)
    or a repeated column name is converted by DuckDB itself. `objects`: text as object columns of Python str
    (run_objects), each distinct value of a column made once (_objects), NULLs as before."""
    import pandas as pd

    nullable = _nullable()
    names = table.column_names
    if len(set(names)) < len(names):
        return con.from_arrow(table).df()
    cols: dict[str, pd.Series] = {}
    for name, col in zip(names, table.columns, strict=True):
        t = col.type
        if (pa.types.is_string(t) or pa.types.is_large_string(t)) and objects:
            cols[name] = pd.Series(_objects(col), dtype=object)
        elif pa.types.is_string(t) or pa.types.is_large_string(t):
            cols[name] = (col.to_pandas() if col.null_count < len(col)
                          else pd.Series([None] * len(col), dtype=object))
        elif pa.types.is_decimal(t):
            cols[name] = col.cast(pa.float64()).to_pandas()
        elif pa.types.is_date32(t):
            cols[name] = col.cast(pa.timestamp("us")).to_pandas()
        elif t in nullable and col.null_count:
            cols[name] = col.to_pandas(types_mapper=nullable.get)
        elif (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
              or pa.types.is_timestamp(t)):
            cols[name] = col.to_pandas()
        else:
            return con.from_arrow(table).df()
    return pd.DataFrame(cols, index=pd.RangeIndex(table.num_rows))


def _objects(col: pa.ChunkedArray) -> np.ndarray:
    """A text column as an object array of Python str, each distinct value made once and shared, NULL as
    pandas' str column made object gives it (NaN; None when the column holds no value at all, as frame's):
    a cleanup frame's 120,000 rows of ten text columns, mostly a few accounts, regions, domains,
    repositories, formats and statuses, took 70-85 ms through pandas' str columns, and 30-38 ms so."""
    import numpy as np

    enc = col.combine_chunks().dictionary_encode()
    values = np.array([*enc.dictionary.to_pylist(), None if col.null_count == len(col) else np.nan], dtype=object)
    return values[enc.indices.fill_null(len(enc.dictionary)).to_numpy()]


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
