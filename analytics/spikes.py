"""Download spikes, request-volume spikes and auth-failure bursts: seasonal robust baselines, two
signals, four levels, sizing, cost and attribution.

Reads (through analytics.queries): the downloads view, events and the rollups download_sessions_days and
principal_hours (sql/spike_*.sql). Writes nothing.

Downloads. A series is a package in a repository (level 'package'), the package across every repository
of its domain ('domain'), a whole repository ('repository') or a principal ('principal'). Per UTC day the
detector counts the series' sessions (session_key: one principal from one IP in one minute) and its
downloads, and scores two signals against the median of the same weekday over the previous
`baseline_weeks` weeks:
  * sessions: (sessions - baseline) / max(1.4826 x MAD, sqrt(baseline + 4)) (a Poisson floor, so a series
    at 0 does not alert on a handful). Robust to the clustered traffic of CI, where one job fetches many
    files within a minute.
  * volume: the same on downloads, with the Poisson floor widened by the series' index of dispersion D
    over the baseline weeks (`dispersion`: sum over sessions of n^2 / sum n): sqrt(D x (baseline + 4)).
    Downloads that come in sessions of n are that much noisier, so CI's normal clustered traffic stays
    quiet, while a job looping on one package (thousands of downloads in a few sessions; session
    counting caps it at one a minute) fires. It also needs the day's downloads per session to be at
    least CONCENTRATION x D: a loop makes sessions larger than the series' usual, a busy day only more
    of them (and that is the sessions signal's to judge).
A day is anomalous when either score >= `score_threshold` and it has at least `min_daily_downloads`
downloads (a spike only the volume signal sees needs `min_volume_excess` excess downloads); a series needs `baseline_weeks` weeks of history after its first download before it can alert
(a new package is not a spike). Consecutive anomalous days are merged (with their still clearly raised
neighbours), then the hours are scored the same ways (hour-of-week baseline) to place the spike to the
hour. Excess downloads = observed - baseline over the spike's hours. The store's last day is usually
partial: its counts are scaled up to a full day. Domain, repository and principal spikes are reported
only when package spikes do not explain them (see _explained); a domain spike also needs its excess
spread: no repository with more than MAX_REPOSITORY_SHARE of it (else it is that repository's, and
its package level judges it). `signal` names what fired ("sessions",
"volume" or both).

Requests. Per principal and UTC hour, billed requests (principal_hours) against the principal's own
hour-of-week baseline, with the same clustering-aware scale (D of its requests per session): a
principal's runaway loop on metadata or on many packages. A spike needs `min_excess_requests` excess
requests and is reported when download spikes do not explain it (level 'principal', signal "requests").

Auth. Per principal and UTC hour: events with an access-denied error code (`DENIED_CODES`) and successful
GetAuthorizationToken calls, scored against the hour-of-week baseline; a burst needs `AUTH_MIN_EVENTS`.

Cost: analytics/spike_cost.py (excess requests with the metadata of the same sessions, and the free tier).
Attribution: each spike's principals, user agents and source IPs with their share of the *excess* (the
value's downloads in the window minus its median in the same window of the previous weeks).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import UTC, date, datetime, time, timedelta

import duckdb
import numpy as np
import pandas as pd

from analytics import filters, spike_cost
from analytics.overview import as_of
from analytics.queries import events_within, run
from core.clock import utc_midnight
from core.settings import Settings

DENIED_CODES = ["AccessDenied", "AccessDeniedException", "UnauthorizedException"]
AUTH_MIN_EVENTS = 10  # an auth burst needs at least this many events
LEVELS = ("package", "domain", "repository", "principal")
DEFAULT_LEVELS = ("package", "domain")  # what the dashboard, reports, e-mails and alerts ask for
PACKAGE = ["domain", "repository", "format", "namespace", "package"]
KEYS = ["account_id", "region", "domain", "repository", "format", "namespace", "package", "principal_arn"]
COLUMNS = ["kind", "domain", "repository", "format", "namespace", "package", "principal_arn", "start", "end",
           "score", "observed", "baseline", "excess", "unit", "excess_requests", "billable_requests", "free_tier",
           "excess_cost_usd", "top_principals", "top_user_agents", "top_source_ips", "level", "signal",
           "account_id", "region"]
TOP = 3
MAX_REPOSITORY_SHARE = 2 / 3  # a domain-level spike with more of its excess in one repository is that one's
CONCENTRATION = 2.0  # a volume spike's sessions average at least this times the series' index of dispersion
HOUR, DAY, WEEK = timedelta(hours=1), timedelta(days=1), timedelta(days=7)


def _naive(ts: datetime) -> datetime:
    return pd.Timestamp(ts).tz_convert(UTC).tz_localize(None).to_pydatetime()


def _utc(ts: datetime) -> datetime:
    return pd.Timestamp(ts).tz_localize(UTC).to_pydatetime()


def seasonal_baseline(x: np.ndarray, period: int, weeks: int, floor: float,
                      dispersion: np.ndarray | float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Median and scale of each bucket over the same bucket 1..weeks periods back (NaN without history).

    x: series x buckets. scale = max(1.4826 x MAD, sqrt(dispersion x (max(median, mean of all previous
    weeks x period buckets) + floor))): a Poisson floor that also holds for sparse series whose same-weekday
    median is 0, widened for counts that arrive in clusters (`dispersion`, see the function of that name).
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
    return base, np.maximum(1.4826 * mad, np.sqrt(dispersion * (np.maximum(level, 0) + floor)))


def dispersion(squares: np.ndarray, counts: np.ndarray, span: int) -> np.ndarray:
    """Per bucket, the index of dispersion of the series' clustered counts over the `span` buckets before it:
    sum over sessions of n^2 / sum of n (1 without history). Counts that arrive in sessions of n are a
    compound Poisson process whose variance is its mean times E[n^2]/E[n]: a series whose sessions fetch
    one file each has 1, a CI job that sometimes fetches 50 files of a package at once has far more."""
    z = np.zeros((counts.shape[0], 1))
    c_q, c_n = np.cumsum(np.hstack([z, squares]), axis=1), np.cumsum(np.hstack([z, counts]), axis=1)
    lo = np.maximum(np.arange(counts.shape[1]) - span, 0)
    hi = np.arange(counts.shape[1])
    q, n = c_q[:, hi] - c_q[:, lo], c_n[:, hi] - c_n[:, lo]
    return np.where(n > 0, np.maximum(q / np.maximum(n, 1), 1.0), 1.0)


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


def _windows(hot: np.ndarray, raised: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (first, last) of each spike of one series: a run of `hot` buckets grown over its still
    `raised` neighbours on both sides. Runs whose grown windows meet become one window: two hot hours of
    one burst, a quiet-but-raised hour apart, are one spike (each grew over the other's hours, and was
    reported again: 1,006 auth windows, 147 distinct, on the bench's 200M store)."""
    n, out = len(hot), []
    for t0, t1 in _runs(hot):
        if out and t0 <= out[-1][1] + 1:
            t0, t1 = out[-1][0], max(out.pop()[1], t1)
        while t0 > 0 and raised[t0 - 1]:
            t0 -= 1
        while t1 < n - 1 and raised[t1 + 1]:
            t1 += 1
        out.append((int(t0), int(t1)))
    return out


