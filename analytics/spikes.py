"""Download spikes and auth-failure bursts, with a seasonal robust baseline, sizing, cost and attribution.

Reads (through analytics.queries): the downloads view, events and the download_sessions_days rollup
(sql/spike_*.sql). Writes nothing.

Downloads. For every series (a package in a repository; also a whole repository, and a principal) the
detector counts per UTC day the *sessions* — distinct (principal, source IP, minute) — and the downloads.
A CI job fetching one package 40 times within a minute is one session, so session counts are robust to
the clustered traffic of builds, while downloads size the spike. The baseline of a bucket is the median
of the same weekday (hour-of-week for hours) over the previous `baseline_weeks` weeks, its scale
max(1.4826 x MAD, sqrt(baseline + 4)) (a Poisson floor, so a series at 0 does not alert on a handful of
sessions). A day is anomalous when (sessions - baseline) / scale >= `score_threshold` and it has at least
`min_daily_downloads` downloads; a series needs `baseline_weeks` weeks of history after its first download
before it can alert (a new package is not a spike). Consecutive anomalous days are merged, then the hours
are scored the same way (hour-of-week baseline) to place the spike's start and end to the hour. Excess
downloads = observed - baseline summed over the spike's hours; its cost is excess / 10,000 x the
region's request price, the marginal price: the monthly free tier is ignored, and the metadata requests
that come with each install are not counted, so it is a floor. The last day of the store is usually
partial: its baseline is scaled by the fraction of the day elapsed. Repository and principal spikes are
reported only when no package spike explains them (same repository, or led by that principal).

Auth. Per principal and UTC hour: events with an access-denied error code (`DENIED_CODES`) and successful
GetAuthorizationToken calls, scored against the hour-of-week baseline; a burst needs `AUTH_MIN_EVENTS`.

Attribution: each spike's principals, user agents and source IPs with their share of the *excess* (the
value's downloads in the window minus its median in the same window of the previous weeks).

`evaluate(detected, truth)` scores a detection against a demo estate's ground truth (see its docstring).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import duckdb
import numpy as np
import pandas as pd

from analytics import filters
from analytics.overview import as_of
from analytics.queries import run
from core.settings import Settings

DENIED_CODES = ["AccessDenied", "AccessDeniedException", "UnauthorizedException"]
AUTH_MIN_EVENTS = 10  # an auth burst needs at least this many events
LEVELS = ("package", "repository", "principal")
PACKAGE = ["domain", "repository", "format", "namespace", "package"]
KEYS = ["account_id", "region", "domain", "repository", "format", "namespace", "package", "principal_arn"]
COLUMNS = ["kind", "domain", "repository", "format", "namespace", "package", "principal_arn", "start", "end",
           "score", "observed", "baseline", "excess", "excess_cost_usd", "top_principals", "top_user_agents",
           "top_source_ips", "level", "signal", "account_id", "region"]
TOP = 3
HOUR, DAY, WEEK = timedelta(hours=1), timedelta(days=1), timedelta(days=7)


def _naive(ts: datetime) -> datetime:
    return pd.Timestamp(ts).tz_convert(UTC).tz_localize(None).to_pydatetime()


def _utc(ts: datetime) -> datetime:
    return pd.Timestamp(ts).tz_localize(UTC).to_pydatetime()


def seasonal_baseline(x: np.ndarray, period: int, weeks: int, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Median and scale of each bucket over the same bucket 1..weeks periods back (NaN without history).

    x: series x buckets. scale = max(1.4826 x MAD, sqrt(max(median, mean of all previous weeks x period
    buckets) + floor)): a Poisson floor that also holds for sparse series whose same-weekday median is 0.
    """
    stack = np.full((weeks, *x.shape), np.nan)
    for k in range(1, weeks + 1):
        if k * period < x.shape[1]:
            stack[k - 1][:, k * period:] = x[:, : x.shape[1] - k * period]
    base = np.median(stack, axis=0)
    mad = np.median(np.abs(stack - base), axis=0)
    span = weeks * period
    cs = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x, axis=1)], axis=1)
    mean = np.full(x.shape, np.nan)
    if span < x.shape[1]:
        mean[:, span:] = (cs[:, span:-1] - cs[:, : x.shape[1] - span]) / span
    level = np.fmax(base, mean)
    return base, np.maximum(1.4826 * mad, np.sqrt(np.maximum(level, 0) + floor))


