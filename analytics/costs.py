"""Modeled CodeArtifact cost: daily cost from the price table, attribution, reconciliation with the bill.

Reads (through analytics.queries, files sql/cost_*.sql): storage_snapshots, events, the downloads view,
assets, package_versions, repositories, cost_actuals. Writes nothing. Every function takes an open
(read-only) connection and the Settings; the caller opens and closes the connection.

The cost model (the same conventions as the Overview's month-to-date cost, at daily grain):
- Storage: a domain's deduplicated size (storage_snapshots) x 24 h per day, in GB-months of that
  calendar month, where a GB is 1024^3 bytes (the price list's GB-Mo): 250 GiB held for the whole of
  a 30-day month = 250 GB-months = $12.50 at $0.05. Repository sizes are never added up.
- Requests: each successful CloudTrail event counts once; the first `free_requests_per_month` of each
  account and calendar month are free (consumed in date order, then region name order, as Cost Explorer
  shows it): 3,100,000 requests in a month in one account = 3,000,000 billable = $15.00 at $0.05/10k.
- Prices per region: settings.prices.for_region(region).

Attribution: a domain's storage goes to the asset rows of the current inventory by their share of
its bytes (sql/cost_asset_shares.sql, split rule settings.costs.shared_asset_split), so the amounts
of a domain's repositories, packages and versions add up to its storage cost. A day's request cost of
an account and region goes to its requests (repository, package, version, principal) pro rata.
Teams: settings.teams (team -> repository name globs, first matching team in file order) wins over the
bill's cost-allocation tag (CUR 2.0 resource_tags, settings.costs.bill_team_tag), which wins over a
repository's "team" tag; none gives team "(unassigned)".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from fnmatch import fnmatchcase

import duckdb
import numpy as np
import pandas as pd

from analytics.queries import events_within, run
from core.clock import utc_midnight, utc_now
from core.errors import ConfigError, DataError
from core.settings import Settings

GIB = 1024**3
UNASSIGNED = "(unassigned)"
KINDS = ("storage", "requests")
VERSION_KEYS = ["account_id", "region", "domain", "repository", "format", "namespace", "package", "version"]
# The grouping columns of each `by` of cost_report.
LEVELS: dict[str, list[str]] = {
    "account": ["account_id"],
    "region": ["account_id", "region"],
    "domain": ["account_id", "region", "domain"],
    "repository": ["account_id", "region", "domain", "repository"],
    "package": ["account_id", "region", "domain", "repository", "format", "namespace", "package"],
    "version": VERSION_KEYS,
    "principal": ["account_id", "principal_arn"],
    "team": ["team"],
    "day": ["usage_date"],
}
# the storage shares a cost report by level sums (cost_asset_shares' $level); storage has no principal or
# team of its own (team: from the repository), so the others read the domains'
STORAGE_LEVEL = {"repository": "repository", "team": "repository", "package": "package", "version": "version"}
REPORT_VALUES = ["gb_month", "requests", "storage_usd", "requests_usd", "cost_usd", "share_pct"]


@dataclass(frozen=True)
class Coverage:
    """The days the store's sources cover (None where a source is empty)."""

    first_snapshot_date: date | None
    last_snapshot_date: date | None
    first_event_at: datetime | None
    latest_event_at: datetime | None
    first_actual_date: date | None
    last_actual_date: date | None

    @property
    def event_days(self) -> tuple[date, date] | None:
        """The first and last UTC day of the events, None without events."""
        if self.first_event_at is None or self.latest_event_at is None:
            return None
        return self.first_event_at.date(), self.latest_event_at.date()

    @property
    def last_full_day(self) -> date | None:
        """The newest UTC day whose requests are complete: the newest event's day when that event is at
        23:00 or later, else the day before (CloudTrail delivers within minutes, so a day whose last
        event is earlier may still be filling). Without events: the newest snapshot day."""
        if self.latest_event_at is None:
            return self.last_snapshot_date
        day = self.latest_event_at.date()
        return day if self.latest_event_at.hour >= 23 else day - timedelta(days=1)

    @property
    def first_full_day(self) -> date | None:
        """The first UTC day whose requests are complete: the first event's day when that event is in
        its first hour, else the day after (collection may have started mid-day)."""
        if self.first_event_at is None:
            return None
        day = self.first_event_at.date()
        return day if self.first_event_at.hour == 0 else day + timedelta(days=1)

    @property
    def first_day(self) -> date | None:
        """The first day with any modeled usage (a snapshot or an event)."""
        days = [d for d in (self.first_snapshot_date,
                            self.first_event_at.date() if self.first_event_at else None) if d]
        return min(days) if days else None


