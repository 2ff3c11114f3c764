"""`caa apply`: act on the approved rows of a cleanup report, so that nothing can surprise anyone.

A dry run (the default) makes no AWS call: it re-checks the rows against the store and prints, per
domain, what would happen. `--execute` re-checks every row against the store (downloads after the
report, protection and dependency rules of analytics.cleanup) and against AWS (list_package_versions:
status and revision), asks for each domain's name to be typed (or takes --yes), then calls
update_package_versions_status / dispose_package_versions / delete_package_versions in batches of at most
100 versions of one package, each passing expectedStatus and (where the operation has it)
versionRevisions, so a concurrent change fails safe. failedVersions are reported per version.

Reads: the report file; the store's domains, package_versions, downloads, events, package_dependencies
and apply_log; AWS (sts:GetCallerIdentity, codeartifact:ListPackageVersions and the write operations).
Writes: apply_runs and apply_log (a batch's log rows in one transaction with its run counters, right
after the call returns), and `<input stem>.result.<ext>` beside the report.
"""

from __future__ import annotations

import getpass
import json
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
from botocore.exceptions import BotoCoreError, ClientError

from actions.plan import (
    ACTIONS,
    STAGED,
    Row,
    adopt_archived,
    batches,
    call_params,
    confirm_domains,
    download_skip,
    file_sha256,
    fresh_skip,
    print_plan,
    record_response,
    report_time,
    result_frame,
    result_path,
    rows_from_frame,
)
from analytics import cleanup, rollups
from analytics.reports import read_table, write_table
from core import store
from core.aws import DENIED, EXPIRED, Scope, paginate, translate
from core.clock import utc_now
from core.errors import ConfigError, DataError, echo, first_line
from core.settings import Settings

SERVICE = "codeartifact"
_S, _TS, _I = pa.string(), pa.timestamp("us", tz="UTC"), pa.int64()
LOG_COLUMNS = {"run_id": _I, "logged_at": _TS, "who": _S, "action": _S, "account_id": _S, "region": _S, "domain": _S,
               "repository": _S, "format": _S, "namespace": _S, "package": _S, "version": _S,
               "expected_status": _S, "expected_revision": _S, "result": _S, "error_code": _S, "message": _S,
               "new_status": _S, "new_revision": _S, "input_sha256": _S, "batch": _I}
ROW_COLUMNS = {"line": _I, "account_id": _S, "region": _S, "domain": _S, "repository": _S, "format": _S,
               "namespace": _S, "package": _S, "version": _S, "since": _TS}
# A request of a row's version, its names as CodeArtifact compares them (core/schema/021_name_keys.sql): pip may
# fetch `Zope.Interface` of the stored `zope-interface`, and CloudTrail records what the client sent. A domain's
# name is unique only within its account (the events' account_id is the domain owner's) and Region.
_MATCH = ("d.account_id = t.account_id AND d.region = t.region AND d.domain = t.domain AND d.format = t.format "
          "AND namespace_key(d.format, d.namespace) IS NOT DISTINCT FROM namespace_key(t.format, t.namespace) "
          "AND package_key(d.format, d.package) = package_key(t.format, t.package) "
          "AND version_key(d.format, d.version) = version_key(t.format, t.version)")
# Downloads of each row's version (matched as analytics/sql/cleanup_versions.sql matches them).
DOWNLOADS_SQL = (f"SELECT t.line, max(d.event_at), count(*) FILTER (WHERE d.event_at > $report_at) "
                 f"FROM _caa_rows t JOIN downloads d ON {_MATCH} AND d.repository = t.repository GROUP BY t.line")
# Failed requests for a staged version after it was archived, through any repository of its domain.
FAILED_SQL = (f"SELECT t.line, count(*), max(d.event_at) FROM _caa_rows t JOIN events d ON {_MATCH} "
              "AND d.error_code IS NOT NULL AND d.event_at > t.since GROUP BY t.line")
STORE_SQL = ("SELECT t.line, v.status, v.revision FROM _caa_rows t JOIN package_versions v ON "
             "v.domain = t.domain AND v.repository = t.repository AND v.format = t.format "
             "AND v.namespace IS NOT DISTINCT FROM t.namespace AND v.package = t.package AND v.version = t.version "
             "AND v.account_id = $account AND v.region = $region")
