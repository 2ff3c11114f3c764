"""The cloudtrail collector over moto S3 and local trail trees: dedupe, ledger, bad files, kills."""

from __future__ import annotations

import gzip
from datetime import date

import boto3
import pytest
from moto import mock_aws

from collectors import cloudtrail
from core.aws import Clients
from tests.fixtures.trails import ACCOUNT, record, trail_files, unique_events, write_local
from tests.helpers import collect, counting_gets, make_settings, rows, table

SINCE = date(2026, 10, 25)


@pytest.fixture
def s3_trail():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="org-trail")
        files = trail_files(n_files=30, per_file=40)
        for key, raw in files.items():
            s3.put_object(Bucket="org-trail", Key=f"cloudtrail/{key}", Body=raw)
        yield s3, files


def test_s3_trail_lands_every_codeartifact_event_once(tmp_path, s3_trail, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3, files = s3_trail
    db = tmp_path / "caa.duckdb"
    settings = make_settings(db=db)
    code = collect(db, [cloudtrail.SPEC], settings, clients=Clients(settings), since=SINCE,
                   source="s3://org-trail/cloudtrail")
    assert code == 0
    expected = unique_events(files)
    got = rows(db, "SELECT event_id FROM events")
    assert sorted(r[0] for r in got) == sorted(expected)  # every event, once, digest and kms skipped
    assert rows(db, "SELECT count(*) FROM downloads") == [(len(expected),)]
    assert rows(db, "SELECT count(*) FROM cloudtrail_files") == [(30,)]


@pytest.mark.parametrize(("inside", "accounts"), [
    ("AWSLogs/", 1), ("AWSLogs/o-a1b2c3d4e5", 1), ("AWSLogs/o-a1b2c3d4e5/111122223333/CloudTrail/us-east-1/", 1),
    ("AWSLogs/o-a1b2c3d4e5/999999999999/", 0)])
def test_a_source_that_names_a_folder_inside_awslogs_reads_that_part_of_the_trail(
        tmp_path, s3_trail, monkeypatch, capsys, inside, accounts):
    """`s3://bucket/AWSLogs/` is how many people write a trail bucket; it (and an account's or a region's
    folder) listed AWSLogs/AWSLogs/... and read nothing, without a word."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3, files = s3_trail
    db = tmp_path / "caa.duckdb"
    settings = make_settings(db=db)
    assert collect(db, [cloudtrail.SPEC], settings, clients=Clients(settings), since=SINCE,
                   source=f"s3://org-trail/cloudtrail/{inside}") == 0
    want = unique_events(files) if accounts else set()
    assert sorted(r[0] for r in rows(db, "SELECT event_id FROM events")) == sorted(want)
    assert "no AWSLogs/ folder" not in capsys.readouterr().out


def test_a_source_above_the_folder_that_holds_awslogs_says_where_it_is(tmp_path, capsys):
    files = trail_files(n_files=6, per_file=10)
    write_local(tmp_path / "copy" / "trail", files)
    db = tmp_path / "caa.duckdb"
    assert collect(db, [cloudtrail.SPEC], since=SINCE, source=str(tmp_path / "copy")) == 0
    out = capsys.readouterr().out
    assert f"note: no AWSLogs/ folder in {tmp_path / 'copy'} (there is one in {tmp_path / 'copy' / 'trail'})" in out
    assert rows(db, "SELECT count(*) FROM events") == [(0,)]
    region = tmp_path / "copy" / "trail" / "AWSLogs" / "o-a1b2c3d4e5" / ACCOUNT / "CloudTrail" / "us-east-1"
    assert collect(db, [cloudtrail.SPEC], since=SINCE, source=str(region)) == 0  # a local region folder
    assert sorted(r[0] for r in rows(db, "SELECT event_id FROM events")) == sorted(unique_events(files))


def test_known_s3_objects_are_not_fetched_again(tmp_path, s3_trail, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    db = tmp_path / "caa.duckdb"
    settings = make_settings(db=db)
    collect(db, [cloudtrail.SPEC], settings, clients=Clients(settings), since=SINCE, source="s3://org-trail/cloudtrail")
    clients, gets = counting_gets(settings)
    before = table(db, "events")
    assert collect(db, [cloudtrail.SPEC], settings, clients=clients, since=SINCE,
                   source="s3://org-trail/cloudtrail") == 0
    assert gets == []
    assert table(db, "events") == before


def test_object_deleted_between_list_and_get_is_skipped_and_the_rest_lands(tmp_path, s3_trail, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3, files = s3_trail
    victim = sorted(k for k in files if "/CloudTrail/" in k)[3]
    real_list = cloudtrail.list_trail_files

    def list_then_delete(tree, start, end, *within):
        listed = list(real_list(tree, start, end, *within))
        s3.delete_object(Bucket="org-trail", Key=f"cloudtrail/{victim}")
        return iter(listed)

    monkeypatch.setattr(cloudtrail, "list_trail_files", list_then_delete)
    db = tmp_path / "caa.duckdb"
    settings = make_settings(db=db)
    assert collect(db, [cloudtrail.SPEC], settings, clients=Clients(settings), since=SINCE,
                   source="s3://org-trail/cloudtrail") == 0
    run = rows(db, "SELECT status, skipped, skipped_items FROM collector_runs")
    assert run[0][0] == "partial" and run[0][1] == 1 and victim in run[0][2][0]
    others = {k: v for k, v in files.items() if k != victim}
    only_in_victim = unique_events(files) - unique_events(others)
    assert rows(db, "SELECT count(*) FROM events") == [(len(unique_events(files)) - len(only_in_victim),)]


def test_corrupt_files_are_skipped_reported_and_retried(tmp_path, capsys):
    files = trail_files(n_files=12, per_file=20)
    keys = sorted(k for k in files if "/CloudTrail/" in k)
    truncated, not_list, bad_json = keys[2], keys[5], keys[8]
    good_files = {k: v for k, v in files.items() if k not in (truncated, not_list, bad_json)}
    files[truncated] = files[truncated][: len(files[truncated]) // 2]
    files[not_list] = gzip.compress(b'{"Records": {"eventID": "x"}}')
    files[bad_json] = gzip.compress(b'{"Records": [{"eventID": "x",')
    root = write_local(tmp_path / "trail", files)
    db = tmp_path / "caa.duckdb"
    assert collect(db, [cloudtrail.SPEC], since=SINCE, source=str(root)) == 0
    err = capsys.readouterr().err
    for key in (truncated, not_list, bad_json):
        assert key in err
    assert "not a complete gzip file" in err and "Records is not a list" in err
    assert sorted(r[0] for r in rows(db, "SELECT event_id FROM events")) == sorted(unique_events(good_files))
    assert rows(db, "SELECT skipped FROM collector_runs") == [(3,)]
    # The bad files are not in the ledger: a repaired file lands on the next run.
    (root / truncated).write_bytes(trail_files(n_files=12, per_file=20)[truncated])
    assert collect(db, [cloudtrail.SPEC], since=SINCE, source=str(root)) == 0
    assert rows(db, "SELECT skipped FROM collector_runs ORDER BY run_id") == [(3,), (2,)]
    expected = unique_events({k: v for k, v in good_files.items()} | {truncated: trail_files(12, 20)[truncated]})
    assert sorted(r[0] for r in rows(db, "SELECT event_id FROM events")) == sorted(expected)


def test_trail_files_a_copy_left_uncompressed_land_like_the_gzipped_ones(tmp_path, capsys):
    """A local copy whose files some tool gunzipped (*.json) was passed over: rows=0, skipped=0."""
    files = trail_files(n_files=12, per_file=20)
    plain = {k.removesuffix(".gz") if i % 2 and "/CloudTrail/" in k else k: gzip.decompress(v) if i % 2 and
             "/CloudTrail/" in k else v for i, (k, v) in enumerate(sorted(files.items()))}
    assert sum(k.endswith(".json") for k in plain) >= 5
    root = write_local(tmp_path / "trail", plain)
    db = tmp_path / "caa.duckdb"
    assert collect(db, [cloudtrail.SPEC], since=SINCE, source=str(root)) == 0
    assert sorted(r[0] for r in rows(db, "SELECT event_id FROM events")) == sorted(unique_events(files))
    assert rows(db, "SELECT skipped FROM collector_runs") == [(0,)]
    assert collect(db, [cloudtrail.SPEC], since=SINCE, source=str(root)) == 0  # the ledger knows them
    assert rows(db, "SELECT sum(rows) FROM collector_runs") == [(len(unique_events(files)),)]


def test_a_symlink_loop_is_skipped_and_reported_and_every_good_file_lands(tmp_path, capsys):
    files = trail_files(n_files=8, per_file=20)
    root = write_local(tmp_path / "trail", files)
    day = next((root / k).parent for k in sorted(files) if "/CloudTrail/" in k)
    (day / "loop").symlink_to("loop")  # loop -> loop: scandir's is_file() raises ELOOP
    (day / "loop.json.gz").symlink_to("loop.json.gz")
    (day.parents[2] / "9999").symlink_to("9999")  # a year folder that loops on itself
    db = tmp_path / "caa.duckdb"
    assert collect(db, [cloudtrail.SPEC], since=SINCE, source=str(root)) == 0
    assert sorted(r[0] for r in rows(db, "SELECT event_id FROM events")) == sorted(unique_events(files))
    (status, skipped, items), = rows(db, "SELECT status, skipped, skipped_items FROM collector_runs")
    assert status == "partial" and skipped == 3, items
    assert all("symbolic link loop" in i for i in items)
    err = capsys.readouterr().err
    assert "loop.json.gz" in err and "Traceback" not in err and "Too many levels" in err


def test_invalid_utf8_is_skipped_with_where_in_the_trail_file_and_no_scratch_path(tmp_path, capsys):
    files = trail_files(n_files=4, per_file=5)
    bad = sorted(k for k in files if "/CloudTrail/" in k)[1]
    text = gzip.decompress(files[bad]).replace(b'"eventName"', b'"event\xff\xfeName"', 1)
    files[bad] = gzip.compress(text)
    root = write_local(tmp_path / "trail", files)
    assert collect(tmp_path / "caa.duckdb", [cloudtrail.SPEC], since=SINCE, source=str(root)) == 0
    line = next(x for x in capsys.readouterr().err.splitlines() if bad in x)
    at = text.index(b"\xff")  # the first byte that is not UTF-8
    assert line.endswith(f"not valid CloudTrail JSON at byte {at:,} of the uncompressed file: "
                         "invalid UTF-8 in a string"), line
    assert "/dev/shm" not in line and "caa-json-" not in line and "/tmp/" not in line.split(bad)[1]


def test_a_first_run_names_the_older_files_it_did_not_read_and_the_command_that_reads_them(tmp_path, capsys):
    from datetime import UTC, datetime

    from core.clock import pinned_clock

    files = trail_files(n_files=30, per_file=40)  # 1-2 November 2026
    root = write_local(tmp_path / "trail", files)
    db = tmp_path / "caa.duckdb"
    now = datetime(2027, 1, 15, 9, tzinfo=UTC)  # backfill_days = 35: the window starts 2026-12-11
    with pinned_clock(now):
        assert collect(db, [cloudtrail.SPEC], source=str(root), now=now) == 0
        out = capsys.readouterr().out
        hint = next(line for line in out.splitlines() if line.startswith("backfill: "))
        assert "30 older trail files" in hint and "2 day folders from 2026-11-01 to 2026-11-02" in hint, hint
        assert "cloudtrail.backfill_days = 35" in hint and "events/s" in hint
        assert rows(db, "SELECT count(*) FROM events") == [(0,)]
        command = hint.split("To read them: ", 1)[1]
        assert command == f"caa collect cloudtrail --source {root} --since 2026-11-01"
        assert collect(db, [cloudtrail.SPEC], source=str(root), since=date(2026, 11, 1), now=now) == 0  # as it says
        assert sorted(r[0] for r in rows(db, "SELECT event_id FROM events")) == sorted(unique_events(files))
        capsys.readouterr()
        assert collect(db, [cloudtrail.SPEC], source=str(root), now=now) == 0  # not a first run any more: no hint
        assert "backfill:" not in capsys.readouterr().out


def test_same_window_twice_leaves_identical_tables(tmp_path):
    root = write_local(tmp_path / "trail", trail_files(n_files=20, per_file=30))
    db = tmp_path / "caa.duckdb"
    collect(db, [cloudtrail.SPEC], since=SINCE, source=str(root))
    first = {t: table(db, t, exclude=("processed_at", "updated_at")) for t in ("events", "cloudtrail_files", "watermarks")}
    # A second run over the same files, and a forced re-read of every file (ledger cleared).
    collect(db, [cloudtrail.SPEC], since=SINCE, source=str(root))
    assert {t: table(db, t, exclude=("processed_at", "updated_at")) for t in first} == first
    import duckdb

    con = duckdb.connect(str(db))
    con.execute("DELETE FROM cloudtrail_files_rows")  # (the fixture's month is open: no ledger rows are in files)
    assert con.execute("SELECT count(*) FROM cloudtrail_files").fetchone() == (0,)
    con.close()
    collect(db, [cloudtrail.SPEC], since=SINCE, source=str(root))
    assert table(db, "events") == first["events"]


def test_same_event_in_two_accounts_trails_counts_once(tmp_path):
    from datetime import UTC, datetime

    at = datetime(2026, 11, 3, 12, tzinfo=UTC)
    shared = record(1, at)
    a = dict(shared, recipientAccountId="111122223333")
    b = dict(shared, recipientAccountId="444455556666")
    files = {
        f"AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/03/a_{1:016d}.json.gz":
            gzip.compress(__import__("json").dumps({"Records": [a, record(2, at)]}).encode()),
        f"AWSLogs/444455556666/CloudTrail/us-east-1/2026/11/03/b_{2:016d}.json.gz":
            gzip.compress(__import__("json").dumps({"Records": [b]}).encode()),
    }
    root = write_local(tmp_path / "trail", files)
    db = tmp_path / "caa.duckdb"
    collect(db, [cloudtrail.SPEC], since=SINCE, source=str(root))
    assert rows(db, "SELECT count(*), count(DISTINCT event_id) FROM events") == [(2, 2)]


# Kill -9 mid-collection: tests/integration/test_reliability.py kills the collectors at 20 seeded
# statements (deterministic, unlike a timed kill) and compares every table with an uninterrupted run.


def test_s3_listing_is_one_flat_listing_per_region_and_matches_the_local_walk(tmp_path):
    """S3 lists a region's prefix once from the start day (not one request per day folder), and picks
    exactly the files the local walk picks for the same window, boundary days included."""
    files = trail_files(n_files=24 * 6, per_file=1)  # one file an hour over six days
    local = cloudtrail.LocalTree(write_local(tmp_path / "trail", files))
    start, end = date(2026, 11, 2), date(2026, 11, 4)
    want = sorted(o.key for o in cloudtrail.list_trail_files(local, start, end))
    assert {cloudtrail._day_of(k) for k in want} == {"2026-11-02", "2026-11-03", "2026-11-04"}
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="org-trail")
        for key, raw in files.items():
            s3.put_object(Bucket="org-trail", Key=f"cloudtrail/{key}", Body=raw)
        calls = []
        s3.meta.events.register("before-call.s3.ListObjectsV2", lambda params, **kw: calls.append(params["query_string"]))
        got = sorted(o.key for o in cloudtrail.list_trail_files(
            cloudtrail.S3Tree(s3, "org-trail", "cloudtrail/"), start, end))
    assert got == want
    flat = [c for c in calls if "delimiter" not in c]
    assert len(flat) == 1  # one account, one region: one listing for the three days
    assert len(calls) <= 4  # AWSLogs/, the org folder, CloudTrail/ regions, then the flat listing


def test_a_source_bucket_that_does_not_exist_is_named_with_the_fix(tmp_path, s3_trail, monkeypatch, capsys):
    """A typo in the bucket of a source: the line names the bucket and the source to correct, not a generic
    "check the resource names"; the store keeps the run as failed."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    db = tmp_path / "caa.duckdb"
    settings = make_settings(db=db)
    assert collect(db, [cloudtrail.SPEC], settings, clients=Clients(settings), since=SINCE,
                   source="s3://org-trial/cloudtrail") == 1
    (line,) = [ln for ln in capsys.readouterr().err.splitlines() if "failed cloudtrail" in ln]
    assert "the S3 bucket org-trial does not exist" in line and "--source" in line, line
    assert rows(db, "SELECT status FROM collector_runs") == [("failed",)]
