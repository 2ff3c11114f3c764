"""analytics.queries.run converts each result through Arrow (queries.frame); every page was written against
DuckDB's own DataFrame conversion, so every query the pages run must come out exactly as that gave it:
same values, same dtypes (text, all-NULL text, HUGEINT sums, dates, nullable integers and booleans)."""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from analytics import cleanup, queries
from analytics.filters import Filters
from core import store
from core.settings import load_settings
from ui import precompute


@pytest.mark.parametrize("filtered", [False, True], ids=["unfiltered", "filtered"])
def test_every_query_the_pages_run_gives_the_frame_duckdb_gives(demo_store, monkeypatch, filtered):
    db, _ = demo_store()
    settings = load_settings(Path(os.devnull), db=db)
    real, real_objects = queries.run, queries.run_objects
    seen: dict[str, int] = {}

    def checked(con, name, **params):
        got = real(con, name, **params)
        want = con.execute(queries.sql(name), params).df()
        pd.testing.assert_frame_equal(_ordered(got), _ordered(want), obj=f"query {name}")
        seen[name] = seen.get(name, 0) + 1
        return got

    def checked_objects(con, name, **params):  # text as Python str objects (the cleanup frames)
        got = real_objects(con, name, **params)
        want = _as_objects(con.execute(queries.sql(name), params).df())
        pd.testing.assert_frame_equal(_ordered(got), _ordered(want), obj=f"query {name}")
        assert all(isinstance(v, str) or pd.isna(v) for c in got.select_dtypes(object) for v in got[c])
        seen[name] = seen.get(name, 0) + 1
        return got

    cleanup.forget_facts()  # an earlier test's judging of this store is kept: read it again
    with store.open_reader(db) as con:
        latest = con.execute("SELECT max(event_at) FROM events").fetchone()[0].date()
        domain = con.execute("SELECT domain FROM events GROUP BY domain ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
        filters = Filters(domains=(domain,), start=latest - timedelta(days=89), end=latest) if filtered else Filters()
        filters.apply(con)
        for module in list(sys.modules.values()):  # each analytics module imported run by name
            if getattr(module, "__name__", "").startswith("analytics") and getattr(module, "run", None) is real:
                monkeypatch.setattr(module, "run", checked)
            if (getattr(module, "__name__", "").startswith("analytics")
                    and getattr(module, "run_objects", None) is real_objects):
                monkeypatch.setattr(module, "run_objects", checked_objects)
        for load, args in precompute.default_loads(con, settings):
            load(con, settings, *args)
    assert len(seen) >= 30, sorted(seen)
    assert {"cleanup_versions", "cleanup_assets"} <= set(seen)


def _as_objects(df: pd.DataFrame) -> pd.DataFrame:
    return df.astype({c: object for c, t in df.dtypes.items() if isinstance(t, pd.StringDtype)})


def _ordered(df: pd.DataFrame) -> pd.DataFrame:
    """The rows in one order: several queries leave theirs to the caller, and two runs may differ."""
    if df.empty:
        return df
    order = df.astype(object).map(repr).agg("\x1f".join, axis=1).argsort(kind="stable")
    return df.iloc[order.to_numpy()].reset_index(drop=True)


@pytest.mark.parametrize("query", [
    "SELECT 'a' AS s, NULL::VARCHAR AS none_at_all, 1.5::DECIMAL(10, 2) AS dec, sum(x) AS huge, DATE '2025-01-02' AS d, "
    "TIMESTAMP '2025-01-01 01:02:03' AS ts, TIMESTAMPTZ '2025-01-01 01:02:03+00' AS tz, true AS b, 1::UTINYINT AS u8, "
    "1.5::FLOAT AS f32 FROM (SELECT 1 AS x)",
    "SELECT * FROM (VALUES (1, true, 1.5::DECIMAL(4, 2), DATE '2025-01-01', 'x', 2.5, TIMESTAMPTZ '2025-01-01 00:00:00+00'),"
    " (NULL, NULL, NULL, NULL, NULL, NULL, NULL)) t(i, b, d, dt, s, f, tz)",
    "SELECT 'a' AS s, 1 AS i, DATE '2025-01-01' AS d, 1.5::DECIMAL(3, 1) AS x, TIMESTAMPTZ '2025-01-01 00:00:00+00' AS t "
    "WHERE false",
    "SELECT [1, 2] AS l, {'a': 1} AS st, INTERVAL 3 DAY AS iv, MAP {'k': 'v'} AS m",  # DuckDB converts these itself
    "SELECT 1 AS a, 2 AS a",
], ids=["types", "nulls", "empty", "nested", "repeated-name"])
def test_a_result_converts_as_duckdb_converts_it(query):
    import duckdb
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    pd.testing.assert_frame_equal(queries.frame(con, con.sql(query).to_arrow_table()), con.execute(query).df())
    # run_objects' frame: the same with text as Python str objects
    pd.testing.assert_frame_equal(queries.frame(con, con.sql(query).to_arrow_table(), objects=True),
                                  _as_objects(con.execute(query).df()))
