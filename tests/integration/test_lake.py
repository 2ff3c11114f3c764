"""The events lake (core/lake.py): what a user of a large store relies on. Publishing copies the small
store file, not the events; a reader keeps the version it opened while a writer compacts; a killed writer
leaves no file counted twice; the layout is plain day-partitioned Parquet that other engines read."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import duckdb
import pytest

from analytics.filters import Filters
from analytics.queries import events_within
from collectors import cloudtrail, cloudtrail_load
from core import lake, store
from tests.fixtures.trails import TRAIL_NOW, trail_files, unique_events, write_local
from tests.helpers import collect, rows, writer

SINCE = date(2026, 10, 25)
REPO = Path(__file__).resolve().parents[2]
COLUMNS = [c.strip() for c in lake.COLUMNS.split(",")]


def collected(tmp_path: Path, n_files: int = 40, seed: int = 1) -> tuple[Path, dict]:
    files = trail_files(n_files=n_files, per_file=50, seed=seed)
    root = write_local(tmp_path / "trail", files)
    db = tmp_path / "caa.duckdb"
    assert collect(db, [cloudtrail.SPEC], since=SINCE, source=str(root)) == 0
    return db, files


def test_events_are_day_partitioned_parquet_that_other_engines_read_as_is(tmp_path):
    db, files = collected(tmp_path)
    folder = lake.lake_dir(db)
    days = sorted(p.name for p in folder.iterdir())
    assert days and all(d.startswith("day=") for d in days)
    con = duckdb.connect()  # any engine: a glob over the folder, hive partitioning from the paths
    got = con.execute(f"SELECT count(*), count(DISTINCT event_id), count(*) FILTER (WHERE "
                      f"CAST(event_at AT TIME ZONE 'UTC' AS DATE) <> day) FROM read_parquet('{folder}/day=*/*.parquet', "
                      "hive_partitioning = true)").fetchone()
    assert got == (len(unique_events(files)), len(unique_events(files)), 0)
    cols = [c for (c, *_) in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{folder}/day=*/*.parquet', "
                                         "hive_partitioning = false)").fetchall()]
    assert cols == COLUMNS  # exactly the columns of `events`, in order (the Spark extract's contract)
    # each file sorted by event_at, and its catalog row saying what it holds
    per_file = con.execute(f"""
        SELECT filename, count(*), min(event_at), max(event_at),
               bool_and(event_at >= coalesce(prev, event_at)) AS is_sorted
        FROM (SELECT filename, event_at, lag(event_at) OVER (PARTITION BY filename ORDER BY file_row_number) AS prev
              FROM read_parquet('{folder}/day=*/*.parquet', filename = true, file_row_number = true))
        GROUP BY filename""").fetchall()
    assert per_file and all(f[4] for f in per_file), per_file
    catalog = {(str(folder / f), n, lo, hi) for f, n, lo, hi in rows(
        db, "SELECT file, rows, min_at, max_at FROM lake_files WHERE dataset = 'events' AND retired_at IS NULL")}
    assert {f[:4] for f in per_file} == catalog
    # event_at (sorted) is delta-encoded, a standard encoding every engine reads, and reads back exactly
    encodings = con.execute(f"SELECT DISTINCT encodings FROM parquet_metadata('{folder}/day=*/*.parquet') "
                            "WHERE path_in_schema = 'event_at'").fetchall()
    assert encodings and all("DELTA_BINARY_PACKED" in e for (e,) in encodings), encodings
    times = {r["eventID"]: datetime.strptime(r["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
             for key, raw in files.items() if "/CloudTrail/" in key
             for r in json.loads(gzip.decompress(raw))["Records"] if r.get("eventSource") == "codeartifact.amazonaws.com"}
    stored = dict(con.execute(f"SELECT event_id, event_at FROM read_parquet('{folder}/day=*/*.parquet')").fetchall())
    assert stored == times


def test_a_day_file_of_a_few_late_events_holds_only_their_values(tmp_path):
    """The decoder gives a batch dictionary columns (source IP, user agent...), and the Parquet writer stores a
    column's dictionary whole: a day file of 3 late events of a batch with 2,000 source IPs must not carry all
    2,000 (on a real trail, every file a batch writes for the day before). Its rows read back as they were."""
    def record(i: int, at: str) -> dict:
        return {"eventSource": "codeartifact.amazonaws.com", "eventName": "ReadFromRepository", "eventID": f"e{i}",
                "eventTime": at, "awsRegion": "eu-west-1", "sourceIPAddress": f"10.0.{i // 250}.{i % 250}",
                "userAgent": f"npm/{i}", "requestParameters": {"domainName": "d", "domainOwner": "111122223333",
                                                              "repositoryName": "r", "packageFormat": "npm",
                                                              "packageName": f"p{i}", "packageVersion": "1.0.0"}}
    late = [record(i, f"2026-11-01T23:59:0{i}Z") for i in range(3)]
    day = [record(i, f"2026-11-02T10:{i % 60:02d}:00Z") for i in range(3, 2003)]
    batch = cloudtrail_load.parse_text(json.dumps({"Records": late + day}).encode())
    db = tmp_path / "caa.duckdb"
    with writer(db) as con, store.transaction(con):
        assert lake.append_events(con, batch) == {date(2026, 11, 1): 3, date(2026, 11, 2): 2000}
    (small,) = (lake.lake_dir(db) / "day=2026-11-01").glob("*.parquet")
    sizes = dict(duckdb.connect().execute(f"SELECT path_in_schema, sum(total_uncompressed_size) "
                                          f"FROM parquet_metadata('{small}') GROUP BY ALL").fetchall())
    assert max(sizes["source_ip"], sizes["user_agent"]) < 500, sizes  # with the batch's dictionary: over 20 kB
    assert rows(db, "SELECT event_id, source_ip, user_agent FROM events WHERE event_at < '2026-11-02' ORDER BY 1") == [
        ("e0", "10.0.0.0", "npm/0"), ("e1", "10.0.0.1", "npm/1"), ("e2", "10.0.0.2", "npm/2")]
    assert rows(db, "SELECT count(*), count(DISTINCT source_ip) FROM events") == [(2003, 2003)]


def test_the_snapshot_every_publish_copies_does_not_grow_with_the_events(tmp_path):
    """Two stores over the same days, one with four times the events: the lake grows with them, the store
    file (rollups, small tables) that each publish copies does not."""
    sizes = {}
    for per_file in (40, 160):
        files = trail_files(n_files=120, per_file=per_file, seed=1)
        root = write_local(tmp_path / f"trail{per_file}", files)
        db = tmp_path / f"s{per_file}" / "caa.duckdb"
        assert collect(db, [cloudtrail.SPEC], since=SINCE, source=str(root)) == 0
        assert rows(db, "SELECT count(*) FROM events") == [(len(unique_events(files)),)]
        assert rows(db, "SELECT count(*) FROM event_rows") == [(0,)]
        sizes[per_file] = (sum(p.stat().st_size for p in lake.lake_dir(db).rglob("*.parquet")),
                           store.snapshot_path(db).stat().st_size)
    (lake_small, snap_small), (lake_big, snap_big) = sizes[40], sizes[160]
    assert lake_big > 2.5 * lake_small
    assert snap_big < 1.25 * snap_small



def test_the_trail_file_ledger_keeps_only_its_open_month_in_the_store_file(tmp_path, monkeypatch):
    """The ledger holds a row for every trail file ever read. Its closed months (before the month of the newest
    events) are a Parquet file a month in the lake, so the store file every publish copies holds one month of
    it, whatever the store's age; the view still lists every file, and a re-run reads none of them again."""
    files = trail_files(n_files=60, per_file=20, start=datetime(2026, 10, 30, tzinfo=UTC), seed=3)
    root = write_local(tmp_path / "trail", files)
    db = tmp_path / "caa.duckdb"
    assert collect(db, [cloudtrail.SPEC], since=SINCE, source=str(root)) == 0
    trail = sorted(k for k in files if "/CloudTrail/" in k)
    october = [k for k in trail if "/2026/10/" in k]
    assert october and len(october) < len(trail)
    assert rows(db, "SELECT count(*), count(DISTINCT key) FROM cloudtrail_files") == [(len(trail), len(trail))]
    assert rows(db, "SELECT count(*), min(day) FROM cloudtrail_files_rows") == [(len(trail) - len(october),
                                                                                  date(2026, 11, 1))]
    [(ledger_file, in_file)] = rows(db, "SELECT file, rows FROM lake_files WHERE dataset = 'cloudtrail_files' "
                                        "AND retired_at IS NULL")
    assert ledger_file.startswith("month=2026-10/") and in_file == len(october)
    with duckdb.connect() as con:  # plain Parquet, the ledger's columns, day included
        got = con.execute(f"SELECT count(*), min(day), max(day) FROM "
                          f"read_parquet('{lake.folder_of(db, lake.LEDGER) / ledger_file}')").fetchone()
    assert got == (len(october), date(2026, 10, 30), date(2026, 10, 31))
    with duckdb.connect(str(store.snapshot_path(db)), read_only=True) as con:  # what every publish copies
        assert con.execute("SELECT count(*) FROM cloudtrail_files_rows").fetchone() == (len(trail) - len(october),)
    events = rows(db, "SELECT count(*) FROM events")
    assert events == [(len(unique_events(files)),)]
    read: list[str] = []
    real = cloudtrail_load.inflate_file
    monkeypatch.setattr(cloudtrail_load, "inflate_file", lambda path: read.append(path) or real(path))
    assert collect(db, [cloudtrail.SPEC], since=SINCE, source=str(root)) == 0
    assert read == []  # every listed file, October's included, was found in the ledger
    assert rows(db, "SELECT count(*) FROM events") == events
    assert rows(db, "SELECT count(*) FROM cloudtrail_files") == [(len(trail),)]
    late = october[-1].rsplit("/", 1)[0] + "/late.json.gz"  # a file delivered late for the closed month
    write_local(root, {late: gzip.compress(json.dumps({"Records": [json.loads(gzip.decompress(
        files[october[-1]]))["Records"][0] | {"eventID": "late-1"}]}).encode())})
    assert collect(db, [cloudtrail.SPEC], since=SINCE, source=str(root)) == 0
    assert read == [str(root / late)]
    assert rows(db, "SELECT count(*) FROM cloudtrail_files") == [(len(trail) + 1,)]
    assert rows(db, "SELECT count(*), sum(rows) FROM lake_files WHERE dataset = 'cloudtrail_files' AND retired_at IS "
                    "NULL") == [(1, len(october) + 1)]  # its second file merged into the month's one