def _grid(df: pd.DataFrame, keys: list[str], at: str, values: list[str], first: datetime, step: timedelta,
          n: int) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Zero-filled series x bucket matrices of `values` (bucket t = first + t * step)."""
    sid = df.groupby(keys, dropna=False, sort=True).ngroup().to_numpy()
    series = df.assign(_sid=sid).drop_duplicates("_sid").sort_values("_sid")[keys].reset_index(drop=True)
    t = ((pd.to_datetime(df[at]) - pd.Timestamp(first)) // pd.Timedelta(step)).to_numpy()
    out = {}
    for v in values:
        m = np.zeros((len(series), n))
        np.add.at(m, (sid, t), df[v].to_numpy(dtype=float))
        out[v] = m
    return series, out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (first, last) index of each run of True."""
    idx = np.flatnonzero(mask)
    if not len(idx):
        return []
    cuts = np.flatnonzero(np.diff(idx) > 1)
    return list(zip(idx[np.r_[0, cuts + 1]], idx[np.r_[cuts, len(idx) - 1]], strict=True))


def _start(since: date | None, weeks: int) -> datetime:
    """Where the series start: `weeks` weeks (and a day) of baseline before `since`."""
    if since is None:
        return datetime(1970, 1, 1, tzinfo=UTC)
    return datetime.combine(since, time(0), tzinfo=UTC) - weeks * WEEK - DAY


def _window_params(cands: list[dict], level: str, weeks: int) -> dict:
    return {"level": level, "weeks": weeks, "window_ids": list(range(len(cands))),
            **{f"{k}s" if k != "principal_arn" else "principals": [c[k] for c in cands]
               for k in KEYS if k not in ("repository", "namespace")},
            "repositories": [c["repository"] for c in cands], "namespaces": [c["namespace"] for c in cands],
            "from_at": [c["from_at"] for c in cands], "to_at": [c["to_at"] for c in cands]}


def _frames(df: pd.DataFrame, wid: int, weeks: int, cols: list[str], value: str) -> tuple[pd.Series, pd.Series]:
    """(observed, baseline median over weeks_back 1..weeks) of `value` per `cols` for one window."""
    d = df[df["window_id"] == wid]
    if d.empty:
        return pd.Series(dtype=float), pd.Series(dtype=float)
    p = d.pivot_table(index=cols, columns="weeks_back", values=value, aggfunc="sum", fill_value=0)
    p = p.reindex(columns=range(weeks + 1), fill_value=0)
    return p[0].astype(float), p[list(range(1, weeks + 1))].median(axis=1).astype(float)


def _shares(df: pd.DataFrame, wid: int, weeks: int, dimension: str, value: str) -> pd.Series:
    """Share of each value of a dimension in a window's excess (of its observed when there is no excess)."""
    obs, base = _frames(df[df["dimension"] == dimension], wid, weeks, ["value"], value)
    if obs.empty:
        return obs
    excess = (obs - base).clip(lower=0)
    share = excess / excess.sum() if excess.sum() > 0 else obs / max(obs.sum(), 1)
    return share[share > 0].sort_values(ascending=False, kind="stable")


def _tops(share: pd.Series) -> list[str]:
    """The TOP values as "name (share%)"."""
    return [f"{name} ({100 * s:.0f}%)" for name, s in share.head(TOP).items()]


def session_series(con: duckdb.DuckDBPyConnection, level: str, grain: str, start_at: datetime,
                   end_at: datetime) -> pd.DataFrame:
    """sql/spike_download_series.sql: the whole UTC days from the daily session rollup where it answers
    exactly (the day grain; with a list filter only the package level), the partial days from raw events."""
    full_lo = full_hi = end_at
    if grain == "day" and (level == "package" or not filters.lists_filtered(con)):
        first = datetime.combine(start_at.astimezone(UTC).date(), time(0), tzinfo=UTC)
        full_lo = first if first == start_at else first + DAY
        full_hi = datetime.combine(end_at.astimezone(UTC).date(), time(0), tzinfo=UTC)
    return run(con, "spike_download_series", level=level, grain=grain, start_at=start_at, end_at=end_at,
               full_lo=full_lo, full_hi=full_hi)


