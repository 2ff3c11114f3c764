"""The floors every speed in `make bench` is compared with, measured on the same files in the same run.

- parse floor: read + decompress (isal) + JSON-parse (msgspec, typed to the fields caa reads) every
  file, nothing else, in 2 processes (both cores), GC off;
- S3 floor: moto's own raw GET throughput for the same objects, 12 GETs in flight.
"""

from __future__ import annotations

import gc
import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgspec
from isal import igzip

Str = str | None


class Identity(msgspec.Struct):
    type: Str = None
    arn: Str = None
    accountId: Str = None


class Params(msgspec.Struct):
    domainName: Str = None
    domain: Str = None
    domainOwner: Str = None
    repositoryName: Str = None
    repository: Str = None
    packageFormat: Str = None
    format: Str = None
    packageNamespace: Str = None
    namespace: Str = None
    packageName: Str = None
    package: Str = None
    packageVersion: Str = None
    asset: Str = None


class Extra(msgspec.Struct):
    requestUri: Str = None


class Record(msgspec.Struct):
    eventVersion: Str = None
    eventID: Str = None
    eventTime: Str = None
    eventSource: Str = None
    eventName: Str = None
    awsRegion: Str = None
    sourceIPAddress: Str = None
    userAgent: Str = None
    errorCode: Str = None
    recipientAccountId: Str = None
    userIdentity: Identity | None = None
    requestParameters: Params | None = None
    additionalEventData: Extra | None = None


class Trail(msgspec.Struct):
    Records: list[Record]


def _parse(paths: list[str]) -> tuple[int, int, int]:
    gc.disable()
    decoder = msgspec.json.Decoder(Trail)
    records = raw_bytes = gz_bytes = 0
    for p in paths:
        gz = Path(p).read_bytes()
        raw = igzip.decompress(gz)
        records += len(decoder.decode(raw).Records)
        raw_bytes += len(raw)
        gz_bytes += len(gz)
    return records, raw_bytes, gz_bytes


def _raise_malloc_threshold() -> None:
    """In each floor worker: free one 30 MiB block, which raises glibc's dynamic mmap threshold to its size (and
    the trim threshold to twice that; glibc raises it for a freed block of at most 32 MiB), past every inflated
    file of the bench trail (1.4 MiB on average, 3.3 at most), so the inflate buffers come from the heap and are
    reused instead of being mapped and faulted in again for every file. The workers are forked and inherited
    whatever the forking process had done: from a fresh process the floor took 6.0-6.3 s, from one that had
    freed a large block (`bench.run` reads the 7.8 MB ground truth first) 5.3-5.5 s, and with this 5.3-5.6 s
    from either (2026-12-05). The floor is the fast state, whoever measures it."""
    block = bytearray(30 << 20)
    del block


def parse_floor(files: list[Path], procs: int = 2) -> dict:
    """Wall time to decompress and parse `files` on `procs` processes, with records and bytes. The files are
    read once before the clock starts: the collector timed after the floor reads them from the page cache that
    the floor filled, so a floor that read them from disk was the slower of the two for a reason that is not
    parsing (the bench trail with the page cache dropped: 8.1 s, then 7.0 and 7.0 s, 2026-12-05)."""
    for f in files:
        Path(f).read_bytes()
    chunks = [[str(f) for f in files[i::64]] for i in range(64)]
    with multiprocessing.get_context("fork").Pool(procs, initializer=_raise_malloc_threshold) as pool:
        pool.map(abs, range(procs))  # workers up before the clock starts
        t0 = time.monotonic()
        got = pool.map(_parse, chunks, chunksize=1)
        secs = time.monotonic() - t0
    return {"secs": secs, "records": sum(g[0] for g in got), "raw_bytes": sum(g[1] for g in got),
            "gz_bytes": sum(g[2] for g in got)}


def s3_get_floor(client, bucket: str, keys: list[str], in_flight: int = 12) -> dict:
    """moto's raw GET throughput for `keys` (bodies read and dropped)."""
    def get(key: str) -> int:
        return len(client.get_object(Bucket=bucket, Key=key)["Body"].read())

    t0 = time.monotonic()
    with ThreadPoolExecutor(in_flight) as pool:
        total = sum(pool.map(get, keys))
    return {"secs": time.monotonic() - t0, "objects": len(keys), "gz_bytes": total}