def _start(since: date | None, weeks: int) -> datetime:
    """Where the series start: `weeks` weeks (and a day) of baseline before `since`."""
    if since is None:
        return datetime(1970, 1, 1, tzinfo=UTC)
    return datetime.combine(since, time(0), tzinfo=UTC) - weeks * WEEK - DAY


class ByWindow:
    """(observed, baseline median over weeks_back 1..weeks) of `value` per `cols`, for every window of a
    frame with window_id and weeks_back columns, computed once (one pandas reshape, not one per window)."""

    def __init__(self, df: pd.DataFrame, weeks: int, cols: list[str], value: str):
        self.ids: set[int] = set()
        if df.empty:
            return
        p = df.groupby(["window_id", *cols, "weeks_back"], dropna=False)[value].sum().unstack("weeks_back", fill_value=0)
        p = p.reindex(columns=range(weeks + 1), fill_value=0)
        self.obs = p[0].astype(float)
        self.base = p[list(range(1, weeks + 1))].median(axis=1).astype(float)
        self.ids = set(p.index.get_level_values(0))

    def get(self, wid: int) -> tuple[pd.Series, pd.Series]:
        if wid not in self.ids:
            return pd.Series(dtype=float), pd.Series(dtype=float)
        return self.obs.xs(wid, level=0), self.base.xs(wid, level=0)

    @classmethod
    def of(cls, df: pd.DataFrame, dimension: str, weeks: int, value: str) -> ByWindow:
        """The frames of one attribution dimension (its values in column `value`)."""
        return cls(df[df["dimension"] == dimension], weeks, ["value"], value)


