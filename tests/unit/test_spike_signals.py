"""The spike detector's second signal and levels on small hand-built stores (issue #12):

- runaway CI loops, as reported on an independent trail: one principal from one IP fetches one version of a
  steady package thousands of times within 20 minutes (the two cases the detector was said to miss);
- a 10,000-download loop of 5 minutes inside a CI-heavy package's normal clustered traffic: 5 sessions,
  which session counting cannot see, so only the volume signal finds it;
- CI's normal clustered traffic (jobs fetching 1 to 60 files of a package in a minute) never alerts;
- a surge spread over four repositories of a domain, none past 14 a day: only the domain level sees it;
- a principal looping on metadata requests (no downloads at all): the request-volume signal;
- an auth burst with a quieter hour inside it is one spike, not one per hot hour.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from analytics import spikes
from analytics.filters import Filters
from core import store
from core.settings import load_settings
from tests.fixtures.events import insert_events
from tests.helpers import writer

A = "111111111111"
START = datetime(2026, 6, 1, tzinfo=UTC)  # a Monday
DEV, LOOP, CI, BROKEN = (f"arn:aws:sts::{A}:assumed-role/{n}/s" for n in ("dev", "loop", "ci", "broken"))


class Rows(list):
    def dl(self, at, package, who=DEV, ip="10.0.0.1", repo="app", version="1.0.0"):
        self.append((f"e{len(self)}", at, "ReadFromRepository", A, "us-east-1", "acme", A, repo, "npm", None,
                     package, version, f"{package}-{version}.tgz", who, "AssumedRole", ip, "npm/10", None, "/x"))

    def meta(self, at, package, who, ip):
        self.append((f"e{len(self)}", at, "ReadFromRepository", A, "us-east-1", "acme", A, "app", "npm", None,
                     package, None, None, who, "AssumedRole", ip, "npm/10", None, f"/npm/app/{package}"))

    def denied(self, at, who, ip="10.5.0.1"):
        self.append((f"e{len(self)}", at, "ReadFromRepository", A, "us-east-1", "acme", A, "app", "npm", None,
                     "lib", "1.0.0", "lib-1.0.0.tgz", who, "AssumedRole", ip, "npm/10", "AccessDenied", "/x"))


def background(rows: Rows, days: int, rnd: random.Random) -> None:
    """Other traffic, so the store has a shape: 30 downloads a day of five packages by three CI roles."""
    for d in range(days):
        day = START + timedelta(days=d)
        for i in range(30):
            rows.dl(day + timedelta(hours=8, minutes=i * 13), f"other{i % 5}", f"arn:aws:sts::{A}:assumed-role/b{i % 3}/s",
                    f"10.1.0.{i % 3}")


def detect(tmp_path, rows: Rows, **over) -> pd.DataFrame:
    db = tmp_path / "s.duckdb"
    with writer(db) as w:
        insert_events(w, rows)
    with store.open_reader(db) as con:
        return spikes.detect_spikes(con, load_settings(tmp_path / "absent.toml", **over))


def loop(rows: Rows, t0: datetime, n: int, minutes: float, package: str = "steady", ip: str = "10.9.9.9") -> None:
    for i in range(n):
        rows.dl(t0 + timedelta(seconds=i * minutes * 60 / n), package, LOOP, ip)


@pytest.mark.parametrize("case", ["sunday-after-ten-weeks", "thursday-38-days-after-first"])
def test_a_runaway_loop_on_a_steady_package_is_found_and_sized(tmp_path, case):
    rnd, rows = random.Random(1), Rows()
    background(rows, 80, rnd)
    first = 0 if case.startswith("sunday") else 21
    for d in range(first, 80):  # about one download a day, at any hour
        rows.dl(START + timedelta(days=d, hours=rnd.randint(0, 23), minutes=rnd.randint(0, 59)), "steady")
    if case.startswith("sunday"):
        t0, n = START + timedelta(days=10 * 7 + 6, hours=19, minutes=7), 3_055  # 19:07-19:27 on a Sunday
    else:
        t0, n = START + timedelta(days=first + 38, hours=3, minutes=29), 3_848  # a Thursday, 03:29-03:49
        assert t0.weekday() == 3
    loop(rows, t0, n, 20)
    found = detect(tmp_path, rows)
    (s,) = [r for _, r in found.iterrows() if r["package"] == "steady"]
    assert (s["level"], s["start"], s["end"]) == ("package", t0.replace(minute=0), t0.replace(minute=0) + timedelta(hours=1))
    assert "volume" in s["signal"] and s["excess"] == pytest.approx(n, abs=2)
    assert s["top_principals"] == [f"{LOOP} (100%)"]


def ci_traffic(rows: Rows, days: int, rnd: random.Random, package: str = "lib") -> None:
    """A CI-heavy package: 20-40 jobs a weekday (8 at weekends), each fetching 1 to 60 of its files in one
    minute (a build that needs one file, or a whole matrix)."""
    for d in range(days):
        day = START + timedelta(days=d)
        for j in range(rnd.randint(20, 40) if day.weekday() < 5 else 8):
            at = day + timedelta(hours=rnd.randint(6, 20), minutes=rnd.randint(0, 59))
            for f in range(rnd.choice((1, 1, 2, 3, 5, 10, 30, 60))):
                rows.dl(at + timedelta(seconds=f % 50), package, CI, f"10.2.{j % 7}.{d % 9}", version=f"1.{f}.0")


def test_ci_clustered_traffic_never_alerts(tmp_path):
    rnd, rows = random.Random(7), Rows()
    background(rows, 84, rnd)
    ci_traffic(rows, 84, rnd)
    found = detect(tmp_path, rows)
    assert found[found["package"] == "lib"].empty, found


def test_a_loop_that_sessions_cannot_see_is_found_by_volume_and_priced_past_the_free_tier(tmp_path):
    rnd, rows = random.Random(7), Rows()
    background(rows, 84, rnd)
    ci_traffic(rows, 84, rnd)
    t0 = START + timedelta(days=80, hours=2, minutes=10)  # a Thursday night: 10,000 in 5 minutes
    loop(rows, t0, 10_000, 5, package="lib")
    for i in range(0, 10_000, 4):  # a packument every fourth fetch, in the same minutes
        rows.meta(t0 + timedelta(seconds=i * 300 / 10_000), "lib", LOOP, "10.9.9.9")
    found = detect(tmp_path, rows, prices={"free_requests_per_month": 0})
    (s,) = [r for _, r in found.iterrows() if r["package"] == "lib"]
    assert s["signal"] == "volume" and s["level"] == "package"  # 5 more sessions: not a sessions spike
    assert s["start"] == t0.replace(minute=0) and s["excess"] == pytest.approx(10_000, rel=0.01)
    # the excess comes with the loop's 2,500 packuments: requests = downloads x (1 + 2,500 / 10,000+)
    assert 12_000 <= s["excess_requests"] <= 12_500 and s["free_tier"] == "past"
    assert s["excess_cost_usd"] == pytest.approx(s["excess_requests"] / 10_000 * 0.05)


def test_a_surge_over_four_repositories_is_seen_at_the_domain_level_only(tmp_path):
    rnd, rows = random.Random(3), Rows()
    background(rows, 84, rnd)
    repos = ("r1", "r2", "r3", "r4")
    for d in range(84):
        rows.dl(START + timedelta(days=d, hours=rnd.randint(0, 23)), "hot", repo=repos[d % 4])  # ~1 a day
    surge = START + timedelta(days=77)
    for d in range(3):  # 3 days of 48 a day from 24 people, 12 a day in each repository
        for i in range(48):
            rows.dl(surge + timedelta(days=d, hours=8 + i % 10, minutes=i), "hot",
                    f"arn:aws:sts::{A}:assumed-role/dev{i % 24}/s", f"10.3.0.{i % 24}", repo=repos[i % 4])
    found = detect(tmp_path, rows)
    hot = found[found["package"] == "hot"]
    assert list(hot["level"]) == ["domain"], hot
    s = hot.iloc[0]
    assert pd.isna(s["repository"]) and s["start"].date() == surge.date() and s["excess"] >= 120


def test_a_principal_looping_on_metadata_is_a_request_spike(tmp_path):
    rnd, rows = random.Random(5), Rows()
    background(rows, 84, rnd)
    for d in range(84):  # the CI role's usual metadata calls: 40 an hour during the day
        for h in range(8, 18):
            for i in range(40):
                rows.meta(START + timedelta(days=d, hours=h, minutes=i), f"other{i % 5}", CI, "10.4.0.1")
    t0 = START + timedelta(days=81, hours=14, minutes=5)
    for i in range(5_000):  # a misconfigured job: `npm view` in a loop for ten minutes
        rows.meta(t0 + timedelta(seconds=i * 600 / 5_000), "other1", CI, "10.4.0.1")
    found = detect(tmp_path, rows)
    (s,) = [r for _, r in found.iterrows() if r["unit"] == "requests"]
    assert (s["level"], s["signal"], s["principal_arn"]) == ("principal", "requests", CI)
    assert s["start"] == t0.replace(minute=0) and s["excess"] == pytest.approx(5_000, abs=50)
    assert s["excess_requests"] == round(s["excess"])


def test_an_auth_burst_with_a_quieter_hour_inside_is_one_spike(tmp_path):
    """Two hot hours a raised hour apart: each grew over the other's hours, and the burst was listed twice."""
    rnd, rows = random.Random(6), Rows()
    background(rows, 36, rnd)
    for d in range(36):  # a role with a stale permission: two denied calls an hour during the day
        for h in range(8, 18):
            for m in (10, 40):
                rows.denied(START + timedelta(days=d, hours=h, minutes=m), BROKEN)
    burst = START + timedelta(days=35, hours=10)
    for hour, n in ((0, 40), (1, 2), (2, 40)):  # 10:00 and 12:00 burst; 11:00 is raised (4), not hot
        for i in range(n):
            rows.denied(burst + timedelta(hours=hour, seconds=i * 60), BROKEN)
    found = detect(tmp_path, rows)
    auth = found[found["kind"] == "auth"]
    assert len(auth) == 1, auth[["start", "end", "observed"]]
    s = auth.iloc[0]
    assert (s["principal_arn"], s["signal"]) == (BROKEN, "access_denied")
    assert (s["start"], s["end"]) == (burst, burst + timedelta(hours=3))
    assert s["observed"] == 40 + 2 + 40 + 3 * 2


