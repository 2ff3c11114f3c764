"""Both detectors against the injected download spikes and auth bursts of a fixed-seed demo estate.

200k events is the smallest estate where every injected spike clears min_daily_downloads (at 100k some
spikes are 20 downloads spread over three days). Matching is `analytics.spikes.evaluate`.
"""

from __future__ import annotations

import pytest

from analytics import spike_eval, spikes
from core import store
from core.settings import load_settings

SEED, EVENTS = 11, 200_000


@pytest.fixture(scope="module")
def result(demo_store, tmp_path_factory):
    db, truth = demo_store(SEED, EVENTS)
    settings = load_settings(tmp_path_factory.mktemp("cfg") / "absent.toml")
    with store.open_reader(db) as con:
        found = spikes.detect_spikes(con, settings)
    return found, truth, spike_eval.evaluate(found, truth)


@pytest.mark.parametrize("kind", ["download", "auth"])
def test_precision_and_recall_at_least_0_9(result, kind):
    r = result[2]["by_kind"][kind]
    assert r["precision"] >= 0.9 and r["recall"] >= 0.9, r


def test_spikes_are_sized_and_attributed_to_the_injector(result):
    found, truth, _ = result
    dl = found[found["kind"] == "download"]
    for t in truth["download_spikes"]:
        row = dl[(dl["package"] == t["package"]) & (dl["repository"] == t["repository"])].iloc[0]
        assert row["top_principals"][0].startswith(t["principal_arn"] + " (")
        assert row["top_source_ips"][0].startswith(t["source_ip"] + " (")
        assert row["excess"] == pytest.approx(t["excess_downloads"], rel=0.35)
        assert row["excess_requests"] >= row["excess"]  # the downloads and their sessions' metadata
        assert (row["excess_cost_usd"] > 0) == (row["free_tier"] != "within")  # the free tier absorbs it
