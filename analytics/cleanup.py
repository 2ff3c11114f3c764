"""Cleanup candidates: package versions nobody uses any more, what deleting them frees, and a backtest.

Reads (through analytics.queries): cleanup_history, cleanup_versions, cleanup_assets,
cleanup_dependencies, cleanup_requested_after. Writes nothing; `caa report cleanup` writes the frame
with analytics.reports.write_table, and a reviewer fills in `approve` for a later `caa apply`.

Time is the store's, not the wall clock: "now" is the newest event (or an explicit `as_of`).

A version is a candidate when every rule of the policy (settings.cleanup, or keyword overrides) holds:
its status is selectable; it has not been downloaded for more than `unused_days` whole days (a version
never seen downloaded counts as idle only since max(its publication, the first event in the store), so
a short CloudTrail history never makes old versions look unused); it is not among the newest
`keep_latest` versions of its package (per repository) nor the newest `keep_latest_per_major` of its
major line; no `protect` glob or `pins` entry names it; it is at least `min_age_days` old; and no kept
INTERNAL version in its domain declares a dependency whose range admits it (repeated until nothing
changes, since a version kept that way keeps its own dependencies; a range that cannot be parsed
protects every version of the package).

Reclaimable bytes are worked out per domain by asset sha256: CodeArtifact stores an asset once per
domain, so deleting a version frees an asset only when no kept version in any repository of the domain
references it. An asset referenced only by candidates is attributed once, to the first of them in the
report's order (a refetchable one first, so the permanent total never counts bytes that can come back);
the others show 0 for it. EXTERNAL (and UNKNOWN) versions are `refetchable` unless the package's origin
control blocks upstream: the next request re-ingests them, so their savings are reported separately.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from pydantic import ValidationError

from analytics import versions as V
from analytics.filters import Filters
from analytics.queries import events_within, run, run_objects
from core import lake
from core.clock import utc_midnight
from core.errors import ConfigError, DataError
from core.settings import Cleanup, Settings
from core.store import store_identity

GIB = 1024**3
KEY = ["account_id", "region", "domain", "repository", "format", "namespace", "package", "version"]
PACKAGE = KEY[:-1]
GONE = ("Disposed", "Deleted")  # statuses whose assets are no longer stored
REPORT_COLUMNS = [
    "account_id", "domain", "repository", "format", "namespace", "package", "version", "status", "origin_type",
    "published_at", "last_downloaded_at", "downloads_90d", "size_bytes", "reclaimable_bytes",
    "monthly_savings_usd", "refetchable", "reason", "approve", "generated_at", "policy", "row_key",
]  # generated_at: the store's as-of the report judged by; policy: its rules as JSON (caa apply re-judges by them);
# row_key: a digest of the row's names (row_key), by which caa apply refuses a row a spreadsheet changed
ROW_NAMES = ["account_id", "domain", "repository", "format", "namespace", "package", "version"]


def row_key(account_id: str, domain: str, repository: str, format: str, namespace: str | None, package: str,
            version: str) -> str:
    """The report row's `row_key`: 'k1-' and 20 hex digits of the SHA-256 of its names (ROW_NAMES). A
    reviewer's spreadsheet can rewrite a name as it saves: version 1.10 as 1.1 (another version, perhaps a
    candidate too), 2.0 as 2, account 012345678901 as 12345678901 or 1.23457E+10. caa apply recomputes the
    digest from the names it reads and skips a row whose names no longer give it. Text that no spreadsheet
    reads as a number or a formula."""
    names = [v if isinstance(v, str) else "" if v is None or pd.isna(v) else str(v)
             for v in (account_id, domain, repository, format, namespace, package, version)]
    return "k1-" + hashlib.sha256("\x1f".join(names).encode("utf-8", "surrogatepass")).hexdigest()[:20]


def policy(settings: Settings, **overrides: Any) -> Cleanup:
    """settings.cleanup with keyword overrides (None = not given); a bad value raises ConfigError."""
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(given) - set(Cleanup.model_fields))
    if unknown:
        raise ConfigError(f"unknown cleanup policy setting {', '.join(unknown)}", where="cleanup policy",
                          fix=f"use one of {', '.join(Cleanup.model_fields)}")
    try:
        return Cleanup.model_validate({**settings.cleanup.model_dump(), **given})
    except ValidationError as e:
        err = e.errors()[0]
        raise ConfigError(f"cleanup.{'.'.join(map(str, err['loc']))} is invalid: {err['msg']}",
                          where="cleanup policy", fix="see [cleanup] in caa.toml.example") from None


def store_as_of(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The store's "now": its newest event, or None when it holds no events."""
    latest = run(con, "cleanup_history")["latest_event_at"].iloc[0]
    return None if pd.isna(latest) else pd.Timestamp(latest).tz_convert("UTC").to_pydatetime()


