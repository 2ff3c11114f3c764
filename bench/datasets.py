"""Benchmark data sets, generated once and cached under data/bench/ (keyed by seed, size and a fixed end).

- pure: the demo trail writer (`demo.trails.write_trails`) at BENCH_EVENTS CodeArtifact events;
- increment: about one day of new events (60k at 5M) written after the pure trail's last day: the
  newest pure files again, with new eventIDs and their times moved to that day (duplicates stay
  duplicates), plus `combined/`, the pure tree and the increment hard-linked into one tree;
- mixed: the pure files of the first `days` days where CodeArtifact is 5% of the records: each file
  gets 3 records of sts/s3/kms/ec2 per record it holds, and 4 more files of other services only are
  written beside it (1 in 10 of them holds a KMS call made by CodeArtifact, which mentions
  codeartifact.amazonaws.com but is no CodeArtifact event). Written by bench/mixed.py;
- small: the first `files` pure files cut into files of `per_file` records each, in the same folders: a quiet
  account's trail, where CloudTrail delivers a file of a few records every 5 minutes per Region.

Writes: data/bench/<set>/ (trails/, truth JSON, an `ok` marker once complete).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson

from demo.estate import build_estate
from demo.trails import write_trails

CA = "codeartifact.amazonaws.com"
END = datetime(2026, 1, 1, tzinfo=UTC)  # fixed, so the cache stays valid from one day to the next


def trail_files(root: Path) -> list[Path]:
    """Every trail (not digest) file under root, sorted."""
    return sorted(p for p in root.glob("AWSLogs/**/CloudTrail/*/*/*/*/*.json.gz"))


def day_of(path: Path) -> date:
    y, m, d = path.parts[-4:-1]
    return date(int(y), int(m), int(d))


def pure(base: Path, seed: int, events: int) -> tuple[Path, dict]:
    out = base / f"pure-s{seed}-e{events}-{END:%Y%m%d}"
    if not (out / "ok").exists():
        t0 = time.monotonic()
        print(f"bench: writing {events:,} events of trail files to {out} ...", flush=True)
        write_trails(build_estate(seed, end=END), out, target_events=events, workers=2)
        (out / "ok").write_text("ok")
        print(f"bench: wrote the pure trail in {time.monotonic() - t0:.0f}s", flush=True)
    truth = json.loads((out / "ground_truth.json").read_text())
    return out, truth


def _new_id(old: str) -> str:
    h = hashlib.blake2b(f"bench-increment/{old}".encode(), digest_size=16).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def increment(pure_dir: Path, target: int) -> tuple[Path, Path, int, date]:
    """(increment trails, combined trails, unique CodeArtifact events in the increment, its day)."""
    out = pure_dir / f"increment-{target}"
    files = trail_files(pure_dir / "trails")
    day = max(day_of(p) for p in files) + timedelta(days=1)
    if not (out / "ok").exists():
        if out.exists():
            shutil.rmtree(out)
        picked, n = [], 0
        for p in sorted(files, key=lambda p: (day_of(p), str(p)), reverse=True):
            if n >= target:
                break
            recs = orjson.loads(gzip.decompress(p.read_bytes()))["Records"]
            picked.append((p, recs))
            n += sum(r.get("eventSource") == CA for r in recs)
        ids: set[str] = set()
        for p, recs in picked:
            for r in recs:
                r["eventID"] = _new_id(r["eventID"])
                r["eventTime"] = f"{day:%Y-%m-%d}" + r["eventTime"][10:]
                if r.get("eventSource") == CA:
                    ids.add(r["eventID"])
            rel = p.relative_to(pure_dir / "trails")
            name = p.name.split("_")
            name[3] = f"{day:%Y%m%d}" + name[3][8:]
            key = Path(*rel.parts[:-4], f"{day:%Y}", f"{day:%m}", f"{day:%d}", "_".join(name))
            dest = out / "trails" / key
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(gzip.compress(orjson.dumps({"Records": recs}), compresslevel=1, mtime=0))
        (out / "truth.json").write_text(json.dumps({"events_unique": len(ids), "day": str(day),
                                                    "files": len(picked)}))
        combined = out / "combined"
        subprocess.run(["cp", "-al", str(pure_dir / "trails"), str(combined)], check=True)
        subprocess.run(["cp", "-al", str(out / "trails" / "AWSLogs"), str(combined)], check=True)
        (out / "ok").write_text("ok")
    truth = json.loads((out / "truth.json").read_text())
    return out / "trails", out / "combined", truth["events_unique"], day


def mixed(base: Path, pure_dir: Path, days: int) -> tuple[Path, dict]:
    from bench import mixed as mixed_gen

    out = base / f"mixed-{pure_dir.name}-d{days}"
    if not (out / "ok").exists():
        if out.exists():
            shutil.rmtree(out)
        files = trail_files(pure_dir / "trails")
        first = min(day_of(p) for p in files)
        subset = [p for p in files if day_of(p) < first + timedelta(days=days)]
        t0 = time.monotonic()
        print(f"bench: writing the mixed trail from {len(subset)} pure files to {out} ...", flush=True)
        truth = mixed_gen.write(pure_dir / "trails", subset, out / "trails")
        (out / "truth.json").write_text(json.dumps(truth))
        (out / "ok").write_text("ok")
        print(f"bench: wrote the mixed trail in {time.monotonic() - t0:.0f}s", flush=True)
    return out / "trails", json.loads((out / "truth.json").read_text())


def small(base: Path, pure_dir: Path, files: int = 400, per_file: int = 10) -> tuple[Path, dict]:
    out = base / f"small-{pure_dir.name}-f{files}-r{per_file}"
    if not (out / "ok").exists():
        if out.exists():
            shutil.rmtree(out)
        src = pure_dir / "trails"
        ids: set[str] = set()
        written = 0
        for path in trail_files(src)[:files]:
            records = orjson.loads(gzip.decompress(path.read_bytes()))["Records"]
            ids.update(r["eventID"] for r in records if r.get("eventSource") == CA and r.get("eventID"))
            rel = path.relative_to(src)
            for i in range(0, len(records), per_file):
                dest = out / "trails" / rel.parent / f"{rel.name.removesuffix('.json.gz')}_{i:06d}.json.gz"
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(gzip.compress(orjson.dumps({"Records": records[i:i + per_file]}), 6))
                written += 1
        (out / "truth.json").write_text(json.dumps({"events_unique": len(ids), "files": written}))
        (out / "ok").write_text("ok")
    return out / "trails", json.loads((out / "truth.json").read_text())


def first_days(root: Path, days: int) -> list[Path]:
    files = trail_files(root)
    first = min(day_of(p) for p in files)
    return [p for p in files if day_of(p) < first + timedelta(days=days)]
