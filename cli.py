"""`caa`: the one command. collect / refresh / demo / dashboard / sql (report, apply, email, schedule follow).

Every command that touches the store takes --db and honours CAA_DB. Errors print one line (what
failed, where, the fix) and exit non-zero; --debug (or CAA_DEBUG=1) shows tracebacks instead.

Reads and writes what each command's module says; this file only parses arguments and prints.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from enum import StrEnum
from importlib.util import find_spec
from pathlib import Path
from typing import Annotated, NoReturn

# Arrow's allocator (mimalloc) hands freed pages back to the system 10 ms after they are freed, and the next
# trail batch then faults fresh, zeroed pages in again for the same columns (about 120,000 faults, 1.5-2 s of a
# 4.9M-event ingest). 5 s keeps them for the next batch; the collector returns them before its rollups
# (collectors/trailfiles.py ingest). Read by mimalloc when pyarrow loads, so set before anything imports it;
# a value in the environment wins.
os.environ.setdefault("MIMALLOC_PURGE_DELAY", "5000")
# numpy's OpenBLAS starts a thread per core that spins after each call; caa's few small fits (the forecast)
# gain nothing from them, and in a trail ingest they took 0.5% of the CPU from the decoder. Read when numpy
# loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import typer  # noqa: E402 - after the allocator's setting

from core.errors import (
    CaaError,
    ConfigError,
    StoreBusyError,
    StoreError,
    drop_output,
    echo,
    first_line,
    printable,
)

app = typer.Typer(help="CodeArtifact Analytics: where your CodeArtifact storage and request money goes.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)

DbOption = Annotated[Path | None, typer.Option("--db", help="DuckDB store path (default data/caa.duckdb; env CAA_DB).",
                                               show_default=False)]


class State:
    debug = False


@app.callback()
def _root(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")] = False
          ) -> None:
    State.debug = debug or State.debug


def _settings(db: Path | None):  # noqa: ANN202 - settings.Settings, imported lazily for a fast --help
    from core.settings import load_settings

    return load_settings(db=db)


class Collector(StrEnum):
    cloudtrail = "cloudtrail"
    inventory = "inventory"
    cloudwatch = "cloudwatch"
    costs = "costs"
    cur = "cur"
    all = "all"


def collector_specs(name: str) -> list:
    from collectors import cloudtrail, cloudwatch, costexplorer, cur, inventory

    specs = {"cloudtrail": cloudtrail.SPEC, "inventory": inventory.SPEC, "cloudwatch": cloudwatch.SPEC,
             "costs": costexplorer.SPEC, "cur": cur.SPEC}
    return list(specs.values()) if name == "all" else [specs[name]]


@app.command()
def collect(
    which: Annotated[Collector, typer.Argument(help="Which collector to run.")] = Collector.all,
    source: Annotated[str | None, typer.Option(help="Trail source: s3://bucket/prefix or a local directory "
                                                     "(overrides cloudtrail.sources); with `cur`, the CUR 2.0 "
                                                     "export (overrides cur.sources).")] = None,
    since: Annotated[str | None, typer.Option(help="Collect from this date (YYYY-MM-DD) instead of the watermark.")
                     ] = None,
    db: DbOption = None,
    no_refresh: Annotated[bool, typer.Option("--no-refresh", help="Do not precompute the dashboard's default "
                                                                   "views after the run (see `caa refresh`).")
                          ] = False,
) -> None:
    """Pull CloudTrail events, inventory, CloudWatch usage, Cost Explorer costs and the CUR 2.0 bill into the store."""
    from analytics import rollups
    from collectors.base import PARTIAL_EXIT, RunContext, run_collectors
    from core import store
    from core.aws import Clients

    settings = _settings(db)
    if which == Collector.cur and source:  # --source names the export, not a trail
        settings = settings.model_copy(update={"cur": settings.cur.model_copy(update={"sources": [source]})})
        source = None
    if which == Collector.cur and not settings.cur.sources:
        raise ConfigError("no CUR 2.0 export to read", where="[cur] sources",
                          fix="set [cur] sources = [\"s3://bucket/prefix/export\"] in caa.toml or pass --source")
    since_date = _parse_date(since, "--since")
    with rollups.writer(settings.db) as con:
        before = store.store_version(con)
        last_run = con.execute("SELECT coalesce(max(run_id), 0) FROM collector_runs").fetchone()[0]
        ctx = RunContext(settings=settings, con=con, since=since_date, source=source, debug=State.debug,
                         clients=Clients(settings))
        code = run_collectors(collector_specs(which.value), ctx)
        if not no_refresh and store.store_version(con) != before:  # before the snapshot is published
            from ui import precompute

            loaded = con.execute("SELECT coalesce(sum(rows), 0) > 0 FROM collector_runs WHERE run_id > ?",
                                 [last_run]).fetchone()[0]
            print(precompute.refresh_after_collection(con, settings, loaded), flush=True)
        partial = con.execute("SELECT count(*), coalesce(sum(skipped), 0) FROM collector_runs WHERE run_id > ? "
                              "AND status = 'partial'", [last_run]).fetchone()
    if code == 0 and partial[0]:
        print(f"caa: partial: {partial[1]:,} input item(s) skipped and named above; everything else was collected "
              f"(exit {PARTIAL_EXIT})", file=sys.stderr)
        code = PARTIAL_EXIT
    raise typer.Exit(code)



class RefreshWhat(StrEnum):
    views = "views"
    ip_ranges = "ip-ranges"


@app.command()
def refresh(
    what: Annotated[RefreshWhat, typer.Argument(help="views: the dashboard's default views; ip-ranges: AWS's "
                                                     "published IP ranges (data transfer), kept next to the store.")
                    ] = RefreshWhat.views,
    url: Annotated[str | None, typer.Option(help="Where ip-ranges.json is downloaded from (default AWS's).")] = None,
    db: DbOption = None,
) -> None:
    """Recompute the dashboard's default views (after a change to caa.toml), or refresh the AWS IP ranges."""
    from analytics import rollups
    from core import store

    settings = _settings(db)
    if what == RefreshWhat.ip_ranges:
        from analytics import ip_ranges

        ranges = ip_ranges.refresh(settings.db, url or ip_ranges.URL)
        print(f"AWS IP ranges of {ranges.create_date} "
              f"({sum(map(len, ranges.v4.values())):,} IPv4 and {sum(map(len, ranges.v6.values())):,} IPv6 "
              f"prefixes) saved to {ip_ranges.refreshed_path(settings.db)}")
        return
    from ui import precompute

    if not Path(settings.db).exists():
        raise store.no_data_error(settings.db)
    with rollups.writer(settings.db) as con:
        summary = precompute.refresh(con, settings)
        store.publish_now(con)  # the store version did not move, so the session would not publish
    print(summary.line)  # a view that failed is named there; its page computes it live, as before