def older_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, last: int) -> None:
    """Stores written in this test (until monkeypatch.undo()) get the migrations up to `last` only: an older
    caa's schema, with 021's name-key macros, which today's rollup SQL calls when the session publishes."""
    old = tmp_path / "schema"
    old.mkdir()
    for f in sorted(store.SCHEMA_DIR.glob("[0-9][0-9][0-9]_*.sql")):
        if int(f.name[:3]) <= last or f.name.startswith("021_"):
            shutil.copy(f, old / f.name)
    monkeypatch.setattr(store, "SCHEMA_DIR", old)


def test_a_store_from_before_the_ledger_lake_keeps_every_ledger_row_and_moves_its_closed_months(tmp_path,
                                                                                                monkeypatch):
    """Migration 019: the ledger table of an older store becomes the rows under the `cloudtrail_files` view,
    each row's day read from its key (a trail's YYYY/MM/DD folder, an extract's day=YYYY-MM-DD folder, none
    for any other key); the first publish after it moves the closed months' rows into the lake."""
    older_schema(tmp_path, monkeypatch, 18)
    db = tmp_path / "caa.duckdb"
    keys = ["AWSLogs/111122223333/CloudTrail/us-east-1/2026/10/31/a.json.gz",
            "AWSLogs/o-a1b2c3d4e5/111122223333/CloudTrail/eu-west-1/2026/11/02/b.json.gz",
            "extract/day=2026-09-30/part-0.parquet", "odd/place.json.gz"]
    with writer(db) as con:
        with store.transaction(con):
            con.execute("INSERT INTO cloudtrail_files SELECT 'src', k, 'etag', 10, 1, TIMESTAMPTZ '2026-11-03 00:00:00+00' "
                        "FROM unnest(?::VARCHAR[]) t(k)", [keys])
            con.execute(f"INSERT INTO event_rows ({lake.COLUMNS}) VALUES ('e1', TIMESTAMPTZ '2026-11-02 10:00:00+00', "
                        "'GetAuthorizationToken', '111122223333', 'us-east-1', 'acme', NULL, NULL, NULL, NULL, NULL, "
                        "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)")
            store.mark_days(con, "event_rows")
            store.bump_version(con)
    monkeypatch.undo()
    bump(db)
    assert sorted(rows(db, "SELECT key, day FROM cloudtrail_files")) == sorted(
        [(keys[0], date(2026, 10, 31)), (keys[1], date(2026, 11, 2)), (keys[2], date(2026, 9, 30)), (keys[3], None)])
    assert sorted(rows(db, "SELECT key FROM cloudtrail_files_rows")) == [(keys[1],), (keys[3],)]
    assert sorted(f for (f,) in rows(db, "SELECT file FROM lake_files WHERE dataset = 'cloudtrail_files' AND "
                                         "retired_at IS NULL"))[0].startswith("month=2026-09/")
    assert rows(db, "SELECT sum(rows) FROM lake_files WHERE dataset = 'cloudtrail_files' AND retired_at IS NULL"
                ) == [(2,)]

