"""Score a spike detection against a labelled truth: a demo estate's ground truth (demo/truth.py) or the
independent traffic model of the tests (tests/fixtures/traffic2.py).

A detected download row matches a truth download spike when their windows overlap ([start - slack,
end + slack) against [start, end]) and they name the same thing at the row's level (a package by the name
CodeArtifact stores, name_key: the detector's series are keyed so, and a truth may use a client's spelling):
  * 'package': the truth's package in its repository (a truth of level 'domain': the package anywhere
    in its domain; of level 'repository': that repository);
  * 'domain': the package in the truth's domain;
  * 'repository': the truth's repository (a domain-level truth: its domain);
  * 'principal' (sessions or request volume): the truth's principal.
An auth row matches a truth auth burst of the same principal under the same time rule.

precision = matched rows / rows; recall = matched truths / truths (tp, fp, fn as counts). Per truth kind
(`kind` in traffic2's truth: runaway, burst, surge, short; the demo's spikes are "download"), recall is
that kind's matched truths, and precision counts that kind's matched rows against them plus every row
that matches nothing (a false alarm counts against every kind). Rows over a truth's `quiet` windows (a
slow ramp, a package returning, a new package, a holiday) on the same package are counted as
quiet_alarms. by_signal gives, per "level/signal" that fired, its download rows and the share of them
that match a truth.

Reads and writes nothing.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pandas as pd

from analytics.spikes import none_if_blank as _v

PACKAGE = ["domain", "repository", "format", "namespace", "package"]
IN_DOMAIN = ["domain", "format", "namespace", "package"]
HOUR = timedelta(hours=1)


def _ts(v) -> pd.Timestamp:
    t = pd.Timestamp(v)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def name_key(fmt: str | None, column: str, value):
    """A package's `column` ('namespace' or 'package'; any other column as it is) named as CodeArtifact stores
    it: the store's namespace_key and package_key (core/schema/021_name_keys.sql; a test holds the two equal)."""
    if not isinstance(value, str) or column not in ("namespace", "package"):
        return value
    if column == "namespace":
        return value.lower() if fmt == "swift" else value
    if fmt == "pypi":
        return re.sub("-{2,}", "-", value.lower().replace("_", "-").replace(".", "-"))
    return value.lower() if fmt in ("nuget", "swift") else value


def _same(row, truth: dict, keys: list[str]) -> bool:
    fmt = _v(row.get("format")) or _v(truth.get("format"))
    return all(name_key(fmt, k, _v(row[k])) == name_key(fmt, k, _v(truth.get(k))) for k in keys)


def matches(row, truth: dict) -> bool:
    """Whether a detected download row names the truth spike's package, repository or principal."""
    level, t_level = row.get("level") or "package", truth.get("level") or "package"
    if level == "principal":
        return _v(truth.get("principal_arn")) is not None and row["principal_arn"] == truth["principal_arn"]
    if level == "repository":
        return _same(row, truth, ["domain"] if t_level == "domain" else ["domain", "repository"])
    if level == "domain" or t_level == "domain":
        return _same(row, truth, IN_DOMAIN)
    if t_level == "repository":
        return _same(row, truth, ["domain", "repository"])
    return _same(row, truth, PACKAGE)


def overlap(row, start, end, slack: timedelta) -> bool:
    return _ts(row["start"]) - slack <= _ts(end) and _ts(start) < _ts(row["end"]) + slack


def evaluate(detected: pd.DataFrame, truth: dict, slack: timedelta = HOUR) -> dict:
    """Precision and recall overall, per kind of row (download, auth) and per kind of truth spike."""
    groups = {"download": truth.get("download_spikes", []), "auth": truth.get("auth_bursts", [])}
    out: dict = {}
    spike_kind: dict[str, dict] = {}
    by_signal: dict[str, list[int]] = {}
    unmatched_download_rows = 0
    quiet_alarms = 0
    for kind, items in groups.items():
        rows = detected[detected["kind"] == kind] if len(detected) else detected
        hit_rows: dict[int, set[int]] = {}
        for ti, t in enumerate(items):
            for ri, r in rows.iterrows():
                if not overlap(r, t["start"], t["end"], slack):
                    continue
                if (r["principal_arn"] == t["principal_arn"]) if kind == "auth" else matches(r, t):
                    hit_rows.setdefault(ri, set()).add(ti)
        hit_truth = {ti for tis in hit_rows.values() for ti in tis}
        out[kind] = _pr(len(rows), len(hit_rows), len(items), len(hit_truth))
        if kind == "download":
            unmatched_download_rows = len(rows) - len(hit_rows)
            for ri, r in rows.iterrows():
                counts = by_signal.setdefault(f"{r['level']}/{r['signal']}", [0, 0])
                counts[0] += ri in hit_rows
                counts[1] += 1
            for name in sorted({t.get("kind", "download") for t in items}):
                mine = {ti for ti, t in enumerate(items) if t.get("kind", "download") == name}
                mine_rows = sum(1 for tis in hit_rows.values() if tis & mine)
                spike_kind[name] = {
                    "truths": len(mine), "hits": len(mine & hit_truth),
                    "recall": len(mine & hit_truth) / len(mine) if mine else 1.0,
                    "precision": mine_rows / (mine_rows + unmatched_download_rows)
                    if mine_rows + unmatched_download_rows else 1.0}
            for q in truth.get("quiet", []):
                quiet_alarms += sum(1 for ri, r in rows.iterrows() if ri not in hit_rows
                                    and overlap(r, q["start"], q["end"], slack) and matches(r, q))
    total = {k: sum(out[kind][k] for kind in groups) for k in ("tp", "fp", "fn")}
    n_rows = sum(out[kind]["rows"] for kind in groups)
    return {**_pr(n_rows, n_rows - total["fp"], total["tp"] + total["fn"], total["tp"]), "by_kind": out,
            "by_spike_kind": spike_kind, "false_alarms": total["fp"], "quiet_alarms": quiet_alarms,
            "by_signal": {k: {"precision": h / n, "rows": n} for k, (h, n) in sorted(by_signal.items())}}


def _pr(rows: int, matched_rows: int, truths: int, matched_truths: int) -> dict:
    return {"precision": matched_rows / rows if rows else 1.0, "recall": matched_truths / truths if truths else 1.0,
            "tp": matched_truths, "fp": rows - matched_rows, "fn": truths - matched_truths, "rows": rows}