def _shares(frames: ByWindow, wid: int) -> pd.Series:
    """Share of each value of a dimension in a window's excess (of its observed when there is no excess)."""
    obs, base = frames.get(wid)
    if obs.empty:
        return obs
    excess = (obs - base).clip(lower=0)
    share = excess / excess.sum() if excess.sum() > 0 else obs / max(obs.sum(), 1)
    return share[share > 0].sort_values(ascending=False, kind="stable")


def _tops(share: pd.Series) -> list[str]:
    """The TOP values as "name (share%)"."""
    return [f"{name} ({100 * s:.0f}%)" for name, s in share.head(TOP).items()]


# The list filters each level's rows of download_sessions_days carry (the others are NULL there, so a
# filter on them would drop the rows instead of narrowing them)
ROLLUP_FILTERS = {"package": filters.LIST_FIELDS, "repository": ("accounts", "regions", "domains", "repositories"),
                  "domain": ("accounts", "regions", "domains", "formats"), "principal": ("accounts", "regions")}


def session_series(con: duckdb.DuckDBPyConnection, level: str, grain: str, start_at: datetime,
                   end_at: datetime) -> pd.DataFrame:
    """sql/spike_download_series.sql: the whole UTC days from the daily session rollup where it answers
    exactly (the day grain, and no list filter on a column the level's rows lack), the partial days from
    raw events (only their lake files)."""
    others = tuple(f for f in filters.LIST_FIELDS if f not in ROLLUP_FILTERS[level])
    rollup = grain == "day" and not (others and filters.lists_filtered(con, others))
    full_lo, full_hi = _whole_days(start_at, end_at, rollup)
    with _raw_edges(con, start_at, end_at, full_lo, full_hi):
        return run(con, "spike_download_series", level=level, grain=grain, start_at=start_at, end_at=end_at,
                   full_lo=full_lo, full_hi=full_hi)


def _whole_days(start_at: datetime, end_at: datetime, rollup: bool) -> tuple[datetime, datetime]:
    """(full_lo, full_hi): the whole UTC days of [start_at, end_at) a query reads from its rollup, or an
    empty span at end_at when it cannot (`rollup` False); the rest it reads from raw events."""
    if not rollup:
        return end_at, end_at
    first = utc_midnight(start_at.astimezone(UTC).date())
    full_lo = first if first == start_at else first + DAY
    return full_lo, max(utc_midnight(end_at.astimezone(UTC).date()), full_lo)


def _raw_edges(con: duckdb.DuckDBPyConnection, start_at: datetime, end_at: datetime, full_lo: datetime,
               full_hi: datetime) -> AbstractContextManager[None]:
    """events_within the raw pieces of a rollup-and-edges query: [start_at, full_lo) and [full_hi, end_at)."""
    return events_within(con, [(start_at, min(end_at, full_lo)), (max(full_lo, full_hi), end_at)])


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
    end = _series_end(when)
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


def _params(rows: list[dict], level: str, weeks: int) -> dict:
    return {**spike_cost.window_params(rows, level), "weeks": weeks}


def _series_end(when) -> datetime:
    """Where every series ends: the end of the hour holding the store's newest event."""
    return pd.Timestamp(when.latest_event_at).floor("h").to_pydatetime() + HOUR