ASSETS_SQL = ("INSERT INTO assets_rows SELECT '111122223333', 'us-east-1', 'acme', 'repo-' || (i % 7), 'npm', NULL, "
              "'pkg-' || (i // 3), '1.0.' || (i % 3), 'pkg.tgz', 1000 + i, sha256('asset' || i) FROM range($n) t(i)")


def tables(db: Path) -> dict[str, tuple]:
    """Every table of the published snapshot and every lake dataset's view (events, rollups, ledger, assets):
    its row count and a hash of its rows."""
    con = store.open_reader(db)
    try:
        names = [n for (n,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT internal "
                                           "AND database_name = current_database()").fetchall()]
        names += [n for (n,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal AND "
                                            "database_name = current_database() AND view_name IN $names",
                                            {"names": list(lake.DATASETS)}).fetchall()]
        return {n: con.execute(f'SELECT count(*), sum(hash(t)) FROM "{n}" t').fetchone() for n in names}
    finally:
        con.close()


def block_size(path: Path) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT block_size FROM pragma_database_size()").fetchone()[0]


def copy_in_blocks(src: Path, dst: Path, block: int) -> int:
    """The rows of the store file `src` copied into a new file `dst` of `block`-byte blocks; its bytes."""
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{src}' AS s (READ_ONLY)")
        con.execute(f"ATTACH '{dst}' AS d (BLOCK_SIZE {block})")
        con.execute("COPY FROM DATABASE s TO d")
    return dst.stat().st_size


