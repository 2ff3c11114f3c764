"""Every date-dependent path at the instants where calendars bite: the 1st before any full day of the
month, the 2nd at 03:00, New Year, a leap day, Europe's DST night and an ordinary mid-month day.

For each instant the clock is pinned (core.clock.pinned_clock) and a small store is written whose
traffic runs up to one minute before it, as a collection at that instant would leave it. Then: the
month to date and the Costs page's default window, the forecast per domain, the cost e-mail's headline
and domain table, the Overview's cost numbers, cleanup ages, the spike detector on the partial last day,
the schedule's next runs, the demo estate's end, and the time stamps shown to people (UTC, whatever the
local zone: the process runs with TZ=Europe/Berlin).
"""

from __future__ import annotations

import time as time_mod
from datetime import UTC, date, datetime, timedelta

import pytest

import jobs as schedule
from analytics import cleanup, costs, forecast, overview, spikes
from core import store
from core.clock import pinned_clock
from delivery import mail
from demo.estate import build_estate
from tests.helpers import make_settings, writer
from ui import views

A = "111111111111"
GIB = 1024**3
DAYS = 120
INSTANTS = {  # instant -> (last full day, early in the month)
    "2026-12-01T00:05:00+00:00": (date(2026, 11, 30), True),
    "2026-12-02T03:00:00+00:00": (date(2026, 12, 1), True),
    "2027-01-01T00:05:00+00:00": (date(2026, 12, 31), True),
    # its last event at 23:54 closes the day, and with it February: March is the month projected
    "2028-02-29T23:55:00+00:00": (date(2028, 2, 29), True),
    "2026-03-29T01:30:00+01:00": (date(2026, 3, 28), False),  # 00:30 UTC; Berlin moves to CEST at 01:00 UTC
    "2026-12-15T12:00:00+00:00": (date(2026, 12, 14), False),
}


def build_store(db, now: datetime) -> None:
    """Two domains in one account, storage every day for DAYS days, a download every 30 minutes of one
    package (versions 1.4.0 and 1.5.0) up to a minute before `now`; 1.2.0 last downloaded 200 days ago,
    1.0.0 and 1.1.0 never; all published 400 days ago."""
    last = now - timedelta(minutes=1)
    first = (now - timedelta(days=DAYS)).replace(hour=0, minute=0, second=0, microsecond=0)
    with writer(db) as con:
        for domain, gib in (("acme", 40), ("beta", 10)):
            con.execute("INSERT INTO storage_snapshots SELECT d::DATE, ?, 'us-east-1', ?, ?, d + INTERVAL 2 HOUR "
                        "FROM range(?::TIMESTAMPTZ, ?::TIMESTAMPTZ, INTERVAL 1 DAY) t(d)",
                        [A, domain, gib * GIB, first, last])
            con.execute("INSERT INTO repositories (account_id, region, domain, repository, tags, last_seen_at) "
                        "VALUES (?, 'us-east-1', ?, 'shared', MAP {}, ?)", [A, domain, now])
        for minor in range(6):
            version = f"1.{minor}.0"
            con.execute("INSERT INTO package_versions (account_id, region, domain, repository, format, package, "
                        "version, status, origin_type, published_at, first_seen_at, last_seen_at) VALUES "
                        "(?, 'us-east-1', 'acme', 'shared', 'npm', 'left-pad', ?, 'Published', 'INTERNAL', ?, ?, ?)",
                        [A, version, now - timedelta(days=400), now - timedelta(days=400), now])
            con.execute("INSERT INTO assets_rows VALUES (?, 'us-east-1', 'acme', 'shared', 'npm', NULL, 'left-pad', ?, ?, "
                        "?, ?)", [A, version, f"{version}.tgz", GIB, f"sha-{version}"])
        cols = ("event_id, event_at, event_name, account_id, region, domain, domain_owner, repository, format, "
                "package, version, asset, principal_arn, source_ip, user_agent")
        con.execute(f"INSERT INTO event_rows ({cols}) SELECT 'e' || epoch(t), t, 'ReadFromRepository', $a, 'us-east-1', "
                    "CASE WHEN minute(t) = 0 THEN 'acme' ELSE 'beta' END, $a, 'shared', 'npm', 'left-pad', "
                    "CASE WHEN hour(t) % 2 = 0 THEN '1.5.0' ELSE '1.4.0' END, 'x.tgz', "
                    "'arn:aws:iam::111111111111:user/ci', '192.0.2.1', 'npm/10' "
                    "FROM range($first::TIMESTAMPTZ, $last::TIMESTAMPTZ, INTERVAL 30 MINUTE) r(t)",
                    {"a": A, "first": first, "last": last})
        con.execute(f"INSERT INTO event_rows ({cols}) VALUES ('old', ?, 'ReadFromRepository', ?, 'us-east-1', 'acme', ?, "
                    "'shared', 'npm', 'left-pad', '1.2.0', '1.2.0.tgz', NULL, NULL, NULL), ('newest', ?, "
                    "'ReadFromRepository', ?, 'us-east-1', 'acme', ?, 'shared', 'npm', 'left-pad', '1.5.0', "
                    "'1.5.0.tgz', NULL, NULL, NULL)", [now - timedelta(days=200), A, A, last, A, A])
        store.bump_version(con)


