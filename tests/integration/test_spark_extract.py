"""The Spark extract (spark/extract.py, pyspark in local mode) and its ingest
(collectors/cloudtrail_parquet.py): on the same trail, Spark-then-`caa collect` equals the direct collector."""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import boto3
import duckdb
import pytest
from moto import mock_aws

from collectors import cloudtrail, cloudtrail_parquet
from collectors.cloudtrail_load import EVENT_COLUMNS, RECORD_FIELDS, normalize_text
from core import store
from core.aws import Clients
from tests.fixtures.trails import ACCOUNT, record, trail_files, write_local
from tests.helpers import collect, counting_gets, make_settings, rows, table

pytestmark = [pytest.mark.skipif(shutil.which("java") is None,
                                 reason="pyspark needs Java 17 (`make test` installs openjdk-17-jre-headless)"),
              pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")]

from spark import extract as sx  # noqa: E402 - after the skip: pyspark is imported with it

NOW = datetime(2026, 11, 20, tzinfo=UTC)
SINCE = date(2026, 10, 25)
OTHER = "444455556666"
GOLDEN = json.loads((Path(__file__).parents[1] / "fixtures" / "cloudtrail_golden.json").read_text())
COLUMNS = [c.strip() for c in EVENT_COLUMNS.split(",")]

# eventTime spellings both sides read alike: accepted ones give the same instant, the rest are rejected.
TIMES = ["2026-11-03T09:00:00Z", "2026-11-03T09:00:00.123456789Z", "2026-11-03T09:00:00.5", "2026-11-03 09:00:00",
         "2026-11-03\t09:00:00", "2026-11-03T09:00:00+02:00", "2026-11-03T09:00+0530", "2026-11-03T09:00:00-03",
         "2026-11-03T09:00:00+99:99", "2026-11-03T09:00:00.+01:00", "2026-11-03", " 2026-11-03", "2026-11-03 ",
         "2026-11-03T24:00:00Z", "2026-11-03T24:00:00.1Z", "2026-11-3T9:5:6Z", " 2026-11-03T09:00:00Z\n",
         "2026-11-03T09:00:00 UTC", "2026-11-03T09:00:00 utc", "2026-11-03T09:00:00  UTC", "2026-11-03T09:00Z",
         "2026-11-03T09:00:00 Z", "2026-11-03T09:00:00 +02:00", "2026-02-29T00:00:00Z", "2024-02-29T00:00:00Z",
         "2026-13-01T00:00:00Z", "2026-11-03T23:60:00Z", "2026-11-03T09:00:60Z", "2026-11-03t09:00:00z",
         "2026-11", "2026", "20261103T090000Z", "1545012346", "not a time", "", "2026/11/03 09:00:00",
         "2026 11 03", "2026\\11\\03T09:00:00Z", "2026-11/03", "2026.11.03",
         "1969-12-31T23:59:59.999999Z", "2026-11-03T09:00:00+2:00", "2026-11-03T09:00:00+020", "2026-11-03T"]


def edge_records() -> list[dict]:
    """Records that each exercise one rule of NORMALIZE_SQL, with their own eventIDs."""
    at = datetime(2026, 11, 3, 9, tzinfo=UTC)
    out: list[dict] = []

    def add(name: str, **over) -> dict:
        r = record(0, at, **over)
        r["eventID"] = f"edge-{name}"
        out.append(r)
        return r

    def params(name: str, **p) -> dict:
        r = add(name)
        r["requestParameters"].update(p)
        return r

    for i, t in enumerate(TIMES):
        add(f"time-{i:02d}", eventTime=t)
    add("time-number", eventTime=1545012346)
    add("time-null", eventTime=None)
    add("scoped-in-name", package="@acme/ui", version="1.0.0")
    params("scope-namespace", packageNamespace="@acme", packageName="ui")
    params("scope-double-at", packageNamespace="@@x")
    params("scope-empty", packageNamespace="")
    for i, name in enumerate(["@/x", "@x/", "@a\nb/c", "@ünï/pkg", "a/@b", "@@a/b/c", "@ü", "=cmd|'/c calc'!A1"]):
        params(f"name-{i}", packageName=name)
    params("api-keys", domainName=None, repositoryName=None, packageFormat=None, packageName=None, domain="d2",
           repository="r2", format="pypi", namespace="ns", package="p2")
    params("both-spellings", domain="other", repository="other", package="other")
    params("explicit-asset", asset="custom.bin")
    params("no-version", packageVersion=None)
    for i, uri in enumerate(["/maven/r/g/a/1.0/maven-metadata.xml", "/maven/r/g/a/1.0/maven-metadata.xml.sha1",
                             "/maven/r/g/a/1.0/MAVEN-METADATA.XML", "/npm/r/lodash/4.17.20", "/npm/r/lodash/",
                             "lodash-4.17.20.tgz", "", "/a/b\nc", "/a/b/\n"]):
        add(f"uri-{i}")["additionalEventData"] = {"requestUri": uri}
    add("uri-null")["additionalEventData"] = {"requestUri": None}
    add("uri-missing").pop("additionalEventData")
    add("uri-number")["additionalEventData"] = {"requestUri": 42}
    add("error", errorCode="AccessDenied")
    add("no-owner")["requestParameters"].pop("domainOwner")
    add("empty-id")["eventID"] = ""
    add("no-id").pop("eventID")
    add("null-id")["eventID"] = None
    add("no-name").pop("eventName")
    add("identity-not-object", userIdentity="not-an-object", brandNewField={"x": 1})
    add("params-not-object", requestParameters="oops")
    params("version-number", packageVersion=1.10)
    params("name-object", packageName={"b": 1, "a": [1, 2.5, "é"]})
    add("aed-array", additionalEventData=[1, 2])
    add("source-number", eventSource=5)
    add("other-service", eventSource="s3.amazonaws.com")
    return out


def _gz(records: list) -> bytes:
    return gzip.compress(json.dumps({"Records": records}).encode())


def _key(account: str, day: str, name: str) -> str:
    return f"AWSLogs/o-a1b2c3d4e5/{account}/CloudTrail/us-east-1/{day}/{account}_CloudTrail_us-east-1_{name}.json.gz"


def build_trail(root: Path) -> Path:
    """trail_files (re-delivered duplicates, a digest file, KMS records) plus every edge case, the golden
    records, duplicates across files, days and accounts, an Insight file and two unreadable files."""
    files = trail_files(n_files=30, per_file=40)
    edges = edge_records()
    golden = [c["record"] for c in GOLDEN["cases"]] + [GOLDEN["not_codeartifact"]]
    xacct = record(7, datetime(2026, 11, 3, 10, tzinfo=UTC))  # the same event in two accounts' trails,
    xacct["eventID"] = "edge-cross-account"                     # without domainOwner: account_id differs
    xacct["requestParameters"].pop("domainOwner")
    files[_key(ACCOUNT, "2026/11/03", "20261103T1000Z_edges00000000001")] = _gz(
        [*edges[: len(edges) // 2], "just a string", None, xacct])
    files[_key(ACCOUNT, "2026/11/03", "20261103T1100Z_edges00000000002")] = _gz(
        [*edges[len(edges) // 2:], *golden, edges[0]])
    files[_key(OTHER, "2026/11/03", "20261103T1000Z_edges00000000003")] = _gz(
        [dict(xacct, recipientAccountId=OTHER), edges[1]])
    files[_key(ACCOUNT, "2026/11/02", "20261102T2300Z_lateday000000004")] = _gz([edges[2], golden[0]])
    files[_key(ACCOUNT, "2026/11/03", "20261103T1200Z_truncated0000005")] = _gz(edges[:3])[:60]
    files[_key(ACCOUNT, "2026/11/03", "20261103T1300Z_notalist00000006")] = gzip.compress(b'{"Records": {"x": 1}}')
    files[f"AWSLogs/o-a1b2c3d4e5/{ACCOUNT}/CloudTrail-Insight/us-east-1/2026/11/03/insight.json.gz"] = _gz(
        [dict(edges[0], eventID="edge-in-insight-file")])
    return write_local(root, files)


def _attach_both(a: Path, b: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"ATTACH '{store.snapshot_path(a)}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{store.snapshot_path(b)}' AS b (READ_ONLY)")
    return con


def assert_same_events(a: Path, b: Path) -> None:
    con = _attach_both(a, b)
    try:
        only_a = con.execute("SELECT * FROM a.events EXCEPT ALL SELECT * FROM b.events").fetchall()
        only_b = con.execute("SELECT * FROM b.events EXCEPT ALL SELECT * FROM a.events").fetchall()
        counts = con.execute("SELECT (SELECT count(*) FROM a.events), (SELECT count(*) FROM b.events)").fetchone()
    finally:
        con.close()
    assert (only_a, only_b) == ([], [])
    assert counts[0] == counts[1] > 0


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[2]").appName("caa-test")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
               .config("spark.default.parallelism", "2").config("spark.driver.host", "127.0.0.1")
               .config("spark.driver.bindAddress", "127.0.0.1").config("spark.sql.session.timeZone", "UTC")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def trail(tmp_path_factory) -> Path:
    return build_trail(tmp_path_factory.mktemp("trail"))


@pytest.fixture(scope="module")
def direct_db(trail, tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("direct") / "caa.duckdb"
    collect(db, [cloudtrail.SPEC], since=SINCE, source=str(trail), now=NOW)
    return db


@pytest.fixture(scope="module")
def extract(spark, trail, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("extract") / "extract"
    stats = sx.extract(spark, str(trail), str(out))
    return out, stats


def test_the_job_reads_the_collector_fields_and_writes_the_events_columns(extract):
    def as_fields(schema):
        return {f.name: as_fields(f.dataType) if hasattr(f.dataType, "fields") else "VARCHAR" for f in schema.fields}

    assert as_fields(sx.RECORD_SCHEMA) == RECORD_FIELDS
    assert list(sx.EVENT_COLUMNS) == COLUMNS
    out, _ = extract
    con = duckdb.connect()
    try:
        files = sorted(str(p) for p in out.glob("day=*/*.parquet"))
        got = con.execute("SELECT name, type, converted_type, logical_type::VARCHAR FROM parquet_schema($f) "
                          "WHERE name <> 'spark_schema' AND file_name = $first",
                          {"f": files, "first": files[0]}).fetchall()
    finally:
        con.close()
    assert [g[0] for g in got] == COLUMNS  # no `day` column inside the files: it is the folder
    ((_, kind, converted, logical),) = [g for g in got if g[0] == "event_at"]
    assert (kind, converted) == ("INT64", "TIMESTAMP_MICROS") and "isAdjustedToUTC=1" in logical
    assert {(g[1], g[2]) for g in got if g[0] != "event_at"} == {("BYTE_ARRAY", "UTF8")}
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["day=2026-11-01", "day=2026-11-02", "day=2026-11-03"]


def test_the_extract_holds_each_event_once_as_the_copy_the_collector_keeps(extract):
    out, stats = extract
    con = duckdb.connect()
    try:
        con.execute(f"CREATE VIEW x AS SELECT * FROM read_parquet('{out}/*/*.parquet', hive_partitioning = true)")
        assert con.execute("SELECT count(*), count(DISTINCT event_id) FROM x").fetchone() == (stats["events"],) * 2
        assert con.execute("SELECT account_id FROM x WHERE event_id = 'edge-cross-account'").fetchall() == [(ACCOUNT,)]
        # golden[0] came in a 2026/11/02 file and again in a 2026/11/03 one: the earlier day keeps it
        assert con.execute("SELECT day::VARCHAR FROM x WHERE event_id = ?",
                           [GOLDEN["cases"][0]["record"]["eventID"]]).fetchall() == [("2026-11-02",)]
    finally:
        con.close()


def test_records_normalize_exactly_as_duckdb_does(spark, tmp_path):
    """Each edge record through the Spark rules and through the collector's decoder and NORMALIZE_SQL, column by
    column."""
    from pyspark.sql import functions as F

    records = edge_records() + [c["record"] for c in GOLDEN["cases"]]
    files = spark.createDataFrame([("f", "2026-11-03", False, [json.dumps(r) for r in records])],
                                  "file string, day string, not_a_list boolean, ca array<string>")
    got = [tuple(r) for r in sx.normalize(spark, files)
           .select(*(F.unix_micros(c).alias(c) if c == "event_at" else c for c in COLUMNS)).collect()]
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        normalize_text(con, gzip.decompress(_gz(records)), "want")
        cols = ", ".join("epoch_us(event_at)" if c == "event_at" else c for c in COLUMNS)
        want = con.execute(f"SELECT {cols} FROM want").fetchall()
    finally:
        con.close()
    assert [r for r in got if r not in want] == [] and [r for r in want if r not in got] == []
    assert sorted(got, key=repr) == sorted(want, key=repr)
    times = {r[0]: r[1] for r in want if r[0] and r[0].startswith("edge-time-")}
    assert 20 <= sum(v is not None for v in times.values()) < len(times)  # accepted and rejected spellings


def test_spark_extract_then_collect_equals_the_direct_collector(extract, direct_db, tmp_path):
    out, stats = extract
    assert stats["unreadable"] == 1 and stats["not_a_list"] == 1  # the truncated gzip and {"Records": {...}}
    ((items,),) = rows(direct_db, "SELECT skipped_items FROM collector_runs")
    assert f"{stats['rejected']} records: no eventID or unreadable eventTime (rejected)" in items
    db = tmp_path / "caa.duckdb"
    assert collect(db, [cloudtrail.SPEC], since=SINCE, source=str(out), now=NOW) == 0
    assert_same_events(direct_db, db)
    assert table(db, "events") == table(direct_db, "events")
    assert rows(db, "SELECT count(*) FROM events WHERE event_id = 'edge-in-insight-file'") == [(0,)]
    assert rows(db, "SELECT account_id FROM events WHERE event_id = 'edge-cross-account'") == [(ACCOUNT,)]
    assert rows(db, "SELECT value FROM watermarks WHERE scope = ?", [str(out)]) == [("2026-11-03",)]
    assert rows(db, "SELECT status, skipped FROM collector_runs") == [("ok", 0)]
    assert rows(db, "SELECT count(*), count(DISTINCT key) FROM cloudtrail_files") == [(3, 3)]  # one file a day


def test_a_second_ingest_reads_nothing(extract, tmp_path, monkeypatch):
    out, _ = extract
    db = tmp_path / "caa.duckdb"
    collect(db, [cloudtrail.SPEC], since=SINCE, source=str(out), now=NOW)
    before = {t: table(db, t, exclude=("processed_at", "updated_at")) for t in ("events", "cloudtrail_files", "watermarks")}
    loads = []
    real = cloudtrail_parquet.load_parquet
    monkeypatch.setattr(cloudtrail_parquet, "load_parquet", lambda con, files, ledger: loads.append(files) or real(con, files, ledger))
    assert collect(db, [cloudtrail.SPEC], since=SINCE, source=str(out), now=NOW) == 0
    assert loads == []
    assert rows(db, "SELECT rows FROM collector_runs ORDER BY run_id") == [(len(before["events"]),), (0,)]
    assert {t: table(db, t, exclude=("processed_at", "updated_at")) for t in before} == before


def test_a_new_day_is_extracted_alone_and_only_its_files_load(spark, trail, extract, tmp_path):
    out, _ = extract
    grown = Path(shutil.copytree(trail, tmp_path / "trail"))
    copy = Path(shutil.copytree(out, tmp_path / "extract"))  # copy2 keeps mtimes: the ledger ETags hold
    db = tmp_path / "caa.duckdb"
    collect(db, [cloudtrail.SPEC], since=SINCE, source=str(copy), now=NOW)
    old_files = {p: p.stat().st_mtime_ns for p in copy.glob("day=2026-11-0[12]/*.parquet")}
    first = sorted(k for k in trail_files(n_files=30, per_file=40) if "/CloudTrail/" in k)[0]
    late = json.loads(gzip.decompress((trail / first).read_bytes()))["Records"][0]  # re-delivered a few days late
    new_day = {_key(ACCOUNT, "2026/11/04", f"20261104T0{h}00Z_newday00000000{h}"):
               _gz([record(5000 + 10 * h + i, datetime(2026, 11, 4, h, i, tzinfo=UTC)) for i in range(5)] + [late])
               for h in range(3)}
    write_local(grown, new_day)
    for _ in range(2):  # the second run replaces the day it extracts, and nothing else
        stats = sx.extract(spark, str(grown), str(copy), since=date(2026, 11, 4), until=date(2026, 11, 4))
    assert stats["files"] == 3 and stats["events"] == 16
    assert len(list(copy.glob("day=2026-11-04/*.parquet"))) == 1
    assert {p: p.stat().st_mtime_ns for p in copy.glob("day=2026-11-0[12]/*.parquet")} == old_files
    known = {k for (k,) in rows(db, "SELECT key FROM cloudtrail_files")}
    assert collect(db, [cloudtrail.SPEC], since=SINCE, source=str(copy), now=NOW) == 0
    assert rows(db, "SELECT rows FROM collector_runs ORDER BY run_id DESC LIMIT 1") == [(15,)]  # the late one was known
    loaded = {k for (k,) in rows(db, "SELECT key FROM cloudtrail_files")} - known  # (the clock is pinned: no time order)
    assert len(loaded) == 1 and next(iter(loaded)).startswith("day=2026-11-04/"), loaded
    assert rows(db, "SELECT count(*) FROM cloudtrail_files") == [(4,)]
    direct = tmp_path / "direct.duckdb"
    collect(direct, [cloudtrail.SPEC], since=SINCE, source=str(grown), now=NOW)
    assert_same_events(direct, db)


def test_a_corrupt_parquet_file_is_skipped_reported_and_retried(extract, direct_db, tmp_path, capsys):
    out, _ = extract
    copy = Path(shutil.copytree(out, tmp_path / "extract"))
    (victim,) = copy.glob("day=2026-11-02/*.parquet")
    good = victim.read_bytes()
    victim.write_bytes(good[: len(good) // 2])
    stranger = copy / "day=2026-11-02" / "part-99999-stranger.parquet"
    duckdb.sql(f"COPY (SELECT 1 AS x) TO '{stranger}' (FORMAT parquet)")
    db = tmp_path / "caa.duckdb"
    assert collect(db, [cloudtrail.SPEC], since=SINCE, source=str(copy), now=NOW) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "day=2026-11-02/" in line]
    assert len(lines) == 2 and all("fix: run spark_extract.py again for its day" in line for line in lines)
    assert any(victim.name in line and "not a complete Parquet file" in line for line in lines)
    assert any(stranger.name in line and "not a caa Spark extract" in line for line in lines)
    assert rows(db, "SELECT status, skipped FROM collector_runs") == [("partial", 2)]
    (tmp_path / "victim.parquet").write_bytes(good)
    con = _attach_both(direct_db, db)
    try:
        missing = con.execute("SELECT event_id FROM a.events EXCEPT SELECT event_id FROM b.events").fetchall()
        extra = con.execute("SELECT event_id FROM b.events EXCEPT SELECT event_id FROM a.events").fetchall()
        in_victim = con.execute(f"SELECT event_id FROM '{tmp_path / 'victim.parquet'}'").fetchall()
    finally:
        con.close()
    assert extra == [] and sorted(missing) == sorted(in_victim) != []  # every other file landed
    victim.write_bytes(good)  # repaired: it is not in the ledger, so the next run reads it
    stranger.unlink()
    assert collect(db, [cloudtrail.SPEC], since=SINCE, source=str(copy), now=NOW) == 0
    assert_same_events(direct_db, db)


def test_an_extract_on_s3_ingests_the_same_rows_and_a_rerun_fetches_nothing(extract, direct_db, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    out, _ = extract
    db = tmp_path / "caa.duckdb"
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="caa-extract")
        for p in out.rglob("*"):
            if p.is_file():  # _SUCCESS and the .crc files too: they are never listed as data
                s3.put_object(Bucket="caa-extract", Key=f"caa/extract/{p.relative_to(out)}", Body=p.read_bytes())
        settings = make_settings(db=db)
        source = "s3://caa-extract/caa/extract/"
        assert collect(db, [cloudtrail.SPEC], settings, clients=Clients(settings), since=SINCE, source=source,
                       now=NOW) == 0
        assert_same_events(direct_db, db)
        assert rows(db, "SELECT count(*) FROM cloudtrail_files WHERE source = ?", [source]) == [(3,)]
        clients, gets = counting_gets(settings)
        before = table(db, "events")
        assert collect(db, [cloudtrail.SPEC], settings, clients=clients, since=SINCE, source=source, now=NOW) == 0
        assert gets == []
        assert table(db, "events") == before


def test_the_trail_glob_covers_exactly_the_window():
    assert sx.trail_paths("s3://b/AWSLogs/", None, None) == (
        "s3://b/AWSLogs/{o-*/[0-9]*,[0-9]*}/CloudTrail/*/[0-9][0-9][0-9][0-9]/[0-9][0-9]/[0-9][0-9]")
    assert sx.trail_paths("s3://b/p", date(2025, 12, 30), date(2027, 2, 2)) == (
        "s3://b/p/AWSLogs/{o-*/[0-9]*,[0-9]*}/CloudTrail/*/{2025/12/{30,31},2026/[0-9][0-9]/[0-9][0-9],"
        "2027/01/[0-9][0-9],2027/02/{01,02}}")
    assert sx.trail_paths("/t", date(2026, 11, 4), date(2026, 11, 4)).endswith("/CloudTrail/*/2026/11/{04}")
