"""The spike detector on traffic nobody here tuned it on: the independent model of tests/fixtures/traffic2.py
(another diurnal and weekly shape, holidays, packages in several repositories, new principals, CI loops,
short bursts, repository syncs, surges spread over a domain, slow ramps and returning packages that are
not spikes), written as trail files and read by the real collector."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from analytics import spike_eval, spikes
from collectors import cloudtrail
from core import store
from tests.fixtures import traffic2
from tests.helpers import collect, make_settings


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    root = tmp_path_factory.mktemp("traffic2")
    truth = traffic2.generate(root / "trail", seed=1)
    db = root / "caa.duckdb"
    assert collect(db, [cloudtrail.SPEC], now=pd.Timestamp(truth["end"]).to_pydatetime(), since=date(2026, 1, 1),
                   source=str(root / "trail")) == 0
    with store.open_reader(db) as con:
        found = spikes.detect_spikes(con, make_settings(db=db))
    return found, truth, spike_eval.evaluate(found, truth)


def test_every_kind_of_spike_is_found_and_little_else(result):
    _, truth, r = result
    assert {t["kind"] for t in truth["download_spikes"]} == {"runaway", "short", "burst", "surge"}
    assert all(k["recall"] >= 0.9 for k in r["by_spike_kind"].values()), r["by_spike_kind"]
    assert r["by_kind"]["download"]["precision"] >= 0.9, r
    assert r["quiet_alarms"] == 0  # the ramps, returning and new packages, and the holidays' rebounds


def test_loops_are_sized_in_downloads_and_in_the_requests_that_came_with_them(result):
    found, truth, _ = result
    dl = found[found["kind"] == "download"]
    for t in (t for t in truth["download_spikes"] if t["kind"] in ("runaway", "short")):
        (row,) = [r for _, r in dl.iterrows() if spike_eval.matches(r, t)
                  and spike_eval.overlap(r, t["start"], t["end"], spike_eval.HOUR)]
        assert row["excess"] == pytest.approx(t["excess_downloads"], rel=0.1)
        assert row["excess_requests"] == pytest.approx(t["excess_requests"], rel=0.15)
        assert row["top_principals"][0].startswith(t["principal_arn"] + " (")


def test_the_surge_over_a_domain_names_no_single_repository(result):
    found, truth, _ = result
    for t in (t for t in truth["download_spikes"] if t["kind"] == "surge"):
        rows = [r for _, r in found.iterrows() if spike_eval.matches(r, t)
                and spike_eval.overlap(r, t["start"], t["end"], spike_eval.HOUR)]
        assert rows and all(r["level"] == "domain" and pd.isna(r["repository"]) for r in rows)