def _parse_date(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CaaError(f"{flag} {value!r} is not a date", fix=f"write it as YYYY-MM-DD, e.g. {flag} 2026-01-31"
                       ) from None


def _parse_window(since: str | None, until: str | None) -> tuple[date | None, date | None]:
    """--since and --until as dates (either may be absent), refused in one line when they are reversed."""
    first, last = _parse_date(since, "--since"), _parse_date(until, "--until")
    _check_window(first, last)
    return first, last


def _check_window(first: date | None, last: date | None) -> None:
    if first is not None and last is not None and first > last:
        raise CaaError(f"--since {first} is after --until {last}", fix="give --since on or before --until (the last "
                       "day is included; without --until it is the last full day of data)")


def _reader(settings):  # noqa: ANN001, ANN202 - a read-only connection to the store's snapshot
    from core import store

    upgrade_to_read(settings.db)
    con = store.require_reader(settings.db)
    return con


def upgrade_to_read(db: Path) -> None:
    """Before a command reads the store: bring one that an older caa wrote up to this caa's schema and rollups
    (the write session `caa dashboard` opens before serving), when its snapshot says it is behind. Else a report
    run between installing caa and the next collection reads a store half in the old layout: after 024, the
    spike series of whole days from the old rollup under each client's spelling of a package beside the newest
    days under its stored name (two series of one package, a spike found in halves). The notes go to stderr,
    and so does whatever DuckDB prints meanwhile (its progress bar on a long rebuild): stdout is the command's
    output. A store this process cannot write, or one a collection is writing (which upgrades it itself), is
    read as it was published, with a note."""
    from analytics import rollups
    from core import store

    old = store.schema_behind(db)
    if old is None:
        return
    echo(f"note: the store was written by an older caa (schema {old:03d}, this caa {store.latest_schema():03d}); "
         "upgrading it first, once", err=True)
    try:
        with _stdout_to_stderr():
            rollups.upgrade(db)
    except StoreBusyError:
        echo("note: a running collection upgrades the store; this reads it as last published", err=True)
    except StoreError as e:
        echo(f"note: the store could not be upgraded ({e.what}); this reads it as the older caa left it, until a "
             "`caa collect` that can write it", err=True)


@contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """File descriptor 1 onto 2 meanwhile (DuckDB writes its progress bar to the process's stdout itself)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


class OutFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="A SQL query, e.g. \"SELECT count(*) FROM downloads\".")],
    fmt: Annotated[OutFormat, typer.Option("--format", help="Output format.")] = OutFormat.table,
    db: DbOption = None,
) -> None:
    """Run read-only SQL against the store (the last published snapshot; writes are refused)."""
    import duckdb

    from core import store

    settings = _settings(db)
    upgrade_to_read(settings.db)
    con = store.require_reader(settings.db)  # locked down: the store only, no files, no settings
    try:
        _check_read_only(con, query)
        cur = con.execute(query)
        if cur.description is None:
            return
        cols = [d[0] for d in cur.description]
        rows = cur.fetchall()
    except duckdb.PermissionException as e:
        raise CaaError(f"caa sql reads the store's tables only: {_first_line(e)}", where="caa sql",
                       fix="query the tables (README: the store's schema); write files with `caa report`") from None
    except duckdb.Error as e:
        raise CaaError(f"the query failed: {_first_line(e)}", where="caa sql", fix="check the table and column names "
                       "(README: the store's schema)") from None
    finally:
        con.close()
    _print_rows(cols, rows, fmt)


READ_STATEMENTS = {"SELECT", "EXPLAIN"}


def _check_read_only(con, query: str) -> None:  # noqa: ANN001 - a DuckDB connection
    """Refuse anything but one SELECT (DESCRIBE, SHOW, SUMMARIZE and FROM-first queries are SELECTs to
    DuckDB's parser) or an EXPLAIN of one, by the statement types of DuckDB's own parser."""
    import duckdb

    try:
        statements = con.extract_statements(query)
    except duckdb.Error as e:
        raise CaaError(f"the query failed: {_first_line(e)}", where="caa sql",
                       fix="check the SQL syntax (DuckDB's dialect)") from None
    kinds = [st.type.name for st in statements]
    refused = next((k for k in kinds if k not in READ_STATEMENTS), None)
    if refused is None and "EXPLAIN" in kinds:  # EXPLAIN [ANALYZE] runs what it explains: check that too
        import re

        inner = re.sub(r"^\s*EXPLAIN\s+(ANALY[SZ]E\s+)?", "", query, flags=re.IGNORECASE)
        refused = next((st.type.name for st in con.extract_statements(inner) if st.type.name != "SELECT"), None)
    if refused is not None or len(kinds) != 1:
        what = f"{refused} statements are refused" if refused else f"{len(kinds)} statements were given, not one"
        raise StoreError(f"caa sql runs one read-only query: {what}", where="caa sql",
                         fix="give one SELECT; exports are `caa report`, collection is `caa collect`")


def _first_line(e: BaseException) -> str:
    return first_line(e)


def _print_rows(cols: list[str], rows: list[tuple], fmt: OutFormat) -> None:
    if fmt is OutFormat.csv:
        w = csv.writer(sys.stdout)
        w.writerow(cols)
        w.writerows(rows)
    elif fmt is OutFormat.json:
        print(json.dumps([dict(zip(cols, r, strict=True)) for r in rows], default=str, indent=1))
    else:
        from rich.console import Console
        from rich.table import Table

        t = Table(*map(printable, cols))
        for r in rows:
            t.add_row(*("" if v is None else printable(str(v)) for v in r))
        Console(markup=False, emoji=False, highlight=False).print(t)  # values from the data are text, never markup


report_app = typer.Typer(help="Reports over the store: costs, forecast, reconcile, focus, transfer, cleanup, spikes, "
                              "usage.",
                         no_args_is_help=True)
app.add_typer(report_app, name="report")


class ReportFormat(StrEnum):
    csv = "csv"
    xlsx = "xlsx"
    json = "json"
    parquet = "parquet"


def _report_path(out: Path | None, name: str, fmt: ReportFormat) -> Path:
    from core.clock import utc_now

    return out or Path("data/reports") / f"{name}-{utc_now():%Y%m%dT%H%MZ}.{fmt.value}"


@report_app.command("cleanup")
def report_cleanup(
    fmt: Annotated[ReportFormat, typer.Option("--format", help="File format.")] = ReportFormat.csv,
    out: Annotated[Path | None, typer.Option(help="Output file (default data/reports/cleanup-<time>.<format>).")
                   ] = None,
    unused_days: Annotated[int | None, typer.Option(help="Select versions not downloaded for this many days.")
                           ] = None,
    keep_latest: Annotated[int | None, typer.Option(help="Never select the newest K versions of a package.")] = None,
    keep_latest_per_major: Annotated[int | None, typer.Option(help="... nor the newest K of each major line.")
                                     ] = None,
    min_age_days: Annotated[int | None, typer.Option(help="Never select versions younger than this.")] = None,
    protect: Annotated[list[str] | None, typer.Option(help="Glob over format/namespace/package to protect "
                                                           "(repeatable; replaces [cleanup] protect).")] = None,
    backtest: Annotated[bool, typer.Option(help="Also replay the policy [cleanup] backtest_days ago and report "
                                                "how many selected versions were requested afterwards.")] = False,
    db: DbOption = None,
) -> None:
    """Cleanup candidates with reclaimable bytes and $/month; fill `approve` and feed the file to `caa apply`."""
    from analytics import cleanup
    from analytics.reports import write_table

    settings = _settings(db)
    overrides = {"unused_days": unused_days, "keep_latest": keep_latest, "keep_latest_per_major": keep_latest_per_major,
                 "min_age_days": min_age_days, "protect": protect}
    with _reader(settings) as con:
        df = cleanup.report_cleanup(con, settings, **overrides)
        replay = cleanup.backtest(con, settings, **overrides) if backtest else None
    path = write_table(df, _report_path(out, "cleanup", fmt), fmt.value)
    s = cleanup.summary(df)
    print(f"wrote {s['candidates']:,} cleanup candidates to {path}: "
          f"{s['reclaimable_gb']['permanent']:,.2f} GB permanent + {s['reclaimable_gb']['refetchable']:,.2f} GB "
          f"refetchable, ${s['monthly_savings_usd']['total']:,.2f}/month")
    if replay:
        print(f"backtest: {replay['selected']:,} versions selected {replay['days']} days ago, "
              f"{replay['requested_after']:,} requested afterwards "
              f"(false-deletion rate {replay['false_deletion_rate']:.1%}), "
              f"{replay['reclaimable_gb']['permanent']:,.2f} GB permanent would have been freed")


def _show(df, title: str, limit: int = 12) -> None:  # noqa: ANN001 - a DataFrame
    """The first rows of a report on the terminal (names printed as text, never markup)."""
    from rich.console import Console
    from rich.table import Table

    t = Table(*(printable(str(c)) for c in df.columns), title=title)
    for row in df.head(limit).itertuples(index=False):
        t.add_row(*("" if v is None or v != v else f"{v:,.2f}" if isinstance(v, float) else printable(str(v))
                    for v in row))
    Console(markup=False, emoji=False, highlight=False).print(t)
    if len(df) > limit:
        print(f"... {len(df) - limit:,} more rows in the file")


SinceOption = Annotated[str | None, typer.Option(help="First day (YYYY-MM-DD).")]
UntilOption = Annotated[str | None, typer.Option(help="Last day, included (YYYY-MM-DD).")]
FormatOption = Annotated[ReportFormat, typer.Option("--format", help="File format.")]
OutOption = Annotated[Path | None, typer.Option(help="Output file (default data/reports/<report>-<time>.<format>).")]


class CostLevel(StrEnum):
    account = "account"
    region = "region"
    domain = "domain"
    repository = "repository"
    package = "package"
    version = "version"
    principal = "principal"
    team = "team"
    day = "day"


class Basis(StrEnum):
    modeled = "modeled"
    billed = "billed"


@report_app.command("costs")
def report_costs(
    by: Annotated[CostLevel, typer.Option(help="Attribute cost to this level.")] = CostLevel.repository,
    basis: Annotated[Basis, typer.Option(help="modeled: the price table over the store's usage; billed: the CUR "
                                              "2.0 bill after credits and discounts, allocated with the model's "
                                              "shares.")] = Basis.modeled,
    since: SinceOption = None, until: UntilOption = None,
    fmt: FormatOption = ReportFormat.csv, out: OutOption = None, db: DbOption = None,
) -> None:
    """Storage, request (and, billed, transfer) cost attributed to a level (default: this month to the last
    full day)."""
    from analytics import billed, costs
    from analytics.reports import write_table

    settings = _settings(db)
    tax = None
    with _reader(settings) as con:
        if basis == Basis.billed:
            if by == CostLevel.principal:
                raise ConfigError("billed cost has no principal level (storage has no principal)", where="--by",
                                  fix="use --basis modeled for principals, or another --by")
            df, tax = billed.billed_report(con, settings, *_parse_window(since, until),
                                           by=by.value)
        else:
            df = costs.cost_report(con, settings, *_parse_window(since, until),
                                   by=by.value)
        empty = _costs_empty_note(con, basis) if df.empty else None
    path = write_table(df, _report_path(out, f"costs-{basis.value}-by-{by.value}" if basis == Basis.billed
                                        else f"costs-by-{by.value}", fmt), fmt.value)
    _show(df, f"{basis.value.capitalize()} cost by {by.value}")
    if empty:
        echo(f"note: {empty}")
    print(f"wrote {len(df):,} rows to {path}: total ${df['cost_usd'].sum():,.2f}"
          + (f" (billed after credits and discounts; tax ${tax:,.2f} not allocated)" if tax is not None else ""))


def _costs_empty_note(con, basis: Basis) -> str | None:  # noqa: ANN001 - a DuckDB connection
    """Why a cost report has no row: what the store covers, and what to run (a $0.00 total read as 'free')."""
    from analytics import billing, costs

    cov = costs.coverage(con)
    if cov.first_day is None:
        bill = " (the bill collected is `--basis billed`)" if basis == Basis.modeled and billing.has_bill(con) else ""
        return ("nothing to price yet: the store has no storage snapshots or events; run `caa collect inventory` "
                f"and `caa collect cloudtrail`{bill}")
    last = cov.last_full_day or cov.last_snapshot_date
    return f"no cost in this window: the store's usage covers {cov.first_day}..{last} (--since/--until)"


class ReconcileSource(StrEnum):
    cur = "cur"
    costexplorer = "costexplorer"


class Grain(StrEnum):
    usage_type = "usage_type"
    domain = "domain"
    repository = "repository"


class RepositoryLevel(StrEnum):
    repository = "repository"
    package = "package"


@report_app.command("transfer")
def report_transfer(
    by: Annotated[RepositoryLevel, typer.Option(help="Bytes per repository or per package.")] = RepositoryLevel.repository,
    since: SinceOption = None, until: UntilOption = None,
    fmt: FormatOption = ReportFormat.csv, out: OutOption = None, db: DbOption = None,
) -> None:
    """Data transfer: bytes served per repository (or package) by where the clients were (same region, another
    AWS region, the internet), the modeled cost, and the bill's transfer lines beside it."""
    from analytics import billing, costs, transfer
    from analytics.reports import write_table

    settings = _settings(db)
    with _reader(settings) as con:
        first, last = costs.default_window(con, *_parse_window(since, until))
        df = transfer.by_repository(con, settings, first, last, level=by.value, per_day=False)
        lines = billing.lines(con, first, last) if billing.has_bill(con) else None
    path = write_table(df, _report_path(out, f"transfer-by-{by.value}", fmt), fmt.value)
    _show(df, f"Bytes served {first}..{last} (modeled, before the free allowance)")
    if lines is not None:
        t = lines[lines["kind"] == "transfer"]
        _show(t.groupby(["account_id", "region", "usage_type"], as_index=False)[["usage_amount", "unblended_cost"]]
              .sum().rename(columns={"usage_amount": "gb"}), "The bill's data-transfer lines (CUR 2.0)")
    gib = 1024**3
    print(f"wrote {len(df):,} rows to {path}: {df['bytes'].sum() / gib:,.2f} GB served, "
          f"{df['internet_bytes'].sum() / gib:,.2f} GB to the internet, "
          f"{df['other_region_bytes'].sum() / gib:,.2f} GB to other regions")


class FocusFormat(StrEnum):
    parquet = "parquet"
    csv = "csv"


@report_app.command("focus")
def report_focus(
    fmt: Annotated[FocusFormat, typer.Option("--format", help="File format.")] = FocusFormat.parquet,
    out: OutOption = None,
    by: Annotated[RepositoryLevel, typer.Option(help="One row per day and repository, or per package.")
                  ] = RepositoryLevel.repository,
    since: SinceOption = None, until: UntilOption = None, db: DbOption = None,
) -> None:
    """caa's billed allocation as FOCUS 1.2 rows (default: every day of the collected bill), with
    x_Domain, x_Repository, x_Package and x_Team; the bill's credits and tax as their own rows."""
    from analytics import focus

    settings = _settings(db)
    with _reader(settings) as con:
        df = focus.rows(con, settings, *_parse_window(since, until), by=by.value)
    path = focus.write(df, out or _report_path(None, "focus", ReportFormat(fmt.value)), fmt.value)
    periods = df.groupby(["BillingAccountId", "BillingPeriodStart"])["BilledCost"].sum()
    print(f"wrote {len(df):,} FOCUS 1.2 rows to {path}: BilledCost ${df['BilledCost'].sum():,.2f} over "
          f"{len(periods)} billing account and period(s)")


@report_app.command("forecast")
def report_forecast(
    months: Annotated[int, typer.Option(help="Months to forecast: 3, 6 or 12.", min=1, max=24)] = 12,
    with_cleanup: Annotated[bool, typer.Option("--with-cleanup", help="Also the what-if after the [cleanup] "
                                                                     "policy's permanent savings.")] = False,
    fmt: FormatOption = ReportFormat.csv, out: OutOption = None, db: DbOption = None,
) -> None:
    """Month-end projection and a monthly forecast with an 80% interval and its own backtest error."""
    from analytics import cleanup, forecast
    from analytics.reports import write_table

    settings = _settings(db)
    with _reader(settings) as con:
        reclaimed = (cleanup.reclaimed_bytes_by_domain(cleanup.report_cleanup(con, settings))
                     if with_cleanup else None)
        fc = forecast.forecast(con, settings, horizon_months=months, reclaimed_bytes_by_domain=reclaimed)
    table = fc.monthly
    if with_cleanup:
        base = fc.baseline.rename(columns={"expected_usd": "without_cleanup_usd"})
        table = table.merge(base[["month", "kind", "without_cleanup_usd"]], on=["month", "kind"], how="left")
    path = write_table(table, _report_path(out, "forecast", fmt), fmt.value)
    _show(table[table["kind"] == "total"], f"Forecast, {int(fc.level * 100)}% interval", limit=months + 1)
    print(f"wrote {len(table):,} rows to {path}; backtest MAPE {fc.backtest_mape:.1f}% "
          f"(daily cost, last {int(fc.backtest['holdout_days'].max())} days held out)")


@report_app.command("reconcile")
def report_reconcile(
    source: Annotated[ReconcileSource | None, typer.Option(help="The bill to reconcile against: cur (the CUR 2.0 "
                                                                "export, per usage type, domain or repository) or "
                                                                "costexplorer (per account and usage type). Default: "
                                                                "cur when a bill is collected.")] = None,
    grain: Annotated[Grain, typer.Option(help="With cur: usage_type (every kind per account and region), domain "
                                              "(storage) or repository (requests).")] = Grain.usage_type,
    since: SinceOption = None, until: UntilOption = None,
    fmt: FormatOption = ReportFormat.csv, out: OutOption = None, db: DbOption = None,
) -> None:
    """Modeled cost next to the bill per day, with the difference in $ and %; the bill's free tier, credits,
    discounts and tax listed apart."""
    from analytics import billing, costs
    from analytics.reports import write_table

    settings = _settings(db)
    first, last = _parse_window(since, until)
    with _reader(settings) as con:
        if source is None:
            source = ReconcileSource.cur if billing.has_bill(con) else ReconcileSource.costexplorer
        empty = None  # why the bill and the model share no day (CUR)
        if source == ReconcileSource.costexplorer:
            daily = costs.reconcile(con, settings, first, last)
            summary = costs.reconcile_summary(daily)
            adjust = None
        else:
            note = billing.grain_note(con, grain.value)
            if note:
                raise ConfigError(note.split(": ", 1)[0], where=f"--source cur --grain {grain.value}",
                                  fix=note.split(": ", 1)[-1])
            daily = billing.reconcile(con, settings, first, last, grain=grain.value)
            summary = billing.summary(daily, {"usage_type": ["account_id", "kind"], "domain": ["account_id", "domain"],
                                              "repository": ["domain", "repository"]}[grain.value])
            days = billing.window(con, first, last)
            adjust = billing.adjustments(con, settings, *days) if days else None
            empty = None if days else billing.window_note(con, first, last)
    name = "reconcile" if source == ReconcileSource.costexplorer else f"reconcile-cur-{grain.value}"
    path = write_table(daily, _report_path(out, name, fmt), fmt.value)
    _show(summary, "Modeled vs Cost Explorer" if source == ReconcileSource.costexplorer
          else f"Modeled vs billed (CUR 2.0), per {grain.value}")
    if adjust is not None and len(adjust):
        _show(adjust.groupby("kind", as_index=False)[["lines", "usage_amount", "amount_usd", "list_value_usd"]].sum(),
              "Not usage: free tier, credits, discounts, tax (same days)")
    if empty:
        echo(f"note: {empty}")
    print(f"wrote {len(daily):,} daily rows to {path}")


@report_app.command("spikes")
def report_spikes(
    since: SinceOption = None, fmt: FormatOption = ReportFormat.csv, out: OutOption = None, db: DbOption = None,
) -> None:
    """Download spikes and auth-failure bursts with their drivers (principal, user agent, IP) and cost."""
    from analytics import spikes
    from analytics.reports import flatten_lists, write_table

    settings = _settings(db)
    with _reader(settings) as con:
        df = spikes.detect_spikes(con, settings, _parse_date(since, "--since"))
    flat = flatten_lists(df) if fmt in (ReportFormat.csv, ReportFormat.xlsx) else df
    path = write_table(flat, _report_path(out, "spikes", fmt), fmt.value)
    if len(df):
        _show(flatten_lists(df)[["kind", "package", "principal_arn", "start", "end", "score", "excess",
                                 "excess_cost_usd"]], "Spikes")
    print(f"wrote {len(df):,} spikes to {path}" if len(df) else f"no spikes found; wrote an empty report to {path}")


@report_app.command("usage")
def report_usage(
    since: SinceOption = None, until: UntilOption = None,
    top: Annotated[int, typer.Option(help="Rows per top list.", min=1)] = 20,
    fmt: FormatOption = ReportFormat.xlsx, out: OutOption = None, db: DbOption = None,
) -> None:
    """Top packages, versions, repositories and consumers with growth, origin share, idle repositories and
    single-consumer versions (default window: the last 30 days of data)."""
    from datetime import timedelta

    from analytics import costs, overview, usage
    from analytics.reports import write_tables

    settings = _settings(db)
    with _reader(settings) as con:
        when = overview.as_of(con)
        if when is None:
            raise StoreError(f"no events yet in {settings.db}", fix="run `caa collect cloudtrail` first")
        last = _parse_date(until, "--until") or when.day
        first = _parse_date(since, "--since") or last - timedelta(days=29)
        _check_window(first, last)  # after the defaults: a --since after the data's last day too
        tables = usage.usage_report(con, settings, first, last + timedelta(days=1), top=top)
        span = costs.coverage(con).event_days if tables["packages"].empty else None
    default = _report_path(None, "usage", fmt)  # several tables: CSV and Parquet make a folder
    path = write_tables(tables, out or (default.with_suffix("") if fmt.value in ("csv", "parquet") else default),
                        fmt.value)
    _show(tables["packages"], f"Top packages {first}..{last}")
    if span is not None:  # empty tables read as "nobody downloads anything"
        echo(f"note: no download in {first}..{last}: the store's events cover {span[0]}..{span[1]} (--since/--until)")
    print(f"wrote {len(tables)} tables to {path}")


class ApplyAction(StrEnum):
    unlist = "unlist"
    archive = "archive"
    dispose = "dispose"
    delete = "delete"
    staged = "staged"


@app.command("apply")
def apply_cmd(
    report: Annotated[Path, typer.Argument(help="A cleanup report from `caa report cleanup` (CSV, XLSX, JSON or "
                                                "Parquet) with approve = yes / true / x on the rows to act on.")],
    action: Annotated[ApplyAction, typer.Option(help="unlist / archive (update_package_versions_status), dispose, "
                                                     "delete, or staged: archive now, and on a later run dispose the "
                                                     "versions archived at least --min-archived-days ago that "
                                                     "nobody tried to fetch.", show_default=False)],
    execute: Annotated[bool, typer.Option("--execute", help="Act. Without it this is a dry run that makes no AWS "
                                                           "call. Each domain must then be confirmed by typing "
                                                           "its name (a bare Enter skips it), unless --yes.")
                       ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm every domain without a prompt (non-interactive "
                                                    "runs).")] = False,
    all_rows: Annotated[bool, typer.Option("--all", help="Act on every row, approved or not; only with --yes.")
                        ] = False,
    min_archived_days: Annotated[int, typer.Option(help="staged: dispose only versions archived at least this "
                                                        "many days ago.", min=0)] = 30,
    db: DbOption = None,
) -> None:
    """Unlist, archive, dispose or delete the approved versions of a cleanup report, safely.

    Every row is re-checked first and skipped, with the reason, when it was downloaded after the report (report time: a generated_at column, else the earlier of the file name's time stamp and its mtime; also any download newer than the row's last_downloaded_at), when its status or revision changed (AWS list_package_versions), or when it is now protected, pinned or depended on.

    Calls go in batches of at most 100 versions per package with expectedStatus and versionRevisions, so a concurrent change fails safe. Every change is logged in apply_log and the result is written to <report>.result.<ext>; re-running an interrupted apply of the same file never acts twice. IAM: iam/caa-cleanup.json.
    """
    from actions.apply import run_apply
    from core.aws import Clients
    from core.errors import ConfigError

    if all_rows and not yes:
        raise ConfigError("--all acts on every row of the report and needs --yes", where="caa apply",
                          fix="mark rows in the approve column instead, or pass --all --yes")
    settings = _settings(db)
    ask = (lambda text: typer.prompt(printable(text), default="", show_default=False)) if sys.stdin.isatty() else None
    code = run_apply(settings, report, action.value, execute=execute, yes=yes, select_all=all_rows,
                     min_archived_days=min_archived_days, clients=Clients(settings), ask=ask)
    raise typer.Exit(code)


email_app = typer.Typer(help="Cost e-mails: month to date vs projection vs last month, movers, savings, spikes.",
                        no_args_is_help=True)
app.add_typer(email_app, name="email")


@email_app.command("send")
def email_send(
    to: Annotated[list[str] | None, typer.Option("--to", help="Send the whole-estate digest to this address "
                                                              "only (repeatable; no owner digests).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Write .eml files instead of sending.")] = False,
    out: Annotated[Path | None, typer.Option(help="Folder for --dry-run (default data/outbox next to the store).")
                   ] = None,
    db: DbOption = None,
) -> None:
    """E-mail the cost digest: the whole estate to email.to (or --to), each owner's slice to its owner."""
    from delivery.notify import deliver_cost_emails

    settings = _settings(db)
    upgrade_to_read(settings.db)
    for line in deliver_cost_emails(settings, to=to, dry_run=dry_run, out=out):
        print(line)


alerts_app = typer.Typer(help="Spike and auth-failure alerts to e-mail, SNS or a webhook.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")


@alerts_app.command("send")
def alerts_send(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be sent; send and record nothing.")
                       ] = False,
    db: DbOption = None,
) -> None:
    """Alert new (or grown) spikes of the last alerts.since_days days, once per spike and channel."""
    from delivery.alerts import send_alerts

    settings = _settings(db)
    upgrade_to_read(settings.db)
    for line in send_alerts(settings, dry_run=dry_run):
        print(line)


class ScheduleJob(StrEnum):
    cloudtrail = "cloudtrail"
    inventory = "inventory"
    cloudwatch = "cloudwatch"
    costs = "costs"
    analytics = "analytics"
    email = "email"
    alerts = "alerts"


@app.command()
def schedule(
    once: Annotated[ScheduleJob | None, typer.Option("--once", help="Run this job now and exit.")] = None,
    list_jobs: Annotated[bool, typer.Option("--list", help="Print the jobs, their cron and next run, and exit.")
                         ] = False,
    db: DbOption = None,
) -> None:
    """Run the collectors, analytics refresh, e-mails and alerts on their cron schedules (UTC, foreground)."""
    import jobs

    settings = _settings(db)
    if list_jobs:
        for job, cron, nxt in jobs.next_runs(settings):
            print(f"{job:<11} {cron:<16} next {nxt:%Y-%m-%d %H:%M}Z")
        return
    jobs.setup_logging()
    if once is not None:
        raise typer.Exit(1 if jobs.run_job(once.value, settings).status == "failed" else 0)
    jobs.serve(settings)


def check_bind(address: str, port: int) -> None:
    """Raise a one-line CaaError when the dashboard could not listen on `address`:`port` (the port taken, an
    address of no interface here, a name that does not resolve): Streamlit would say it with a traceback, or
    after a demo build. Binds and closes a probe socket, with SO_REUSEADDR as the server binds."""
    import errno
    import socket

    try:
        family, kind, proto, _, where = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as e:
        raise CaaError(f"cannot serve the dashboard on {address}: {first_line(e)}", where="--address",
                       fix="give an address of this machine (keep 127.0.0.1 unless behind an authenticating "
                           "proxy, README)") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(where)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise CaaError(f"port {port} is already in use on {address}", where="--port",
                               fix="stop what serves on it (another `caa dashboard`?) or pass --port another "
                                   f"port, e.g. --port {port + 1 if port < 65535 else 8501}") from None
            if e.errno == errno.EACCES:
                raise CaaError(f"no permission to listen on port {port}", where="--port",
                               fix="pass a port from 1024 up, e.g. --port 8501") from None
            raise CaaError(f"cannot serve the dashboard on {address}:{port} ({e.strerror})", where="--address",
                           fix="give an address of this machine (keep 127.0.0.1 unless behind an authenticating "
                               "proxy, README)") from None


def serve_dashboard(db: Path, port: int, address: str = "127.0.0.1") -> NoReturn:
    """Become `streamlit run dashboard.py` bound to `address` (127.0.0.1 by default) over the store `db`, in a
    process that imports the dashboard's modules before it serves (ui/serve.py: the first page does not wait for
    them)."""
    check_bind(address, port)
    script = find_spec("dashboard").origin
    env = dict(os.environ, CAA_DB=str(Path(db).resolve()))
    cmd = [sys.executable, "-m", "ui.serve", "run", script, "--server.address", address,
           "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
           # No source watcher: a served dashboard never reloads its code, and watching a checkout (data/,
           # .venv) overflowed inotify, whose lost events reran the page under the user's hands.
           "--server.fileWatcherType", "none",
           "--client.toolbarMode", "minimal"]
    print(f"dashboard: http://{address}:{port}  (Ctrl+C to stop)", flush=True)
    # Streamlit replaces this process (same pid): a SIGTERM or SIGINT to `caa dashboard` from a service
    # manager, a container stop or a test reaches the server itself, and nothing is left serving.
    os.execve(sys.executable, cmd, env)


@app.command()
def dashboard(
    db: DbOption = None,
    port: Annotated[int, typer.Option(help="Port to serve on.", min=1, max=65535)] = 8501,
    address: Annotated[str, typer.Option(help="Address to bind; keep 127.0.0.1 unless behind an "
                                              "authenticating proxy (README).")] = "127.0.0.1",
) -> None:
    """Serve the Streamlit dashboard over the store (binds to 127.0.0.1)."""
    settings = _settings(db)
    check_bind(address, port)  # before the store's upgrade
    _upgrade(settings.db)
    serve_dashboard(settings.db, port, address)


def _upgrade(db: Path) -> None:
    """Bring a store written by an older caa up to this schema (and its snapshot with it) before serving,
    so the pages never meet a missing table. A running collection holds the lock and does it itself."""
    from analytics import rollups

    if Path(db).exists():
        try:
            rollups.upgrade(db)
        except StoreBusyError:
            pass


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Seed of the synthetic estate (same seed, same estate).")] = 7,
    events: Annotated[int, typer.Option(help="Approximate number of CloudTrail events to generate.")] = 1_200_000,
    db: DbOption = None,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the dashboard afterwards.")] = True,
    port: Annotated[int, typer.Option(help="Dashboard port.", min=1, max=65535)] = 8501,
) -> None:
    """Build the seeded demo estate, run the real collectors over it, then serve the dashboard."""
    from demo.run import run_demo

    settings = _settings(db)
    if serve:
        check_bind("127.0.0.1", port)  # before the build, not a minute later
    code = run_demo(settings.db, seed=seed, events=events, debug=State.debug)
    if code == 0 and serve:
        serve_dashboard(settings.db, port)
    raise typer.Exit(code)


def main() -> None:
    """Console entry point: one-line errors unless --debug / CAA_DEBUG=1."""
    State.debug = "--debug" in sys.argv[1:] or os.environ.get("CAA_DEBUG") == "1"
    try:
        app()
    except CaaError as e:
        if State.debug:
            raise
        echo(f"caa: {e.kind}: {e}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        print("caa: interrupted; committed data is kept and the next run resumes", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # the reader of the output went away (`caa sql ... | head`): end quietly, with
        drop_output(sys.stdout)  # click's code for it (it handles the commands' own output so)
        sys.exit(1)
    except Exception as e:  # a bug: one line, the traceback with --debug
        from core.store import damage_error, disk_error

        full = disk_error(e) or damage_error(e)
        if full and not State.debug:
            echo(f"caa: {full.kind}: {full}", err=True)
            sys.exit(1)
        if State.debug:
            raise
        echo(f"caa: internal error: {type(e).__name__}: {first_line(e, 300)} (run with --debug for the traceback)",
             err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