KEY_COLS = "account_id, region, domain, repository, format, namespace, package, version"
ARCHIVED_SQL = (f"SELECT {KEY_COLS}, max(logged_at), arg_max(new_revision, logged_at) FROM apply_log "
                "WHERE action = 'staged:archive' AND result = 'ok' GROUP BY ALL")
DONE_SQL = (f"SELECT {KEY_COLS}, min(run_id) FROM apply_log WHERE input_sha256 = ? AND action = ? "
            "AND result = 'ok' GROUP BY ALL")


def _rows_table(con: duckdb.DuckDBPyConnection, rows: list[Row], since: dict[int, datetime] | None = None) -> None:
    data = {c: [getattr(r, c) if c != "since" else (since or {}).get(r.line) for r in rows] for c in ROW_COLUMNS}
    con.register("_caa_rows", pa.table({c: pa.array(v, type=t) for (c, t), v in
                                        zip(ROW_COLUMNS.items(), data.values(), strict=True)}))


def resolve_regions(con: duckdb.DuckDBPyConnection, rows: list[Row], path: Path) -> None:
    """Each row's region from the store's domains table; a one-line error when missing or ambiguous."""
    found: dict[tuple[str, str], list[str]] = {}
    for acct, dom, region in con.execute("SELECT DISTINCT account_id, domain, region FROM domains").fetchall():
        found.setdefault((acct, dom), []).append(region)
    for r in (r for r in rows if r.open):  # a row skipped on reading (its names changed) has no region to find
        regions = sorted(found.get((r.account_id, r.domain), []))
        if not regions:
            raise DataError(f"domain {r.domain} of account {r.account_id} is not in the store (row {r.line})",
                            where=str(path), fix="run `caa collect inventory` for that account, then apply again")
        if len(regions) > 1:
            raise DataError(f"domain {r.domain} of account {r.account_id} exists in several regions "
                            f"({', '.join(regions)}); the report does not say which (row {r.line})",
                            where=str(path), fix="split the report per region and apply each with its own store")
        r.region = regions[0]


def plan_actions(con: duckdb.DuckDBPyConnection, rows: list[Row], action: str, min_archived_days: int,
                 now: datetime) -> None:
    """Choose each row's concrete action and expected status/revision (staged: archive or dispose)."""
    archived = {}
    if action == "staged":
        archived = {tuple(k[:8]): (k[8], k[9]) for k in con.execute(ARCHIVED_SQL).fetchall()}
    by_region: dict[tuple[str, str], list[Row]] = {}
    rows = [r for r in rows if r.open]
    for r in rows:
        by_region.setdefault((r.account_id, r.region), []).append(r)
    stored: dict[int, tuple[str, str | None]] = {}
    for (acct, region), group in by_region.items():
        _rows_table(con, group)
        stored.update({line: (s, rev) for line, s, rev in
                       con.execute(STORE_SQL, {"account": acct, "region": region}).fetchall()})
    since = {}
    for r in rows:
        at = archived.get(r.key)
        if at is not None:
            r.action, r.expected_status, r.expected_revision = "staged:dispose", "Archived", at[1]
            since[r.line] = at[0]
            days = (now - at[0]) / timedelta(days=1)
            if days < min_archived_days:
                r.skip(f"archived {days:.0f} d ago at {at[0]:%Y-%m-%d %H:%M}Z; disposed only after "
                       f"{min_archived_days} d (--min-archived-days)")
            continue
        r.action = "staged:archive" if action == "staged" else action
        r.expected_status = r.status
        s = stored.get(r.line)
        if s is None:
            r.skip("not in the store's inventory any more (deleted, or run `caa collect inventory`)")
        elif s[0] != r.status:
            r.skip(f"status changed: the store has {s[0]}, the report {r.status}")
        elif r.revision is not None:
            r.expected_revision = r.revision
        else:
            r.expected_revision = s[1]
            r.notes.append("expected revision taken from the store (the report has no revision column)")
    _check_staged_window(con, [r for r in rows if r.open and r.action == "staged:dispose"], since,
                         min_archived_days)