def old_blocks(db: Path) -> None:
    """Rewrite the store file as the code before 2026-12-05 created it: DuckDB's 256 KiB blocks."""
    old = db.with_name("old.duckdb")
    copy_in_blocks(db, old, 262_144)
    os.replace(old, db)
    store.publish_snapshot(db)
    assert block_size(db) == 262_144


def bump(db: Path) -> None:
    """A write session that changes something (a collection always does)."""
    with writer(db) as con:
        with store.transaction(con):
            store.bump_version(con)


def test_a_store_from_before_the_assets_lake_keeps_every_asset_and_its_file_shrinks(tmp_path, monkeypatch):
    """Migration 020: the `assets` table of an older store becomes the rows under a view of its name; the first
    publish after it writes them as the lake's assets file, and the store file (what every publish copies) is
    rewritten without their space."""
    older_schema(tmp_path, monkeypatch, 19)
    db = tmp_path / "caa.duckdb"
    with writer(db) as con:
        with store.transaction(con):
            con.execute(ASSETS_SQL.replace("assets_rows", "assets"), {"n": 60_000})
            store.bump_version(con)
    monkeypatch.undo()
    want = rows(db, "SELECT count(*), sum(hash(a)) FROM assets a")
    assert want[0][0] == 60_000
    big = store.snapshot_path(db).stat().st_size
    bump(db)
    assert rows(db, "SELECT count(*), sum(hash(a)) FROM assets a") == want
    assert rows(db, "SELECT count(*) FROM assets_rows") == [(0,)]
    assert rows(db, "SELECT rows FROM lake_files WHERE dataset = 'assets' AND retired_at IS NULL") == [(60_000,)]
    assert store.snapshot_path(db).stat().st_size < big / 3, big


def test_a_store_file_from_before_in_big_blocks_is_rewritten_once_smaller_with_every_row(tmp_path):
    """Stores created before 2026-12-05 are in DuckDB's 256 KiB blocks; the next write session rewrites the
    file once in 64 KiB blocks, so it and the snapshot every publish copies shrink; nothing is lost."""
    db, files = collected(tmp_path)
    with writer(db) as con:
        with store.transaction(con):
            con.execute(ASSETS_SQL, {"n": 20_000})
            store.bump_version(con)
    old_blocks(db)
    before, big = tables(db), store.snapshot_path(db).stat().st_size
    assert before["assets"][0] == 20_000

    bump(db)
    assert block_size(db) == store.BLOCK_SIZE
    after = tables(db)
    assert after.pop("store_meta") != before.pop("store_meta")  # the version bumped; every other table the same
    assert after == before
    assert rows(db, "SELECT count(*) FROM events") == [(len(unique_events(files)),)]
    small = store.snapshot_path(db).stat().st_size
    assert small < 0.85 * big, (small, big)
    inode = db.stat().st_ino
    bump(db)  # once: the next session does not rewrite it again
    assert db.stat().st_ino == inode


def test_a_rewrite_that_cannot_write_its_file_still_publishes_the_session(tmp_path):
    """The rewrite needs room for a second file; when it cannot write it (a full disk, something in its
    way), the session publishes what it committed, with the file as it was."""
    db, files = collected(tmp_path)
    old_blocks(db)
    (store.rewrite_path(db) / "in-the-way").mkdir(parents=True)
    with writer(db) as con:
        with store.transaction(con):
            con.execute(ASSETS_SQL, {"n": 100})
            store.bump_version(con)
    assert rows(db, "SELECT count(*) FROM assets") == [(100,)]
    assert rows(db, "SELECT count(*) FROM events") == [(len(unique_events(files)),)]
    assert block_size(db) == 262_144
    shutil.rmtree(store.rewrite_path(db))
    bump(db)  # with room again, the next session rewrites it
    assert block_size(db) == store.BLOCK_SIZE
    assert rows(db, "SELECT count(*) FROM assets") == [(100,)]