def _utc(t: Any) -> pd.Timestamp:
    t = pd.Timestamp(t)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _days(delta: pd.Series) -> pd.Series:
    """Whole days of a timedelta series (floor), as float so that a missing value stays NaN."""
    return np.floor(delta.dt.total_seconds() / 86400)


def matches_glob(fmt: str, ns: str | None, pkg: str, patterns: list[str]) -> str | None:
    names = [f"{fmt}/{ns or ''}/{pkg}", pkg] + ([f"{ns}/{pkg}"] if ns else [])
    return next((p for p in patterns if any(fnmatchcase(n, p) for n in names)), None)


def matches_pin(ns: str | None, pkg: str, version: str, pins: list[str]) -> str | None:
    for pin in pins:
        name, sep, want = pin.lstrip("@").rpartition("@")
        if not sep or not fnmatchcase(version, want):
            continue
        pin_ns, _, pin_pkg = name.rpartition("/")
        if fnmatchcase(pkg, pin_pkg) and (not pin_ns or fnmatchcase(ns or "", pin_ns.lstrip("@"))):
            return pin
    return None


def _rank(df: pd.DataFrame) -> None:
    """Add rank (1 = newest stored version of its package, prereleases included), major and rank_in_major
    (1 = newest release of its major line; a prerelease leads a line only when it has no release). Each
    column is filled as one array: assigning per package cost 2 s for 2,000 packages."""
    n = len(df)
    rank, rim, major = np.full(n, np.nan), np.full(n, np.nan), np.full(n, None, dtype=object)
    stored = np.flatnonzero(~df["status"].isin(GONE).to_numpy())
    versions, formats = df["version"].tolist(), df["format"].tolist()
    published = list(df["published_at"].dt.to_pydatetime())  # NaT stays NaT (rank_versions: unknown, oldest)
    for rows in df.iloc[stored].groupby(["_ns", *PACKAGE[:5], "package"], sort=False).indices.values():
        at = stored[rows].tolist()
        fmt, vers = formats[at[0]], [versions[i] for i in at]
        keys = [V.sort_key(fmt, v) for v in vers]  # parsed once for the rank, the major and the prerelease
        ranks = V.rank_versions(fmt, vers, [published[i] for i in at], keys)
        majors = [V.major(fmt, v, k) for v, k in zip(vers, keys, strict=True)]
        in_major: dict[str | None, int] = defaultdict(int)
        pre = [V.is_prerelease(fmt, v, k) for v, k in zip(vers, keys, strict=True)]
        for j in sorted(range(len(ranks)), key=lambda j: (pre[j], ranks[j])):  # releases lead their line
            in_major[majors[j]] += 1
            rim[at[j]] = in_major[majors[j]]
        rank[at], major[at] = ranks, majors
    df["rank"], df["major"], df["rank_in_major"] = rank, major, rim


def positions(df: pd.DataFrame) -> dict[tuple, int]:
    """The row of each version key (KEY) of a judged frame."""
    return dict(zip(zip(*(df[c].tolist() for c in KEY), strict=True), range(len(df)), strict=True))


