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


def test_an_xlsx_export_that_fails_midway_leaves_no_temp_files(tmp_path, monkeypatch):
    """A full disk (or a process stopped) while the workbook is zipped: xlsxwriter's default wrote each part
    to a temp file and removed it only once zipped, so the parts stayed in /tmp (seven files after each
    clean-clone test run, from the dashboard's cleanup XLSX)."""
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    def full(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(zipfile.ZipFile, "write", full)
    monkeypatch.setattr(zipfile.ZipFile, "writestr", full)
    with pytest.raises(Exception, match="No space"):  # xlsxwriter's FileCreateError
        write_table(frame(), tmp_path / "r.xlsx")
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_json_and_parquet_round_trip(tmp_path, fmt):
    out = write_table(frame(), tmp_path / f"r.{fmt}")
    assert list(read_table(out)["package"]) == HOSTILE


def test_unknown_format_is_a_one_line_error(tmp_path):
    with pytest.raises(DataError, match="unknown report format 'txt'.*fix: use one of csv, xlsx, json, parquet"):
        write_table(frame(), tmp_path / "r.txt")