def test_rows_moved_into_the_lake_stay_there_when_the_store_file_cannot_be_rewritten(tmp_path):
    """Rows in a `_rows` table (a store from before the lake, a test's inserts) move into lake files at the
    start of the next write session, which then rewrites the store file without their space. When that
    rewrite cannot write its file, the session goes on with the file as it was: every event is counted
    once, from the lake, and the session's own work is published."""
    db, files = collected(tmp_path)
    with writer(db) as con:
        with store.transaction(con):
            con.execute(f"INSERT INTO event_rows ({lake.COLUMNS}) SELECT 'moved-' || i, TIMESTAMPTZ "
                        "'2026-11-02 00:00:00+00' + i * INTERVAL 1 MINUTE, 'ReadFromRepository', '111122223333', "
                        "'us-east-1', 'acme', '111122223333', 'npm-store', 'npm', NULL, 'moved', '1.0.0', "
                        "'moved-1.0.0.tgz', NULL, NULL, NULL, NULL, NULL, NULL FROM range(3000) t(i)")
            store.bump_version(con)
    (store.rewrite_path(db) / "in-the-way").mkdir(parents=True)
    with writer(db) as con:
        assert con.execute("SELECT count(*) FROM event_rows").fetchone() == (0,)
        with store.transaction(con):
            con.execute(ASSETS_SQL, {"n": 10})
            store.bump_version(con)
    want = len(unique_events(files)) + 3000
    assert rows(db, "SELECT count(*), count(DISTINCT event_id) FROM events") == [(want, want)]
    assert rows(db, "SELECT sum(rows) FROM lake_files WHERE dataset = 'events' AND retired_at IS NULL") == [(want,)]
    assert rows(db, "SELECT count(*) FROM assets") == [(10,)]
    assert rows(db, "SELECT sum(downloads) FROM download_days WHERE package = 'moved'") == [(3000,)]
    assert store.rewrite_path(db).is_dir()  # not ours to remove: only a rewrite's own partial file is

def test_the_inventorys_assets_live_in_the_lake_so_a_publish_does_not_copy_them(tmp_path):
    """The assets (a row per file of each version, with its SHA-256: 150,000 here) were most of the store file,
    and every publish copied them. After an inventory session they are one Parquet file of the lake, and the
    snapshot is as small as without them. A later inventory session replaces each repository's rows (the
    collector's delete and insert, after lake.thaw): readers see the new rows, again from one file, and the
    old file is retired."""
    db, files = collected(tmp_path)
    bump(db)
    bare = store.snapshot_path(db).stat().st_size
    with writer(db) as con:
        for r in range(7):
            with store.transaction(con):
                con.execute(ASSETS_SQL.replace("FROM range($n) t(i)", f"FROM range($n) t(i) WHERE i % 7 = {r}"),
                            {"n": 150_000})
                store.bump_version(con)
    assert rows(db, "SELECT count(*), count(DISTINCT sha256), sum(size_bytes) FROM assets") == [
        (150_000, 150_000, sum(1000 + i for i in range(150_000)))]
    assert rows(db, "SELECT count(*) FROM assets_rows") == [(0,)]
    live = rows(db, "SELECT file, rows FROM lake_files WHERE dataset = 'assets' AND retired_at IS NULL")
    assert len(live) == 1 and live[0][1] == 150_000
    assert (lake.folder_of(db, lake.ASSETS) / live[0][0]).stat().st_size > 4_000_000  # the hashes: 32 bytes each
    snap = store.snapshot_path(db).stat().st_size
    assert snap <= bare + 2 * store.BLOCK_SIZE, (snap, bare)  # its catalog row: nothing of the 150,000
    before = tables(db)
    with writer(db) as con:
        for r in range(7):  # each repository reloaded: its versions 1.0.0 gone, the rest the same
            with store.transaction(con):
                lake.thaw(con)
                con.execute(f"DELETE FROM assets_rows WHERE repository = 'repo-{r}' AND version = '1.0.0'")
                store.bump_version(con)
    after = tables(db)
    assert rows(db, "SELECT count(*), sum(size_bytes), count(*) FILTER (WHERE version = '1.0.0') FROM assets") == [
        (100_000, sum(1000 + i for i in range(150_000) if i % 3), 0)]
    assert after["events"] == before["events"]
    assert rows(db, "SELECT count(*) FROM assets_rows") == [(0,)]
    assert rows(db, "SELECT count(*) FILTER (WHERE retired_at IS NULL), count(*) FROM lake_files "
                    "WHERE dataset = 'assets'") == [(1, 2)]
    assert store.snapshot_path(db).stat().st_size <= bare + 2 * store.BLOCK_SIZE


