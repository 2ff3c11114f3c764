"""Writing and reading report files (CSV, XLSX, JSON, Parquet) safely.

Package, repository and principal names are hostile input. In CSV a cell that would start a formula
(`=`, `+`, `-`, `@`, tab or CR) is written with a leading apostrophe, the OWASP convention that
spreadsheet programs show as text; `read_table` removes exactly that apostrophe again, so a name
round-trips unchanged through `caa report` -> review -> `caa apply`. In XLSX every string is written
as a string cell (never a formula, number or URL), so names are stored unchanged; control characters
are stored as OOXML `_xHHHH_` escapes and decoded on reading (the one name that cannot round-trip
through XLSX is one that literally contains such an escape, because openpyxl cannot tell the two
apart). JSON and Parquet carry values as they are.

Reads/writes: the report file given to it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path

import pandas as pd

from core.errors import ConfigError, DataError, first_line, output_error

FORMULA_STARTERS = ("=", "+", "-", "@", "\t", "\r")
FORMATS = ("csv", "xlsx", "json", "parquet")
_OOXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")  # how XLSX stores control characters


def neutralize(value: object) -> object:
    """A string that a spreadsheet would read as a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTERS):
        return "'" + value
    return value


def restore(value: object) -> object:
    """Undo `neutralize` (and only it)."""
    if isinstance(value, str) and value.startswith("'") and value[1:2] and value[1] in "".join(FORMULA_STARTERS):
        return value[1:]
    return value


def _format_of(path: Path, fmt: str | None) -> str:
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise DataError(f"unknown report format {fmt!r}", where=str(path),
                        fix=f"use one of {', '.join(FORMATS)} (--format or the file extension)")
    return fmt


def _json_value(v: object) -> object:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT:
        return None
    if isinstance(v, datetime | date | pd.Timestamp):
        return v.isoformat()
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    return v


@contextmanager
def _writing(out: Path) -> Iterator[None]:
    """Write the report file `out` inside the block, its folder made first. A file that cannot be written (a
    full disk, a read-only folder, no permission, a folder in its place) is one line that names it, not a
    traceback or the store's disk message."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        yield
    except OSError as e:
        raise output_error(f"the report {out}", e) from None


def write_table(df: pd.DataFrame, out: Path, fmt: str | None = None, sheet: str = "report") -> Path:
    """Write `df` to `out` in `fmt` (or the extension's format). Returns the path written."""
    out = Path(out)
    fmt = _format_of(out, fmt)
    with _writing(out):
        _write(df, out, fmt, sheet)
    return out


def _write(df: pd.DataFrame, out: Path, fmt: str, sheet: str) -> None:
    if fmt == "csv":  # the csv module quotes a bare CR inside a cell; pandas' writer does not
        with out.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(df.columns)
            for row in df.itertuples(index=False):
                w.writerow(["" if _json_value(v) is None else neutralize(_json_value(v)) for v in row])
    elif fmt == "xlsx":
        _write_xlsx(flatten_lists(df), out, sheet)
    elif fmt == "json":
        records = [{k: _json_value(v) for k, v in row.items()} for row in df.to_dict(orient="records")]
        out.write_text(json.dumps(records, indent=1, ensure_ascii=False), encoding="utf-8")
    else:
        df.to_parquet(out, index=False)


# in_memory: xlsxwriter otherwise writes each part to a temp file in /tmp and removes them only when it
# closes, so a process stopped mid-export (a dashboard restarted while it built the cleanup page's XLSX)
# left them behind: seven files per clean-clone test run
XLSX_OPTIONS = {"strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False,
                "remove_timezone": True, "in_memory": True}


def _write_xlsx(df: pd.DataFrame, out: Path, sheet: str) -> None:
    _save_workbook(out, lambda wb: _sheet(wb, df, sheet))


def _save_workbook(out: Path, fill) -> None:  # noqa: ANN001 - fill(xlsxwriter Workbook)
    """Build the workbook in memory, then write its bytes to `out`: a write that fails (a full disk) is then a
    plain OSError. Zipped straight to the file it was xlsxwriter's FileCreateError, and the half-written zip
    printed a second traceback when it was collected."""
    import xlsxwriter

    buf = io.BytesIO()
    with xlsxwriter.Workbook(buf, XLSX_OPTIONS) as wb:
        fill(wb)
    out.write_bytes(buf.getvalue())


def _sheet(wb, df: pd.DataFrame, sheet: str) -> None:  # noqa: ANN001 - an xlsxwriter Workbook
    ws = wb.add_worksheet(sheet)
    bold = wb.add_format({"bold": True})
    when = wb.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    for c, name in enumerate(df.columns):
        ws.write_string(0, c, str(name), bold)
    for r, row in enumerate(df.itertuples(index=False), start=1):
        for c, v in enumerate(row):
            if v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
                ws.write_blank(r, c, None)
            elif isinstance(v, str):
                ws.write_string(r, c, v)
            elif isinstance(v, bool):
                ws.write_boolean(r, c, v)
            elif isinstance(v, datetime | pd.Timestamp):
                ws.write_datetime(r, c, pd.Timestamp(v).tz_localize(None) if pd.Timestamp(v).tzinfo is None
                                  else pd.Timestamp(v).tz_convert("UTC").tz_localize(None), when)
            elif isinstance(v, int | float) or hasattr(v, "item"):
                ws.write_number(r, c, float(v))
            else:
                ws.write_string(r, c, str(v))
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, max(len(df), 1), max(len(df.columns) - 1, 0))