def _check_staged_window(con: duckdb.DuckDBPyConnection, rows: list[Row], since: dict[int, datetime],
                         min_days: int) -> None:
    """A staged version is disposed only if nobody tried to fetch it while archived, as far as CloudTrail
    in the store covers the whole window."""
    if not rows:
        return
    latest = con.execute("SELECT max(event_at) FROM events").fetchall()[0][0]
    _rows_table(con, rows, since)
    failed = {line: (n, at) for line, n, at in con.execute(FAILED_SQL).fetchall()}
    for r in rows:
        if r.line in failed:
            n, at = failed[r.line]
            r.skip(f"requested {n} time(s) while archived, the last at {at:%Y-%m-%d %H:%M}Z: keep it, or "
                   "restore it with update_package_versions_status(targetStatus=Published)")
        elif latest is None or latest < since[r.line] + timedelta(days=min_days):
            r.skip(f"CloudTrail in the store reaches only {latest or 'nothing'}; run `caa collect cloudtrail` "
                   "so the whole archived window is checked")


def skip_duplicates(rows: list[Row]) -> None:
    """A version approved twice is acted on once: later rows with the same key are skipped."""
    first: dict[tuple, int] = {}
    for r in (r for r in rows if r.open):
        key = (r.account_id, r.domain, r.repository, r.format, r.namespace, r.package, r.version)
        if key in first:
            r.skip(f"duplicate of row {first[key]}", "DUPLICATE")
        else:
            first[key] = r.line


def report_policy(df: Any, rows: list[Row], path: Path) -> dict[str, Any]:
    """The cleanup policy the report was made with (its policy column), the same on every approved row."""
    if "policy" not in df.columns:
        raise DataError("the report does not record the cleanup policy it was made with (no policy column)",
                        where=str(path), fix="make the report again with `caa report cleanup` and approve rows in it")
    texts = {str(df["policy"].iloc[r.line - 1]).strip() for r in rows}
    if len(texts) != 1 or not next(iter(texts)) or next(iter(texts)) in ("None", "nan"):
        raise DataError(f"the approved rows carry {len(texts)} different cleanup policies", where=str(path),
                        fix="approve rows of one report, as `caa report cleanup` wrote it")
    try:
        policy = json.loads(texts.pop())
        if not isinstance(policy, dict) or set(policy) != set(cleanup.JUDGING):
            raise ValueError(f"keys {sorted(policy) if isinstance(policy, dict) else policy}")
    except ValueError as e:
        raise DataError(f"the report's policy column is not a caa cleanup policy ({str(e)[:80]})", where=str(path),
                        fix="make the report again with `caa report cleanup`") from None
    return policy


def check_policy(con: duckdb.DuckDBPyConnection, settings: Settings, rows: list[Row], policy: dict[str, Any]) -> None:
    """Judge every open row again by the report's policy on today's store (cleanup.evaluate: unused days,
    keep-latest, keep-latest-per-major, minimum age, protect globs, pins, statuses, dependencies), skipping
    with the reason any row that is no longer a candidate, and recompute what the rows still open free
    (per domain by asset hash, among themselves) instead of trusting the file's bytes and dollars."""
    open_rows = [r for r in rows if r.open]
    if not open_rows:
        return
    judged = cleanup.evaluate(con, settings, **policy)
    if "candidate" not in judged or judged.empty:
        for r in open_rows:
            r.skip("the store has no CloudTrail events, so nothing can be judged unused: run `caa collect cloudtrail`")
        return
    pos = {k: i for i, k in enumerate(judged[cleanup.KEY].itertuples(index=False, name=None))}
    candidate = judged["candidate"].to_numpy(dtype=bool)
    for r in open_rows:
        i = pos.get(r.key)
        if i is None:
            r.skip("not in the store's inventory any more (deleted, or run `caa collect inventory`)")
        elif not candidate[i]:
            r.skip(f"no longer a candidate under the report's policy: {judged['kept_because'].iloc[i]}", "POLICY")
    chosen = np.zeros(len(judged), dtype=bool)
    chosen[[pos[r.key] for r in rows if r.open]] = True
    freed = cleanup.reclaim(con, judged, chosen, judged["refetchable"].to_numpy(dtype=bool))
    for r in rows:
        i = pos.get(r.key)
        r.reclaimable_bytes = int(freed[i]) if r.open and i is not None else 0
        r.monthly_savings_usd = r.reclaimable_bytes / cleanup.GIB * settings.prices.for_region(r.region)[0]