def download_series(con: duckdb.DuckDBPyConnection, settings: Settings, level: str = "package",
                    grain: str = "day", since: date | None = None) -> pd.DataFrame:
    """Zero-filled sessions and downloads per series and bucket with the seasonal baseline and score.

    Columns: the KEYS of `level`, bucket_at (UTC), sessions, downloads, baseline (sessions), scale, score
    (NaN while a series has less than baseline_weeks weeks of history).
    """
    when = as_of(con)
    weeks = settings.spikes.baseline_weeks
    if when is None or level not in LEVELS or grain not in ("hour", "day"):
        return pd.DataFrame(columns=[*KEYS, "bucket_at", "sessions", "downloads", "baseline", "scale", "score"])
    step, period = (HOUR, 168) if grain == "hour" else (DAY, 7)
    end = pd.Timestamp(when.latest_event_at).floor("h").to_pydatetime() + HOUR
    df = session_series(con, level, grain, _start(since, weeks), end)
    if df.empty:
        return df
    first = pd.Timestamp(df["bucket_at"].min()).to_pydatetime()
    n = int((_naive(end) - first) / step) + (1 if grain == "day" else 0)
    series, m = _grid(df, KEYS, "bucket_at", ["sessions", "downloads"], first, step, n)
    base, scale = seasonal_baseline(m["sessions"], period, weeks, 4.0)
    score = (m["sessions"] - base) / scale
    born = (m["downloads"] > 0).argmax(axis=1)
    score[np.arange(n)[None, :] < born[:, None] + period * weeks] = np.nan
    out = series.loc[series.index.repeat(n)].reset_index(drop=True)
    out["bucket_at"] = np.tile(pd.date_range(first, periods=n, freq=step).tz_localize(UTC), len(series))
    for name, a in (("sessions", m["sessions"]), ("downloads", m["downloads"]), ("baseline", base),
                    ("scale", scale), ("score", score)):
        out[name] = a.reshape(-1)
    return out


def _download_spikes(con, settings: Settings, level: str, since: date | None, when) -> list[dict]:
    sp, weeks = settings.spikes, settings.spikes.baseline_weeks
    end = pd.Timestamp(when.latest_event_at).floor("h").to_pydatetime() + HOUR
    df = session_series(con, level, "day", _start(since, weeks), end)
    if df.empty:
        return []
    first = pd.Timestamp(df["bucket_at"].min()).to_pydatetime()
    n = (when.day - first.date()).days + 1
    series, m = _grid(df, KEYS, "bucket_at", ["sessions", "downloads"], first, DAY, n)
    x = m["sessions"].copy()
    elapsed = (_naive(when.latest_event_at) - datetime.combine(when.day, time(0))) / DAY
    frac = min(max(elapsed, 1 / 24), 1.0)  # the store's last day is usually partial
    x[:, -1] /= frac  # compare the day's rate, not its partial total
    base, scale = seasonal_baseline(x, 7, weeks, 4.0)
    score = (x - base) / scale
    born = (m["downloads"] > 0).argmax(axis=1)
    valid = np.arange(n)[None, :] >= born[:, None] + 7 * weeks
    hot = valid & (score >= sp.score_threshold) & (m["downloads"] / np.r_[np.ones(n - 1), frac] >= sp.min_daily_downloads)
    # A spike spread over several days may clear the rule on one of them only: its neighbours that are
    # still clearly raised (half the threshold) belong to it, so it is sized whole.
    raised = valid & (score >= sp.score_threshold / 2) & (m["downloads"] > base)
    cands = []
    for i in np.flatnonzero(hot.any(axis=1)):
        for t0, t1 in _runs(hot[i]):
            while t0 > 0 and raised[i, t0 - 1]:
                t0 -= 1
            while t1 < n - 1 and raised[i, t1 + 1]:
                t1 += 1
            day0 = first + t0 * DAY
            if since is not None and (first + (t1 + 1) * DAY).date() <= since:
                continue
            c = {k: (None if pd.isna(v) else v) for k, v in series.iloc[i].items()}
            cands.append({**c, "from_at": _utc(day0 - DAY), "to_at": _utc(min(first + (t1 + 2) * DAY, _naive(end))),
                          "core": (_utc(day0), _utc(first + (t1 + 1) * DAY)), "score": float(np.nanmax(score[i, t0:t1 + 1]))})
    if not cands:
        return []
    params = _window_params(cands, level, weeks)
    hours = run(con, "spike_download_hours", **params)
    rows = []
    for wid, c in enumerate(cands):
        rows.append(_place(c, wid, hours, weeks, settings))
    attribution = run(con, "spike_download_attribution", **_window_params(rows, level, weeks))
    for wid, r in enumerate(rows):
        r["_principals"] = _shares(attribution, wid, weeks, "principal", "downloads")
        r["top_principals"] = _tops(r["_principals"])
        r["top_user_agents"] = _tops(_shares(attribution, wid, weeks, "user_agent", "downloads"))
        r["top_source_ips"] = _tops(_shares(attribution, wid, weeks, "source_ip", "downloads"))
    return rows