def _date(v) -> date | None:
    return None if v is None or pd.isna(v) else pd.Timestamp(v).date()


def _ts(v) -> datetime | None:
    return None if v is None or pd.isna(v) else pd.Timestamp(v).to_pydatetime().astimezone(UTC)


def coverage(con: duckdb.DuckDBPyConnection) -> Coverage:
    r = run(con, "cost_coverage").iloc[0]
    return Coverage(_date(r.first_snapshot_date), _date(r.last_snapshot_date), _ts(r.first_event_at),
                    _ts(r.latest_event_at), _date(r.first_actual_date), _date(r.last_actual_date))


def default_window(con: duckdb.DuckDBPyConnection, since: date | None, until: date | None) -> tuple[date, date]:
    """(since, until), both inclusive: without either, this month to the last full day, or the last full
    month early in a month (early_in_month); until defaults to the last full day, since to the 1st of
    until's month."""
    if since is None and until is None:
        return month_window(month_to_date(con)[1])
    if until is None:
        until = coverage(con).last_full_day or utc_now().date()
    if since is None:
        since = until.replace(day=1)
    if since > until:
        raise DataError(f"--since {since} is after the window's last day {until}",
                        fix="give --since on or before --until (without --until, the last full day of data)")
    return since, until


EARLY_DAYS = 2  # a month with fewer full days than this to date is "early": last month is the headline


def month_to_date(con: duckdb.DuckDBPyConnection) -> tuple[date, date]:
    """(first day of the current month, last full day). The current month is the month of the day after
    the last full day, so on the 1st (last full day = the 31st) until is the day before month_start:
    nothing to date yet."""
    until = coverage(con).last_full_day or utc_now().date() - timedelta(days=1)
    return (until + timedelta(days=1)).replace(day=1), until


def early_in_month(month_start: date, until: date) -> bool:
    """True on the first days of a month (fewer than EARLY_DAYS full days to date), when month-to-date
    figures are too thin to lead with: the headline is last month's final cost, and the Costs page's
    default window is the last full month."""
    return (until - month_start).days + 1 < EARLY_DAYS


def month_window(until: date) -> tuple[date, date]:
    """The default cost window that ends on the last full day `until`: this month to date, or the last
    full month early in a month (early_in_month)."""
    start = (until + timedelta(days=1)).replace(day=1)
    return last_full_month(until) if early_in_month(start, until) else (start, until)


def next_month_start(d: date) -> date:
    """The first day of the month after d's."""
    return (d.replace(day=28) + timedelta(days=4)).replace(day=1)


def last_full_month(until: date) -> tuple[date, date]:
    """The calendar month before the one `until + 1 day` falls in: (first day, last day)."""
    end = (until + timedelta(days=1)).replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end


