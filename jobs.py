"""`caa schedule`: a foreground scheduler that runs the collectors, the analytics refresh, the cost e-mails
and the alerts on the cron expressions of settings.schedules (UTC).

Reads: settings.schedules, settings.db. Writes: nothing itself; each job is the CLI command run as a
subprocess (`python -m cli collect cloudtrail --db ...`), so a crash or a leak in a job cannot take the
scheduler down, and a job does exactly what the command does. The analytics job recomputes the
dashboard's default views (`caa refresh`, e.g. after caa.toml changed), writes the standard reports to
<store folder>/reports (data/reports/ for the default store) and keeps the newest KEEP_REPORTS of each.

Overlap: a job never overlaps with itself (max_instances=1, coalesce=True). Jobs that write the store
(collectors, analytics for the dashboard's views, alerts) run one at a time in their own single-thread
executor, so the cloudtrail and cloudwatch runs that fire in the same minute queue instead of colliding on
the write lock. A job that finds the store locked by another process (a manual `caa collect`) logs
"skipped: another caa process is writing" and waits for its next turn. One log line per run.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collectors.base import PARTIAL_EXIT
from core.clock import utc_now
from core.errors import printable
from core.settings import Settings

log = logging.getLogger("caa.schedule")

COLLECTORS = ("cloudtrail", "inventory", "cloudwatch", "costs", "cur")
JOBS = (*COLLECTORS, "analytics", "email", "alerts")
WRITERS = (*COLLECTORS, "analytics", "alerts")  # jobs that take the store's write lock
BUSY = "another caa process is writing"
JOB_TIMEOUT_S = 6 * 3600
VIEWS = "dashboard views:"  # the summary line of `caa refresh`, and of `caa collect` after its collectors
KEEP_REPORTS = 48
# (file stem, CLI arguments, format): the standard reports of the analytics refresh
REPORTS = [
    ("costs-by-domain", ["report", "costs", "--by", "domain"], "csv"),
    ("costs-by-repository", ["report", "costs", "--by", "repository"], "csv"),
    ("costs-by-team", ["report", "costs", "--by", "team"], "csv"),
    ("forecast", ["report", "forecast", "--months", "3"], "csv"),
    ("cleanup", ["report", "cleanup"], "csv"),
    ("spikes", ["report", "spikes"], "csv"),
    ("usage", ["report", "usage"], "xlsx"),
]


@dataclass(frozen=True)
class Result:
    job: str
    status: str  # ok | partial (bad input skipped, the rest collected) | skipped (store busy) | failed
    secs: float
    detail: str

    @property
    def line(self) -> str:
        if self.status == "skipped":
            return f"job={self.job} skipped: {BUSY} ({self.detail})"
        return f"job={self.job} {self.status} secs={self.secs:.1f}" + (f": {self.detail}" if self.detail else "")


def reports_dir(settings: Settings) -> Path:
    return Path(settings.db).resolve().parent / "reports"


def commands(job: str, settings: Settings) -> list[list[str]]:
    """The CLI invocations of a job (argv lists)."""
    if job not in JOBS:
        raise ValueError(f"unknown job {job!r}")
    base = [sys.executable, "-m", "cli"]
    db = ["--db", str(Path(settings.db).resolve())]
    if job in COLLECTORS:
        return [[*base, "collect", job, *db]]
    if job == "email":
        return [[*base, "email", "send", *db]]
    if job == "alerts":
        return [[*base, "alerts", "send", *db]]
    stamp = f"{utc_now():%Y%m%dT%H%MZ}"
    out = reports_dir(settings)
    return [[*base, "refresh", *db]] + [
        [*base, *args, "--format", fmt, "--out", str(out / f"{stem}-{stamp}.{fmt}"), *db]
        for stem, args, fmt in REPORTS]


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def _summary(text: str) -> str:
    """A command's last summary line, then its dashboard-views line when it printed one."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    views = [ln for ln in lines if ln.startswith(VIEWS)]
    rest = [ln for ln in lines if not ln.startswith(VIEWS)]
    return "; ".join(ln[:300] for ln in rest[-1:] + views[-1:])


