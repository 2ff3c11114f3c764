"""traffic2 (tests/fixtures/traffic2.py): deterministic, its labelled spikes really are in the trail files, its
records have the loader's keys, and it owes nothing to demo/."""

import ast
import gzip
import json
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collectors.cloudtrail_load import normalize_records
from tests.fixtures import traffic2
from tests.fixtures.trails import record

SMALL = {"days": 56, "packages": 60}
SEED = 3


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _records(root: Path) -> list[dict]:
    out = []
    for p in sorted(root.rglob("*.json.gz")):
        out += json.loads(gzip.decompress(p.read_bytes()))["Records"]
    return out


def _names(r: dict, s: dict) -> bool:
    """Whether download record r is of the truth spike s's key (at its level)."""
    p = r["requestParameters"]
    return ((r["recipientAccountId"], r["awsRegion"], p["domainName"]) == (s["account_id"], s["region"], s["domain"])
            and (s["level"] == "domain" or p["repositoryName"] == s["repository"])
            and (s["level"] == "repository" or (p["packageName"], p.get("packageNamespace"), p["packageFormat"])
                 == (s["package"], s["namespace"], s["format"])))


def _is_download(r: dict) -> bool:
    return r["eventName"] == "ReadFromRepository" and r["requestParameters"].get("packageVersion") is not None


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("traffic2")
    truth = traffic2.generate(root, SEED, **SMALL)
    return root, truth, _records(root)


def test_same_seed_same_bytes_other_seed_differs(small, tmp_path):
    root, truth, _ = small
    again = traffic2.generate(tmp_path / "again", SEED, **SMALL)
    assert again == truth
    assert _files(tmp_path / "again") == _files(root)
    traffic2.generate(tmp_path / "other", SEED + 1, **SMALL)
    other = _files(tmp_path / "other")
    assert other.keys() != _files(root).keys()
    assert other["truth.json"] != _files(root)["truth.json"]


def test_layout_and_truth_counts(small):
    root, truth, recs = small
    keys = [p.relative_to(root).parts for p in root.rglob("*.json.gz")]
    assert keys and all(k[0] == "AWSLogs" and k[2] == "CloudTrail"
                        and k[-1].startswith(f"{k[1]}_CloudTrail_{k[3]}_") for k in keys)
    assert len(keys) < 56 * 24
    assert truth["events"] == len(recs) and truth["downloads"] == sum(map(_is_download, recs))
    assert len({r["eventID"] for r in recs}) == len(recs)
    start, end = truth["start"], truth["end"]
    assert all(start <= r["eventTime"] < end for r in recs)
    assert json.loads((root / "truth.json").read_text()) == truth
    assert {q["kind"] for q in truth["quiet"]} == {"ramp", "return", "new", "holiday"}
    assert any(r["eventName"] == "GetAuthorizationToken" for r in recs)
    metadata = sum(not _is_download(r) and r["eventName"] == "ReadFromRepository" for r in recs)
    assert metadata > 0.2 * truth["downloads"]


def test_every_labelled_spike_is_in_the_files(small):
    _, truth, recs = small
    kinds = Counter(s["kind"] for s in truth["download_spikes"])
    assert set(kinds) == {"runaway", "burst", "surge", "short"} and all(3 <= n <= 5 for n in kinds.values())
    history = datetime.fromisoformat(truth["start"]) + timedelta(days=35)
    downloads = [r for r in recs if _is_download(r)]
    for s in truth["download_spikes"]:
        assert datetime.fromisoformat(s["start"]) >= history
        mine = [r for r in downloads if s["start"] <= r["eventTime"] < s["end"] and _names(r, s)]
        assert len(mine) >= s["excess_downloads"] > 0, s
        assert s["excess_requests"] > s["excess_downloads"]
        minutes = (datetime.fromisoformat(s["end"]) - datetime.fromisoformat(s["start"])).total_seconds() / 60
        if s["kind"] in ("runaway", "short"):
            assert s["level"] == "package" and s["principal_arn"]
            assert sum(r["userIdentity"]["arn"] == s["principal_arn"] for r in mine) >= s["excess_downloads"]
            assert minutes <= (26 if s["kind"] == "runaway" else 3)
        elif s["kind"] == "burst":
            assert s["level"] == "repository" and s["package"] is None and 30 <= minutes <= 361
            assert 300 <= s["excess_downloads"] <= 3000
        else:
            assert s["level"] == "domain" and s["repository"] is None
            assert len({r["userIdentity"]["arn"] for r in mine}) >= 10
            per_repo_day: dict = defaultdict(int)
            days = {r["eventTime"][:10] for r in mine}
            for r in downloads:  # all of that package's downloads on the spike's UTC days, background included
                p = r["requestParameters"]
                if r["eventTime"][:10] in days and _names(r, s):
                    per_repo_day[p["repositoryName"], r["eventTime"][:10]] += 1
            assert len({repo for repo, _ in per_repo_day}) >= 3 and max(per_repo_day.values()) <= 15
            assert all(sum(n for (_, d), n in per_repo_day.items() if d == day) >= 30 for day in days)


def test_records_have_the_loader_keys_and_normalize(small):
    root, _, _ = small
    want = set(record(1, datetime(2026, 11, 1, tzinfo=UTC)))
    path = max(root.rglob("*.json.gz"), key=lambda p: p.stat().st_size)
    recs = json.loads(gzip.decompress(path.read_bytes()))["Records"]
    reads = [r for r in recs if r["eventName"] == "ReadFromRepository"]
    assert reads and all(set(r) == want for r in reads)
    assert all(set(r) - {"responseElements"} == want - {"additionalEventData"}
               for r in recs if r["eventName"] == "GetAuthorizationToken")
    rows = {row["event_id"]: row for row in normalize_records(recs)}
    assert len(rows) == len(recs)
    for r in reads:
        row, p = rows[r["eventID"]], r["requestParameters"]
        assert (row["package"], row["namespace"], row["repository"]) == (
            p["packageName"], p.get("packageNamespace"), p["repositoryName"])
        assert (row["asset"] is not None) == _is_download(r), r


def test_imports_nothing_from_demo():
    tree = ast.parse(Path(traffic2.__file__).read_text())
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert "demo" not in mods and not any(isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(tree))
    assert mods <= set(sys.stdlib_module_names) | {"numpy", "orjson"}
