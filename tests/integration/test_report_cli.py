"""`caa report ...` on the demo estate: the files a reviewer opens, in every format, with the right columns."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from analytics.reports import read_table

CLEANUP_COLUMNS = ["account_id", "domain", "repository", "format", "namespace", "package", "version", "status",
                   "origin_type", "published_at", "last_downloaded_at", "downloads_90d", "size_bytes",
                   "reclaimable_bytes", "monthly_savings_usd", "refetchable", "reason", "approve"]


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