def test_a_date_filter_scores_its_first_days_against_the_weeks_before_it(tmp_path):
    """The dashboard's date filter hid the baseline weeks: its first four weeks had no history, so a loop
    there could not be found (a series needs weeks of history) and steady denied calls looked like bursts."""
    rnd, rows = random.Random(8), Rows()
    background(rows, 80, rnd)
    for d in range(80):
        rows.dl(START + timedelta(days=d, hours=rnd.randint(0, 23), minutes=rnd.randint(0, 59)), "steady")
        for h in range(8, 18):  # a role with a stale permission: eight denied calls an hour, every day
            for m in range(0, 60, 8)[:8]:
                rows.denied(START + timedelta(days=d, hours=h, minutes=m), BROKEN)
    t0 = START + timedelta(days=76, hours=19, minutes=7)
    loop(rows, t0, 3_000, 20)
    db = tmp_path / "s.duckdb"
    with writer(db) as w:
        insert_events(w, rows)
    settings = load_settings(tmp_path / "absent.toml")
    since = (START + timedelta(days=70)).date()
    with store.open_reader(db) as con:
        whole = spikes.detect_spikes(con, settings, since)
        f = Filters(domains=("acme",), start=since, end=(START + timedelta(days=79)).date())
        f.apply(con)
        seen = con.execute("SELECT count(*) FROM events").fetchone()[0]
        found = spikes.detect_spikes(con, settings, since)
        assert con.execute("SELECT count(*) FROM events").fetchone()[0] == seen  # the filter is back
        assert Filters.applied(con) == f
    assert found["kind"].tolist() == ["download"], found[["kind", "start", "observed"]]
    (s,) = found.itertuples()
    assert (s.package, s.start, s.excess) == ("steady", t0.replace(minute=0), pytest.approx(3_000, abs=2))
    keys = ["kind", "level", "package", "principal_arn", "start", "end", "observed"]
    pd.testing.assert_frame_equal(found[keys], whole[keys])
