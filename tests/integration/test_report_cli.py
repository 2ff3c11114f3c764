"""`caa report ...` on the demo estate: the files a reviewer opens, in every format, with the right columns."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from analytics.reports import read_table
from tests.helpers import rows

CLEANUP_COLUMNS = ["account_id", "domain", "repository", "format", "namespace", "package", "version", "status",
                   "origin_type", "published_at", "last_downloaded_at", "downloads_90d", "size_bytes",
                   "reclaimable_bytes", "monthly_savings_usd", "refetchable", "reason", "approve", "generated_at",
                   "policy", "row_key"]


def caa(*args: str, db) -> subprocess.CompletedProcess:
    config = Path(db).with_name("empty-caa.toml")  # the default policy and prices, whatever caa.toml is around
    config.write_text("")
    return subprocess.run([sys.executable, "-m", "cli", *args, "--db", str(db)], capture_output=True, text=True,
                          env={**os.environ, "CAA_CONFIG": str(config)}, timeout=300)


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json", "parquet"])
def test_cleanup_report_has_the_promised_columns_and_an_empty_approve(demo_store, tmp_path, fmt):
    db, _ = demo_store(11, 20_000)
    out = tmp_path / f"cleanup.{fmt}"
    res = caa("report", "cleanup", "--format", fmt, "--out", str(out), "--backtest", db=db)
    assert res.returncode == 0, res.stderr
    df = read_table(out)
    assert list(df.columns) == CLEANUP_COLUMNS
    assert len(df) > 0 and df["approve"].isna().all() and df["reason"].notna().all()
    assert f"wrote {len(df):,} cleanup candidates to {out}" in res.stdout
    assert "backtest:" in res.stdout and "false-deletion rate" in res.stdout


def test_cleanup_policy_flags_change_the_selection(demo_store, tmp_path):
    db, _ = demo_store(11, 20_000)
    strict, loose = tmp_path / "strict.csv", tmp_path / "loose.csv"
    assert caa("report", "cleanup", "--out", str(strict), "--unused-days", "300", "--keep-latest", "5", db=db
               ).returncode == 0
    assert caa("report", "cleanup", "--out", str(loose), "--unused-days", "30", "--keep-latest", "1",
               "--min-age-days", "0", db=db).returncode == 0
    assert len(read_table(strict)) < len(read_table(loose))


def test_report_on_an_empty_store_says_what_to_do(tmp_path):
    res = caa("report", "cleanup", db=tmp_path / "none.duckdb")
    assert "Traceback" not in res.stderr
    assert res.returncode == 1 and "no data yet" in res.stderr and "make demo" in res.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_a_report_to_a_full_disk_is_one_line_and_no_traceback(demo_store):
    db, _ = demo_store(11, 20_000)
    res = caa("report", "cleanup", "--format", "xlsx", "--out", "/dev/full", db=db)
    assert res.returncode == 1
    assert res.stderr.splitlines() == ["caa: output error: cannot write the report /dev/full: No space left on device: "
                                       "fix: free disk space, or pass --out a path on a disk with room that you can "
                                       "write to"]


def test_cost_report_adds_up_to_the_modeled_total_at_every_level(demo_store, tmp_path):
    db, _ = demo_store(11, 20_000)
    totals = {}
    for level in ("domain", "repository", "team", "principal"):
        out = tmp_path / f"costs-{level}.json"
        res = caa("report", "costs", "--by", level, "--format", "json", "--out", str(out), db=db)
        assert res.returncode == 0, res.stderr
        totals[level] = round(read_table(out)["cost_usd"].astype(float).sum(), 6)
    assert len(set(totals.values())) == 1 and next(iter(totals.values())) > 0


def test_forecast_has_intervals_around_the_expectation_and_a_backtest(demo_store, tmp_path):
    db, _ = demo_store(11, 20_000)
    out = tmp_path / "forecast.csv"
    res = caa("report", "forecast", "--months", "3", "--with-cleanup", "--out", str(out), db=db)
    assert res.returncode == 0, res.stderr
    df = read_table(out)
    total = df[df["kind"] == "total"].astype({"lower_usd": float, "expected_usd": float, "upper_usd": float,
                                              "without_cleanup_usd": float})
    assert len(total) == 4  # this month + 3
    assert (total["lower_usd"] <= total["expected_usd"] + 1e-9).all()
    assert (total["expected_usd"] <= total["upper_usd"] + 1e-9).all()
    assert (total["expected_usd"] <= total["without_cleanup_usd"] + 1e-9).all()  # cleanup never costs more
    assert "backtest MAPE" in res.stdout


def test_reconcile_storage_is_within_two_percent_of_cost_explorer(demo_store, tmp_path):
    db, _ = demo_store(11, 20_000)
    out = tmp_path / "reconcile.csv"
    assert caa("report", "reconcile", "--out", str(out), db=db).returncode == 0
    df = read_table(out).astype({"modeled_usd": float, "actual_usd": float})
    storage = df[df["kind"] == "storage"]
    assert len(storage) > 300
    assert abs(storage["modeled_usd"].sum() / storage["actual_usd"].sum() - 1) < 0.02


def test_spikes_and_usage_reports_are_written(demo_store, tmp_path):
    db, _ = demo_store(11, 20_000)
    res = caa("report", "spikes", "--out", str(tmp_path / "spikes.csv"), db=db)
    assert res.returncode == 0, res.stderr
    spikes = read_table(tmp_path / "spikes.csv")
    assert {"kind", "start", "end", "excess", "excess_cost_usd", "top_principals"} <= set(spikes.columns)
    res = caa("report", "usage", "--format", "csv", "--out", str(tmp_path / "usage"), db=db)
    assert res.returncode == 0, res.stderr
    names = {p.stem for p in (tmp_path / "usage").iterdir()}
    assert names == {"packages", "versions", "repositories", "consumers", "origin_share", "idle_repositories",
                     "single_consumer_versions"}
    # a file name for a multi-table CSV report is refused, naming the folder it would write; nothing is written
    res = caa("report", "usage", "--format", "csv", "--out", str(tmp_path / "usage.csv"), db=db)
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "not the file usage.csv" in res.stderr and f"--out {tmp_path / 'usage'}" in res.stderr
    assert not (tmp_path / "usage.csv").exists()
    # a window without downloads says what the store covers, not only empty tables ("nobody downloads anything")
    (first, last), = rows(db, "SELECT min(day), max(day) FROM event_days")
    res = caa("report", "usage", "--since", "2020-01-01", "--until", "2020-01-31", "--out", str(tmp_path / "u.xlsx"),
              db=db)
    assert res.returncode == 0, res.stderr
    assert (f"note: no download in 2020-01-01..2020-01-31: the store's events cover {first}..{last} "
            "(--since/--until)") in res.stdout
    assert "note:" not in caa("report", "usage", "--out", str(tmp_path / "v.xlsx"), db=db).stdout


def test_cost_and_reconcile_reports_without_a_model_say_what_the_store_covers(tmp_path, demo_store):
    """A FinOps user who collected only the bill got 'wrote 0 rows ... total $0.00' from `report costs` and
    an empty reconcile table, as if CodeArtifact cost nothing."""
    from collectors import cur
    from tests.fixtures.cur2_export import write_export
    from tests.helpers import collect, make_settings

    export = write_export(tmp_path / "export")
    bill_only = tmp_path / "bill.duckdb"
    assert collect(bill_only, [cur.SPEC], make_settings(db=bill_only, cur={"sources": [str(export.root)]})) == 0
    res = caa("report", "costs", "--out", str(tmp_path / "c.csv"), db=bill_only)
    assert res.returncode == 0, res.stderr
    assert ("note: nothing to price yet: the store has no storage snapshots or events; run `caa collect inventory` "
            "and `caa collect cloudtrail` (the bill collected is `--basis billed`)") in res.stdout
    res = caa("report", "reconcile", "--out", str(tmp_path / "r.csv"), db=bill_only)
    assert res.returncode == 0, res.stderr
    assert "note: no day to reconcile: the bill covers 2026-10-01..2026-11-30, the model none" in res.stdout
    db, _ = demo_store(11, 20_000)  # a model, and a window outside it
    res = caa("report", "costs", "--since", "2020-01-01", "--until", "2020-01-31", "--out", str(tmp_path / "d.csv"),
              db=db)
    assert "note: no cost in this window: the store's usage covers " in res.stdout
    assert "note:" not in caa("report", "costs", "--out", str(tmp_path / "e.csv"), db=db).stdout