def dependency_edges(con: duckdb.DuckDBPyConnection, df: pd.DataFrame,
                     pos: dict[tuple, int] | None = None) -> dict[int, list[tuple[int, str]]]:
    """Dependent row -> [(row of a version its declared range admits, "pkg@ver needs dep range")]. `pos`:
    positions(df), when the caller has it."""
    pos = positions(df) if pos is None else pos
    stored = ~df["status"].isin(GONE).to_numpy()
    by_package: dict[tuple, list[int]] = defaultdict(list)
    by_name: dict[tuple, list[int]] = defaultdict(list)
    for i, (acct, reg, dom, fmt, ns, pkg) in enumerate(
            df[["account_id", "region", "domain", "format", "namespace", "package"]].itertuples(index=False,
                                                                                                name=None)):
        if stored[i]:
            by_package[(acct, reg, dom, fmt, ns, pkg)].append(i)
            by_name[(acct, reg, dom, fmt, pkg)].append(i)
    versions = df["version"].tolist()
    edges: dict[int, list[tuple[int, str]]] = defaultdict(list)
    deps = run(con, "cleanup_dependencies")
    deps = deps.astype(object).where(deps.notna(), None)
    for row in deps.itertuples(index=False):
        me = pos.get(tuple(getattr(row, c) for c in KEY))
        if me is None:  # published after as_of (a backtest)
            continue
        fmt, dns, dpkg, req = row.format, row.dependency_namespace, row.dependency_package, row.version_requirement
        if dns is None and fmt == "maven":  # a groupId is mandatory in maven: match any when it is missing
            targets = by_name.get((row.account_id, row.region, row.domain, fmt, dpkg), [])
        else:
            targets = by_package.get((row.account_id, row.region, row.domain, fmt, dns, dpkg), [])
        label = f"{row.package}@{row.version} needs {dpkg} {req or '(any)'}"
        edges[me] += [(t, label) for t in targets if t != me and V.satisfies(fmt, versions[t], req)]
    return edges


def protect_dependencies(df: pd.DataFrame, kept: np.ndarray, edges: dict[int, list[tuple[int, str]]]) -> list:
    """Mark versions a kept INTERNAL version depends on as kept, until nothing changes."""
    needed_by: list[str | None] = [None] * len(df)
    stored = ~df["status"].isin(GONE).to_numpy()
    frontier = [i for i in edges if kept[i] and stored[i]]
    seen = set(frontier)
    while frontier:
        i = frontier.pop()
        for t, label in edges[i]:
            if needed_by[t] is None:
                needed_by[t] = label
            if not kept[t]:
                kept[t] = True
            if t in edges and t not in seen and stored[t]:
                seen.add(t)
                frontier.append(t)
    return needed_by


def _assets(con: duckdb.DuckDBPyConnection, pos: dict[tuple, int]) -> pd.DataFrame:
    """The assets (sql/cleanup_assets.sql) of the versions `pos` indexes, with each one's row (pos)."""
    assets = run_objects(con, "cleanup_assets")
    assets["namespace"] = assets["namespace"].astype(object).where(assets["namespace"].notna(), None)
    assets["pos"] = [pos.get(k, -1) for k in assets[KEY].itertuples(index=False, name=None)]
    return assets[assets["pos"] >= 0].copy()  # versions published after as_of held nothing then


def reclaim(con: duckdb.DuckDBPyConnection, df: pd.DataFrame, candidate: np.ndarray,
            refetchable: np.ndarray, pos: dict[tuple, int] | None = None,
            assets: pd.DataFrame | None = None) -> np.ndarray:
    """Bytes each candidate frees on its own account: assets (per domain by sha256) held only by candidates.
    `pos`: positions(df), `assets`: _assets(con, pos), when the caller has them."""
    assets = _assets(con, positions(df) if pos is None else pos) if assets is None else assets.copy()
    p = assets["pos"].to_numpy(dtype="int64")  # an empty inventory must give an empty int index
    assets["candidate"] = candidate[p]
    assets["order"] = np.where(refetchable[p], 0, len(df)) + p  # refetchable first, then report order
    asset_key = ["account_id", "region", "domain", "sha256"]
    only_candidates = assets.groupby(asset_key)["candidate"].transform("all")
    freed = assets[only_candidates].copy()
    freed["size_bytes"] = freed.groupby(asset_key)["size_bytes"].transform("max")
    owner = freed.sort_values("order").drop_duplicates(asset_key)
    out = np.zeros(len(df), dtype="int64")
    sums = owner.groupby("pos")["size_bytes"].sum()
    out[sums.index.to_numpy(dtype="int64")] = sums.to_numpy(dtype="int64")
    return out