def _place(c: dict, wid: int, hours: pd.DataFrame, weeks: int, settings: Settings) -> dict:
    """Start and end to the hour (hour-of-week baseline), observed, baseline and excess downloads."""
    grid = pd.date_range(_naive(c["from_at"]), _naive(c["to_at"]), freq="h", inclusive="left")
    s_obs, s_base = (v.reindex(grid, fill_value=0.0) for v in _frames(hours, wid, weeks, ["hour_at"], "sessions"))
    d_obs, d_base = (v.reindex(grid, fill_value=0.0) for v in _frames(hours, wid, weeks, ["hour_at"], "downloads"))
    z = ((s_obs - s_base) / np.sqrt(s_base + 1)).to_numpy()
    core = (grid >= _naive(c["core"][0])) & (grid < _naive(c["core"][1]))
    hot = np.flatnonzero(core & (z >= 3))
    if len(hot):
        a, b = hot[0], hot[-1]
        while a > 0 and z[a - 1] >= 1.5:
            a -= 1
        while b < len(grid) - 1 and z[b + 1] >= 1.5:
            b += 1
    else:
        a, b = np.flatnonzero(core)[0], np.flatnonzero(core)[-1]
    # A slow spike (a few downloads an hour above a quiet baseline for a day or two) has few hours that
    # stand out, so the hours placed miss most of it. When the excess of its days outside those hours is
    # itself significant (over twice the Poisson noise of their baseline), the days place it, from their
    # first to their last hour above the baseline.
    lift, base = (d_obs - d_base).to_numpy(), d_base.to_numpy()
    in_core = np.flatnonzero(core)
    rest = in_core[(in_core < a) | (in_core > b)]
    if len(rest) and lift[rest].sum() > 2 * np.sqrt(base[rest].sum() + 1):
        above = in_core[lift[in_core] > 0]
        a, b = (above[0], above[-1]) if len(above) else (in_core[0], in_core[-1])
    observed, baseline = float(d_obs.iloc[a:b + 1].sum()), float(d_base.iloc[a:b + 1].sum())
    excess = max(observed - baseline, 0.0)
    rate = settings.prices.for_region(c["region"] or "")[1]
    return {**{k: c[k] for k in KEYS}, "kind": "download", "signal": "downloads", "score": round(c["score"], 2),
            "from_at": _utc(grid[a].to_pydatetime()), "to_at": _utc(grid[b].to_pydatetime() + HOUR),
            "observed": observed, "baseline": baseline, "excess": excess,
            "excess_cost_usd": excess / 10_000 * rate}


def _overlaps(a: dict, b: dict, slack: timedelta = timedelta(0)) -> bool:
    return a["from_at"] < b["to_at"] + slack and b["from_at"] < a["to_at"] + slack


def _explained(row: dict, packages: list[dict]) -> bool:
    """A repository or principal spike whose excess is at least half explained by overlapping package
    spikes (in that repository; or the part of their excess that this principal drove)."""
    part = 0.0
    for p in packages:
        if not _overlaps(row, p):
            continue
        if row["level"] == "repository" and (p["account_id"], p["domain"], p["repository"]) == (
                row["account_id"], row["domain"], row["repository"]):
            part += p["excess"]
        elif row["level"] == "principal":
            part += p["excess"] * float(p["_principals"].get(row["principal_arn"], 0.0))
    return part >= 0.5 * row["excess"]


