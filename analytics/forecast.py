"""Cost forecast: month-end projection and the next months' cost with prediction intervals, its own
backtest error, and a what-if for a cleanup policy.

Reads (through analytics.costs, hence sql/cost_storage_daily.sql and sql/cost_requests_daily.sql):
storage_snapshots, events. Writes nothing.

How: daily quantities are forecast, then priced like the modeled cost (analytics.costs):
- storage: each domain's deduplicated bytes per day, ETS with additive error and a damped additive
  trend (statsmodels ETSModel), in GiB;
- requests: each account and region's successful requests per day, ETS with a damped trend and an
  additive weekly season (seasonal_periods=7).
Short histories fall back to simpler models (no season under 28 days, last value/mean under 10 days).
Each series is simulated (PATHS paths, fixed seed, so numbers are reproducible); a path's days are
turned into GB-months (GiB / days in that month) and requests, added to the month's modeled usage to
date, the free tiers taken off per account and calendar month, and priced per region. expected_usd is
the mean over paths; lower/upper are the (1 - level)/2 and (1 + level)/2 quantiles (80% by default).
Series are simulated independently, which understates the spread when domains grow together.
"""

from __future__ import annotations

import calendar
import warnings
from dataclasses import dataclass, field
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd

from analytics.costs import GIB, KINDS, cost_report, coverage, daily_cost, requests_daily, storage_daily
from core.errors import DataError
from core.settings import Settings

LEVEL = 0.8
PATHS = 500
SEED = 7
HOLDOUT_DAYS = 28
MAX_HISTORY_DAYS = 730

DomainKey = tuple[str, str, str]  # (account_id, region, domain)
SHARE_DAYS = 28
DOMAIN_COLUMNS = ["account_id", "region", "domain", "storage_usd", "requests_usd", "expected_usd"]


@dataclass(frozen=True)
class Forecast:
    """Monthly cost forecast from the store's last full day on.

    monthly: month (DATE, first day), kind ('storage' | 'requests' | 'total'), actual_usd (modeled cost
      to date, current month only, else 0), expected_usd, lower_usd, upper_usd (the whole month: to-date
      plus forecast). The first month is the current one (its projection to month end), then
      horizon_months full months. With reclaimed_bytes_by_domain it is the what-if.
    baseline: monthly without the cleanup what-if (equal to monthly when none was given).
    daily: usage_date, kind, unit ('GiB' | 'requests'), expected, lower, upper: forecast quantities
      summed over series (with the what-if applied).
    backtest: kind ('storage' | 'requests' | 'cost'), holdout_days, mape_pct: daily MAPE of a re-fit on
      all but the last holdout_days of history against those days ('cost' = daily list-price cost,
      before free tiers).
    backtest_mape: the 'cost' row's mape_pct (NaN when the history is too short).
    """

    history_end: date
    horizon_months: int
    level: float
    monthly: pd.DataFrame
    baseline: pd.DataFrame
    daily: pd.DataFrame
    backtest: pd.DataFrame
    backtest_mape: float
    models: pd.DataFrame  # kind, account_id, region, domain, model, observations
    notes: list[str] = field(default_factory=list)
    # the current month per domain (with the what-if): account_id, region, domain, storage_usd,
    # requests_usd, expected_usd; an account and region's requests are shared out to its domains by
    # their requests over the last SHARE_DAYS days of history
    by_domain: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=DOMAIN_COLUMNS))


@dataclass
class _Series:
    kind: str
    account_id: str
    region: str
    domain: str | None
    y: np.ndarray  # GiB per day (storage) or requests per day, oldest first, ending on history_end