def check_store(con: duckdb.DuckDBPyConnection, settings: Settings, rows: list[Row], report_at: datetime,
                counted_last: bool) -> None:
    """Skip rows downloaded after the report, and rows now protected, pinned or depended on."""
    open_rows = [r for r in rows if r.open]
    _rows_table(con, open_rows)
    hits = {line: (newest, n) for line, newest, n in
            con.execute(DOWNLOADS_SQL, {"report_at": report_at}).fetchall()}
    for r in open_rows:
        newest, n = hits.get(r.line, (None, 0))
        why = download_skip(r, newest, n, report_at, counted_last and r.action != "staged:dispose")
        if why:
            r.skip(why)
    pol = cleanup.policy(settings)
    for r in (r for r in rows if r.open):
        rule = (cleanup.matches_glob(r.format, r.namespace, r.package, pol.protect)
                or cleanup.matches_pin(r.namespace, r.package, r.version, pol.pins))
        if rule:
            r.skip(f"protected by {rule!r} in [cleanup]")
    _check_dependencies(con, [r for r in rows if r.open])


def _check_dependencies(con: duckdb.DuckDBPyConnection, rows: list[Row]) -> None:
    """The cleanup dependency rule, with 'kept' = every stored version this run does not change."""
    inv = con.execute(f"SELECT {KEY_COLS}, status FROM package_versions").df()
    inv["namespace"] = inv["namespace"].astype(object).where(inv["namespace"].notna(), None)
    pos = {k: i for i, k in enumerate(inv[cleanup.KEY].itertuples(index=False, name=None))}
    acting = [pos.get(r.key) for r in rows]
    kept = np.ones(len(inv), dtype=bool)
    kept[[i for i in acting if i is not None]] = False
    needed = cleanup.protect_dependencies(inv, kept, cleanup.dependency_edges(con, inv))
    for r, i in zip(rows, acting, strict=True):
        if i is not None and needed[i]:
            r.skip(f"depended on: {needed[i]}")


def skip_done(con: duckdb.DuckDBPyConnection, rows: list[Row], sha: str) -> None:
    """Skip versions a previous run of the same input (same content hash) already changed."""
    for action in {r.action for r in rows if r.open}:
        done = {tuple(k[:8]): k[8] for k in con.execute(DONE_SQL, [sha, action]).fetchall()}
        for r in rows:
            if r.open and r.action == action and r.key in done:
                r.skip(f"already done by run {done[r.key]} of this report", "ALREADY_DONE")


def _scope(settings: Settings, account_id: str, region: str) -> Scope:
    role = next((a.role_arn for a in settings.accounts if a.id == account_id), None)
    return Scope(account_id, region, role)


def caller(clients: Any, settings: Settings, rows: list[Row]) -> dict[str, str]:
    """account_id -> "caller ARN (os user NAME)" from sts:GetCallerIdentity."""
    user, out = _os_user(), {}
    for acct, region in sorted({(r.account_id, r.region) for r in rows}):
        if acct in out:
            continue
        scope = _scope(settings, acct, region)
        try:
            arn = clients.client(scope, "sts").get_caller_identity()["Arn"]
        except (ClientError, BotoCoreError) as e:
            raise translate(e, scope, "sts", "sts:GetCallerIdentity") or e from None
        out[acct] = f"{arn} (os user {user})"
    return out


def check_fresh(clients: Any, settings: Settings, rows: list[Row]) -> None:
    """list_package_versions for every package of the open rows; skip rows whose status or revision moved."""
    packages: dict[tuple, list[Row]] = {}
    for r in rows:
        if r.open:
            packages.setdefault(r.package_key, []).append(r)
    for (acct, region, dom, repo, fmt, ns, pkg), group in packages.items():
        scope = _scope(settings, acct, region)
        params = {"domain": dom, "domainOwner": acct, "repository": repo, "format": fmt, "package": pkg}
        if ns is not None:
            params["namespace"] = ns
        try:
            listed = {v["version"]: v for v in paginate(clients.client(scope, SERVICE), "list_package_versions",
                                                        "versions", **params)}
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise translate(e, scope, SERVICE, f"domain={dom} repository={repo}") or e from None
            listed = {}
        except BotoCoreError as e:
            raise translate(e, scope, SERVICE, f"domain={dom} repository={repo}") or e from None
        for r in group:
            why = fresh_skip(r, listed.get(r.version), (ACTIONS.get(r.action) or STAGED[r.action]).target_status)
            if why:
                r.skip(why, "CHANGED")


