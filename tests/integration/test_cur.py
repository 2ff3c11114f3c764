"""The cur collector over CUR 2.0 exports nobody here wrote the reader for: tests/fixtures/cur2_export.py
was written from AWS's documentation alone. Local folders and moto S3, re-deliveries (overwrite and
create-new), an export without resource ids, and files that must be refused with their fix."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import boto3
import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from analytics import billing
from collectors import cur
from core import store
from core.aws import Clients, iam_action
from tests.fixtures.cur2_export import PAYER_ID, write_corrupt_parquet, write_export, write_foreign_table
from tests.helpers import collect, make_settings, rows, table

ROOT = Path(__file__).resolve().parents[2]


def collect_cur(db: Path, source: str, **kw) -> int:
    settings = make_settings(db=db, cur={"sources": [source]})
    return collect(db, [cur.SPEC], settings, **kw)


def totals(db: Path) -> dict[tuple, tuple[float, float]]:
    """(account, period YYYY-MM, line item type) -> (unblended, net unblended), as the store holds them."""
    got = rows(db, "SELECT account_id, strftime(billing_period, '%Y-%m'), line_item_type, sum(unblended_cost), "
                   "sum(coalesce(net_unblended_cost, 0)) FROM cur_line_items GROUP BY ALL")
    return {(a, p, t): (u, n) for a, p, t, u, n in got}


def assert_totals_match(db: Path, truth: dict) -> None:
    got = totals(db)
    want = truth["line_item_totals"]
    assert set(got) == set(want)
    for key, v in want.items():
        assert got[key][0] == pytest.approx(v["unblended_cost"], abs=1e-6), key
        assert got[key][1] == pytest.approx(v["net_unblended_cost"], abs=1e-6), key


def test_an_export_lands_every_codeartifact_line_and_nothing_else(tmp_path):
    export = write_export(tmp_path / "export")
    db = tmp_path / "caa.duckdb"
    assert collect_cur(db, str(export.root)) == 0
    assert_totals_match(db, export.truth)
    assert rows(db, "SELECT count(*) FROM cur_line_items WHERE usage_type LIKE '%BoxUsage%'") == [(0,)]
    # storage lands on its domain, requests on their repository, per day, as the bill has them
    storage = {(a, r, d, str(day)): (q, c) for a, r, d, day, q, c in rows(db, (
        "SELECT account_id, region, domain, usage_date, sum(usage_amount), sum(unblended_cost) FROM cur_line_items "
        "WHERE usage_type LIKE '%TimedStorage%' AND line_item_type = 'Usage' GROUP BY ALL"))}
    for key, v in export.truth["storage"].items():
        assert storage[key] == pytest.approx((v["usage_gb_mo"], v["unblended_cost"]), abs=1e-6), key
    requests = defaultdict(float)
    for a, r, d, repo, day, n in rows(db, (
            "SELECT account_id, region, domain, repository, usage_date, sum(usage_amount) FROM cur_line_items "
            "WHERE usage_type LIKE '%-Requests' AND line_item_type = 'Usage' GROUP BY ALL")):
        requests[(a, r, d, repo, str(day))] += n
    assert {k: v["requests"] for k, v in export.truth["requests"].items()} == pytest.approx(dict(requests))
    # the enabled cost-allocation tags, keys as CUR 2.0 spells them
    tagged = dict(rows(db, "SELECT DISTINCT resource_id, resource_tags['user_team'] FROM cur_line_items "
                           "WHERE domain IS NOT NULL AND resource_tags['user_team'] IS NOT NULL"))
    for arn, tags in export.truth["resource_tags"].items():
        if "user_team" in tags and arn in tagged:
            assert tagged[arn] == tags["user_team"]
    assert tagged


def as_csv_export(root: Path) -> None:
    """Rewrite every Parquet file of the export under `root` as the gzip text/csv Data Exports also writes
    (times ISO 8601 in UTC, maps as JSON objects), and point the manifests at the new names."""
    con = duckdb.connect()
    for path in sorted(root.rglob("*.parquet")):
        cols = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
        exprs = [f"strftime({n}, '%Y-%m-%dT%H:%M:%SZ') AS {n}" if t.startswith("TIMESTAMP")
                 else f"to_json({n}) AS {n}" if t.startswith("MAP") else n for n, t, *_ in cols]
        target = path.with_name(path.name.removesuffix(".snappy.parquet") + ".csv.gz")
        con.execute(f"COPY (SELECT {', '.join(exprs)} FROM read_parquet('{path}')) TO '{target}' "
                    "(FORMAT csv, HEADER, COMPRESSION gzip)")
        path.unlink()
    for manifest in root.rglob("*Manifest.json"):
        manifest.write_text(manifest.read_text().replace(".snappy.parquet", ".csv.gz"))


def test_a_csv_export_lands_the_same_rows_as_its_parquet_twin(tmp_path):
    """Data Exports writes CUR 2.0 as Parquet or as gzip text/csv; the CSV one read nothing (read=0, no word)."""
    parquet, csv = write_export(tmp_path / "parquet"), write_export(tmp_path / "csv")
    as_csv_export(csv.root)
    assert not list(csv.root.rglob("*.parquet")) and list(csv.root.rglob("*.csv.gz"))
    for export in (parquet, csv):
        assert collect_cur(tmp_path / f"{export.root.name}.duckdb", str(export.root)) == 0
    db = tmp_path / "csv.duckdb"
    assert_totals_match(db, csv.truth)
    every = "SELECT * EXCLUDE (source) FROM cur_line_items ORDER BY ALL"
    assert rows(db, every) == rows(tmp_path / "parquet.duckdb", every)
    assert rows(db, "SELECT count(*) FROM cur_line_items WHERE cardinality(resource_tags) > 0") != [(0,)]
    assert collect_cur(db, str(csv.root)) == 0  # a second run reads nothing again
    assert rows(db, every) == rows(tmp_path / "parquet.duckdb", every)


def test_collecting_again_reads_nothing_and_changes_nothing(tmp_path, capfd):
    export = write_export(tmp_path / "export")
    db = tmp_path / "caa.duckdb"
    assert collect_cur(db, str(export.root)) == 0
    before = table(db, "cur_line_items"), table(db, "cur_files", exclude=("processed_at",))
    capfd.readouterr()
    assert collect_cur(db, str(export.root)) == 0
    assert "read=0 unchanged=2" in capfd.readouterr().out
    assert (table(db, "cur_line_items"), table(db, "cur_files", exclude=("processed_at",))) == before


def test_an_overwritten_period_replaces_its_rows(tmp_path):
    root = tmp_path / "export"
    write_export(root, seed=1)
    db = tmp_path / "caa.duckdb"
    assert collect_cur(db, str(root)) == 0
    restated = write_export(root, seed=2)  # AWS rewrites the same keys with the restated bill
    assert collect_cur(db, str(root)) == 0
    assert_totals_match(db, restated.truth)
    assert rows(db, "SELECT count(*) FROM cur_files") == [(len(restated.files),)]


def test_a_create_new_redelivery_counts_only_the_latest_delivery(tmp_path):
    export = write_export(tmp_path / "export", redeliver="2026-11")
    assert export.truth["superseded_files"]["2026-11"]
    db = tmp_path / "caa.duckdb"
    assert collect_cur(db, str(export.root)) == 0
    assert_totals_match(db, export.truth)
    read = {k for (k,) in rows(db, "SELECT key FROM cur_files")}
    assert read == {f for fs in export.truth["final_files"].values() for f in fs}


def test_the_newest_create_new_delivery_wins_without_a_manifest(tmp_path):
    export = write_export(tmp_path / "export", redeliver="2026-11")
    for manifest in export.root.rglob("*Manifest.json"):
        manifest.unlink()
    db = tmp_path / "caa.duckdb"
    assert collect_cur(db, str(export.root)) == 0
    assert_totals_match(db, export.truth)


def test_an_export_without_resource_ids_keeps_the_totals_and_says_what_to_turn_on(tmp_path):
    export = write_export(tmp_path / "export", resource_ids=False)
    db = tmp_path / "caa.duckdb"
    assert collect_cur(db, str(export.root)) == 0
    assert_totals_match(db, export.truth)
    assert rows(db, "SELECT count(*) FROM cur_line_items WHERE domain IS NOT NULL") == [(0,)]
    con = store.open_reader(db)
    try:
        note = billing.grain_note(con, "domain")
    finally:
        con.close()
    assert "Include resource IDs" in note
    out = subprocess.run([sys.executable, "-m", "cli", "report", "reconcile", "--source", "cur", "--grain", "domain",
                          "--db", str(db)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "Include resource IDs" in out.stderr.strip().splitlines()[-1]


def test_a_corrupt_file_is_skipped_named_and_its_period_keeps_its_rows(tmp_path):
    export = write_export(tmp_path / "export")
    db = tmp_path / "caa.duckdb"
    assert collect_cur(db, str(export.root)) == 0
    before = totals(db)
    bad = export.root / export.truth["final_files"]["2026-11"][0]
    write_corrupt_parquet(bad)
    out = subprocess.run([sys.executable, "-m", "cli", "collect", "cur", "--source", str(export.root), "--db", str(db),
                          "--no-refresh"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 3, out.stderr  # partial: bad input skipped and named, the rest collected
    skipped = [ln for ln in out.stderr.splitlines() if "skipped" in ln and bad.name in ln]
    assert skipped and "not a readable Parquet file" in skipped[0] and "fix:" in skipped[0]
    assert "Traceback" not in out.stderr
    assert totals(db) == before  # the period's previous delivery stays whole


@pytest.mark.parametrize(("kind", "said"), [("focus", "a FOCUS export, not CUR 2.0"),
                                             ("legacy", "a legacy CUR export, not CUR 2.0")])
def test_a_file_of_another_table_is_refused_with_the_fix(tmp_path, kind, said, capfd):
    path = write_foreign_table(tmp_path / "export", kind)
    db = tmp_path / "caa.duckdb"
    collect_cur(db, str(tmp_path / "export"))
    err = capfd.readouterr().err
    line = next(ln for ln in err.splitlines() if path.name in ln)
    assert said in line and "fix: point [cur] sources at an AWS Data Exports export of the 'CUR 2.0' table" in line
    assert rows(db, "SELECT count(*) FROM cur_line_items") == [(0,)]


def test_a_renamed_column_is_named_in_the_message(tmp_path, capfd):
    export = write_export(tmp_path / "export", periods=("2026-10",))
    path = export.root / export.truth["final_files"]["2026-10"][0]
    t = pq.read_table(path)
    pq.write_table(t.rename_columns(["line_item_unblendedcost" if c == "line_item_unblended_cost" else c
                                     for c in t.column_names]), path)
    db = tmp_path / "caa.duckdb"
    collect_cur(db, str(export.root))
    line = next(ln for ln in capfd.readouterr().err.splitlines() if path.name in ln)
    assert "lacks the CUR 2.0 column line_item_unblended_cost (the unblended cost)" in line
    assert "line_item_unblendedcost, which is not the CUR 2.0 spelling" in line


def test_an_s3_export_is_read_through_boto3_and_its_etags_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    export = write_export(tmp_path / "export", redeliver="2026-11")
    db = tmp_path / "caa.duckdb"
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="acme-billing")
        for path in export.root.rglob("*"):
            if path.is_file():
                s3.upload_file(str(path), "acme-billing", f"exports/{path.relative_to(export.root).as_posix()}")
        settings = make_settings(db=db, cur={"sources": ["s3://acme-billing/exports"]})
        clients, calls = Clients(settings), set()
        make = clients.client

        def recording(scope, service, region=None):
            c = make(scope, service, region)
            c.meta.events.register("before-call", lambda model, **kw: calls.add(iam_action(service, model.name)))
            return c

        clients.client = recording
        assert collect(db, [cur.SPEC], settings, clients=clients) == 0
        assert calls == set(cur.IAM_ACTIONS)  # what iam/caa-collect.json allows on the export's bucket
        assert_totals_match(db, export.truth)
        etags = {o["Key"].removeprefix("exports/"): o["ETag"].strip('"')
                 for o in s3.list_objects_v2(Bucket="acme-billing")["Contents"]}
        ledger = rows(db, "SELECT key, etag FROM cur_files")
        assert ledger and all(etags[k] == e for k, e in ledger)
        before = table(db, "cur_line_items")
        assert collect(db, [cur.SPEC], settings, clients=Clients(settings)) == 0
        assert table(db, "cur_line_items") == before


def test_collect_cur_without_an_export_says_where_to_set_one(tmp_path):
    (tmp_path / "caa.toml").write_text("")
    out = subprocess.run([sys.executable, "-m", "cli", "collect", "cur", "--db", str(tmp_path / "caa.duckdb")],
                         cwd=ROOT, capture_output=True, text=True, env={"CAA_CONFIG": str(tmp_path / "caa.toml"),
                                                                        "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "no CUR 2.0 export to read" in out.stderr and "[cur] sources" in out.stderr


def test_a_missing_folder_is_one_line(tmp_path):
    shutil.rmtree(tmp_path / "nothing", ignore_errors=True)
    out = subprocess.run([sys.executable, "-m", "cli", "collect", "cur", "--source", str(tmp_path / "nothing"),
                          "--db", str(tmp_path / "caa.duckdb")], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "does not exist" in out.stderr


@pytest.mark.parametrize("legacy", ["cur/acme-cur/acme-cur/year=2026/month=11/acme-cur-00001.snappy.parquet",
                                    "acme-cur/20261101-20261201/acme-cur-Manifest.json"])
def test_a_legacy_cur_is_named_with_how_to_make_a_cur_2_export(tmp_path, legacy):
    """A legacy Cost and Usage Report (Parquet in year=/month= folders, CSV in YYYYMMDD-YYYYMMDD ones) is what
    most accounts have: it was "no BILLING_PERIOD folders (nothing exported yet?)", a success with no rows."""
    path = tmp_path / "export" / legacy
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PAR1")
    out = subprocess.run([sys.executable, "-m", "cli", "collect", "cur", "--source", str(tmp_path / "export"),
                          "--db", str(tmp_path / "caa.duckdb"), "--no-refresh"], cwd=ROOT, capture_output=True,
                         text=True)
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
    said = out.stderr + out.stdout
    assert "legacy Cost and Usage Report" in said and "Data Exports" in said and "CUR 2.0" in said, said
    assert "nothing exported yet" not in said


def test_a_period_of_files_caa_cannot_read_is_named_not_passed_over(tmp_path):
    """A period whose data are in a format caa does not read (here zipped CSV) was passed over without a word."""
    export = write_export(tmp_path / "export", periods=("2026-10", "2026-11"))
    for path in (export.root / export.truth["final_files"]["2026-11"][0]).parent.glob("*.parquet"):
        path.rename(path.with_name(path.name.replace(".snappy.parquet", ".csv.zip")))
    db = tmp_path / "caa.duckdb"
    out = subprocess.run([sys.executable, "-m", "cli", "collect", "cur", "--source", str(export.root), "--db", str(db),
                          "--no-refresh"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 3, out.stderr  # partial: the other period is collected
    skipped = [ln for ln in out.stderr.splitlines() if "skipped" in ln and ".csv.zip" in ln]
    assert skipped and "not a CUR 2.0 data file (*.parquet or *.csv.gz)" in skipped[0] and "fix:" in skipped[0]
    assert rows(db, "SELECT DISTINCT strftime(billing_period, '%Y-%m') FROM cur_line_items") == [("2026-10",)]


def test_the_same_bill_from_a_second_source_replaces_it_and_says_so(tmp_path, capfd):
    """The same export under two spellings (its data/ folder, then the export; a relative path, then an
    absolute one; a local copy and the bucket) was stored twice, and every billed figure doubled."""
    export = write_export(tmp_path / "export")
    db = tmp_path / "caa.duckdb"
    assert collect_cur(db, str(export.root / "caa-cur2" / "data")) == 0
    assert_totals_match(db, export.truth)
    capfd.readouterr()
    assert collect_cur(db, str(export.root)) == 0
    assert_totals_match(db, export.truth)  # once, not twice
    notes = [ln for ln in capfd.readouterr().out.splitlines() if "replaces the same payer's bill" in ln]
    assert len(notes) == 2 and notes[0].startswith("note: caa-cur2/BILLING_PERIOD=2026-10 of ")
    assert f"collected from {export.root / 'caa-cur2' / 'data'}" in notes[0]
    assert collect_cur(db, str(export.root / "caa-cur2" / "data")) == 0  # its ledger: unchanged, not read again
    assert_totals_match(db, export.truth)
    assert rows(db, "SELECT DISTINCT source FROM cur_line_items") == [(f"{export.root}/caa-cur2",)]


def test_two_payers_bills_from_two_sources_are_both_kept(tmp_path, capfd):
    first, second = write_export(tmp_path / "a"), write_export(tmp_path / "b", seed=2)
    for path in second.root.rglob("*.parquet"):  # another organisation: another payer
        t = pq.read_table(path)
        i = t.schema.get_field_index("bill_payer_account_id")
        pq.write_table(t.set_column(i, "bill_payer_account_id", pa.array(["222233334444"] * t.num_rows)), path)
    db = tmp_path / "caa.duckdb"
    assert collect_cur(db, str(first.root)) == 0 and collect_cur(db, str(second.root)) == 0
    assert "replaces the same payer's bill" not in capfd.readouterr().out
    assert rows(db, "SELECT payer_account_id, count(DISTINCT source) FROM cur_line_items GROUP BY 1 ORDER BY 1") == [
        ("222233334444", 1), (PAYER_ID, 1)]


def test_a_reader_that_goes_away_does_not_stop_the_collector(tmp_path):
    """`caa collect cur | head -1`: the notes hit a closed pipe, and the run died half way as an
    'internal error BrokenPipeError', leaving some periods unread."""
    export = write_export(tmp_path / "export", periods=("2026-09", "2026-10", "2026-11"))
    db = tmp_path / "caa.duckdb"
    assert collect_cur(db, str(export.root / "caa-cur2" / "data")) == 0
    proc = subprocess.Popen([sys.executable, "-m", "cli", "collect", "cur", "--source", str(export.root), "--db",
                             str(db), "--no-refresh"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first note
    err = proc.stderr.read().decode()
    assert proc.wait() == 0, err
    assert "Error" not in err
    assert rows(db, "SELECT DISTINCT source FROM cur_line_items") == [(f"{export.root}/caa-cur2",)]


def test_a_monthly_export_is_named_with_the_granularity_to_choose(tmp_path, capfd):
    """Data Exports offers hourly, daily and monthly lines; a monthly line sits on the 1st of its month, so
    the daily reconcile and a window that leaves out the 1st read the bill wrongly, without a word."""
    daily = write_export(tmp_path / "daily", periods=("2026-10",))
    assert collect_cur(tmp_path / "daily.duckdb", str(daily.root)) == 0
    assert "usage lines longer than a day" not in capfd.readouterr().out
    monthly = write_export(tmp_path / "monthly", periods=("2026-10", "2026-11"))
    for path in monthly.root.rglob("*.parquet"):
        t = pq.read_table(path)
        start = pc.floor_temporal(t["line_item_usage_start_date"], unit="month")
        end = pc.add(start, pa.scalar(timedelta(days=31)))  # whole months (October has 31 days)
        t = t.set_column(t.schema.get_field_index("line_item_usage_start_date"), "line_item_usage_start_date", start)
        pq.write_table(t.set_column(t.schema.get_field_index("line_item_usage_end_date"), "line_item_usage_end_date",
                                    end.cast(t.schema.field("line_item_usage_end_date").type)), path)
    assert collect_cur(tmp_path / "monthly.duckdb", str(monthly.root)) == 0
    notes = [ln for ln in capfd.readouterr().out.splitlines() if "usage lines longer than a day" in ln]
    assert len(notes) == 1 and "create the export with daily or hourly granularity" in notes[0]


def test_a_source_that_names_one_billing_period_says_to_name_the_export(tmp_path):
    """`--source .../data/BILLING_PERIOD=2026-10` said "no BILLING_PERIOD folders (nothing exported yet?)"."""
    export = write_export(tmp_path / "export", periods=("2026-10",))
    period = export.root / "caa-cur2" / "data" / "BILLING_PERIOD=2026-10"
    assert period.is_dir()
    out = subprocess.run([sys.executable, "-m", "cli", "collect", "cur", "--source", str(period), "--db",
                          str(tmp_path / "caa.duckdb"), "--no-refresh"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
    assert f"{period} is one billing period's folder, not a CUR 2.0 export" in out.stderr
    assert "point it at the export's folder (the one holding data/ and metadata/)" in out.stderr
    assert "nothing exported yet" not in out.stderr + out.stdout