@dataclass(frozen=True)
class Facts:
    """What the judging reads that no policy changes: the versions with their downloads, ranks, idle and age
    days (in report order), their key index, the dependency edges and the assets (with each one's row)."""

    df: pd.DataFrame
    now: pd.Timestamp
    first_event: pd.Timestamp | None
    pos: dict[tuple, int]
    edges: dict[int, list[tuple[int, str]]]
    assets: pd.DataFrame


# facts() of the last stores read, by (snapshot file, store id and version, filters, as_of): a reader's
# snapshot never changes under it, so a new policy (the Cleanup page's controls) is judged without reading
# the store again (at 200M events about half the judging's time). A writer's store changes under it, and an
# in-memory store has no file: neither is kept. The dashboard's sessions share it (a lock guards it).
_FACTS: OrderedDict[tuple, Facts] = OrderedDict()
_FACTS_LOCK = threading.Lock()
FACTS_KEPT = 2


def forget_facts() -> None:
    """Drop every kept facts(): the next judging reads its store again (a benchmark timing the queries)."""
    with _FACTS_LOCK:
        _FACTS.clear()


def _facts_key(con: duckdb.DuckDBPyConnection, as_of: Any) -> tuple | None:
    (path, readonly), = con.execute("SELECT path, readonly FROM duckdb_databases() WHERE database_name = "
                                    "current_database()").fetchall()  # all: no result left unfinished
    if not path or not readonly:
        return None
    store_id, version = store_identity(con)
    if store_id is None:  # a snapshot from before migration 017: nothing tells it from another store
        return None
    filters = Filters.applied(con)
    con.complete()  # leave the connection as a query would: no result half read
    return (path, store_id, version, filters, None if as_of is None else _utc(as_of))


def _versions_sized(con: duckdb.DuckDBPyConnection) -> bool:
    """cleanup_versions' $sized (core/lake.py versions_sized). A snapshot from before migration 025 that this
    process could not upgrade (cli.upgrade_to_read) has no assets_bytes or assets_count: a TEMP view gives its
    package_versions the two, NULL, so that the query binds, and it sums the assets itself."""
    if lake.versions_sized(con):
        return True
    if not lake.sizes_held(con):
        con.execute(f"CREATE OR REPLACE TEMP VIEW package_versions AS SELECT *, NULL::BIGINT AS assets_bytes, "
                    f"NULL::BIGINT AS assets_count FROM \"{con.execute('SELECT current_database()').fetchone()[0]}\""
                    ".main.package_versions")
    return False


def facts(con: duckdb.DuckDBPyConnection, as_of: Any = None) -> Facts | None:
    """The policy-independent part of evaluate as of `as_of` (default: the newest event), None without
    events; kept for the last FACTS_KEPT read-only stores (_FACTS). Callers must not change it."""
    key = _facts_key(con, as_of)
    with _FACTS_LOCK:
        if key is not None and key in _FACTS:
            _FACTS.move_to_end(key)
            return _FACTS[key]
    hist = run(con, "cleanup_history").iloc[0]
    if pd.isna(hist["latest_event_at"]) and as_of is None:
        return None
    now = _utc(as_of if as_of is not None else hist["latest_event_at"])
    first_event = None if pd.isna(hist["first_event_at"]) else _utc(hist["first_event_at"])
    at = now.to_pydatetime()
    # the raw pieces of sql/cleanup_versions.sql: each window's partial first day, and the as-of day up to
    # as_of unless its download_days row is exact (days_to)
    days_to = raw_from(at, hist["latest_event_at"])
    raw = list(dict.fromkeys(span for n in (30, 90, 365) for span in edge_days(at - timedelta(days=n), at, days_to)))
    day = at.astimezone(UTC).date()
    dates = Filters.applied(con)  # a date filter cuts months that download_months sums whole: days only
    split = date.min if dates.start or dates.end else day.replace(day=1)
    sized = _versions_sized(con)
    with events_within(con, raw):
        df = run_objects(con, "cleanup_versions", as_of=at, split=split, days_to=days_to, sized=sized)
    df["namespace"] = df["namespace"].astype(object).where(df["namespace"].notna(), None)
    df["_ns"] = df["namespace"].fillna("")
    _rank(df)
    df = df.sort_values([*PACKAGE[:5], "_ns", "package", "rank", "version"],
                        ascending=[True] * 7 + [False, True], na_position="last", ignore_index=True)
    published = df["published_at"].fillna(df["first_seen_at"])
    idle_since = df["last_downloaded_at"]
    floor = published if first_event is None else published.where(published > first_event, first_event)
    idle_since = idle_since.fillna(floor)
    df["idle_days"] = _days(now - idle_since)
    df["age_days"] = _days(now - published)
    pos = positions(df)
    out = Facts(df, now, first_event, pos, dependency_edges(con, df, pos), _assets(con, pos))
    if key is not None:
        with _FACTS_LOCK:
            _FACTS[key] = out
            while len(_FACTS) > FACTS_KEPT:
                _FACTS.popitem(last=False)
    return out