def _region_prices(settings: Settings, regions: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    rates = [settings.prices.for_region(r if isinstance(r, str) else "") for r in regions]
    return np.array([s for s, _ in rates], dtype=float), np.array([q for _, q in rates], dtype=float)


# ---------------------------------------------------------------- daily modeled cost

def storage_daily(con: duckdb.DuckDBPyConnection, settings: Settings, start: date, end: date) -> pd.DataFrame:
    """Storage per domain and day in [start, end]: sql/cost_storage_daily.sql plus storage_usd."""
    df = run(con, "cost_storage_daily", start=start, end=end,
             free_storage_gb_month=settings.prices.free_storage_gb_month)
    df["storage_usd"] = df["billable_gb_month"] * _region_prices(settings, df["region"])[0]
    return df


def requests_daily(con: duckdb.DuckDBPyConnection, settings: Settings, start: date, end: date) -> pd.DataFrame:
    """Requests per account, region and day in [start, end]: sql/cost_requests_daily.sql plus requests_usd."""
    df = run(con, "cost_requests_daily", start=start, end=end,
             free_requests=settings.prices.free_requests_per_month)
    df["requests_usd"] = df["billable_requests"] / 10_000 * _region_prices(settings, df["region"])[1]
    return df


def daily_cost(con: duckdb.DuckDBPyConnection, settings: Settings, since: date | None = None,
               until: date | None = None) -> pd.DataFrame:
    """Modeled cost per day, account, region and kind.

    Columns: usage_date, account_id, region, kind ('storage' | 'requests'), quantity (GB-months or
    requests), billable_quantity (after the free tier), cost_usd. Grain: (usage_date, account_id,
    region, kind) with usage that day.
    """
    since, until = default_window(con, since, until)
    keys = ["usage_date", "account_id", "region"]
    s = storage_daily(con, settings, since, until).groupby(keys, as_index=False)[
        ["gb_month", "billable_gb_month", "storage_usd"]].sum()
    s.columns = [*keys, "quantity", "billable_quantity", "cost_usd"]
    r = requests_daily(con, settings, since, until)[[*keys, "requests", "billable_requests", "requests_usd"]]
    r.columns = [*keys, "quantity", "billable_quantity", "cost_usd"]
    out = pd.concat([s.assign(kind="storage"), r.assign(kind="requests")], ignore_index=True)
    out["quantity"] = out["quantity"].astype(float)
    out["billable_quantity"] = out["billable_quantity"].astype(float)
    return out[[*keys, "kind", "quantity", "billable_quantity", "cost_usd"]].sort_values(
        [*keys, "kind"], ignore_index=True)


# ---------------------------------------------------------------- attribution

def repository_teams(con: duckdb.DuckDBPyConnection, settings: Settings) -> pd.DataFrame:
    """Team per repository: the first team of settings.teams with a glob matching the repository name
    wins over the bill's cost-allocation tag (settings.costs.bill_team_tag on the repository, else on its
    domain, from CUR 2.0 resource_tags), which wins over the repository's "team" tag from the inventory.
    Columns: account_id, region, domain, repository, team, team_source ('settings' | 'bill tag' | 'tag' |
    None)."""
    from analytics import billing  # billing reads the model through this module

    df = run(con, "cost_repository_teams")
    bill = billing.tag_teams(con, settings)
    keys = ["account_id", "region", "domain", "repository"]
    own = {tuple(r[:4]): r[4] for r in bill[bill["repository"].notna()][[*keys, "team"]].itertuples(index=False)}
    domain = {tuple(r[:3]): r[3] for r in bill[bill["repository"].isna()][[*keys[:3], "team"]].itertuples(index=False)}
    teams, sources = [], []
    for row, repo, tag in zip(df[keys].itertuples(index=False), df["repository"], df["tag_team"], strict=True):
        team = team_for(repo, settings)
        billed = own.get(tuple(row)) or domain.get(tuple(row)[:3])
        if team is not None:
            teams.append(team)
            sources.append("settings")
        elif billed:
            teams.append(billed)
            sources.append("bill tag")
        elif isinstance(tag, str) and tag:
            teams.append(tag)
            sources.append("tag")
        else:
            teams.append(UNASSIGNED)
            sources.append(None)
    df["team"], df["team_source"] = teams, sources
    return df.drop(columns="tag_team")


def team_for(repository: str | None, settings: Settings) -> str | None:
    """The team of settings.teams whose glob matches the repository name (first in file order)."""
    if repository is None:
        return None
    for team, globs in settings.teams.items():
        if any(fnmatchcase(repository, g) for g in globs):
            return team
    return None


def _with_team(df: pd.DataFrame, teams: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    keys = ["account_id", "region", "domain", "repository"]
    out = df.merge(teams[[*keys, "team"]], on=keys, how="left")
    out["team"] = out["team"].astype(object)
    missing = out["team"].isna()  # not in the inventory (or a domain-level request): settings may match
    out.loc[missing, "team"] = [team_for(r if isinstance(r, str) else None, settings) or UNASSIGNED
                                for r in out.loc[missing, "repository"]]
    return out


def storage_attribution(con: duckdb.DuckDBPyConnection, settings: Settings, since: date, until: date,
                        split: str | None = None, level: str = "asset") -> pd.DataFrame:
    """A domain's modeled storage in [since, until] spread over its asset rows by their share, summed per
    `level` ('asset', 'version', 'package', 'repository' or 'domain': sql/cost_asset_shares.sql's).

    Columns: sql/cost_asset_shares.sql's, plus gb_month and storage_usd (the row's part of its domain's
    GB-months and cost over the window). Per domain, storage_usd adds up to the domain's storage cost
    (a domain with storage but no inventory keeps one row with repository NULL, so nothing is lost).
    """
    split = split or settings.costs.shared_asset_split
    start_at = datetime.combine(since, time(0), tzinfo=UTC)
    end_at = datetime.combine(until + timedelta(days=1), time(0), tzinfo=UTC)
    shares = run(con, "cost_asset_shares", split=split, start_at=start_at, end_at=end_at, level=level)
    keys = ["account_id", "region", "domain"]
    domains = storage_daily(con, settings, since, until).groupby(keys, as_index=False)[
        ["gb_month", "storage_usd"]].sum()
    known = shares[keys].drop_duplicates()
    orphans = domains.merge(known, on=keys, how="left", indicator=True)
    orphans = orphans[orphans["_merge"] == "left_only"][keys].assign(share=1.0)
    out = pd.concat([shares, orphans], ignore_index=True).merge(domains, on=keys, how="inner")
    out["gb_month"] = out["gb_month"] * out["share"]
    out["storage_usd"] = out["storage_usd"] * out["share"]
    return out


REPOSITORY_GRAIN = ("usage_date", "account_id", "region", "domain", "repository", "format")


def request_attribution(con: duckdb.DuckDBPyConnection, settings: Settings, since: date,
                        until: date, keys: list[str] | None = None) -> pd.DataFrame:
    """Each day's request cost of an account and region spread over its requests.

    Columns: sql/cost_request_items.sql's, plus requests_usd (requests x that day's cost per request of
    the account and region, so the free tier lowers everyone's share alike). When every one of `keys` (the
    caller's grouping) is in REPOSITORY_GRAIN, only those columns of it, from the event_days rollup
    (sql/cost_request_repositories.sql: the same sums without reading events); else from the events of
    the window's days only.
    """
    if keys is not None and set(keys) <= set(REPOSITORY_GRAIN):
        items = run(con, "cost_request_repositories", start=since, end=until)
    else:
        with events_within(con, [(utc_midnight(since), utc_midnight(until + timedelta(days=1)))]):
            items = run(con, "cost_request_items", start=since, end=until)
    keys = ["usage_date", "account_id", "region"]
    daily = requests_daily(con, settings, since, until)
    daily["usd_per_request"] = daily["requests_usd"] / daily["requests"]
    out = items.merge(daily[[*keys, "usd_per_request"]], on=keys, how="left")
    out["requests_usd"] = out["requests"] * out["usd_per_request"].fillna(0.0)
    return out.drop(columns="usd_per_request")


def cost_report(con: duckdb.DuckDBPyConnection, settings: Settings, since: date | None = None,
                until: date | None = None, by: str = "repository") -> pd.DataFrame:
    """Modeled cost in [since, until] (inclusive UTC days; default: the month of the last full day, to
    that day) grouped `by` one of LEVELS.

    Columns: LEVELS[by] (account_id, region, domain, repository, format, namespace, package, version,
    principal_arn, team or usage_date), then gb_month (storage GB-months attributed), requests,
    storage_usd, requests_usd, cost_usd, share_pct (of the window's total cost). Ordered by cost_usd
    descending. Rows add up to the window's total modeled cost. Storage has no principal (by principal,
    storage_usd is 0); domain-level requests (GetAuthorizationToken, ...) have repository NULL.
    """
    if by not in LEVELS:
        raise ConfigError(f"cannot group costs by {by!r}", where="cost report",
                          fix=f"use one of {', '.join(LEVELS)}")
    since, until = default_window(con, since, until)
    keys = LEVELS[by]
    if by == "day":
        d = daily_cost(con, settings, since, until)
        parts = [d[d["kind"] == k].rename(columns={"quantity": q, "cost_usd": c})[["usage_date", q, c]]
                 for k, q, c in (("storage", "gb_month", "storage_usd"), ("requests", "requests", "requests_usd"))]
    else:
        s = storage_attribution(con, settings, since, until, level=STORAGE_LEVEL.get(by, "domain"))
        r = request_attribution(con, settings, since, until, keys=LEVELS["repository" if by == "team" else by])
        if by == "team":
            teams = repository_teams(con, settings)
            s, r = _with_team(s, teams, settings), _with_team(r, teams, settings)
        parts = [s.reindex(columns=[*keys, "gb_month", "storage_usd"]),
                 r.reindex(columns=[*keys, "requests", "requests_usd"])]
    df = pd.concat(parts, ignore_index=True)
    df = df.groupby(keys, dropna=False, as_index=False)[["gb_month", "requests", "storage_usd",
                                                        "requests_usd"]].sum(min_count=0)
    df["requests"] = df["requests"].fillna(0).round().astype("int64")
    df["cost_usd"] = df["storage_usd"] + df["requests_usd"]
    total = df["cost_usd"].sum()
    df["share_pct"] = df["cost_usd"] / total * 100 if total else 0.0
    return df.sort_values(["cost_usd", *keys], ascending=[False, *[True] * len(keys)],
                          ignore_index=True)[[*keys, *REPORT_VALUES]]


# ---------------------------------------------------------------- reconciliation with the bill

def _diff_pct(modeled: pd.Series, actual: pd.Series) -> pd.Series:
    """100 x (modeled - actual) / actual; 0 when both are 0, NaN when only actual is 0."""
    m, a = modeled.to_numpy(float), actual.to_numpy(float)
    out = np.full(len(m), np.nan)
    nonzero = np.abs(a) > 1e-12
    out[nonzero] = (m[nonzero] - a[nonzero]) / a[nonzero] * 100
    out[~nonzero & (np.abs(m) <= 1e-9)] = 0.0
    return pd.Series(out, index=modeled.index)


def reconcile(con: duckdb.DuckDBPyConnection, settings: Settings, since: date | None = None,
              until: date | None = None) -> pd.DataFrame:
    """Modeled cost next to Cost Explorer actuals per day, account and kind, over the full days both
    cover (from the latest of the first snapshot day, first full day of events and first actual day to
    the earliest of the last full day and the last actual day), narrowed to [since, until] when given.

    Columns: usage_date, account_id, kind ('storage' | 'requests'), modeled_usd, actual_usd, diff_pct
    (100 x (modeled - actual) / actual; 0 when both are 0), modeled_quantity, actual_quantity
    (GB-Mo or requests; Global-Requests is not added, it is part of the regional quantities),
    quantity_diff_pct. Empty when there are no actuals.
    """
    cov = coverage(con)
    cols = ["usage_date", "account_id", "kind", "modeled_usd", "actual_usd", "diff_pct",
            "modeled_quantity", "actual_quantity", "quantity_diff_pct"]
    firsts = [cov.first_actual_date, cov.first_snapshot_date, cov.first_full_day]
    lasts = [cov.last_actual_date, cov.last_full_day]
    if any(d is None for d in (*firsts, *lasts)):
        return pd.DataFrame(columns=cols)
    start, end = max([*firsts, *([since] if since else [])]), min([*lasts, *([until] if until else [])])
    if start > end:
        return pd.DataFrame(columns=cols)
    keys = ["usage_date", "account_id", "kind"]
    modeled = daily_cost(con, settings, start, end).groupby(keys, as_index=False)[
        ["quantity", "cost_usd"]].sum().rename(columns={"quantity": "modeled_quantity", "cost_usd": "modeled_usd"})
    actual = run(con, "cost_actuals_daily", start=start, end=end)
    df = modeled.merge(actual, on=keys, how="outer")
    for c in ("modeled_usd", "actual_usd", "modeled_quantity", "actual_quantity"):
        df[c] = df[c].astype(float).fillna(0.0)
    df["diff_pct"] = _diff_pct(df["modeled_usd"], df["actual_usd"])
    df["quantity_diff_pct"] = _diff_pct(df["modeled_quantity"], df["actual_quantity"])
    df["usage_date"] = pd.to_datetime(df["usage_date"]).dt.date
    return df.sort_values(keys, ignore_index=True)[cols]


def reconcile_summary(daily: pd.DataFrame) -> pd.DataFrame:
    """reconcile()'s rows added up per account and kind (and 'all' accounts): the headline figure.

    Columns: account_id, kind, first_day, last_day, modeled_usd, actual_usd, diff_pct,
    modeled_quantity, actual_quantity, quantity_diff_pct.
    """
    values = ["modeled_usd", "actual_usd", "modeled_quantity", "actual_quantity"]
    per = daily.groupby(["account_id", "kind"], as_index=False).agg(
        first_day=("usage_date", "min"), last_day=("usage_date", "max"), **{v: (v, "sum") for v in values})
    every = daily.groupby("kind", as_index=False).agg(
        first_day=("usage_date", "min"), last_day=("usage_date", "max"), **{v: (v, "sum") for v in values})
    df = pd.concat([per, every.assign(account_id="all")], ignore_index=True)
    df["diff_pct"] = _diff_pct(df["modeled_usd"], df["actual_usd"])
    df["quantity_diff_pct"] = _diff_pct(df["modeled_quantity"], df["actual_quantity"])
    return df[["account_id", "kind", "first_day", "last_day", "modeled_usd", "actual_usd", "diff_pct",
               "modeled_quantity", "actual_quantity", "quantity_diff_pct"]]