def _last_day_fraction(when) -> float:
    """How much of the store's last UTC day its events cover (its counts are scaled up by 1/fraction)."""
    elapsed = (_naive(when.latest_event_at) - datetime.combine(when.day, time(0))) / DAY
    return min(max(elapsed, 1 / 24), 1.0)


def _download_spikes(con, settings: Settings, level: str, since: date | None, when) -> list[dict]:
    sp, weeks = settings.spikes, settings.spikes.baseline_weeks
    end = _series_end(when)
    df = session_series(con, level, "day", _start(since, weeks), end)
    if df.empty:
        return []
    first = pd.Timestamp(df["bucket_at"].min()).to_pydatetime()
    n = (when.day - first.date()).days + 1
    series, m = _grid(df, KEYS, "bucket_at", ["sessions", "downloads", "downloads_sq"], first, DAY, n)
    frac = _last_day_fraction(when)
    full = np.r_[np.ones(n - 1), frac]  # compare the last day's rate, not its partial total
    xs, xd = m["sessions"] / full, m["downloads"] / full
    c = dispersion(m["downloads_sq"], m["downloads"], 7 * weeks)
    base_s, scale_s = seasonal_baseline(xs, 7, weeks, 4.0)
    base_d, scale_d = seasonal_baseline(xd, 7, weeks, 4.0, dispersion=c)
    score_s, score_d = (xs - base_s) / scale_s, (xd - base_d) / scale_d
    born = (m["downloads"] > 0).argmax(axis=1)
    grown = np.arange(n)[None, :] >= born[:, None] + 7 * weeks  # baseline_weeks of history behind the day
    valid = grown & (xd >= sp.min_daily_downloads)
    # The volume signal fires only for downloads concentrated in sessions larger than the series' usual
    # (a loop), not for more sessions of the usual size (a busy day, which the sessions signal judges).
    concentrated = xd >= CONCENTRATION * c * np.maximum(xs, 1)
    fired_s = valid & (score_s >= sp.score_threshold)
    fired_d = valid & (score_d >= sp.score_threshold) & concentrated
    hot = fired_s | fired_d
    # A spike spread over several days may clear the rule on one of them only: its neighbours that are
    # still clearly raised (half the threshold) belong to it, so it is sized whole.
    half = sp.score_threshold / 2
    raised = grown & (xd > base_d) & ((score_s >= half) | (score_d >= half))
    cands = []
    for i in np.flatnonzero(hot.any(axis=1)):
        for t0, t1 in _windows(hot[i], raised[i]):
            fired = {s: sc for s, f, sc in (("sessions", fired_s, score_s), ("volume", fired_d, score_d))
                     if f[i, t0:t1 + 1].any()}
            day0 = first + t0 * DAY
            if since is not None and (first + (t1 + 1) * DAY).date() <= since:
                continue
            c_row = {k: (None if pd.isna(v) else v) for k, v in series.iloc[i].items()}
            score = max(float(np.nanmax(sc[i, t0:t1 + 1])) for sc in fired.values())
            cands.append({**c_row, "from_at": _utc(day0 - DAY), "to_at": _utc(min(first + (t1 + 2) * DAY, _naive(end))),
                          "core": (_utc(day0), _utc(first + (t1 + 1) * DAY)), "score": score,
                          "signal": "+".join(fired), "cluster": float(c[i, t0])})
    if not cands:
        return []
    with events_within(con, _spans_back(cands, weeks)):  # the windows' days and their weeks before
        hours = run(con, "spike_download_hours", **_params(cands, level, weeks))
    by_hour = {v: ByWindow(hours, weeks, ["hour_at"], v) for v in ("sessions", "downloads")}
    rows = [_place(c, wid, by_hour) for wid, c in enumerate(cands)]
    rows = [r for r in rows if r["signal"] != "volume" or r["excess"] >= sp.min_volume_excess]
    if not rows:
        return []
    with events_within(con, _spans_back(rows, weeks)):
        attribution = run(con, "spike_download_attribution", **_params(rows, level, weeks))
    dims = {d: ByWindow.of(attribution, d, weeks, "downloads")
            for d in ("principal", "user_agent", "source_ip", "repository")}
    for wid, r in enumerate(rows):
        r["_principals"] = _shares(dims["principal"], wid)
        r["top_principals"] = _tops(r["_principals"])
        r["top_user_agents"] = _tops(_shares(dims["user_agent"], wid))
        r["top_source_ips"] = _tops(_shares(dims["source_ip"], wid))
        repos = _shares(dims["repository"], wid)
        r["_spread"] = 1 - (float(repos.max()) if len(repos) else 0.0)
    if level == "domain":  # the level of surges spread over repositories; one repository's is judged there
        rows = [r for r in rows if r["_spread"] >= 1 - MAX_REPOSITORY_SHARE]
    with events_within(con, _spans_back(rows, 0)):
        spike_cost.session_requests(con, rows, level)
    return rows