def evaluate(con: duckdb.DuckDBPyConnection, settings: Settings, *, as_of: Any = None,
             **overrides: Any) -> pd.DataFrame:
    """Every version in the inventory judged by the policy, in report order.

    Columns: the version key (KEY), status, origin_type, origin_upstream, published_at, first_seen_at,
    last_downloaded_at, downloads_30d/90d/365d/total, size_bytes, asset_count, rank, major,
    rank_in_major, idle_days, age_days, candidate, refetchable, reclaimable_bytes, monthly_savings_usd,
    reason (why a candidate was selected), kept_because (why any other version was not).
    attrs (JSON-safe): as_of and first_event_at as ISO strings, policy.
    """
    pol = policy(settings, **overrides)
    got = facts(con, as_of)
    if got is None:
        return pd.DataFrame(columns=[*KEY, "candidate", "reason", "kept_because"])
    df, now, first_event, pos = got.df.copy(), got.now, got.first_event, got.pos

    eligible = df["status"].isin(pol.statuses)
    unused = df["idle_days"] > pol.unused_days
    latest = df["rank"] <= pol.keep_latest
    latest_major = df["rank_in_major"] <= pol.keep_latest_per_major
    young = ~(df["age_days"] >= pol.min_age_days)
    globbed = [matches_glob(f, n, p, pol.protect) for f, n, p in zip(df["format"], df["namespace"], df["package"], strict=True)]
    pinned = [matches_pin(n, p, v, pol.pins) for n, p, v in zip(df["namespace"], df["package"], df["version"], strict=True)]
    selected = (eligible & unused & ~latest & ~latest_major & ~young).to_numpy(copy=True)
    selected &= np.array([g is None and p is None for g, p in zip(globbed, pinned, strict=True)], dtype=bool)
    kept = ~selected
    needed_by = protect_dependencies(df, kept, got.edges)
    candidate = ~kept

    refetchable = ((df["origin_type"] != "INTERNAL") & (df["origin_upstream"] != "BLOCK")).to_numpy()
    df["candidate"], df["refetchable"] = candidate, refetchable
    df["reclaimable_bytes"] = reclaim(con, df, candidate, refetchable, pos, assets=got.assets)
    price = {r: settings.prices.for_region(r)[0] for r in df["region"].unique()}
    df["monthly_savings_usd"] = df["reclaimable_bytes"] / GIB * df["region"].map(price).astype(float)

    rows = zip(df.itertuples(index=False), eligible, unused, latest, latest_major, young, globbed, pinned,
               needed_by, strict=True)
    reasons, kept_because = [], []
    for r, *why in rows:
        if r.candidate:
            reasons.append(_reason(r, pol))
            kept_because.append(None)
        else:
            reasons.append(None)
            kept_because.append(_kept_because(r, pol, *why))
    df["reason"], df["kept_because"] = reasons, kept_because
    df.attrs.update(as_of=now.isoformat(),  # JSON-safe: to_parquet stores attrs as JSON
                    first_event_at=None if first_event is None else first_event.isoformat(), policy=pol.model_dump())
    return df.drop(columns="_ns")


def _reason(r: Any, pol: Cleanup) -> str:
    idle = int(r.idle_days)
    parts = [f"never downloaded, idle {idle} d (> {pol.unused_days})" if pd.isna(r.last_downloaded_at)
             else f"unused {idle} d (> {pol.unused_days})"]
    if pol.keep_latest:
        parts.append(f"not in latest {pol.keep_latest} (rank {int(r.rank)})" if not math.isnan(r.rank)
                     else f"not in latest {pol.keep_latest} (status {r.status})")
    if pol.keep_latest_per_major:
        line = f"major {r.major}" if r.major is not None else "its unnumbered line"
        parts.append(f"not newest of {line}" if pol.keep_latest_per_major == 1
                     else f"not in latest {pol.keep_latest_per_major} of {line}")
    parts.append(f"age {int(r.age_days)} d (>= {pol.min_age_days})")
    return "; ".join(parts)