def _auth_spikes(con, settings: Settings, since: date | None, when) -> list[dict]:
    sp, weeks = settings.spikes, settings.spikes.baseline_weeks
    end = pd.Timestamp(when.latest_event_at).floor("h").to_pydatetime() + HOUR
    df = run(con, "spike_auth_series", start_at=_start(since, weeks), end_at=end, denied_codes=DENIED_CODES)
    if df.empty:
        return []
    first = pd.Timestamp(df["hour_at"].min()).to_pydatetime()
    n = int((_naive(end) - first) / HOUR)
    series, m = _grid(df, ["principal_arn"], "hour_at", ["denied", "tokens", "token_sessions"], first, HOUR, n)
    cands = []
    for signal, col, floor in (("access_denied", "denied", 1.0), ("token_burst", "tokens", 4.0)):
        x = m[col]  # token calls come 1-3 per CI job: score their sessions, size them in calls
        sig = m["token_sessions"] if signal == "token_burst" else x
        base, scale = seasonal_baseline(sig, 168, weeks, floor)
        x_base, _ = seasonal_baseline(x, 168, weeks, floor)
        if signal == "access_denied":  # no history yet means no denials yet
            base, scale, x_base = np.nan_to_num(base), np.nan_to_num(scale, nan=np.sqrt(floor)), np.nan_to_num(x_base)
        score = (sig - base) / scale
        if signal == "token_burst":  # a principal's first weeks of token calls are not a burst
            born = (x > 0).argmax(axis=1)
            score[np.arange(n)[None, :] < born[:, None] + 168 * weeks] = np.nan
        hot = score >= sp.score_threshold
        for i in np.flatnonzero(hot.any(axis=1)):
            for t0, t1 in _runs(hot[i]):
                while t0 > 0 and sig[i, t0 - 1] - base[i, t0 - 1] >= 1:
                    t0 -= 1
                while t1 < n - 1 and sig[i, t1 + 1] - base[i, t1 + 1] >= 1:
                    t1 += 1
                observed, baseline = float(x[i, t0:t1 + 1].sum()), float(np.nansum(x_base[i, t0:t1 + 1]))
                stop = first + (t1 + 1) * HOUR
                if observed < AUTH_MIN_EVENTS or (since is not None and stop.date() < since):
                    continue
                cands.append({"principal_arn": series.iloc[i]["principal_arn"], "signal": signal,
                              "from_at": _utc(first + t0 * HOUR), "to_at": _utc(stop), "observed": observed,
                              "baseline": baseline, "excess": max(observed - baseline, 0.0),
                              "score": round(float(np.nanmax(score[i, t0:t1 + 1])), 2)})
    if not cands:
        return []
    att = run(con, "spike_auth_attribution", weeks=weeks, denied_codes=DENIED_CODES,
              window_ids=list(range(len(cands))), principals=[c["principal_arn"] for c in cands],
              signals=[c["signal"] for c in cands], from_at=[c["from_at"] for c in cands],
              to_at=[c["to_at"] for c in cands])
    rows = []
    for wid, c in enumerate(cands):
        obs, _ = _frames(att[att["dimension"] == "repository"], wid, weeks, ["value"], "events")
        named = obs[~obs.index.str.endswith("/")]  # token calls name a domain only
        repo = (named if not named.empty else obs).idxmax() if not obs.empty else "/"
        bill, _ = _frames(att[att["dimension"] == "billing"], wid, weeks, ["value"], "events")
        account, region = (bill.idxmax().split(" ", 1) if not bill.empty else (None, None))
        rate = settings.prices.for_region(region or "")[1]
        domain, repository = (v or None for v in repo.split("/", 1))
        rows.append({**c, "kind": "auth", "level": "principal", "account_id": account, "region": region,
                     "domain": domain, "repository": repository, "format": None, "namespace": None,
                     "package": None, "top_principals": [f"{c['principal_arn']} (100%)"],
                     "top_user_agents": _tops(_shares(att, wid, weeks, "user_agent", "events")),
                     "top_source_ips": _tops(_shares(att, wid, weeks, "source_ip", "events")),
                     # denied calls are not billed; token calls are requests
                     "excess_cost_usd": 0.0 if c["signal"] == "access_denied" else c["excess"] / 10_000 * rate})
    return rows