def _spans_back(windows: list[dict], weeks: int) -> list[tuple[datetime, datetime]]:
    """Each window's [from_at, to_at) and the same hours 1..`weeks` weeks earlier: what the detail queries read
    of `events` (events_within opens those days' files only; over the whole store, each query read every
    file: 0.2-0.4 s at 9.8M events, growing with the store)."""
    return [(w["from_at"] - timedelta(weeks=k), w["to_at"] - timedelta(weeks=k)) for w in windows for k in range(weeks + 1)]


def _place(c: dict, wid: int, by_hour: dict[str, ByWindow]) -> dict:
    """Start and end to the hour (hour-of-week baseline), observed, baseline and excess downloads."""
    grid = pd.date_range(_naive(c["from_at"]), _naive(c["to_at"]), freq="h", inclusive="left")
    s_obs, s_base = (v.reindex(grid, fill_value=0.0) for v in by_hour["sessions"].get(wid))
    d_obs, d_base = (v.reindex(grid, fill_value=0.0) for v in by_hour["downloads"].get(wid))
    z = ((s_obs - s_base) / np.sqrt(s_base + 1)).to_numpy()
    if "volume" in c["signal"]:  # the downloads of few sessions: score the hours on downloads too
        z = np.fmax(z, ((d_obs - d_base) / np.sqrt(c["cluster"] * (d_base + 1))).to_numpy())
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
    if len(rest) and lift[rest].sum() > 2 * np.sqrt(c["cluster"] * (base[rest].sum() + 1)):
        above = in_core[lift[in_core] > 0]
        a, b = (above[0], above[-1]) if len(above) else (in_core[0], in_core[-1])
    observed, baseline = float(d_obs.iloc[a:b + 1].sum()), float(d_base.iloc[a:b + 1].sum())
    return {**{k: c[k] for k in KEYS}, "kind": "download", "signal": c["signal"], "unit": "downloads",
            "score": round(c["score"], 2), "from_at": _utc(grid[a].to_pydatetime()),
            "to_at": _utc(grid[b].to_pydatetime() + HOUR), "observed": observed, "baseline": baseline,
            "excess": max(observed - baseline, 0.0)}


def auth_series(con: duckdb.DuckDBPyConnection, start_at: datetime, end_at: datetime) -> pd.DataFrame:
    """Denied events and token calls per principal and UTC hour in [start_at, end_at) (whole hours): from the
    auth_hours rollup (sql/spike_auth_series.sql), or from raw events when a repository or format filter is
    on, which the rollup cannot apply (sql/spike_auth_series_events.sql)."""
    raw = filters.lists_filtered(con, ("repositories", "formats"))
    name = "spike_auth_series_events" if raw else "spike_auth_series"
    return run(con, name, start_at=start_at, end_at=end_at, denied_codes=DENIED_CODES)


def principal_requests(con: duckdb.DuckDBPyConnection, start_at: datetime, end_at: datetime) -> pd.DataFrame:
    """sql/spike_principal_requests.sql: whole UTC days from the principal_hours rollup (unless a repository
    or format filter is on, which the rollup cannot apply), the partial days from raw events."""
    rollup = not filters.lists_filtered(con, ("repositories", "formats"))
    full_lo, full_hi = _whole_days(start_at, end_at, rollup)
    with _raw_edges(con, start_at, end_at, full_lo, full_hi):
        return run(con, "spike_principal_requests", start_at=start_at, end_at=end_at, full_lo=full_lo,
                   full_hi=full_hi)


