"""Report files: no formula survives from package data, and every name round-trips exactly."""

from __future__ import annotations

import csv
import zipfile
from datetime import UTC, datetime

import pandas as pd
import pytest

from analytics.reports import read_table, write_table
from core.errors import DataError

HOSTILE = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd",
           "<img src=x onerror=alert(1)>", "'; DROP TABLE events;--", "\u202eevil\u200b", "two\nlines", "normal"]


def frame():
    return pd.DataFrame({"package": HOSTILE, "downloads": range(len(HOSTILE)),
                         "last_downloaded_at": [datetime(2026, 11, 1, 12, tzinfo=UTC)] * len(HOSTILE)})


def test_csv_cells_never_start_a_formula_and_names_round_trip(tmp_path):
    out = write_table(frame(), tmp_path / "r.csv")
    with out.open(newline="", encoding="utf-8") as fh:
        cells = [row[0] for row in csv.reader(fh)][1:]
    assert all(not c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells)
    assert list(read_table(out)["package"]) == HOSTILE


def test_xlsx_holds_strings_never_formulas(tmp_path):
    out = write_table(frame(), tmp_path / "r.xlsx")
    sheet = zipfile.ZipFile(out).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet  # no formula cell anywhere
    assert list(read_table(out)["package"]) == HOSTILE


@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_json_and_parquet_round_trip(tmp_path, fmt):
    out = write_table(frame(), tmp_path / f"r.{fmt}")
    assert list(read_table(out)["package"]) == HOSTILE


def test_unknown_format_is_a_one_line_error(tmp_path):
    with pytest.raises(DataError, match="unknown report format 'txt'.*fix: use one of csv, xlsx, json, parquet"):
        write_table(frame(), tmp_path / "r.txt")