def detect_spikes(con: duckdb.DuckDBPyConnection, settings: Settings, since: date | None = None, *,
                  levels: tuple[str, ...] = ("package",)) -> pd.DataFrame:
    """One row per download spike or auth burst ending on or after `since` (all history when None).

    `levels` adds whole-repository and per-principal download spikes ("repository", "principal"); they
    are kept only when package spikes do not explain them (see _explained).
    Columns: COLUMNS (start/end are UTC, end exclusive; top_* are lists of "name (share%)").
    """
    when = as_of(con)
    if when is None:
        return pd.DataFrame(columns=COLUMNS)
    by_level = {lv: [dict(r, level=lv) for r in _download_spikes(con, settings, lv, since, when)]
                for lv in LEVELS if lv == "package" or lv in levels}
    rows = by_level["package"] + [r for lv in LEVELS[1:] for r in by_level.get(lv, [])
                                  if not _explained(r, by_level["package"])]
    rows = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    rows += _auth_spikes(con, settings, since, when)
    df = pd.DataFrame(rows).rename(columns={"from_at": "start", "to_at": "end"}) if rows else pd.DataFrame(columns=COLUMNS)
    return df.reindex(columns=COLUMNS).sort_values(["start", "kind"], ignore_index=True)


def _ts(v) -> pd.Timestamp:
    t = pd.Timestamp(v)
    return t.tz_localize(UTC) if t.tzinfo is None else t.tz_convert(UTC)


def evaluate(detected: pd.DataFrame, truth: dict, slack: timedelta = HOUR) -> dict:
    """Precision and recall of a detection against a demo ground truth, overall and per kind.

    A download row matches a truth download spike when it is on the same package and repository
    (domain, repository, format, namespace, package; a repository-level row: same domain and
    repository; a principal-level row: same principal as the spike's) and [start - slack, end + slack)
    overlaps the truth window [start, end]. An auth row matches a truth auth burst of the same principal
    under the same time rule. precision = matched rows / rows, recall = matched truths / truths;
    tp = matched truths, fp = rows matching nothing, fn = truths matched by nothing.
    """
    kinds = {"download": truth.get("download_spikes", []), "auth": truth.get("auth_bursts", [])}
    out: dict = {}
    for kind, items in kinds.items():
        rows = detected[detected["kind"] == kind] if len(detected) else detected
        hit_rows, hit_truth = set(), set()
        for ti, t in enumerate(items):
            t0, t1 = _ts(t["start"]), _ts(t["end"])
            for ri, r in rows.iterrows():
                if not (_ts(r["start"]) - slack <= t1 and t0 < _ts(r["end"]) + slack):
                    continue
                if kind == "auth" or r.get("level") == "principal":
                    same = r["principal_arn"] == t["principal_arn"]
                elif r.get("level") == "repository":
                    same = (r["domain"], r["repository"]) == (t["domain"], t["repository"])
                else:
                    same = tuple(_v(r[k]) for k in PACKAGE) == tuple(_v(t[k]) for k in PACKAGE)
                if same:
                    hit_rows.add(ri)
                    hit_truth.add(ti)
        out[kind] = _pr(len(rows), len(hit_rows), len(items), len(hit_truth))
    total = {k: sum(out[kind][k] for kind in kinds) for k in ("tp", "fp", "fn")}
    n_rows = sum(out[kind]["rows"] for kind in kinds)
    return {**_pr(n_rows, n_rows - total["fp"], total["tp"] + total["fn"], total["tp"]), "by_kind": out}


def _v(x):
    return None if x is None or (isinstance(x, float) and np.isnan(x)) or x == "" else x


def _pr(rows: int, matched_rows: int, truths: int, matched_truths: int) -> dict:
    return {"precision": matched_rows / rows if rows else 1.0, "recall": matched_truths / truths if truths else 1.0,
            "tp": matched_truths, "fp": rows - matched_rows, "fn": truths - matched_truths, "rows": rows}
