"""The shape every collector shares: scopes -> collect(ctx, scope) -> one collector_runs row each.

A collector module exposes a CollectorSpec. Its `collect` does fetch (the only boto3 code) ->
normalize (pure) -> load (upserts and the watermark in one transaction, then store.bump_version).
run_collectors() runs every scope, records each in `collector_runs`, keeps going when one scope
fails (printing the one-line error with its fix), prints one summary line per scope, and returns the
process exit code (0 when every scope succeeded).

Reads/writes: collector_runs (here); everything else in the collectors themselves.
"""

from __future__ import annotations

import logging
import sys
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import duckdb

from core import store
from core.aws import Clients, Scope, aws_errors, default_session
from core.clock import utc_now
from core.errors import CaaError, CredentialsError, echo, first_line
from core.settings import Settings

log = logging.getLogger("caa")


@dataclass
class ScopeResult:
    rows: int = 0
    skipped: int = 0
    skipped_items: list[str] = field(default_factory=list)
    window: str = ""

    def skip(self, item: str, why: str) -> None:
        self.skipped += 1
        self.skipped_items.append(f"{item}: {why}")


PARTIAL_EXIT = 3  # `caa collect` collected what it could and skipped bad input (README: exit codes)


@dataclass
class RunContext:
    """Everything a collector needs; built by the CLI (or a test) once per run."""

    settings: Settings
    con: duckdb.DuckDBPyConnection
    now: datetime = field(default_factory=utc_now)
    since: date | None = None
    source: str | None = None
    debug: bool = False
    clients: Any = None  # core.aws.Clients; a test may pass its own
    show_progress: bool | None = None

    @property
    def interactive(self) -> bool:
        return sys.stderr.isatty() if self.show_progress is None else self.show_progress

    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Callable[[int], None]]:
        """A rich progress bar on a terminal, nothing otherwise. Yields advance(n)."""
        if not self.interactive:
            yield lambda n=1: None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), transient=True) as bar:
            task = bar.add_task(description, total=total)
            yield lambda n=1: bar.advance(task, n)


@dataclass(frozen=True)
class CollectorSpec:
    name: str
    collect: Callable[[RunContext, Scope], ScopeResult]
    scopes: Callable[[RunContext], list[Scope]]


def account_region_scopes(ctx: RunContext) -> list[Scope]:
    """One scope per configured account and region; the caller's own account when none is configured."""
    accounts = ctx.settings.accounts
    if not accounts:
        return [Scope(account_id=None, region=r) for r in _default_regions()]
    return [Scope(a.id, r, a.role_arn) for a in accounts for r in a.regions]


# AWS clients and the caller's account, shared by the collectors that call AWS from a scope
_callers: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def clients(ctx: RunContext) -> Any:
    """ctx.clients, created from the settings on first use."""
    if ctx.clients is None:
        ctx.clients = Clients(ctx.settings)
    return ctx.clients


def resolve_account(ctx: RunContext, scope: Scope) -> Scope:
    """The scope with its account id filled in: from sts:GetCallerIdentity, once per Clients object."""
    if scope.account_id:
        return scope
    c = clients(ctx)
    try:
        account = _callers.get(c)
    except TypeError:  # an object that cannot be weakly referenced: no cache
        account = None
    if account is None:
        with aws_errors(scope, "sts"):
            account = c.client(scope, "sts").get_caller_identity()["Account"]
        try:
            _callers[c] = account
        except TypeError:
            pass
    return Scope(account_id=account, region=scope.region, role_arn=scope.role_arn, source=scope.source)


def _default_regions() -> list[str]:
    return [default_session().region_name or "us-east-1"]


def _start_run(con: duckdb.DuckDBPyConnection, collector: str, scope: Scope) -> int:
    return con.execute(
        "INSERT INTO collector_runs (collector, scope, account_id, region, started_at, status) "
        "VALUES (?, ?, ?, ?, ?, 'running') RETURNING run_id",
        [collector, scope.label, scope.account_id, scope.region, utc_now()],
    ).fetchone()[0]


def _finish_run(con: duckdb.DuckDBPyConnection, run_id: int, status: str, result: ScopeResult | None,
                error: str | None) -> None:
    result = result or ScopeResult()
    con.execute(
        "UPDATE collector_runs SET finished_at = ?, status = ?, rows = ?, skipped = ?, skipped_items = ?, "
        "error = ? WHERE run_id = ?",
        [utc_now(), status, result.rows, result.skipped, result.skipped_items or None, error, run_id],
    )
    store.bump_version(con)  # a run that changed no data (or failed) must still reach the readers


def mark_interrupted(con: duckdb.DuckDBPyConnection) -> int:
    """Runs left 'running' by a killed process (we hold the lock, so none is really running)."""
    n = len(con.execute(
        "UPDATE collector_runs SET status = 'interrupted', error = 'the process was stopped before it finished; "
        "the next run resumes from the last committed batch' WHERE status = 'running' RETURNING run_id"
    ).fetchall())
    if n:
        store.bump_version(con)
    return n


def run_collectors(specs: Iterable[CollectorSpec], ctx: RunContext) -> int:
    """Run every scope of every spec; return 0 if all succeeded, 1 otherwise."""
    mark_interrupted(ctx.con)
    failures = 0
    for spec in specs:
        for scope in spec.scopes(ctx):
            run_id = _start_run(ctx.con, spec.name, scope)
            t0 = time.monotonic()
            try:
                result = spec.collect(ctx, scope)
            except CredentialsError as e:  # every further call would fail the same way: stop here
                _finish_run(ctx.con, run_id, "failed", None, str(e))
                echo(f"failed {spec.name} {scope.label}: {e}", err=True)
                return 1
            except CaaError as e:
                failures += 1
                _finish_run(ctx.con, run_id, "failed", None, str(e))
                echo(f"failed {spec.name} {scope.label}: {e}", err=True)
                continue
            except KeyboardInterrupt:
                _finish_run(ctx.con, run_id, "interrupted", None, "interrupted by the user")
                raise
            except Exception as e:  # a bug, not a user error: record it, keep the other scopes going
                full = store.disk_error(e)
                if full:  # the store cannot be written: no further scope can succeed
                    try:
                        _finish_run(ctx.con, run_id, "failed", None, str(full))
                    except Exception:  # noqa: BLE001, S110 - the disk is full; the run row stays 'running'
                        pass
                    raise full from None
                damaged = store.damage_error(e)
                if damaged:  # a damaged store: no further scope can succeed either
                    raise damaged from None
                failures += 1
                msg = f"internal error {type(e).__name__}: {first_line(e)}"
                _finish_run(ctx.con, run_id, "failed", None, msg)  # also under --debug: a failure, not an interruption
                if ctx.debug:
                    raise
                echo(f"failed {spec.name} {scope.label}: {msg} (run with --debug for the traceback)", err=True)
                continue
            status = "partial" if result.skipped else "ok"
            _finish_run(ctx.con, run_id, status, result, None)
            secs = time.monotonic() - t0
            window = f" window={result.window}" if result.window else ""
            echo(f"collected {spec.name} {scope.label}{window} rows={result.rows} "
                 f"skipped={result.skipped} secs={secs:.1f}")
            for item in result.skipped_items[:20]:
                echo(f"  skipped {item}", err=True)
            if len(result.skipped_items) > 20:
                echo(f"  ... and {len(result.skipped_items) - 20} more (see collector_runs.skipped_items)", err=True)
    return 1 if failures else 0