def _kept_because(r: Any, pol: Cleanup, eligible: bool, unused: bool, latest: bool, latest_major: bool,
                  young: bool, glob: str | None, pin: str | None, needed: str | None) -> str:
    why = []
    if not eligible:
        why.append(f"status {r.status} not in {pol.statuses}")
    if not unused:
        why.append(f"never downloaded, idle {int(r.idle_days)} d (<= {pol.unused_days})"
                   if pd.isna(r.last_downloaded_at) else f"last download {int(r.idle_days)} d ago (<= {pol.unused_days})")
    if latest:
        why.append(f"latest {pol.keep_latest} (rank {int(r.rank)})")
    if latest_major:
        why.append(f"newest of major {r.major}" if pol.keep_latest_per_major == 1
                   else f"latest {pol.keep_latest_per_major} of major {r.major}")
    if young:
        why.append("age unknown" if pd.isna(r.age_days) else f"age {int(r.age_days)} d (< {pol.min_age_days})")
    if glob:
        why.append(f"protected by {glob!r}")
    if pin:
        why.append(f"pinned by {pin!r}")
    if needed:
        why.append(needed)
    return "; ".join(why)


def report_cleanup(con: duckdb.DuckDBPyConnection, settings: Settings, *, as_of: Any = None,
                   **policy_overrides: Any) -> pd.DataFrame:
    """The candidates, one row per version per repository, in REPORT_COLUMNS order; `approve` is empty.

    The frame's index (named "region") carries each row's region, which the report columns leave out,
    for `reclaimed_bytes_by_domain`; write_table does not write it.
    """
    df = evaluate(con, settings, as_of=as_of, **policy_overrides)
    if "refetchable" not in df:  # no events: nothing can be judged unused
        df = pd.DataFrame(columns=[*REPORT_COLUMNS, "region"]).astype({"refetchable": bool})
    return _report_frame(df[df["candidate"].astype(bool)] if len(df) else df)


def _bools(s: pd.Series) -> pd.Series:
    """refetchable as booleans, also when read back from a CSV or XLSX report ("True"/"False")."""
    return s.map(lambda v: bool(v) if isinstance(v, bool | np.bool_)
                 else str(v).strip().lower() in ("true", "1", "yes")).astype(bool)


def _regions(df: pd.DataFrame) -> pd.Series:
    if "region" in df.columns:
        return df["region"]
    if df.index.name == "region":
        return pd.Series(df.index, index=df.index)
    raise DataError("the cleanup frame has no region", where="reclaimed_bytes_by_domain",
                    fix="pass the frame report_cleanup() returned (its index holds the region)")


def summary(df: pd.DataFrame) -> dict:
    """Totals of a cleanup report: candidates, reclaimable bytes/GB and $/month split permanent and
    refetchable, overall and per domain."""
    refetch = _bools(df["refetchable"]) if len(df) else pd.Series(dtype=bool)
    b = pd.to_numeric(df["reclaimable_bytes"]).astype("int64") if len(df) else pd.Series(dtype="int64")
    usd = pd.to_numeric(df["monthly_savings_usd"]).astype(float) if len(df) else pd.Series(dtype=float)

    def split(values: pd.Series, mask: pd.Series) -> dict:
        perm, ref = values[~mask].sum().item(), values[mask].sum().item()
        return {"permanent": perm, "refetchable": ref, "total": perm + ref}

    by_domain = []
    if len(df):
        keyed = pd.DataFrame({"account_id": df["account_id"].to_numpy(), "domain": df["domain"].to_numpy(),
                              "refetch": refetch.to_numpy(), "bytes": b.to_numpy(), "usd": usd.to_numpy()})
        try:
            keyed["region"] = _regions(df).to_numpy()
        except DataError:
            keyed["region"] = None
        for (acct, region, dom), g in keyed.groupby(["account_id", "region", "domain"], dropna=False):
            by_domain.append({
                "account_id": acct, "region": region, "domain": dom, "candidates": len(g),
                "reclaimable_gb": {k: v / GIB for k, v in split(g["bytes"], g["refetch"]).items()},
                "monthly_savings_usd": split(g["usd"], g["refetch"]),
            })
    rb = split(b, refetch)
    return {
        "candidates": len(df),
        "refetchable_candidates": int(refetch.sum()),
        "reclaimable_bytes": rb,
        "reclaimable_gb": {k: v / GIB for k, v in rb.items()},
        "monthly_savings_usd": split(usd, refetch),
        "by_domain": by_domain,
    }