def _request_spikes(con, settings: Settings, since: date | None, when) -> list[dict]:
    """Request-volume spikes per principal and hour (principal_hours), see the module docstring."""
    sp, weeks = settings.spikes, settings.spikes.baseline_weeks
    end = _series_end(when)
    df = principal_requests(con, _start(since, weeks), end)
    if df.empty:
        return []
    first = pd.Timestamp(df["hour_at"].min()).to_pydatetime()
    n = int((_naive(end) - first) / HOUR)
    keys = ["account_id", "region", "principal_arn"]
    series, m = _grid(df, keys, "hour_at", ["requests", "sessions", "requests_sq"], first, HOUR, n)
    x = m["requests"]
    c = dispersion(m["requests_sq"], x, 168 * weeks)
    base, scale = seasonal_baseline(x, 168, weeks, 4.0, dispersion=c)
    score = (x - base) / scale
    born = (x > 0).argmax(axis=1)
    valid = np.arange(n)[None, :] >= born[:, None] + 168 * weeks
    hot = valid & (score >= sp.score_threshold) & (x >= CONCENTRATION * c * np.maximum(m["sessions"], 1))
    rows = []
    for i in np.flatnonzero(hot.any(axis=1)):
        for t0, t1 in _windows(hot[i], valid[i] & (score[i] >= sp.score_threshold / 2)):
            observed, baseline = float(x[i, t0:t1 + 1].sum()), float(np.nansum(base[i, t0:t1 + 1]))
            stop = first + (t1 + 1) * HOUR
            if observed - baseline < sp.min_excess_requests or (since is not None and stop.date() < since):
                continue
            who = {k: series.iloc[i][k] for k in keys}
            rows.append({**dict.fromkeys(KEYS), **who, "kind": "download", "level": "principal",
                         "signal": "requests", "unit": "requests", "from_at": _utc(first + t0 * HOUR),
                         "to_at": _utc(stop), "observed": observed, "baseline": baseline,
                         "excess": observed - baseline, "excess_requests": round(observed - baseline),
                         "score": round(float(np.nanmax(score[i, t0:t1 + 1])), 2)})
    if rows:
        att = run(con, "spike_download_attribution", **_params(rows, "principal", weeks))
        uas, ips = (ByWindow.of(att, d, weeks, "downloads") for d in ("user_agent", "source_ip"))
        for wid, r in enumerate(rows):
            r["top_principals"] = [f"{r['principal_arn']} (100%)"]
            r["top_user_agents"] = _tops(_shares(uas, wid))
            r["top_source_ips"] = _tops(_shares(ips, wid))
    return rows


def _overlaps(a: dict, b: dict, slack: timedelta = timedelta(0)) -> bool:
    return a["from_at"] < b["to_at"] + slack and b["from_at"] < a["to_at"] + slack


def _explained(row: dict, packages: list[dict]) -> bool:
    """A domain, repository or principal spike whose excess is at least half explained by overlapping
    package spikes (of that package in its domain; in that repository; or the part of their excess that
    this principal drove; a request-volume spike counts their excess requests)."""
    part, unit = 0.0, "excess_requests" if row["unit"] == "requests" else "excess"
    for p in packages:
        if not _overlaps(row, p) or p["account_id"] != row["account_id"]:
            continue
        if row["level"] == "domain" and (p["domain"], p["format"], none_if_blank(p["namespace"]), p["package"]) == (
                row["domain"], row["format"], none_if_blank(row["namespace"]), row["package"]):
            part += p[unit]
        elif row["level"] == "repository" and (p["domain"], p["repository"]) == (row["domain"], row["repository"]):
            part += p[unit]
        elif row["level"] == "principal":
            part += p[unit] * float(p["_principals"].get(row["principal_arn"], 0.0))
    return part >= 0.5 * row[unit]