def run_job(job: str, settings: Settings) -> Result:
    """Run one job now, as subprocesses; log and return one Result. Never raises for a failed job."""
    t0 = time.monotonic()
    if job == "cur" and not settings.cur.sources:  # the bill is optional: nothing to read is not a failure
        r = Result(job, "skipped", 0.0, "no CUR 2.0 export configured ([cur] sources)")
        log.info(r.line)
        return r
    done, partial = [], []
    for cmd in commands(job, settings):
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=JOB_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            r = Result(job, "failed", time.monotonic() - t0, f"timed out after {JOB_TIMEOUT_S}s: {' '.join(cmd[2:5])}")
            log.error(r.line)
            return r
        if p.returncode == PARTIAL_EXIT:
            partial.append(_last_line(p.stderr))
        elif p.returncode != 0:
            err = p.stderr + p.stdout
            if BUSY in err:
                r = Result(job, "skipped", time.monotonic() - t0, _last_line(p.stderr) or BUSY)
                log.info(r.line)
                return r
            r = Result(job, "failed", time.monotonic() - t0, f"exit {p.returncode}: {_last_line(p.stderr) or _last_line(p.stdout)}")
            log.error(r.line)
            return r
        done.append(_summary(p.stdout))
    if job == "analytics":
        prune_reports(reports_dir(settings))
        detail = f"{done[0]}; {len(done) - 1} reports in {reports_dir(settings)}"
    else:
        detail = done[-1] if done else ""
    r = Result(job, "partial" if partial else "ok", time.monotonic() - t0,
               "; ".join([detail, *partial]) if partial else detail)
    (log.warning if partial else log.info)(r.line)
    return r


def prune_reports(folder: Path, keep: int = KEEP_REPORTS) -> None:
    for stem, _, fmt in REPORTS:
        files = sorted(folder.glob(f"{stem}-*.{fmt}"))
        for old in files[:-keep]:
            old.unlink(missing_ok=True)


DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def cron_day_of_week(field: str) -> str:
    """A crontab day-of-week field (0 or 7 = Sunday, 1 = Monday) in APScheduler 3's terms, where numbers
    mean 0 = Monday: numbers become day names ("1-5" -> "mon,tue,wed,thu,fri"); names pass through."""
    if field == "*" or not any(ch.isdigit() for ch in field):
        return field
    days: set[int] = set()
    for part in field.split(","):
        rng, _, step = part.partition("/")
        if rng == "*":
            lo, hi = 0, 6
        elif "-" in rng:
            lo, hi = (int(x) for x in rng.split("-", 1))
        else:
            lo = hi = int(rng)
            hi = 6 if step else hi
        days |= {d % 7 for d in range(lo, hi + 1, int(step or 1))}
    return ",".join(DAYS[d] for d in sorted(days, key=lambda d: (d + 6) % 7))


def trigger(cron: str) -> Any:
    """An APScheduler CronTrigger in UTC from a standard 5-field crontab expression."""
    from apscheduler.triggers.cron import CronTrigger

    minute, hour, day, month, dow = cron.split()
    return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=cron_day_of_week(dow),
                       timezone=UTC)


def triggers(settings: Settings) -> dict[str, Any]:
    """job -> trigger from settings.schedules."""
    return {job: trigger(getattr(settings.schedules, job)) for job in JOBS}


def next_runs(settings: Settings, now: datetime | None = None) -> list[tuple[str, str, datetime | None]]:
    """(job, cron, next run time in UTC) for every job."""
    now = now or utc_now()
    return [(job, getattr(settings.schedules, job), trig.get_next_fire_time(None, now))
            for job, trig in triggers(settings).items()]


def build_scheduler(settings: Settings, scheduler_cls: Any = None) -> Any:
    """A scheduler with every job; BlockingScheduler unless a test passes BackgroundScheduler."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.blocking import BlockingScheduler

    cls = scheduler_cls or BlockingScheduler
    sched = cls(timezone=UTC,
                executors={"default": ThreadPoolExecutor(4), "writers": ThreadPoolExecutor(1)},
                job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 600})
    for job, trig in triggers(settings).items():
        sched.add_job(run_job, trig, args=[job, settings], id=job, name=job,
                      executor="writers" if job in WRITERS else "default")
    return sched


class _PrintableFormatter(logging.Formatter):
    """A job's line names files and packages from the data: printed as text, one line per event (a traceback
    that follows it keeps its lines)."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        return printable(super().formatMessage(record))


def setup_logging() -> None:
    """One line per event on stderr with a UTC time stamp; APScheduler's own chatter only from WARNING."""
    handler = logging.StreamHandler(sys.stderr)
    fmt = _PrintableFormatter("%(asctime)sZ %(message)s", datefmt="%Y-%m-%dT%H:%M:%S")
    fmt.converter = time.gmtime
    handler.setFormatter(fmt)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def serve(settings: Settings) -> None:
    """Run the scheduler in the foreground until Ctrl+C / SIGTERM."""
    sched = build_scheduler(settings)
    for job, cron, nxt in next_runs(settings):
        log.info(f"job={job} cron={cron!r} next={nxt:%Y-%m-%d %H:%M}Z")
    try:
        sched.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("scheduler stopped")
