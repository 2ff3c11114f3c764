"""Spike detection on a small hand-built store whose spike, weekly pattern and costs are worked out by hand.

The store (8 weeks from Monday 2026-01-05, region eu-west-1 priced at $0.10 per 10,000 requests):
  left-pad (npm, acme/app)   weekdays: 4 downloads an hour 08:00-17:59 by ci (40 a day, one per
                             session); weekends: 5 a day. A weekly pattern, never a spike.
                             Thursday 2026-02-19 10:00-13:19: 200 more, one a minute; 3 of every 4 by
                             spiker (curl/8 from 10.0.0.9), 1 of 4 by helper (wget/1 from 10.0.0.7).
                             -> one spike [10:00, 14:00): observed 216, baseline 16 (the same four
                             hours in earlier weeks), excess 200; principals spiker 75% and helper 25%
                             of the excess (ci's 16 are its usual). Each of spiker's 150 downloads
                             comes with one metadata request (npm's packument) in the same minute, so
                             the window's sessions made 150 other requests per 216 downloads: excess
                             requests = round(200 x (1 + 150/216)) = 339. The account's February is
                             far under the 100,000 free requests: the spike costs $0 ("within"); with
                             no free tier, 339 / 10,000 x $0.10.
  quiet (pypi, acme/app)     1 download a weekday; Wednesday 2026-02-18: 15 (each its own session).
                             Scores above the threshold, but 15 < min_daily_downloads (20): no alert,
                             unless min_daily_downloads is lowered to 10.
  auth                       bad-role: 30 AccessDenied events 2026-02-20 03:00-03:29 -> one auth burst;
                             meh-role: 3 AccessDenied events -> below AUTH_MIN_EVENTS, none.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from analytics import spike_eval, spikes
from core import store
from core.settings import load_settings
from tests.fixtures.events import COLUMNS, insert_events
from tests.helpers import writer

A = "111111111111"
START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
CI, SPIKER, HELPER = (f"arn:aws:sts::{A}:assumed-role/{n}/s" for n in ("ci", "spiker", "helper"))
BAD, MEH = f"arn:aws:iam::{A}:user/bad-role", f"arn:aws:iam::{A}:user/meh-role"


def _dl(at, package, fmt, principal, ua="npm/10", ip="10.0.0.1", error=None, name="ReadFromRepository"):
    n = _dl.count = getattr(_dl, "count", 0) + 1
    return (f"e{n}", at, name, A, "eu-west-1", "acme", A, "app", fmt, None, package, "1.0.0", f"{package}.tgz",
            principal, "AssumedRole", ip, ua, error, "/x")


def _meta(at, package, principal, ua, ip):
    row = list(_dl(at, package, "npm", principal, ua, ip))
    row[COLUMNS.index("version")] = row[COLUMNS.index("asset")] = None
    return tuple(row)


def _rows():
    rows = []
    for d in range(56):
        day = START + timedelta(days=d)
        if day.weekday() < 5:
            rows += [_dl(day + timedelta(hours=h, minutes=15 * q), "left-pad", "npm", CI)
                     for h in range(8, 18) for q in range(4)]
            rows.append(_dl(day + timedelta(hours=9), "quiet", "pypi", CI))
        else:
            rows += [_dl(day + timedelta(hours=10 + h), "left-pad", "npm", CI) for h in range(5)]
    spike = datetime(2026, 2, 19, 10, tzinfo=UTC)
    for i in range(200):
        who = (HELPER, "wget/1", "10.0.0.7") if i % 4 == 3 else (SPIKER, "curl/8", "10.0.0.9")
        rows.append(_dl(spike + timedelta(minutes=i, seconds=7), "left-pad", "npm", who[0], who[1], who[2]))
        if who[0] == SPIKER:  # its packument, in the same minute (a metadata request: no version, no asset)
            rows.append(_meta(spike + timedelta(minutes=i, seconds=5), "left-pad", SPIKER, "curl/8", "10.0.0.9"))
    quiet = datetime(2026, 2, 18, 11, tzinfo=UTC)
    rows += [_dl(quiet + timedelta(minutes=3 * i), "quiet", "pypi", CI) for i in range(14)]
    burst = datetime(2026, 2, 20, 3, tzinfo=UTC)
    rows += [_dl(burst + timedelta(minutes=i), "left-pad", "npm", BAD, error="AccessDenied") for i in range(30)]
    rows += [_dl(burst + timedelta(minutes=i), "left-pad", "npm", MEH, error="AccessDenied") for i in range(3)]
    return rows


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    path = tmp_path_factory.mktemp("spikes") / "x.duckdb"
    with writer(path) as w:
        insert_events(w, _rows())
    reader = store.open_reader(path)
    yield reader
    reader.close()


def settings(tmp_path, free=100_000, **spike_settings):
    return load_settings(tmp_path / "absent.toml", spikes=spike_settings,
                         prices={"regions": {"eu-west-1": {"request_usd_per_10k": 0.10}},
                                 "free_requests_per_month": free})


@pytest.fixture
def found(con, tmp_path):
    return spikes.detect_spikes(con, settings(tmp_path))


def test_one_download_spike_placed_to_the_hour_and_sized(found):
    dl = found[found["kind"] == "download"]
    assert len(dl) == 1, dl  # the weekend lows and Monday rebounds never alert
    s = dl.iloc[0]
    assert (s["package"], s["repository"], s["format"]) == ("left-pad", "app", "npm")
    assert (s["start"], s["end"]) == (datetime(2026, 2, 19, 10, tzinfo=UTC), datetime(2026, 2, 19, 14, tzinfo=UTC))
    assert (s["observed"], s["baseline"], s["excess"], s["unit"]) == (216, 16, 200, "downloads")
    assert s["score"] >= 6 and s["signal"] == "sessions"  # 200 more sessions of one download: not a loop


def test_cost_counts_the_sessions_metadata_and_only_what_the_free_tier_does_not_cover(con, found, tmp_path):
    s = found[found["kind"] == "download"].iloc[0]
    assert (s["excess_requests"], s["billable_requests"], s["free_tier"], s["excess_cost_usd"]) == (339, 0, "within", 0)
    paid = spikes.detect_spikes(con, settings(tmp_path, free=0)).iloc[0]
    assert (paid["billable_requests"], paid["free_tier"]) == (339, "past")
    assert paid["excess_cost_usd"] == pytest.approx(339 / 10_000 * 0.10)
    (month,), = con.execute("SELECT count(*) FROM events WHERE error_code IS NULL AND event_at >= '2026-02-01' "
                            "AND event_at < '2026-03-01'").fetchall()
    pushed = spikes.detect_spikes(con, settings(tmp_path, free=month - 100)).iloc[0]  # the spike crossed it
    assert (pushed["billable_requests"], pushed["free_tier"]) == (100, "pushed past")


def test_attribution_is_a_share_of_the_excess(found):
    s = found[found["kind"] == "download"].iloc[0]
    assert s["top_principals"] == [f"{SPIKER} (75%)", f"{HELPER} (25%)"]
    assert s["top_user_agents"] == ["curl/8 (75%)", "wget/1 (25%)"]
    assert s["top_source_ips"] == ["10.0.0.9 (75%)", "10.0.0.7 (25%)"]


def test_quiet_package_does_not_alert_below_the_minimum_volume(con, tmp_path):
    lowered = spikes.detect_spikes(con, settings(tmp_path, min_daily_downloads=10))
    quiet = lowered[lowered["package"] == "quiet"]
    assert len(quiet) == 1 and quiet.iloc[0]["start"].date() == date(2026, 2, 18)


def test_auth_burst_per_principal(found):
    auth = found[found["kind"] == "auth"]
    assert list(auth["principal_arn"]) == [BAD]
    b = auth.iloc[0]
    assert (b["start"], b["end"]) == (datetime(2026, 2, 20, 3, tzinfo=UTC), datetime(2026, 2, 20, 4, tzinfo=UTC))
    assert (b["observed"], b["excess"], b["excess_cost_usd"]) == (30, 30, 0.0)  # denied calls are not billed
    assert (b["domain"], b["repository"]) == ("acme", "app")


def test_since_keeps_only_later_spikes(con, tmp_path):
    assert spikes.detect_spikes(con, settings(tmp_path), since=date(2026, 2, 21)).empty
    assert len(spikes.detect_spikes(con, settings(tmp_path), since=date(2026, 2, 19))) == 2


def test_weekly_pattern_scores_low_every_day(con, tmp_path):
    s = spikes.download_series(con, settings(tmp_path))
    pad = s[(s["package"] == "left-pad") & (s["bucket_at"] < datetime(2026, 2, 19, tzinfo=UTC))]
    assert pad["score"].dropna().abs().max() < 1  # weekends against weekends, weekdays against weekdays
    assert pad["score"].notna().sum() == (date(2026, 2, 19) - date(2026, 2, 2)).days  # from 4 weeks of history


def test_evaluate_matches_by_key_and_window_with_slack(found):
    s = found[found["kind"] == "download"].iloc[0]
    truth = {"download_spikes": [
        {"domain": "acme", "repository": "app", "format": "npm", "namespace": None, "package": "left-pad",
         "start": "2026-02-19T14:30:00Z", "end": "2026-02-19T16:00:00Z"},  # within one hour of the end
        {"domain": "acme", "repository": "app", "format": "npm", "namespace": None, "package": "other",
         "start": "2026-02-19T10:00:00Z", "end": "2026-02-19T12:00:00Z"}],
        "auth_bursts": [{"principal_arn": BAD, "start": "2026-02-20T03:05:00Z", "end": "2026-02-20T03:25:00Z"},
                        {"principal_arn": MEH, "start": "2026-03-20T03:05:00Z", "end": "2026-03-20T03:25:00Z"}]}
    r = spike_eval.evaluate(found, truth)
    assert r["by_kind"]["download"] == {"precision": 1.0, "recall": 0.5, "tp": 1, "fp": 0, "fn": 1, "rows": 1}
    assert (r["precision"], r["recall"], r["tp"], r["fp"], r["fn"]) == (1.0, 0.5, 2, 0, 2)
    late = json.loads(json.dumps(truth))
    late["download_spikes"][0]["start"] = "2026-02-19T15:30:00Z"
    assert spike_eval.evaluate(found, late)["by_kind"]["download"]["tp"] == 0
    assert s["end"] == datetime(2026, 2, 19, 14, tzinfo=UTC)


def test_a_spike_spread_over_two_spellings_of_a_package_is_one_spike_under_its_stored_name(tmp_path):
    """CloudTrail records the name each client sent: pip's `Zope.Interface`, another tool's `zope_interface`, both
    the package CodeArtifact stores as `zope-interface`. Its series is one series under that name (024), so a spike
    fetched half under each spelling is found once and whole, not as a half spike beside a "new package"; its
    attribution reads the downloads of both spellings."""
    rows = []
    for d in range(56):  # left-pad's week shape, all under the spelling pip sends
        day = START + timedelta(days=d)
        hours = [(h, q) for h in range(8, 18) for q in range(4)] if day.weekday() < 5 else [(10 + h, 0) for h in range(5)]
        rows += [_dl(day + timedelta(hours=h, minutes=15 * q), "Zope.Interface", "pypi", CI, "pip/24") for h, q in hours]
    spike = datetime(2026, 2, 19, 10, tzinfo=UTC)
    rows += [_dl(spike + timedelta(minutes=i, seconds=7), ("Zope.Interface", "zope_interface")[i % 2], "pypi", SPIKER,
                 "uv/0.4", "10.0.0.9") for i in range(200)]
    path = tmp_path / "spellings.duckdb"
    with writer(path) as w:
        insert_events(w, rows)
    with store.open_reader(path) as con:
        found = spikes.detect_spikes(con, settings(tmp_path))
    dl = found[found["kind"] == "download"]
    assert dl[["level", "format", "package"]].values.tolist() == [["package", "pypi", "zope-interface"]]
    s = dl.iloc[0]
    assert (s["observed"], s["baseline"], s["excess"]) == (216, 16, 200)
    assert s["top_principals"] == [f"{SPIKER} (100%)"]
    truth = {"download_spikes": [{"domain": "acme", "repository": "app", "format": "pypi", "namespace": None,
                                  "package": "zope_interface", "start": "2026-02-19T10:00:00Z",
                                  "end": "2026-02-19T13:20:00Z"}], "auth_bursts": []}
    assert spike_eval.evaluate(found, truth)["by_kind"]["download"]["tp"] == 1  # a truth in a client's spelling


@pytest.fixture(scope="module")
def keys_store(tmp_path_factory):
    """A store with every migration, for its name-key macros."""
    path = tmp_path_factory.mktemp("keys") / "k.duckdb"
    with writer(path):
        pass
    reader = store.open_reader(path)
    yield reader
    reader.close()


@pytest.mark.parametrize("fmt, column, value", [
    ("pypi", "package", "Zope.Interface"), ("pypi", "package", "zope__interface"), ("pypi", "package", "A-_.b"),
    ("pypi", "package", "plain"), ("nuget", "package", "Acme.Core"), ("swift", "package", "Alamofire"),
    ("swift", "namespace", "GitHub.Com/Org"), ("npm", "package", "Left-Pad"), ("npm", "namespace", "@Acme"),
    ("maven", "namespace", "Com.Acme"), ("maven", "package", "Core_Lib"), ("generic", "package", "Tool.X"),
    ("pypi", "namespace", None), ("pypi", "repository", "Repo.X")])
def test_spike_eval_names_a_package_as_the_store_keys_it(keys_store, fmt, column, value):
    """spike_eval.name_key is the store's namespace_key and package_key (core/schema/021_name_keys.sql), which the
    detector's series are keyed by: a truth matches a detected row whatever spelling it uses."""
    macro = {"package": "package_key", "namespace": "namespace_key"}.get(column)
    want = keys_store.execute(f"SELECT {macro}($f, $v)", {"f": fmt, "v": value}).fetchone()[0] if macro else value
    assert spike_eval.name_key(fmt, column, value) == want