def read_table(path: Path) -> pd.DataFrame:
    """Read a report written by `write_table` (or edited by a reviewer); strings come back exactly."""
    path = Path(path)
    fmt = _format_of(path, None)
    if not path.exists():
        raise DataError(f"report file {path} does not exist", where=str(path), fix="check the path")
    try:
        if fmt == "csv":  # the csv module keeps a bare CR inside a quoted cell, pandas' parser does not
            header, *body = _csv_rows(path)
            return pd.DataFrame([[restore(v) if v != "" else None for v in row] for row in body], columns=header)
        if fmt == "xlsx":
            df = pd.read_excel(path, dtype=str, keep_default_na=False, na_values=[""])
            return df.map(lambda v: _OOXML_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), v)
                          if isinstance(v, str) else v)
        if fmt == "json":
            return pd.DataFrame(json.loads(path.read_text(encoding="utf-8")))
        return pd.read_parquet(path)
    except (ValueError, OSError, KeyError) as e:
        raise DataError(f"cannot read report {path}: {first_line(e)}", where=str(path),
                        fix="pass a file written by `caa report` (CSV, XLSX, JSON or Parquet)") from None


CSV_DELIMITERS = (",", ";", "\t")  # ours; a spreadsheet's in a locale whose decimal mark is a comma; Unicode Text


def _csv_rows(path: Path) -> list[list[str]]:
    """The rows of a CSV report as a reviewer's spreadsheet may have saved it: UTF-8 with or without the
    byte-order mark Excel's "CSV UTF-8" writes, or UTF-16 ("Unicode Text"); cells separated by commas, or by
    the semicolons (or tabs) of spreadsheets in locales whose decimal mark is a comma, whichever splits the
    header into the most cells. Raises DataError for an empty file or text in another encoding."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-16") if raw.startswith((b"\xff\xfe", b"\xfe\xff")) else raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"the report is not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start:,})",
                        where=str(path), fix="save it from the spreadsheet as CSV UTF-8 (or pass the XLSX report)"
                        ) from None
    if not text.strip():
        raise DataError("the report is empty", where=str(path),
                        fix="pass a file written by `caa report` (CSV, XLSX, JSON or Parquet)")
    first = text.lstrip("\r\n").splitlines()[0]
    delimiter = max(CSV_DELIMITERS, key=lambda d: len(next(csv.reader([first], delimiter=d))))
    return [row for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if row]


def flatten_lists(df: pd.DataFrame, sep: str = "; ") -> pd.DataFrame:
    """Join list cells (e.g. top principals) into one string each, for CSV and XLSX."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object and any(isinstance(v, list | tuple) for v in out[col]):
            out[col] = out[col].map(lambda v: sep.join(map(str, v)) if isinstance(v, list | tuple) else v)
    return out


def write_tables(tables: dict[str, pd.DataFrame], out: Path, fmt: str) -> Path:
    """Several named tables: sheets of one XLSX, one JSON object, or a folder of CSV/Parquet files."""
    out = Path(out)
    fmt = _format_of(out, fmt)
    if fmt == "xlsx":
        def fill(wb) -> None:  # noqa: ANN001 - an xlsxwriter Workbook
            for name, df in tables.items():
                _sheet(wb, flatten_lists(df), name[:31])

        with _writing(out):
            _save_workbook(out, fill)
        return out
    if fmt == "json":
        body = {name: [{k: _json_value(v) for k, v in row.items()} for row in df.to_dict(orient="records")]
                for name, df in tables.items()}
        with _writing(out):
            out.write_text(json.dumps(body, indent=1, ensure_ascii=False), encoding="utf-8")
        return out
    if out.suffix.lower() in (".csv", ".parquet"):  # asked for one file, but these are several tables
        raise ConfigError(f"a {fmt.upper()} report of {len(tables)} tables is a folder of one file per table, "
                          f"not the file {out.name}", where=str(out),
                          fix=f"pass --out {out.with_suffix('')} for that folder, or --format xlsx or json for one file")
    folder = out
    with _writing(folder):
        folder.mkdir(exist_ok=True)
    for name, df in tables.items():
        write_table(df, folder / f"{name}.{fmt}", fmt)
    return folder