@contextmanager
def hold_interrupts() -> Iterator[None]:
    """Ctrl+C during a batch takes effect once the batch's log rows are committed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda *_: caught.append(1))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


class Log:
    """apply_runs and apply_log of one run."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path, sha: str, action: str, mode: str,
                 who: str, report_at: datetime):
        self.con, self.sha, self.who = con, sha, who
        with store.load_transaction(con):
            self.run_id = con.execute(
                "INSERT INTO apply_runs (input_file, input_sha256, action, mode, who, report_at, started_at, "
                "status) VALUES (?, ?, ?, ?, ?, ?, ?, 'running') RETURNING run_id",
                [str(path), sha, action, mode, who, report_at, utc_now()]).fetchall()[0][0]

    def write(self, rows: list[Row], who: dict[str, str], batch: int | None = None) -> None:
        """Log rows (and count a batch as done) in one transaction."""
        if not rows:
            return
        at = utc_now()
        recs = [{**{c: getattr(r, c) for c in LOG_COLUMNS if hasattr(r, c)}, "run_id": self.run_id, "logged_at": at,
                 "who": who.get(r.account_id, self.who), "input_sha256": self.sha, "batch": batch,
                 "message": "; ".join(x for x in [r.message, *(r.notes if r.result != "skipped" else [])] if x) or None} for r in rows]
        n = {k: sum(r.result == k for r in rows) for k in ("ok", "failed", "skipped")}
        with store.load_transaction(self.con):
            store.insert_rows(self.con, "apply_log", recs, LOG_COLUMNS)
            self.con.execute("UPDATE apply_runs SET batches_done = batches_done + ?, ok = ok + ?, "
                             "failed = failed + ?, skipped = skipped + ? WHERE run_id = ?",
                             [int(batch is not None), n["ok"], n["failed"], n["skipped"], self.run_id])

    def finish(self, status: str) -> None:
        with store.load_transaction(self.con):
            self.con.execute("UPDATE apply_runs SET status = ?, finished_at = ? WHERE run_id = ?",
                             [status, utc_now(), self.run_id])


def execute_batches(clients: Any, settings: Settings, rows: list[Row], log: Log, who: dict[str, str],
                    echo: Callable[[str], None]) -> None:
    """Call the API batch by batch; each batch is logged right after its call returns."""
    for n, batch in enumerate(batches(rows), start=1):
        skip_done(log.con, batch, log.sha)  # a previous run of this input may have done them meanwhile
        log.write([r for r in batch if not r.open], who)
        batch = [r for r in batch if r.open]
        if not batch:
            continue
        first = batch[0]
        spec = STAGED.get(first.action) or ACTIONS[first.action]
        scope = _scope(settings, first.account_id, first.region)
        with hold_interrupts():
            try:
                response = getattr(clients.client(scope, SERVICE), spec.operation)(**call_params(spec, batch))
            except (ClientError, BotoCoreError) as e:
                code = e.response.get("Error", {}).get("Code", "") if isinstance(e, ClientError) else type(e).__name__
                for r in batch:
                    r.result, r.error_code, r.message = "failed", code, first_line(e)
                log.write(batch, who, n)
                if code in DENIED or code in EXPIRED or not isinstance(e, ClientError):
                    err = translate(e, scope, SERVICE, f"domain={first.domain} repository={first.repository}")
                    if err is not None and err.fix:
                        err.fix = err.fix.replace("iam/caa-collect.json", "iam/caa-cleanup.json")
                    raise (err or e) from None
                echo(f"failed batch {n} ({len(batch)} versions of {first.package}): {code}")
                continue
            record_response(batch, response)
            log.write(batch, who, n)
        ok = sum(r.result == "ok" for r in batch)
        echo(f"batch {n}: {spec.operation} {first.domain}/{first.repository} {first.package}: "
             f"{ok} ok, {len(batch) - ok} failed")
        for r in batch:
            if r.result == "failed":
                echo(f"  failed {r.label}: {r.error_code} {r.message or ''}".rstrip())