def reclaimed_bytes_by_domain(df: pd.DataFrame) -> dict[tuple[str, str, str], int]:
    """Permanently reclaimable bytes per (account_id, region, domain), for the cost what-if."""
    if not len(df):
        return {}
    keyed = pd.DataFrame({"account_id": df["account_id"].to_numpy(), "region": _regions(df).to_numpy(),
                          "domain": df["domain"].to_numpy(), "refetch": _bools(df["refetchable"]).to_numpy(),
                          "bytes": pd.to_numeric(df["reclaimable_bytes"]).astype("int64").to_numpy()})
    perm = keyed[~keyed["refetch"]].groupby(["account_id", "region", "domain"])["bytes"].sum()
    return {k: int(v) for k, v in perm.items()}


INSTANT = timedelta(microseconds=1)  # the store's time resolution (TIMESTAMPTZ)


def raw_from(at: datetime, newest: Any) -> date:
    """The first UTC day whose downloads up to `at` a query must read raw (its `$days_to`): `at`'s own day,
    or the day after when that day's download_days row is exact: no event is newer than `at` (`newest`: the
    store's newest event; the usual "now"), or `at` is its day's last instant (the backtest's, day_end)."""
    day = at.astimezone(UTC).date()
    whole = (newest is None or pd.isna(newest) or at >= _utc(newest).to_pydatetime()
             or (at + INSTANT).astimezone(UTC).date() > day)
    return day + timedelta(days=1) if whole else day


def day_end(at: datetime) -> datetime:
    """The last instant of the last whole UTC day that ends at or before `at`."""
    return utc_midnight((at + INSTANT).astimezone(UTC).date()) - INSTANT


def edge_days(start_at: datetime, end_at: datetime, days_to: date | None = None) -> list[tuple[datetime, datetime]]:
    """The partial UTC days at both ends of (start_at, end_at], as events_within spans (both ends inclusive):
    the raw events a query over the window reads when it takes its whole days from a rollup
    (sql/cleanup_versions.sql, sql/cleanup_requested_after.sql). No end span when `days_to` (raw_from) says
    the end's day is read whole from the rollup."""
    first = utc_midnight(start_at.astimezone(UTC).date() + timedelta(days=1))
    end_day = end_at.astimezone(UTC).date()
    return [(start_at, first)] + ([] if days_to is not None and days_to > end_day else [(utc_midnight(end_day), end_at)])


