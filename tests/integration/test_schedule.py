"""`caa schedule`: the job list from caa.toml, a collector run fired by the scheduler (its rows land in
the store), and a run that finds the store locked by another writer (skipped, with the clear message)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

import jobs
from core.settings import load_settings
from tests.fixtures.trails import TRAIL_NOW, trail_files, unique_events, write_local
from tests.helpers import rows, writer

NEVER = "0 0 1 1 *"  # jobs a test does not exercise: 1 January only


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """A store path, a local trail directory, and a caa.toml (exported as CAA_CONFIG for the job processes)."""
    files = trail_files(n_files=3, per_file=40)
    trails = write_local(tmp_path / "trails", files)
    config = tmp_path / "caa.toml"
    config.write_text(f'[cloudtrail]\nsources = ["{trails}"]\n\n[schedules]\ncloudtrail = "* * * * *"\n'
                      f'inventory = "{NEVER}"\ncloudwatch = "{NEVER}"\ncosts = "{NEVER}"\nanalytics = "{NEVER}"\n'
                      f'email = "0 8 * * 1"\nalerts = "{NEVER}"\n')
    monkeypatch.setenv("CAA_CONFIG", str(config))
    monkeypatch.setenv("CAA_NOW", TRAIL_NOW.isoformat())  # the job processes collect as of the trail's time
    db = tmp_path / "caa.duckdb"
    return load_settings(config, db=db), db, files


def _caa(*args: str, db) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args, "--db", str(db)], capture_output=True, text=True,
                          env=dict(os.environ), timeout=120)


def test_list_shows_every_job_with_its_cron_and_next_run(setup):
    _, db, _ = setup
    res = _caa("schedule", "--list", db=db)
    assert res.returncode == 0, res.stderr
    lines = {line.split()[0]: line for line in res.stdout.splitlines()}
    assert set(lines) == set(jobs.JOBS)
    assert "* * * * *" in lines["cloudtrail"] and NEVER in lines["costs"] and "0 8 * * 1" in lines["email"]
    nxt = datetime.strptime(lines["email"].split("next ")[1], "%Y-%m-%d %H:%MZ").replace(tzinfo=UTC)
    assert nxt.weekday() == 0 and nxt.hour == 8  # crontab's 1 is Monday (APScheduler 3's 1 would be Tuesday)


def test_cron_day_of_week_follows_crontab():
    assert jobs.cron_day_of_week("0") == jobs.cron_day_of_week("7") == "sun"
    assert jobs.cron_day_of_week("1-5") == "mon,tue,wed,thu,fri"
    assert jobs.cron_day_of_week("mon-fri") == "mon-fri"


def test_a_collector_job_fired_by_the_scheduler_loads_its_rows(setup, caplog):
    from apscheduler.schedulers.background import BackgroundScheduler

    settings, db, files = setup
    caplog.set_level(logging.INFO, logger="caa.schedule")
    sched = jobs.build_scheduler(settings, BackgroundScheduler)
    sched.start()
    try:
        job = sched.get_job("cloudtrail")
        assert job.max_instances == 1 and job.coalesce and job.executor == "writers"
        sched.modify_job("cloudtrail", next_run_time=datetime.now(UTC))
        deadline = time.monotonic() + 90
        while "job=cloudtrail" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        sched.shutdown(wait=True)
    (line,) = [r.getMessage() for r in caplog.records if r.name == "caa.schedule"][:1]
    assert line.startswith("job=cloudtrail ok secs=") and "collected cloudtrail" in line
    assert rows(db, "SELECT count(*) FROM events") == [(len(unique_events(files)),)]


def test_a_run_that_finds_the_store_busy_is_skipped_with_the_reason(setup, caplog):
    settings, db, _ = setup
    caplog.set_level(logging.INFO, logger="caa.schedule")
    with writer(db):  # another caa process is writing
        result = jobs.run_job("cloudtrail", settings)
        cli = _caa("schedule", "--once", "cloudtrail", db=db)
    assert result.status == "skipped"
    assert "job=cloudtrail skipped: another caa process is writing" in caplog.text
    assert cli.returncode == 0 and "job=cloudtrail skipped: another caa process is writing" in cli.stderr
    assert rows(db, "SELECT count(*) FROM events") == [(0,)]  # nothing ran
    assert jobs.run_job("cloudtrail", settings).status == "ok"  # and the next turn does


def test_the_bill_job_without_an_export_is_skipped_not_failed(setup, caplog):
    settings, db, _ = setup
    caplog.set_level(logging.INFO, logger="caa.schedule")
    result = jobs.run_job("cur", settings)  # [cur] sources is empty: the bill is optional
    assert result.status == "skipped" and "no CUR 2.0 export configured" in caplog.text


def test_a_job_that_skipped_bad_input_is_partial_not_failed(setup, caplog):
    import gzip

    settings, db, files = setup
    trails = settings.cloudtrail.sources[0]
    bad = sorted(k for k in files if "/CloudTrail/" in k)[0]
    (Path(trails) / bad).write_bytes(gzip.compress(b'{"Records": [{"eventID": "x",'))
    caplog.set_level(logging.INFO, logger="caa.schedule")
    result = jobs.run_job("cloudtrail", settings)
    assert result.status == "partial", result.line
    assert "job=cloudtrail partial" in caplog.text and "1 input item(s) skipped" in result.line
    assert rows(db, "SELECT count(*) > 0 FROM events") == [(True,)]  # the good files landed


def test_the_schedule_log_shows_names_from_the_data_as_text(capsys):
    """A job's line names trail keys and packages: an ESC sequence or a newline in one is logged as its escape,
    so the log stays one line per event and a terminal tailing it is not driven by the data."""
    log = logging.getLogger("caa.schedule")
    before = list(log.handlers)
    jobs.setup_logging()
    try:
        log.info("collect: skipped AWSLogs/evil\x1b]0;owned\x07\nname.json.gz")
    finally:
        for handler in log.handlers[len(before):]:
            log.removeHandler(handler)
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err and len(err.strip().splitlines()) == 1, err
    assert "skipped AWSLogs/evil\\x1b]0;owned\\x07\\x0aname.json.gz" in err