def test_a_writer_killed_before_the_rewrite_replaces_the_file_leaves_the_store_as_it_was(tmp_path):
    db, files = collected(tmp_path)
    old_blocks(db)
    before = tables(db)
    code = "\n".join([
        "import os, signal, sys", "from pathlib import Path", "from core import store",
        "os.replace = lambda a, b: os.kill(os.getpid(), signal.SIGKILL)  # the rewrite's, before the publish's",
        "with store.writer(Path(sys.argv[1])) as con:",
        "    with store.transaction(con):", "        store.bump_version(con)"])
    got = subprocess.run([sys.executable, "-c", code, str(db)], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert got.returncode == -9, got.stderr[-2000:]
    assert block_size(db) == 262_144  # untouched
    bump(db)
    assert block_size(db) == store.BLOCK_SIZE
    after = tables(db)
    assert after.pop("store_meta") != before.pop("store_meta")
    assert after == before
    assert not store.rewrite_path(db).exists()


def test_a_reader_keeps_its_version_while_a_writer_compacts(tmp_path):
    db, files = collected(tmp_path)
    reader = store.open_reader(db)
    try:
        seen = reader.execute("SELECT count(*), sum(hash(event_id)) FROM events").fetchone()
        with writer(db) as con:
            assert lake.compact(con, at=1) > 0  # every day rewritten as a new file, the old ones retired
            retired = rows_of(con, "SELECT count(*) FROM lake_files WHERE retired_at IS NOT NULL")
        assert retired > 0
        assert reader.execute("SELECT count(*), sum(hash(event_id)) FROM events").fetchone() == seen
    finally:
        reader.close()
    assert rows(db, "SELECT count(*), sum(hash(event_id)) FROM events") == [seen]  # the new version, same events
    with writer(db) as con:  # past the grace the retired files go, and nothing else
        assert lake.sweep(con, grace=timedelta(0)) == retired
    assert rows(db, "SELECT count(*), sum(hash(event_id)) FROM events") == [seen]


def rows_of(con, sql: str) -> int:
    return con.execute(sql).fetchone()[0]


def test_a_file_a_killed_writer_left_behind_is_swept_and_never_counted(tmp_path):
    db, files = collected(tmp_path)
    day = sorted(lake.lake_dir(db).iterdir())[0]
    orphan = day / "0000-orphan.parquet"  # written, but its catalog row never committed
    duckdb.connect().execute(f"COPY (SELECT * FROM read_parquet('{next(day.glob('*.parquet'))}')) TO '{orphan}'")
    assert rows(db, "SELECT count(*) FROM events") == [(len(unique_events(files)),)]
    with writer(db):
        pass
    assert not orphan.exists()


def test_a_copied_store_reads_its_own_lake(tmp_path):
    db, files = collected(tmp_path / "a")
    copy = store.copy_store(db, tmp_path / "b" / "caa.duckdb")
    with writer(copy):
        pass
    os.rename(lake.lake_dir(db), tmp_path / "gone")  # the original's files are not what the copy reads
    assert rows(copy, "SELECT count(*) FROM events") == [(len(unique_events(files)),)]


def test_many_small_increments_are_compacted_into_one_file_a_day(tmp_path):
    files = trail_files(n_files=60, per_file=20, seed=4)
    keys = sorted(files)
    root = tmp_path / "trail"
    db = tmp_path / "caa.duckdb"
    for i in range(0, len(keys), 5):  # twelve small collections, as a 30-minute schedule makes them
        write_local(root, {k: files[k] for k in keys[: i + 5]})
        assert collect(db, [cloudtrail.SPEC], since=SINCE, source=str(root), now=TRAIL_NOW) == 0
    per_day = rows(db, "SELECT day, count(*) FROM lake_files WHERE dataset = 'events' AND retired_at IS NULL GROUP BY day")
    assert per_day and max(n for _, n in per_day) < lake.COMPACT_AT
    assert rows(db, "SELECT count(*), count(DISTINCT event_id) FROM events") == [
        (len(unique_events(files)), len(unique_events(files)))]
    # the count the rollups' check reads from the catalog (no file opened) is the events' count, after
    # compactions retired files and replaced them
    with store.open_reader(db) as con:
        assert lake.count(con) == len(unique_events(files))


@pytest.mark.parametrize("reader_kind", ["snapshot", "sql"])
def test_a_locked_down_reader_reads_the_lake_and_nothing_else(tmp_path, reader_kind):
    db, files = collected(tmp_path)
    con = store.open_reader(db)
    try:
        assert con.execute("SELECT count(*) FROM events").fetchone()[0] == len(unique_events(files))
        with pytest.raises(duckdb.Error, match="disabled|Permission"):
            con.execute("SELECT * FROM read_csv('/etc/passwd')").fetchall()
    finally:
        con.close()


def _add_events(con, first: str, hours: int, prefix: str, event_name: str = "ReadFromRepository") -> None:
    """`hours` downloads (or other calls) an hour apart from `first`, committed with their days marked (as a
    loader does)."""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE gen AS SELECT '{prefix}' || i AS event_id,
        TIMESTAMPTZ '{first}' + i * INTERVAL 1 HOUR AS event_at, '{event_name}' AS event_name,
        '111122223333' AS account_id, 'us-east-1' AS region, 'acme' AS domain, '111122223333' AS domain_owner,
        'npm-store' AS repository, 'npm' AS format, NULL::VARCHAR AS namespace, 'p' || (i % 3) AS package,
        '1.0.0' AS version, 'p.tgz' AS asset, 'arn:aws:iam::111122223333:user/ci' AS principal_arn,
        'IAMUser' AS principal_type, '10.0.0.1' AS source_ip, 'npm/10' AS user_agent, NULL::VARCHAR AS error_code,
        NULL::VARCHAR AS request_uri FROM range({hours}) t(i)""")
    with store.transaction(con):
        lake.append(con, "gen")
        store.mark_days(con, "gen")
        store.bump_version(con)


def test_rollups_are_lake_files_a_closed_month_one_file_and_a_reader_keeps_its_version(tmp_path, rollup_connections):
    db = tmp_path / "caa.duckdb"
    with writer(db) as con:
        _add_events(con, "2026-10-20 00:00:00+00", 24 * 20, "a")  # Oct 20 .. Nov 8
    per_month = rows(db, "SELECT dataset, strftime(day, '%Y-%m') AS m, count(*) FROM lake_files WHERE dataset <> "
                         "'events' AND retired_at IS NULL GROUP BY ALL ORDER BY ALL")
    have_rows = [ds for ds in lake.ROLLUPS if ds not in ("auth_hours", "download_months")]  # no token call, no error
    assert {(ds, m): n for ds, m, n in per_month} == {  # a file a day; download_months: a file a month
        **{(ds, "2026-10"): 1 for ds in have_rows}, **{(ds, "2026-11"): 8 for ds in have_rows},
        ("download_months", "2026-10"): 1, ("download_months", "2026-11"): 1}
    # October, closed before the publish, was written as one file a table: never as day files that compaction
    # rewrites (a backfill of a year wrote ~2,400 small files, then merged them)
    assert rows(db, "SELECT count(*) FROM lake_files WHERE dataset <> 'events' AND day < DATE '2026-11-01'") == [
        (len(have_rows) + 1,)]
    assert rows(db, "SELECT (SELECT sum(events) FROM event_days), (SELECT sum(downloads) FROM download_days)") == [
        (480, 480)]
    assert (lake.folders(db)[1] / "download_days").is_dir()  # <stem>.rollups/<table>/
    assert store.snapshot_path(db).stat().st_size < 2 << 20  # the copy each publish makes: small tables only

    reader = store.open_reader(db)
    try:
        with writer(db) as con:  # late events on an October day and new ones in November: files replaced
            _add_events(con, "2026-10-25 12:30:00+00", 5, "b")
            _add_events(con, "2026-11-08 00:30:00+00", 30, "c")
        assert reader.execute("SELECT sum(events) FROM event_days").fetchone() == (480,)
    finally:
        reader.close()
    assert rows(db, "SELECT (SELECT sum(events) FROM event_days), (SELECT sum(downloads) FROM download_days), "
                    "(SELECT sum(downloads) FROM event_days WHERE day = DATE '2026-10-25')") == [(515, 515, 29)]
    assert rows(db, "SELECT count(*) FROM lake_files WHERE dataset = 'download_days' AND retired_at IS NULL AND "
                    "day < DATE '2026-11-01'") == [(1,)]  # the month rewritten as one file again
    assert rows(db, "SELECT count(*) FROM lake_files WHERE dataset = 'download_days' AND day < DATE '2026-11-01'") == [
        (2,)]  # directly: the first month file, retired, and its replacement


def test_a_month_closed_by_newer_events_is_one_file_even_in_a_rollup_without_newer_rows(tmp_path, rollup_connections):
    """Compaction and the refresh agree on which months are closed: those before the month of the newest
    events (lake.open_month). Compaction used to ask each rollup for its own newest day, so download_days'
    October stayed a file a day for as long as November brought token calls but no download."""
    db = tmp_path / "caa.duckdb"
    october = "SELECT count(*) FROM lake_files WHERE dataset = $ds AND retired_at IS NULL AND day < DATE '2026-11-01'"
    with writer(db) as con:
        _add_events(con, "2026-10-20 00:00:00+00", 24 * 5, "a")  # Oct 20 .. 24, October still open
    assert rows(db, october.replace("$ds", "'download_days'")) == [(5,)]
    with writer(db) as con:
        _add_events(con, "2026-11-02 00:00:00+00", 10, "t", event_name="GetAuthorizationToken")
    for ds in ("event_days", "download_days", "download_principal_days", "download_ip_days"):
        assert rows(db, october.replace("$ds", f"'{ds}'")) == [(1,)], ds
    assert rows(db, "SELECT (SELECT sum(events) FROM event_days), (SELECT sum(downloads) FROM download_days)") == [
        (130, 120)]


def test_under_a_filter_a_query_of_a_few_hours_opens_only_their_files(tmp_path):
    """The auth-spike details read a few hours and the same hours of earlier weeks: with a domain filter on
    (the dashboard's filtered view), they open the files of those days only, not every day of the filter's
    range, see the filter's rows, and the filter reads all its days again afterwards."""
    db, _ = collected(tmp_path)
    con = store.open_reader(db)
    try:
        domain, day = con.execute("SELECT domain, CAST(event_at AT TIME ZONE 'UTC' AS DATE) FROM events "
                                  "GROUP BY ALL ORDER BY count(*) DESC LIMIT 1").fetchone()
        lo = datetime.combine(day, time(6), UTC)
        span = [(lo, lo + timedelta(hours=5))]
        where = "WHERE event_at >= $lo AND event_at < $hi"
        want = con.execute(f"SELECT count(*), sum(hash(event_id)) FROM events {where} AND domain = $d",
                           {"lo": lo, "hi": span[0][1], "d": domain}).fetchone()
        Filters(domains=(domain,)).apply(con)
        everything = con.execute("SELECT count(*) FROM events").fetchone()[0]
        other = [d for d in lake.lake_dir(db).iterdir() if d.name != f"day={day}"]
        for d in other:  # a file the query opened would now fail it
            d.rename(d.with_name(f"away-{d.name}"))
        with events_within(con, span):
            got = con.execute(f"SELECT count(*), sum(hash(event_id)) FROM events {where}",
                              {"lo": lo, "hi": span[0][1]}).fetchone()
            for d in other:  # back before the block restores the filter's view (binding it opens them)
                d.with_name(f"away-{d.name}").rename(d)
        assert got == want and want[0] > 0
        assert con.execute("SELECT count(*) FROM events").fetchone()[0] == everything
    finally:
        con.close()


def test_a_window_of_many_spans_reads_the_events_of_those_spans_and_no_other_day(tmp_path):
    """The auth-spike details pass thousands of (lo, hi) spans in one window: its rows are exactly the
    events inside some span (the files of other days never opened), as with one window per span."""
    db, _ = collected(tmp_path, n_files=24 * 6)  # six days of hourly files
    con = store.open_reader(db)
    try:
        days = [d for (d,) in con.execute("SELECT DISTINCT CAST(event_at AT TIME ZONE 'UTC' AS DATE) FROM events "
                                          "ORDER BY 1").fetchall()]
        picked = days[::2]  # every other day: the ones between must not be read
        assert len(picked) >= 2 and len(days) > len(picked)
        spans = [(datetime.combine(d, time(h), UTC), datetime.combine(d, time(h + 3), UTC))
                 for d in picked for h in (1, 9, 17)]
        inside = " OR ".join(f"(event_at >= TIMESTAMPTZ '{lo.isoformat()}' AND event_at < TIMESTAMPTZ "
                             f"'{hi.isoformat()}')" for lo, hi in spans)
        want = con.execute(f"SELECT count(*), sum(hash(event_id)) FROM events WHERE {inside}").fetchone()
        sql = lake.window_sql(con, *spans)
        assert sorted({f"day={d}" for d in picked}) == sorted({Path(f).parent.name for f in lake.files_between(
            con, (spans[0][0], spans[-1][1])) if f in sql})
        assert con.execute(f"SELECT count(*), sum(hash(event_id)) FROM ({sql}) WHERE {inside}").fetchone() == want
        assert want[0] > 0
    finally:
        con.close()


def test_an_in_memory_store_removes_its_lake_folder_when_the_process_exits(tmp_path):
    """In-memory stores (tests, one-off scripts) keep their lake in a temporary folder: it goes with the
    process, as the store does (each test run left dozens in /tmp before)."""
    code = ("import duckdb; from core import lake, store; c = duckdb.connect(); store.migrate(c); "
            "root = lake.root_of(c); root.mkdir(parents=True); (root / 'x.parquet').write_bytes(b'1'); "
            "print(root)")
    got = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "TMPDIR": str(tmp_path)},
                         capture_output=True, text=True, timeout=120)
    assert got.returncode == 0, got.stderr[-2000:]
    assert Path(got.stdout.strip()).is_relative_to(tmp_path)  # it was made there
    assert not list(tmp_path.glob("caa-memory-lake-*"))
