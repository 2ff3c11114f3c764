"""`caa report focus` against the FOCUS 1.2 specification: every Mandatory column with its type and allowed
values (the list in tests/fixtures/focus_1_2_columns.json was taken from FOCUS_Spec tag v1.2,
specification/columns/*.md), caa's own columns prefixed x_, and BilledCost adding up to the bill per
billing account and period: on the demo estate and on a bill nobody here wrote the reader for."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from collectors import cur
from tests.fixtures.cur2_export import write_export
from tests.helpers import collect, make_settings, rows

ROOT = Path(__file__).resolve().parents[2]
SPEC = json.loads((ROOT / "tests" / "fixtures" / "focus_1_2_columns.json").read_text())
COLUMNS = {c["id"]: c for c in SPEC["columns"]}
MANDATORY = [c for c in SPEC["columns"] if c["feature_level"] == "Mandatory"]
PARQUET_TYPES = {"Decimal": ("DECIMAL", "DOUBLE"), "String": ("VARCHAR",), "Date/Time": ("TIMESTAMP WITH TIME ZONE",),
                 "JSON": ("VARCHAR",)}
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@pytest.fixture(scope="module")
def independent_bill(tmp_path_factory):
    """A store holding only the bill of tests/fixtures/cur2_export.py (EDP discount, credit, tax, re-delivery)."""
    tmp = tmp_path_factory.mktemp("bill")
    export = write_export(tmp / "export", redeliver="2026-11")
    db = tmp / "caa.duckdb"
    assert collect(db, [cur.SPEC], make_settings(db=db, cur={"sources": [str(export.root)]})) == 0
    return db


@pytest.fixture(scope="module")
def demo(demo_store):
    return demo_store(11, 20_000)[0]


def focus(db: Path, tmp: Path, fmt: str, *args: str) -> Path:
    out = tmp / f"focus.{fmt}"
    done = subprocess.run([sys.executable, "-m", "cli", "report", "focus", "--format", fmt, "--out", str(out),
                           "--db", str(db), *args], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "FOCUS 1.2 rows" in done.stdout
    return out


def billed_totals(db: Path) -> dict[tuple[str, str], float]:
    return {(p, str(d)): float(t) for p, d, t in rows(db, (
        "SELECT coalesce(payer_account_id, account_id), billing_period, sum(unblended_cost) FROM cur_line_items "
        "GROUP BY ALL"))}


@pytest.mark.parametrize("store", ["independent_bill", "demo"])
def test_the_parquet_file_has_every_mandatory_column_with_its_type_and_values(store, request, tmp_path):
    db = request.getfixturevalue(store)
    path = focus(db, tmp_path, "parquet")
    con = duckdb.connect()
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM '{path}')").fetchall())
    for col in MANDATORY:
        assert col["id"] in types, f"mandatory column {col['id']} is missing"
        assert types[col["id"]].startswith(PARQUET_TYPES[col["data_type"]]), (col["id"], types[col["id"]])
        if not col["allows_nulls"]:
            nulls = con.execute(f'SELECT count(*) FROM \'{path}\' WHERE "{col["id"]}" IS NULL').fetchone()[0]
            assert nulls == 0, f"{col['id']} must not be null"
    for name in types:
        spec = COLUMNS.get(name)
        assert spec is not None or name.startswith("x_"), f"{name} is neither a FOCUS column nor x_-prefixed"
        if spec and spec["allowed_values"]:
            seen = {v for (v,) in con.execute(f'SELECT DISTINCT "{name}" FROM \'{path}\' WHERE "{name}" IS NOT NULL')
                    .fetchall()}
            assert seen <= set(spec["allowed_values"]), (name, seen - set(spec["allowed_values"]))
        if spec and spec["data_type"] == "JSON":
            for (text,) in con.execute(f'SELECT "{name}" FROM \'{path}\' WHERE "{name}" IS NOT NULL').fetchall():
                assert isinstance(json.loads(text), dict)
    assert {"x_Domain", "x_Repository", "x_Package", "x_Team"} <= set(types)
    # the charge categories the bill has: usage, its credit and its tax
    assert {c for (c,) in con.execute(f"SELECT DISTINCT ChargeCategory FROM '{path}'").fetchall()} >= {"Usage", "Tax"}


@pytest.mark.parametrize("store", ["independent_bill", "demo"])
def test_billed_cost_adds_up_to_the_bill_per_billing_account_and_period(store, request, tmp_path):
    db = request.getfixturevalue(store)
    path = focus(db, tmp_path, "parquet", "--by", "package")
    got = {(a, str(p.date())): float(t) for a, p, t in duckdb.connect().execute(
        f"SELECT BillingAccountId, BillingPeriodStart, sum(BilledCost) FROM '{path}' GROUP BY ALL").fetchall()}
    want = billed_totals(db)
    assert set(got) == set(want)
    for key, total in want.items():
        assert got[key] == pytest.approx(total, abs=0.005), key  # to the cent


def test_the_csv_file_writes_iso_dates_and_plain_decimals(demo, tmp_path):
    path = focus(demo, tmp_path, "csv")
    con = duckdb.connect()
    con.execute(f"CREATE TABLE f AS SELECT * FROM read_csv('{path}', all_varchar = true)")
    for col in (c["id"] for c in MANDATORY if c["data_type"] == "Date/Time"):
        bad = [v for (v,) in con.execute(f'SELECT DISTINCT "{col}" FROM f').fetchall() if not DATETIME.match(v or "")]
        assert not bad, (col, bad[:3])
    for col in (c["id"] for c in MANDATORY if c["data_type"] == "Decimal"):
        for (v,) in con.execute(f'SELECT DISTINCT "{col}" FROM f WHERE "{col}" IS NOT NULL').fetchall():
            assert "E+" not in v.upper() and Decimal(v) == Decimal(v)  # a plain decimal, never E+ notation
    total = sum(Decimal(v) for (v,) in con.execute("SELECT BilledCost FROM f").fetchall())
    assert float(total) == pytest.approx(sum(billed_totals(demo).values()), abs=0.01)


def test_a_hostile_repository_name_is_text_in_the_csv_and_unchanged_in_parquet(tmp_path):
    from datetime import date

    import pandas as pd

    from analytics import focus as focus_mod

    name = "=HYPERLINK(\"http://evil.example\",\"x\")"
    row = {c: None for c in focus_mod.COLUMNS}
    row.update(BilledCost=1.5, ContractedCost=1.5, EffectiveCost=1.5, ListCost=1.5, BillingAccountId="111122223333",
               BillingCurrency="USD", BillingPeriodStart=date(2026, 11, 1), BillingPeriodEnd=date(2026, 12, 1),
               ChargePeriodStart=date(2026, 11, 3), ChargePeriodEnd=date(2026, 11, 4), ChargeCategory="Usage",
               x_Repository=name, ResourceName=name, Tags=json.dumps({"team": "-1+2"}))
    df = pd.DataFrame([row])
    csv_path = focus_mod.write(df, tmp_path / "f.csv", "csv")
    got = duckdb.connect().execute(f"SELECT x_Repository, ResourceName, Tags FROM read_csv('{csv_path}', "
                                   "all_varchar = true)").fetchone()
    assert got[0] == got[1] == "'" + name  # a spreadsheet shows it as text, never runs it
    parquet = focus_mod.write(df, tmp_path / "f.parquet", "parquet")
    assert duckdb.connect().execute(f"SELECT x_Repository FROM '{parquet}'").fetchone()[0] == name