def run_apply(settings: Settings, report: Path, action: str, *, execute: bool = False, yes: bool = False,
              select_all: bool = False, min_archived_days: int = 30, clients: Any = None,
              ask: Callable[[str], str] | None = None, echo: Callable[[str], None] = echo) -> int:
    """The whole of `caa apply`; returns the exit code (1 when any version failed)."""
    if action not in (*ACTIONS, "staged"):
        raise ConfigError(f"unknown action {action!r}", fix="use unlist, archive, dispose, delete or staged")
    if select_all and not yes:
        raise ConfigError("--all acts on every row of the report and needs --yes", where="caa apply",
                          fix="mark rows in the approve column instead, or pass --all --yes")
    report = Path(report)
    df = read_table(report)
    rows = rows_from_frame(df, report, select_all)
    sha, (report_at, source) = file_sha256(report), report_time(report, df)
    if not rows:
        raise DataError("no approved rows in the report", where=str(report),
                        fix="write yes, true or x in the approve column of the versions to act on")
    echo(f"{len(rows):,} approved rows in {report}; report time {report_at:%Y-%m-%d %H:%M:%S}Z ({source})")
    policy = report_policy(df, rows, report)
    with rollups.writer(settings.db) as con:
        resolve_regions(con, rows, report)
        skip_duplicates(rows)
        plan_actions(con, rows, action, min_archived_days, utc_now())
        skip_done(con, rows, sha)
        check_store(con, settings, rows, report_at, "last_downloaded_at" in df.columns)
        check_policy(con, settings, rows, policy)
        if any(r.notes for r in rows):
            echo("note: the report has no revision column: each expected revision is the store's")
        if not execute:
            return _dry_run(con, rows, report, sha, action, report_at, echo)
        if not yes and ask is None:
            raise ConfigError("--execute needs a confirmation and this is not an interactive terminal",
                              where="caa apply", fix="run it in a terminal, or add --yes for a non-interactive run")
        who = caller(clients, settings, rows)
        log = Log(con, report, sha, action, "execute", "; ".join(sorted(set(who.values()))), report_at)
        status = "failed"
        try:
            check_fresh(clients, settings, rows)
            adopt_archived(rows)
            print_plan(rows, action, echo, f"caa apply --action {action} --execute:")
            confirm_domains(rows, action, ask, yes, echo)
            log.write([r for r in rows if not r.open], who)
            execute_batches(clients, settings, rows, log, who, echo)
            status = "partial" if any(r.result == "failed" for r in rows) else "ok"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            log.finish(status)  # store.writer publishes it, also when the run ends in an exception
            out = write_table(result_frame(rows, log.run_id), result_path(report))
            echo(f"run {log.run_id} {status}: " + ", ".join(
                f"{sum(r.result == k for r in rows):,} {k}" for k in ("ok", "failed", "skipped"))
                + f"; {sum(r.result is None for r in rows):,} not reached; result: {out}")
    return 1 if status != "ok" else 0


def _dry_run(con: duckdb.DuckDBPyConnection, rows: list[Row], report: Path, sha: str, action: str,
             report_at: datetime, echo: Callable[[str], None]) -> int:
    for r in rows:
        if r.open:
            r.result = "planned"
    log = Log(con, report, sha, action, "dry-run", f"(dry run, os user {_os_user()})", report_at)
    log.write(rows, {})
    log.finish("planned")
    print_plan(rows, action, echo, f"dry run (no AWS call made) of --action {action}; status and revision are "
                                   "re-checked against AWS with --execute:")
    out = write_table(result_frame(rows, log.run_id), result_path(report))
    echo(f"run {log.run_id}: {sum(r.result == 'planned' for r in rows):,} planned, "
         f"{sum(r.result == 'skipped' for r in rows):,} skipped; result: {out}; "
         "add --execute to act")
    return 0


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"