def name_keys(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> list[tuple]:
    """Each row's KEY (a domain's name is unique only within its account and Region) with its names as
    CodeArtifact compares them (the store's package_key, namespace_key and version_key,
    core/schema/021_name_keys.sql), in the frame's order: a download recorded under a client's spelling matches
    the inventory's stored name."""
    if frame.empty:
        return []
    con.register("_caa_name_keys", frame[KEY].reset_index(drop=True).assign(_i=range(len(frame))))
    try:
        return con.execute(
            "SELECT account_id, region, domain, repository, format, namespace_key(format, namespace), "
            "package_key(format, package), version_key(format, version) FROM _caa_name_keys ORDER BY _i").fetchall()
    finally:
        con.unregister("_caa_name_keys")


def requested_after(con: duckdb.DuckDBPyConnection, start_at: datetime, end_at: datetime, newest: Any
                    ) -> pd.DataFrame:
    """sql/cleanup_requested_after.sql over (start_at, end_at]: the whole days from download_days, raw only
    the partial first day and the end's day when its rollup row is not exact (raw_from; `newest`: the
    store's newest event)."""
    days_to = raw_from(end_at, newest)
    with events_within(con, edge_days(start_at, end_at, days_to)):
        return run(con, "cleanup_requested_after", start_at=start_at, end_at=end_at, days_to=days_to)


def backtest(con: duckdb.DuckDBPyConnection, settings: Settings, days: int | None = None,
             **policy_overrides: Any) -> dict:
    """Replay the policy as if it had run `days` ago (default settings.cleanup.backtest_days).

    The candidates are computed as of the end of the last whole UTC day at least `days` before now (day_end:
    the queries then read every day from the rollups; from now - days itself, a store of 200M events read
    that day's 550,000 events raw, 100-150 ms), from the downloads up to then and the versions published by
    then; the result says how many of them were downloaded afterwards (false deletions:
    a permanent one breaks a build, a refetchable one is fetched from upstream again) and what would
    have been saved. The inventory is today's, so versions deleted since then are not replayed and
    statuses are today's.
    """
    pol = policy(settings, **policy_overrides)
    days = pol.backtest_days if days is None else int(days)
    now = store_as_of(con)
    if now is None:
        raise DataError("the store holds no events to replay", fix="run `caa collect cloudtrail` first")
    then = day_end(now - timedelta(days=days))
    past = evaluate(con, settings, as_of=then, **policy_overrides)
    sel = past[past["candidate"]].copy()
    after = requested_after(con, then, now, newest=now)  # `now` is the newest event: its day is whole
    hits: dict[tuple, tuple] = {}  # per version as CodeArtifact compares names: spellings summed
    for k, (n, at) in zip(name_keys(con, after), after[["downloads_after", "first_requested_at"]].astype(object)
                          .where(after.notna(), None).itertuples(index=False, name=None), strict=True):
        n0, at0 = hits.get(k, (0, None))
        hits[k] = (n0 + n, min((t for t in (at0, at) if t is not None), default=None))
    got = [hits.get(k) for k in name_keys(con, sel)]
    sel["downloads_after"] = [g[0] if g else 0 for g in got]
    sel["first_requested_at"] = [g[1] if g else None for g in got]
    requested = sel[sel["downloads_after"] > 0]
    s = summary(_report_frame(sel))
    n = len(sel)
    return {
        "as_of": now, "replayed_as_of": then,
        "days": days, "policy": pol.model_dump(),
        "selected": n, "requested_after": len(requested),
        "false_deletion_rate": len(requested) / n if n else 0.0,
        "requested_after_permanent": int((~requested["refetchable"]).sum()),
        "requested_after_refetchable": int(requested["refetchable"].sum()),
        "downloads_after": int(requested["downloads_after"].sum()),
        "reclaimable_bytes": s["reclaimable_bytes"], "reclaimable_gb": s["reclaimable_gb"],
        "monthly_savings_usd": s["monthly_savings_usd"],
        "false_deletions": requested[[*KEY, "refetchable", "downloads_after", "first_requested_at", "reason"]]
        .sort_values("downloads_after", ascending=False).head(50).to_dict(orient="records"),
    }


JUDGING = ("unused_days", "keep_latest", "keep_latest_per_major", "min_age_days", "protect", "pins", "statuses")


def policy_json(policy: dict) -> str:
    """The rules that make a candidate, as one compact JSON text (the report's policy column)."""
    return json.dumps({k: policy[k] for k in JUDGING}, separators=(",", ":"), sort_keys=True)


def _report_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """The report view of rows from `evaluate`: REPORT_COLUMNS in order, the region as the index."""
    out = rows.copy()
    out["approve"] = pd.Series([None] * len(out), index=out.index, dtype=object)
    for col in ("downloads_90d", "size_bytes", "reclaimable_bytes"):
        out[col] = out[col].astype("int64")
    out["refetchable"] = out["refetchable"].astype(bool)
    out["generated_at"] = pd.Series([rows.attrs.get("as_of")] * len(out), index=out.index, dtype=object)
    out["policy"] = pd.Series([policy_json(rows.attrs["policy"]) if "policy" in rows.attrs else None] * len(out),
                              index=out.index, dtype=object)
    out["row_key"] = pd.Series([row_key(*names) for names in out[ROW_NAMES].itertuples(index=False, name=None)],
                               index=out.index, dtype=object)
    out = out.set_index(pd.Index(out["region"], name="region"))[REPORT_COLUMNS]
    out.attrs = dict(rows.attrs)
    return out