def none_if_blank(x):
    """None for a missing key value (None, NaN or ""), so keys compare alike whatever frame they came from."""
    return None if x is None or (isinstance(x, float) and np.isnan(x)) or x == "" else x


def _auth_spikes(con, settings: Settings, since: date | None, when) -> list[dict]:
    sp, weeks = settings.spikes, settings.spikes.baseline_weeks
    end = _series_end(when)
    df = auth_series(con, _start(since, weeks), end)
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
            for t0, t1 in _windows(hot[i], sig[i] - base[i] >= 1):
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
    with events_within(con, _spans_back(cands, weeks)):  # the windows' days and their weeks before
        att = run(con, "spike_auth_attribution", weeks=weeks, denied_codes=DENIED_CODES,
                  window_ids=list(range(len(cands))), principals=[c["principal_arn"] for c in cands],
                  signals=[c["signal"] for c in cands], from_at=[c["from_at"] for c in cands],
                  to_at=[c["to_at"] for c in cands])
    dims = {d: ByWindow.of(att, d, weeks, "events") for d in ("repository", "billing", "user_agent", "source_ip")}
    rows = []
    for wid, c in enumerate(cands):
        obs, _ = dims["repository"].get(wid)
        named = obs[~obs.index.str.endswith("/")]  # token calls name a domain only
        repo = (named if not named.empty else obs).idxmax() if not obs.empty else "/"
        bill, _ = dims["billing"].get(wid)
        account, region = (bill.idxmax().split(" ", 1) if not bill.empty else (None, None))
        domain, repository = (v or None for v in repo.split("/", 1))
        rows.append({**c, "kind": "auth", "level": "principal", "account_id": account, "region": region,
                     "domain": domain, "repository": repository, "format": None, "namespace": None,
                     "package": None, "top_principals": [f"{c['principal_arn']} (100%)"],
                     "top_user_agents": _tops(_shares(dims["user_agent"], wid)),
                     "top_source_ips": _tops(_shares(dims["source_ip"], wid)),
                     # denied calls are not billed; token calls are requests
                     "unit": "denied calls" if c["signal"] == "access_denied" else "token calls",
                     "excess_requests": 0 if c["signal"] == "access_denied" else round(c["excess"])})
    return rows


def detect_spikes(con: duckdb.DuckDBPyConnection, settings: Settings, since: date | None = None, *,
                  levels: tuple[str, ...] = DEFAULT_LEVELS) -> pd.DataFrame:
    """One row per download spike, request-volume spike or auth burst ending on or after `since` (all
    history when None).

    `levels` are the download levels besides "package" (always on): "domain" (a package across its
    domain's repositories), "repository", "principal"; they are kept only when package spikes do not
    explain them (see _explained). Request-volume spikes are kept when download spikes do not explain them.
    Columns: COLUMNS (start/end are UTC, end exclusive; top_* are lists of "name (share%)").
    """
    if since is not None:  # a date filter's first weeks are scored against the weeks before them
        with filters.reaching_back(con, _start(since, settings.spikes.baseline_weeks).date()):
            return _detect(con, settings, since, levels)
    return _detect(con, settings, since, levels)


def _detect(con: duckdb.DuckDBPyConnection, settings: Settings, since: date | None,
            levels: tuple[str, ...]) -> pd.DataFrame:
    when = as_of(con)
    if when is None:
        return pd.DataFrame(columns=COLUMNS)
    by_level = {lv: [dict(r, level=lv) for r in _download_spikes(con, settings, lv, since, when)]
                for lv in LEVELS if lv == "package" or lv in levels}
    packages = by_level["package"]
    rows = packages + [r for lv in LEVELS[1:] for r in by_level.get(lv, []) if not _explained(r, packages)]
    rows += [r for r in _request_spikes(con, settings, since, when) if not _explained(r, packages)]
    rows += _auth_spikes(con, settings, since, when)
    spike_cost.price(con, settings, rows)
    rows = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    df = pd.DataFrame(rows).rename(columns={"from_at": "start", "to_at": "end"}) if rows else pd.DataFrame(columns=COLUMNS)
    return df.reindex(columns=COLUMNS).sort_values(["start", "kind"], ignore_index=True)
