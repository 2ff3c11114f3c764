"""Small helpers the tests share: run collectors against a store on disk, read tables back."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from analytics.rollups import writer  # the write session every caa command opens
from collectors.base import RunContext, run_collectors
from core import settings as settings_mod
from core import store
from tests.fixtures.trails import TRAIL_NOW

NO_CONFIG = Path("/nonexistent/caa.toml")


def make_settings(**overrides):
    return settings_mod.load_settings(NO_CONFIG, **overrides)


def collect(db: Path, specs: list, settings=None, now=TRAIL_NOW, **ctx_kwargs) -> int:
    """Run `specs` into `db` as a collection at `now` (default: when the fixture trails are collected)."""
    settings = settings or make_settings(db=db)
    with writer(db) as con:
        ctx = RunContext(settings=settings, con=con, show_progress=False, now=now, **ctx_kwargs)
        return run_collectors(specs, ctx)


def counting_gets(settings) -> tuple:
    """(clients, gets): AWS clients for `settings` whose every S3 GetObject call appends to the list `gets`."""
    from core.aws import Clients

    gets: list[int] = []
    clients = Clients(settings)
    real = clients.client

    def counting(scope, service, region=None):
        c = real(scope, service, region)
        c.meta.events.register("before-call.s3.GetObject", lambda **kw: gets.append(1))
        return c

    clients.client = counting
    return clients, gets


def rows(db: Path, sql: str, params=None) -> list[tuple]:
    """Read from the published reader snapshot, as the dashboard and `caa sql` do."""
    con = store.open_reader(db)
    assert con is not None, "no snapshot was published"
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def table(db: Path, name: str, exclude: tuple[str, ...] = ()) -> list[tuple]:
    """Every row of a table, sorted, without the named (clock-dependent) columns."""
    con = duckdb.connect(str(store.snapshot_path(db)), read_only=True)
    try:
        cols = [c for (c,) in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index", [name]
        ).fetchall() if c not in exclude]
        return con.execute(f"SELECT {', '.join(cols)} FROM {name} ORDER BY ALL").fetchall()
    finally:
        con.close()


APP = str(Path(__file__).resolve().parents[1] / "dashboard.py")


def run_page(**query):  # -> streamlit.testing.v1.AppTest
    """The dashboard under AppTest with these URL query parameters; fails on any exception box."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP)
    for k, v in query.items():
        at.query_params[k] = v
    at.run(timeout=60)
    assert not at.exception, [e.value for e in at.exception]
    return at


@contextmanager
def process_group(cmd: list[str], **popen) -> Iterator[subprocess.Popen]:
    """`cmd` started in a process group of its own; at the end of the block (also when the test fails)
    the whole group gets SIGTERM, then SIGKILL after 10 s, so no server a test starts outlives it."""
    proc = subprocess.Popen(cmd, start_new_session=True, **popen)
    try:
        yield proc
    finally:
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                os.killpg(proc.pid, 0)  # the leader is gone; is anything else of the group left?
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                break
