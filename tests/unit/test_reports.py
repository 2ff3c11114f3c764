"""Report files: no formula survives from package data, and every name round-trips exactly."""

from __future__ import annotations

import csv
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from analytics.reports import read_table, write_table, write_tables
from core.errors import DataError, OutputError

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


FULL_DISK = Path("/dev/full")  # every write fails with ENOSPC, as on a full disk


@pytest.mark.skipif(not FULL_DISK.exists(), reason="needs Linux's /dev/full")
@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json", "parquet"])
def test_a_report_on_a_full_disk_is_one_line_that_names_the_file(fmt, capfd):
    """Before: CSV, JSON and Parquet said the *store* could not be written and to move it with --db; XLSX was
    an internal error (xlsxwriter's FileCreateError) followed by a traceback from the half-written zip."""
    with pytest.raises(OutputError) as got:
        write_table(frame(), FULL_DISK, fmt)
    assert str(got.value) == ("cannot write the report /dev/full: No space left on device: fix: free disk space, "
                              "or pass --out a path on a disk with room that you can write to")
    import gc

    gc.collect()  # a half-written zip left for the collector printed "Exception ignored ... OSError"
    assert capfd.readouterr().err == ""


@pytest.mark.skipif(not FULL_DISK.exists(), reason="needs Linux's /dev/full")
@pytest.mark.parametrize("fmt", ["xlsx", "json"])
def test_a_several_table_report_on_a_full_disk_is_one_line(fmt):
    with pytest.raises(OutputError, match="cannot write the report /dev/full: No space left on device"):
        write_tables({"a": frame(), "b": frame()}, FULL_DISK, fmt)


def test_a_report_where_a_folder_is_cannot_be_written_and_says_so(tmp_path):
    """The fix fits the cause: a folder at --out, or a file where the path needs a folder, is not a full
    disk (the message said "free disk space" for both)."""
    (tmp_path / "r.csv").mkdir()
    with pytest.raises(OutputError, match=r"cannot write the report .*r\.csv: Is a directory: fix: --out names a "
                                          r"folder: give a file path in it") as got:
        write_table(frame(), tmp_path / "r.csv")
    assert "free disk space" not in str(got.value)
    (tmp_path / "plain").write_text("")
    with pytest.raises(OutputError, match=r"fix: a part of the --out path is a file, not a folder") as got:
        write_table(frame(), tmp_path / "plain" / "r.csv")
    assert "free disk space" not in str(got.value)


@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_json_and_parquet_round_trip(tmp_path, fmt):
    out = write_table(frame(), tmp_path / f"r.{fmt}")
    assert list(read_table(out)["package"]) == HOSTILE


def test_unknown_format_is_a_one_line_error(tmp_path):
    with pytest.raises(DataError, match="unknown report format 'txt'.*fix: use one of csv, xlsx, json, parquet"):
        write_table(frame(), tmp_path / "r.txt")


@pytest.mark.parametrize("save", ["utf-8 with a BOM", "semicolons", "utf-16 with tabs"])
def test_a_csv_as_a_spreadsheet_saves_it_reads_back_the_same(tmp_path, save):
    """Excel's "CSV UTF-8" starts with a byte-order mark, Excel in a locale whose decimal mark is a comma
    separates cells with semicolons, and its "Unicode Text" is UTF-16 with tabs: a reviewed cleanup report comes
    back in any of them, and every name (commas, semicolons, quotes and newlines in them too) reads as written."""
    df = frame().assign(package=[*HOSTILE[:-2], "a,b;c", 'q"uote'])
    ours = read_table(write_table(df, tmp_path / "ours.csv"))
    with (tmp_path / "ours.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    encoding, delimiter = {"utf-8 with a BOM": ("utf-8-sig", ","), "semicolons": ("utf-8", ";"),
                           "utf-16 with tabs": ("utf-16", "\t")}[save]
    with (tmp_path / "saved.csv").open("w", newline="", encoding=encoding) as fh:
        csv.writer(fh, delimiter=delimiter).writerows(rows)
    back = read_table(tmp_path / "saved.csv")
    assert list(back.columns) == list(ours.columns) == list(df.columns)
    assert back.equals(ours) and list(back["package"]) == list(df["package"])


@pytest.mark.parametrize(("content", "message", "fix"), [
    (b"", "the report is empty", "pass a file written by `caa report`"),
    (b"\n\n", "the report is empty", "pass a file written by `caa report`"),
    ("package,approve\ncaf\u00e9,yes\n".encode("cp1252"), "the report is not UTF-8 text (byte 0xe9 at offset 19)",
     "save it from the spreadsheet as CSV UTF-8"),
])
def test_an_empty_or_non_utf8_csv_says_what_it_is_and_how_to_save_it(tmp_path, content, message, fix):
    path = tmp_path / "r.csv"
    path.write_bytes(content)
    with pytest.raises(DataError) as e:
        read_table(path)
    assert e.value.what == message and e.value.where == str(path) and fix in e.value.fix
