"""The cloudtrail loader's fast paths keep its behaviour: the byte prefilter skips files that hold no
CodeArtifact record (and records them in the ledger), never hides a broken file, and never drops an event."""

from __future__ import annotations

import gzip
import json
import os
import threading
import tracemalloc
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from collectors import cloudtrail, cloudtrail_load
from collectors.trailfiles import TrailObject, known_files
from core import store
from tests.fixtures.trails import ACCOUNT, record, write_local
from tests.helpers import collect, make_settings, rows, writer

SINCE = date(2026, 10, 25)
AT = datetime(2026, 11, 3, 12, tzinfo=UTC)
DAY = f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/11/03/"


def kms(i: int, **over) -> dict:
    r = {"eventVersion": "1.09", "eventID": f"kms-{i}", "eventTime": "2026-11-03T12:00:00Z",
         "eventSource": "kms.amazonaws.com", "eventName": "Decrypt", "awsRegion": "us-east-1",
         "sourceIPAddress": "192.0.2.1", "userAgent": "aws-sdk-java/2.21.0", "recipientAccountId": ACCOUNT,
         "requestParameters": {"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}}
    r.update(over)
    return r


def gz(records: list[dict]) -> bytes:
    return gzip.compress(json.dumps({"Records": records}).encode())


@pytest.fixture
def staged(monkeypatch) -> list[bytes]:
    """The text of every file the loader handed to the JSON decoder."""
    seen: list[bytes] = []
    real = cloudtrail_load.parse_text

    def spy(text):
        seen.append(bytes(text))
        return real(text)

    monkeypatch.setattr(cloudtrail_load, "parse_text", spy)
    return seen


def test_a_file_without_codeartifact_is_never_parsed_but_is_in_the_ledger(tmp_path, staged):
    files = {DAY + "a_ca.json.gz": gz([record(1, AT), kms(1), record(2, AT)]),
             DAY + "b_kms.json.gz": gz([kms(i) for i in range(2, 50)])}
    root = write_local(tmp_path / "trail", files)
    db = tmp_path / "caa.duckdb"
    assert collect(db, [cloudtrail.SPEC], since=SINCE, source=str(root)) == 0
    assert staged == [gzip.decompress(files[DAY + "a_ca.json.gz"])]
    assert sorted(r[0] for r in rows(db, "SELECT event_id FROM events")) == [record(1, AT)["eventID"],
                                                                            record(2, AT)["eventID"]]
    assert rows(db, "SELECT key, events FROM cloudtrail_files ORDER BY key") == [
        (DAY + "a_ca.json.gz", 2), (DAY + "b_kms.json.gz", 0)]
    assert rows(db, "SELECT status, skipped FROM collector_runs") == [("ok", 0)]
    staged.clear()
    assert collect(db, [cloudtrail.SPEC], since=SINCE, source=str(root)) == 0
    assert staged == []  # both files are known: neither is read again


def test_a_codeartifact_mention_inside_another_service_is_parsed_and_yields_no_rows(tmp_path, staged):
    by_codeartifact = kms(7, sourceIPAddress="codeartifact.amazonaws.com", userAgent="codeartifact.amazonaws.com",
                          userIdentity={"type": "AWSService", "invokedBy": "codeartifact.amazonaws.com"})
    files = {DAY + "c_kms.json.gz": gz([kms(1), by_codeartifact, kms(2)])}
    root = write_local(tmp_path / "trail", files)
    db = tmp_path / "caa.duckdb"
    assert collect(db, [cloudtrail.SPEC], since=SINCE, source=str(root)) == 0
    assert len(staged) == 1
    assert rows(db, "SELECT count(*) FROM events") == [(0,)]
    assert rows(db, "SELECT key, events FROM cloudtrail_files") == [(DAY + "c_kms.json.gz", 0)]


def test_broken_files_without_codeartifact_are_still_reported_and_retried(tmp_path):
    whole = gz([kms(i) for i in range(40)])
    files = {DAY + "d_truncated.json.gz": whole[: len(whole) // 2],
             DAY + "e_not_a_list.json.gz": gzip.compress(b'{"Records": {"eventID": "x"}}'),
             DAY + "f_cut_json.json.gz": gzip.compress(b'{"Records": [{"eventID": "x",'),
             DAY + "g_ok.json.gz": gz([record(1, AT)])}
    root = write_local(tmp_path / "trail", files)
    db = tmp_path / "caa.duckdb"
    assert collect(db, [cloudtrail.SPEC], since=SINCE, source=str(root)) == 0
    assert rows(db, "SELECT skipped FROM collector_runs") == [(3,)]
    assert rows(db, "SELECT key FROM cloudtrail_files") == [(DAY + "g_ok.json.gz",)]


def test_inflate_reads_every_gzip_member_and_finds_codeartifact_anywhere(tmp_path):
    quiet, loud = tmp_path / "quiet.json.gz", tmp_path / "loud.json.gz"
    head = json.dumps({"Records": [kms(i) for i in range(3)]})[:-2]
    tail = ", " + json.dumps(record(1, AT)) + "]}"
    quiet.write_bytes(gzip.compress(head.encode()) + gzip.compress(b"]}"))
    loud.write_bytes(gzip.compress(head.encode()) + gzip.compress(tail.encode()))
    assert cloudtrail_load.inflate_file(str(quiet)) == b""  # nothing for caa
    assert cloudtrail_load.inflate_file(str(loud)) == (head + tail).encode()  # both members, whole
    # A name far into a big file is still found.
    padding = "x" * 300_000
    big = tmp_path / "big.json.gz"
    text = json.dumps({"Records": [kms(1, note=padding), record(2, AT)]}).encode()
    big.write_bytes(gzip.compress(text, compresslevel=0))
    assert cloudtrail_load.inflate_file(str(big)) == text
    truncated = tmp_path / "cut.json.gz"
    truncated.write_bytes(gzip.compress(text)[:1000])
    assert cloudtrail_load.inflate_file(str(truncated)) is None  # reported: not a complete gzip file

    # What gzip itself accepts after the last member (zero padding) still reads; anything else does not.
    member = gzip.compress(text)
    padded, trailing = tmp_path / "padded.json.gz", tmp_path / "trailing.json.gz"
    padded.write_bytes(member + gzip.compress(b" ") + b"\0" * 512)
    trailing.write_bytes(member + b"not gzip")
    assert cloudtrail_load.inflate_file(str(padded)) == gzip.decompress(padded.read_bytes()) == text + b" "
    assert cloudtrail_load.inflate_file(str(trailing)) is None


def test_every_member_of_a_file_is_read_whatever_its_last_trailer_says():
    """A trail file of one member is inflated in one go, sized by its trailer; a file of several is read whole,
    also when its last member has the first one's length, or is the first one again (its trailer then matches
    the first member's text: A, B, A must not come back as A)."""
    first = json.dumps({"Records": [record(1, AT)]}).encode()
    second = first.replace(b"\"eventID\": \"", b"\"eventID\": \"x")[:len(first)]
    assert len(first) == len(second) and first != second
    assert cloudtrail_load.gunzip(gzip.compress(first) + gzip.compress(second)) == first + second
    assert cloudtrail_load.gunzip(gzip.compress(first) + gzip.compress(second) + gzip.compress(first)) == (
        first + second + first)
    assert cloudtrail_load.gunzip(gzip.compress(first)) == first


def test_time_ordered_batches_still_store_each_event_once(tmp_path):
    """Files of several accounts and days, two per batch: duplicates across accounts and batches land once."""
    files = {}
    for day in (2, 3, 4):
        at = datetime(2026, 11, day, 9, tzinfo=UTC)
        shared = record(100 + day, at)
        for acct in (ACCOUNT, "444455556666"):
            key = f"AWSLogs/{acct}/CloudTrail/us-east-1/2026/11/{day:02d}/{acct}_{day}.json.gz"
            files[key] = gz([dict(shared, recipientAccountId=acct), record(day * 10 + int(acct[0]), at)])
    root = write_local(tmp_path / "trail", files)
    db = tmp_path / "caa.duckdb"
    settings = make_settings(db=db, cloudtrail={"batch_files": 2})
    assert collect(db, [cloudtrail.SPEC], settings, since=SINCE, source=str(root)) == 0
    assert rows(db, "SELECT count(*), count(DISTINCT event_id) FROM events") == [(9, 9)]
    assert rows(db, "SELECT count(*), sum(events) FROM cloudtrail_files") == [(6, 12)]


def test_scratch_folders_of_dead_collectors_are_swept_and_live_ones_kept(tmp_path):
    dead = [tmp_path / f"caa-{kind}-999999999-abc" for kind in ("json", "trail")]  # no such pid
    alive = tmp_path / f"caa-trail-{os.getpid()}-def"
    others = [tmp_path / "caa-json-notes", tmp_path / "caa-trail-x-12-y", tmp_path / "caa-999999999"]
    for d in (*dead, alive, *others):
        d.mkdir()
        (d / "000000-x.json").write_bytes(b"{}")
    cloudtrail_load.sweep_scratch(str(tmp_path))
    assert not any(d.exists() for d in dead) and alive.exists() and all(d.exists() for d in others)


def test_an_event_delivered_twice_keeps_the_first_files_copy_and_a_bad_copy_never_wins(tmp_path):
    """The same eventID in three files of one batch (as when an organization trail and an account trail
    both deliver it), differing in recipientAccountId: the first file's valid copy is stored. A copy with no
    eventName (rejected, counted) in an earlier file does not count as the first."""
    at = datetime(2026, 11, 3, 9, tzinfo=UTC)

    def copy(account: str) -> dict:
        r = record(500, at, recipientAccountId=account)
        r["requestParameters"].pop("domainOwner")  # account_id is then the recipient's
        return r

    bad = copy("000000000000")
    del bad["eventName"]
    files = {DAY + "a.json.gz": gz([record(1, at), bad]),
             DAY + "b.json.gz": gz([copy("444455556666"), record(2, at)]),
             DAY + "c.json.gz": gz([copy("777788889999")])}
    root = write_local(tmp_path / "trail", files)
    db = tmp_path / "caa.duckdb"
    assert collect(db, [cloudtrail.SPEC], since=SINCE, source=str(root)) == 0
    assert rows(db, "SELECT account_id FROM events WHERE event_id = ?", [bad["eventID"]]) == [("444455556666",)]
    assert rows(db, "SELECT count(*) FROM events") == [(3,)]
    assert rows(db, "SELECT skipped FROM collector_runs") == [(1,)]  # the rejected copy, counted


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="no /dev/shm")
def test_a_killed_older_collectors_inflated_json_in_dev_shm_is_swept(tmp_path):
    """Before the native decoder, batches were inflated into /dev/shm: a collector killed then left them in
    memory. The next scratch folder sweeps them, once per process."""
    dead = Path("/dev/shm") / "caa-json-999999999-old"
    dead.mkdir(exist_ok=True)
    (dead / "000000-x.json").write_bytes(b"{}")
    cloudtrail_load.sweep_scratch.cache_clear()
    with cloudtrail_load.scratch_folder("trail", str(tmp_path)):
        assert not dead.exists()


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="per-thread priority is a Linux feature")
def test_the_decoder_threads_yield_to_the_commit_and_the_collector_keeps_its_priority(tmp_path, monkeypatch):
    """The read-ahead decoder runs its threads at a lower priority than the commit (the pipeline's slower
    stage); the collector itself, the main thread, keeps the priority it was started with."""
    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    seen: list[int] = []
    real = cloudtrail_load.inflate_file
    monkeypatch.setattr(cloudtrail_load, "inflate_file", lambda path: seen.append(niceness()) or real(path))
    base = niceness()
    root = write_local(tmp_path / "trail", {DAY + f"{i}.json.gz": gz([record(i, AT)]) for i in range(6)})
    db = tmp_path / "caa.duckdb"
    assert collect(db, [cloudtrail.SPEC], since=SINCE, source=str(root)) == 0
    assert seen == [min(19, base + cloudtrail_load.DECODER_NICE)] * 6
    assert niceness() == base
    assert rows(db, "SELECT count(*) FROM events") == [(6,)]


def test_a_run_holds_the_files_it_lists_not_the_whole_ledger(tmp_path):
    """The ledger keeps a row for every trail file ever read (a year of an organization's trail is millions).
    A run checks only the files it lists against it: a store whose ledger holds a million older files
    collects a new day's file without holding those million keys in memory (before: about 300 MB of Python
    objects for them, on every scheduled run)."""
    root = write_local(tmp_path / "trail", {DAY + f"{i}.json.gz": gz([record(i, AT)]) for i in range(4)})
    db = tmp_path / "caa.duckdb"
    assert collect(db, [cloudtrail.SPEC], since=SINCE, source=str(root)) == 0
    with writer(db) as con:
        with store.transaction(con):
            con.execute("INSERT INTO cloudtrail_files_rows SELECT ?, 'AWSLogs/' || ? || '/CloudTrail/us-east-1/2025/' "
                        "|| lpad(CAST(1 + i % 12 AS VARCHAR), 2, '0') || '/01/old-' || i || '.json.gz', 'etag-' || i, "
                        "1000, 1, TIMESTAMPTZ '2025-12-31 00:00:00+00', make_date(2025, 1 + i % 12, 1) "
                        "FROM range(1000000) t(i)", [str(root), ACCOUNT])
            store.bump_version(con)
    write_local(root, {DAY + "new.json.gz": gz([record(100, AT), record(101, AT)])})
    tracemalloc.start()
    try:
        assert collect(db, [cloudtrail.SPEC], since=SINCE, source=str(root)) == 0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rows(db, "SELECT count(*) FROM events") == [(6,)]
    assert rows(db, "SELECT count(*) FROM cloudtrail_files WHERE key LIKE '%/new.json.gz'") == [(1,)]
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB of Python objects"


def test_a_file_in_a_folder_that_is_no_date_is_still_found_in_the_ledger(tmp_path):
    """An S3 key's day folder is taken as it is listed (2026/02/30 is listed like any other): its ledger row has
    no day, and the next run still finds it there, beside files of real days, instead of reading it again."""
    root = write_local(tmp_path / "trail", {DAY + "0.json.gz": gz([record(0, AT)])})
    db = tmp_path / "caa.duckdb"
    assert collect(db, [cloudtrail.SPEC], since=SINCE, source=str(root)) == 0
    odd = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/02/30/odd.json.gz"
    with writer(db) as con:
        with store.transaction(con):
            con.execute("INSERT INTO cloudtrail_files_rows (source, key, etag, size_bytes, events, processed_at, day) "
                        "VALUES (?, ?, 'e1', 1, 1, TIMESTAMPTZ '2026-11-03 00:00:00+00', TRY_CAST('2026-02-30' AS DATE))",
                        [str(root), odd])
            store.bump_version(con)
        (known_key, known_etag), = rows(db, "SELECT key, etag FROM cloudtrail_files WHERE key LIKE '%/0.json.gz'")
        listed = [(TrailObject(odd, 1, "e1"), "2026-02-30"), (TrailObject(known_key, 1, known_etag), "2026-11-03"),
                  (TrailObject(DAY + "new.json.gz", 1, "e2"), "2026-11-03")]
        assert known_files(con, str(root), listed) == {(odd, "e1"), (known_key, known_etag)}