class _Fitted:
    """An ETS fit, or a constant when the history is too short or the fit fails."""

    def __init__(self, y: np.ndarray, kind: str):
        self.level = float(y[-7:].mean()) if kind == "requests" and len(y) else float(y[-1]) if len(y) else 0.0
        self.res = None
        self.name = "constant (last value)" if kind == "storage" else "constant (mean of last 7 days)"
        if len(y) < 10 or np.ptp(y) == 0:
            return
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel

        seasonal = kind == "requests" and len(y) >= 28
        kwargs = {"seasonal": "add", "seasonal_periods": 7} if seasonal else {}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.res = ETSModel(y.astype(float), error="add", trend="add", damped_trend=True,
                                    **kwargs).fit(disp=False)
            self.name = "ETS(A,Ad," + ("A,7)" if seasonal else "N)")
        except (ValueError, np.linalg.LinAlgError):
            self.res = None

    def point(self, h: int) -> np.ndarray:
        if self.res is None:
            return np.full(h, self.level)
        return np.clip(np.asarray(self.res.forecast(h), dtype=float), 0, None)

    def paths(self, h: int, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.res is None:
            return np.full((h, n), self.level)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sim = self.res.simulate(h, anchor="end", repetitions=n, rng=rng)
        return np.clip(np.asarray(sim, dtype=float).reshape(h, n), 0, None)


def _month_start(d: date) -> date:
    return d.replace(day=1)


def _add_months(d: date, k: int) -> date:
    m = d.month - 1 + k
    return date(d.year + m // 12, m % 12 + 1, 1)


def _series(con: duckdb.DuckDBPyConnection, settings: Settings, end: date) -> list[_Series]:
    cov = coverage(con)
    out: list[_Series] = []
    first = max(cov.first_day or end, end - timedelta(days=MAX_HISTORY_DAYS - 1))
    if cov.first_snapshot_date is not None:
        s = storage_daily(con, settings, max(first, cov.first_snapshot_date), end)
        for (a, r, d), g in s.groupby(["account_id", "region", "domain"]):
            if g["usage_date"].max() == pd.Timestamp(end):  # deleted domains cost nothing from here on
                out.append(_Series("storage", a, r, d, g["asset_size_bytes"].to_numpy(float) / GIB))
    if cov.first_event_at is not None:
        q = requests_daily(con, settings, max(first, cov.first_event_at.date()), end)
        for (a, r), g in q.groupby(["account_id", "region"]):
            days = pd.date_range(g["usage_date"].min(), pd.Timestamp(end), freq="D")
            y = g.set_index(pd.to_datetime(g["usage_date"]))["requests"].reindex(days, fill_value=0)
            out.append(_Series("requests", a, r, None, y.to_numpy(float)))
    return out


def _monthly_usd(series: list[_Series], qty: list[np.ndarray], to_date: list[float], days: list[date],
                 settings: Settings, each: list | None = None) -> np.ndarray:
    """Priced months (months x paths) for series of one kind; qty[i] is (days x paths). With `each`, the
    priced months of every series (the free tier shared pro rata within its account) are appended to it."""
    months = sorted({_month_start(d) for d in days})
    idx = np.array([months.index(_month_start(d)) for d in days])
    per_day = np.array([1 / calendar.monthrange(d.year, d.month)[1] for d in days])  # GiB-day -> GB-month
    n = qty[0].shape[1] if qty else 1
    monthly = []
    for s, q, done in zip(series, qty, to_date, strict=True):
        scaled = q * per_day[:, None] if s.kind == "storage" else q
        m = np.zeros((len(months), n))
        np.add.at(m, idx, scaled)
        m[0] += done
        monthly.append(m)
    usd = np.zeros((len(months), n))
    free = {"storage": settings.prices.free_storage_gb_month, "requests": settings.prices.free_requests_per_month}
    for account in {s.account_id for s in series}:
        mine = [i for i, s in enumerate(series) if s.account_id == account]
        total = sum(monthly[i] for i in mine)
        with np.errstate(divide="ignore", invalid="ignore"):
            billable = np.where(total > 0, np.maximum(total - free[series[mine[0]].kind], 0) / total, 0.0)
        for i in mine:
            storage_price, request_price = settings.prices.for_region(series[i].region)
            price = storage_price if series[i].kind == "storage" else request_price / 10_000
            usd += monthly[i] * billable * price
            if each is not None:
                each.append((series[i], monthly[i] * billable * price))
    return usd


def _backtest(series: list[_Series], settings: Settings, end: date, holdout: int) -> pd.DataFrame:
    days = [end - timedelta(days=holdout - 1 - i) for i in range(holdout)]
    per_day = np.array([1 / calendar.monthrange(d.year, d.month)[1] for d in days])
    actual = {k: np.zeros(holdout) for k in (*KINDS, "cost")}
    predicted = {k: np.zeros(holdout) for k in (*KINDS, "cost")}
    for s in series:
        if len(s.y) < holdout + 14:
            continue
        storage_price, request_price = settings.prices.for_region(s.region)
        price = per_day * storage_price if s.kind == "storage" else np.full(holdout, request_price / 10_000)
        fitted = _Fitted(s.y[:-holdout], s.kind).point(holdout)
        for target, values in ((actual, s.y[-holdout:]), (predicted, fitted)):
            target[s.kind] += values
            target["cost"] += values * price
    rows = []
    for kind in (*KINDS, "cost"):
        a, p = actual[kind], predicted[kind]
        ok = a > 0
        rows.append({"kind": kind, "holdout_days": holdout,
                     "mape_pct": float(np.mean(np.abs(p[ok] - a[ok]) / a[ok]) * 100) if ok.any() else np.nan})
    return pd.DataFrame(rows)


def _frame(months: list[date], by_kind: dict[str, np.ndarray], actual: dict[str, float],
           level: float) -> pd.DataFrame:
    lo, hi = (1 - level) / 2, (1 + level) / 2
    by_kind = {**by_kind, "total": sum(by_kind.values())}
    actual = {**actual, "total": sum(actual.values())}
    rows = []
    for i, month in enumerate(months):
        for kind, usd in by_kind.items():
            rows.append({"month": month, "kind": kind, "actual_usd": actual[kind] if i == 0 else 0.0,
                         "expected_usd": float(usd[i].mean()), "lower_usd": float(np.quantile(usd[i], lo)),
                         "upper_usd": float(np.quantile(usd[i], hi))})
    return pd.DataFrame(rows)


def forecast(con: duckdb.DuckDBPyConnection, settings: Settings, horizon_months: int = 3,
             reclaimed_bytes_by_domain: dict[DomainKey, int] | None = None, level: float = LEVEL,
             paths: int = PATHS, backtest: bool = True) -> Forecast:
    """The rest of the current month and `horizon_months` full months after it (3, 6, 12, ...).

    reclaimed_bytes_by_domain ({(account_id, region, domain): bytes}, e.g. from analytics.cleanup) is
    taken off each domain's forecast storage from the first forecast day on (never below 0): the
    what-if of applying that cleanup. Keys of domains not being forecast are named in `notes`.
    backtest=False skips the backtest's re-fit (backtest_mape is then NaN).
    """
    if horizon_months < 0 or not 0 < level < 1:
        raise ValueError("horizon_months must be >= 0 and level between 0 and 1")
    end = coverage(con).last_full_day
    if end is None:
        raise DataError("nothing to forecast: the store holds no storage snapshots and no events",
                        where="storage_snapshots, events", fix="run `caa collect` (or `make demo`) first")
    first_day = end + timedelta(days=1)
    last_day = _add_months(_month_start(first_day), horizon_months + 1) - timedelta(days=1)
    days = [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]
    months = sorted({_month_start(d) for d in days})
    series = _series(con, settings, end)
    notes = []
    reclaimed = dict(reclaimed_bytes_by_domain or {})
    known = {(s.account_id, s.region, s.domain) for s in series if s.kind == "storage"}
    if unknown := sorted(set(reclaimed) - known):
        notes.append(f"reclaimed bytes ignored for domains without current storage: {unknown}")

    # modeled usage and cost of the current month to date, per series and kind
    to_date = {"storage": 0.0, "requests": 0.0}
    done: dict[tuple, float] = {}
    if months[0] <= end:
        d = daily_cost(con, settings, months[0], end)
        to_date = {k: float(d.loc[d["kind"] == k, "cost_usd"].sum()) for k in KINDS}
        s = storage_daily(con, settings, months[0], end)
        done |= {("storage", a, r, dm): v for (a, r, dm), v in s.groupby(["account_id", "region", "domain"])[
            "gb_month"].sum().items()}
        q = requests_daily(con, settings, months[0], end)
        done |= {("requests", a, r, None): v for (a, r), v in q.groupby(["account_id", "region"])[
            "requests"].sum().items()}

    rng = np.random.default_rng(SEED)
    h = len(days)
    fitted, sims, points, models = [], [], [], []
    for s in series:
        f = _Fitted(s.y, s.kind)
        fitted.append(f)
        sims.append(f.paths(h, paths, rng))
        points.append(f.point(h))
        models.append({"kind": s.kind, "account_id": s.account_id, "region": s.region, "domain": s.domain,
                       "model": f.name, "observations": len(s.y)})
        if len(s.y) < 28:
            notes.append(f"{s.kind} {s.account_id} {s.region} {s.domain or ''}: only {len(s.y)} days of history")

    each: list[tuple[_Series, np.ndarray]] = []  # the what-if's priced months per series

    def priced(cut: bool) -> dict[str, np.ndarray]:
        out = {}
        for kind in KINDS:
            idx = [i for i, s in enumerate(series) if s.kind == kind]
            qty = []
            for i in idx:
                key = (series[i].account_id, series[i].region, series[i].domain)
                take = reclaimed.get(key, 0) / GIB if cut and kind == "storage" else 0.0
                qty.append(np.clip(sims[i] - take, 0, None))
            totals = [done.get((kind, *(series[i].account_id, series[i].region, series[i].domain)), 0.0)
                      for i in idx]
            out[kind] = (_monthly_usd([series[i] for i in idx], qty, totals, days, settings,
                                      each if cut else None) if idx else np.zeros((len(months), paths)))
        return out

    monthly = _frame(months, priced(cut=True), to_date, level)
    baseline = _frame(months, priced(cut=False), to_date, level) if reclaimed else monthly

    lo, hi = (1 - level) / 2, (1 + level) / 2
    daily_rows = []
    for kind, unit in (("storage", "GiB"), ("requests", "requests")):
        idx = [i for i, s in enumerate(series) if s.kind == kind]
        cut = [reclaimed.get((series[i].account_id, series[i].region, series[i].domain), 0) / GIB
               if kind == "storage" else 0.0 for i in idx]
        point = sum((np.clip(points[i] - c, 0, None) for i, c in zip(idx, cut, strict=True)), np.zeros(h))
        sim = sum((np.clip(sims[i] - c, 0, None) for i, c in zip(idx, cut, strict=True)), np.zeros((h, paths)))
        daily_rows.append(pd.DataFrame({"usage_date": days, "kind": kind, "unit": unit, "expected": point,
                                        "lower": np.quantile(sim, lo, axis=1),
                                        "upper": np.quantile(sim, hi, axis=1)}))
    checked = (_backtest(series, settings, end, HOLDOUT_DAYS) if backtest else
               pd.DataFrame({"kind": [*KINDS, "cost"], "holdout_days": 0, "mape_pct": np.nan}))
    cost_mape = checked.loc[checked["kind"] == "cost", "mape_pct"]
    return Forecast(history_end=end, horizon_months=horizon_months, level=level, monthly=monthly,
                    baseline=baseline, daily=pd.concat(daily_rows, ignore_index=True), backtest=checked,
                    backtest_mape=float(cost_mape.iloc[0]), models=pd.DataFrame(models), notes=notes,
                    by_domain=_by_domain(con, settings, each, end))


def _by_domain(con: duckdb.DuckDBPyConnection, settings: Settings, each: list[tuple[_Series, np.ndarray]],
               end: date) -> pd.DataFrame:
    """The current month's expected cost per domain: its own storage series, plus its account and
    region's requests in proportion to the domain's requests over the SHARE_DAYS days to `end` (a domain
    without recent requests gets none; with no request in the account and region at all, the requests go
    to its domains in equal parts)."""
    keys = ["account_id", "region", "domain"]
    storage = pd.DataFrame([(s.account_id, s.region, s.domain, float(u[0].mean())) for s, u in each
                            if s.kind == "storage"], columns=[*keys, "storage_usd"])
    requests = pd.DataFrame([(s.account_id, s.region, float(u[0].mean())) for s, u in each
                             if s.kind == "requests"], columns=["account_id", "region", "requests_usd"])
    if requests.empty:
        out = storage.assign(requests_usd=0.0)
    else:
        recent = cost_report(con, settings, end - timedelta(days=SHARE_DAYS - 1), end, by="domain")
        recent = recent.groupby(keys, as_index=False)["requests"].sum()
        known = pd.concat([recent[keys], storage[keys]]).drop_duplicates()
        known = known.merge(recent, on=keys, how="left").fillna({"requests": 0.0})
        total = known.groupby(["account_id", "region"])["requests"].transform("sum")
        count = known.groupby(["account_id", "region"])["requests"].transform("size")
        known["share"] = np.where(total > 0, known["requests"] / total.where(total > 0, 1.0), 1.0 / count)
        req = known.merge(requests, on=["account_id", "region"])
        req["requests_usd"] = req["requests_usd"] * req["share"]
        out = storage.merge(req[[*keys, "requests_usd"]], on=keys, how="outer")
    out = out.fillna({"storage_usd": 0.0, "requests_usd": 0.0})
    out["expected_usd"] = out["storage_usd"] + out["requests_usd"]
    return out.sort_values(keys, ignore_index=True)[DOMAIN_COLUMNS]


def month_end_projection(con: duckdb.DuckDBPyConnection, settings: Settings, level: float = LEVEL) -> pd.DataFrame:
    """The current month: modeled cost to date (actual_usd) and its projection to month end.

    Columns: month, kind ('storage' | 'requests' | 'total'), actual_usd, expected_usd, lower_usd,
    upper_usd (one row per kind).
    """
    return forecast(con, settings, horizon_months=0, level=level, backtest=False).monthly