@pytest.fixture
def berlin(monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time_mod.tzset()
    yield
    monkeypatch.undo()
    time_mod.tzset()


@pytest.mark.parametrize("instant", list(INSTANTS))
def test_every_date_path_at_the_instant(instant, tmp_path, berlin):
    now = datetime.fromisoformat(instant).astimezone(UTC)
    full_day, early = INSTANTS[instant]
    month_start = (full_day + timedelta(days=1)).replace(day=1)
    last_month = (month_start - timedelta(days=1)).replace(day=1)
    db = tmp_path / "caa.duckdb"
    settings = make_settings(db=db)
    with pinned_clock(now):
        build_store(db, now)
        with store.open_reader(db) as con:
            # month to date and the Costs page's default window
            assert costs.coverage(con).last_full_day == full_day
            assert costs.month_to_date(con) == (month_start, full_day)
            assert costs.early_in_month(month_start, full_day) is early
            window = (last_month, month_start - timedelta(days=1)) if early else (month_start, full_day)
            assert costs.default_window(con, None, None) == window
            assert views.cost_window(con, settings, None, None, None) == window

            # the forecast per domain: a number for every domain, adding up to the estate
            fc = forecast.forecast(con, settings, horizon_months=0, backtest=False)
            total = fc.monthly[fc.monthly["kind"] == "total"].iloc[0]
            assert total["month"] == month_start
            assert set(fc.by_domain["domain"]) == {"acme", "beta"}
            assert (fc.by_domain["expected_usd"] > 0).all()
            assert fc.by_domain["expected_usd"].sum() == pytest.approx(total["expected_usd"], rel=1e-9)
            backtested = forecast.forecast(con, settings, horizon_months=3).backtest
            assert backtested["mape_pct"].notna().all()  # 120 days of history: every kind is backtested

            # the cost e-mail: the headline, and no unknown cell in the domain table
            digest = mail.digest(mail.estate_numbers(con, settings), settings, ["all@example.com"])
            text = mail.render_text(digest)
            subject = mail.subject(digest)
            if early:
                assert subject.startswith(f"CodeArtifact cost {last_month:%B %Y}: $") and "final" in subject
            else:
                assert subject.startswith(f"CodeArtifact cost {month_start:%B %Y}: $") and "to date" in subject
            domains = text.split("Cost per domain\n", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
            assert {r.split()[2] for r in domains} == {"acme", "beta"}
            assert all("-" not in r.split()[3:6] for r in domains), domains

            # the Overview's cost numbers
            oc = views.overview_costs(con, settings)
            assert (oc.early, oc.last_month, oc.history_end) == (early, last_month, full_day)
            assert oc.last_month_usd > 0 and oc.projected() > 0
            when = overview.as_of(con)
            assert when.latest_event_at == now - timedelta(minutes=1)

            # cleanup ages: unused 180 days, keep the 3 newest; 1.2.0 was last fetched 200 days ago
            found = cleanup.report_cleanup(con, settings)
            assert sorted(found["version"]) == ["1.0.0", "1.1.0", "1.2.0"]

            # spikes: a steady download every 30 minutes is no open spike, also on a last day of 5 minutes
            # (the traffic's start in the history, after 80 silent days, is reported, and is not open)
            opened = spikes.detect_spikes(con, settings, full_day - timedelta(days=6))
            assert opened.query("kind == 'download'").empty, opened

        # the schedule's next runs: after now, in UTC, within a day for the defaults
        for job, _, nxt in schedule.next_runs(settings):
            assert now <= nxt <= now + timedelta(days=7), job  # a job due at this very minute runs now
            assert nxt.utcoffset() == timedelta(0)
        nxt = dict((j, n) for j, _, n in schedule.next_runs(settings))
        assert nxt["inventory"] == (now + timedelta(days=now.hour * 60 + now.minute >= 135)).replace(
            hour=2, minute=15, second=0, microsecond=0)

        # the demo estate ends at the clock's UTC midnight
        assert build_estate().end == datetime(now.year, now.month, now.day, tzinfo=UTC)
