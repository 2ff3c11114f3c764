"""Spark extract: CodeArtifact events from a CloudTrail trail, as day-partitioned Parquet for `caa collect`.

A self-contained PySpark job (pyspark and the standard library only, never the caa package), so the same
file runs with spark-submit on EMR, as a Glue job or on Databricks. It is for organisations whose trail
outgrows one machine; `caa collect cloudtrail --source <output>` then ingests the extract incrementally
(collectors/cloudtrail_parquet.py).

Reads: `<input>/[AWSLogs/][o-org/]<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz` (s3://, s3a://,
dbfs:/ or a local path), only the day folders in [--since, --until] (every day without them).
CloudTrail-Digest and CloudTrail-Insight folders are never listed. Each record is read with an explicit
schema (the fields of cloudtrail_load.RECORD_FIELDS, never inferred): a wrongly typed field becomes NULL,
a number or an object in a text field becomes its JSON text, as in the direct collector.
Writes: `<output>/day=YYYY-MM-DD/part-*.parquet`: exactly the columns of the `events` table, in order
(event_at a UTC TIMESTAMP_MICROS, every other column a string). `day` is the trail's delivery folder
(UTC), the unit --since/--until select: a re-run overwrites only the days it extracts (dynamic partition
overwrite), so re-running a day after late deliveries replaces that day, and no other day is touched.

The rules are those of cloudtrail_load.NORMALIZE_SQL, the one definition the direct collector's decoder is
held to (tests/integration/test_spark_extract.py checks that both paths give identical `events` tables): keep
eventSource = codeartifact.amazonaws.com; read both key spellings (domainName/domain, ...); strip '@'
from npm scopes and split '@scope/name'; the asset is the last segment of requestUri unless it is empty,
starts with maven-metadata.xml or equals the version, or the version is NULL (requestParameters.asset
wins); event_at is eventTime parsed as DuckDB's TRY_CAST(... AS TIMESTAMPTZ) parses ISO 8601 (the
spellings DuckDB reads beyond it, such as time zone names, 'epoch', BC dates or years not of 4 digits,
are rejected here; CloudTrail writes none of them). Records without an eventID, eventName or a readable eventTime are dropped and counted. Duplicates (the same
eventID in several files or accounts' trails) are kept once: the copy from the earliest day folder, then
the first file by key, as the direct collector keeps it.

It needs Spark 3.5 or later (EMR 7, Glue 5.0, Databricks Runtime 14+). Submit on EMR (a spark-submit
step; the script on S3):

    aws emr add-steps --cluster-id j-XXXXXXXX --steps 'Type=CUSTOM_JAR,Name=caa-extract,Jar=command-runner.jar,
        ActionOnFailure=CONTINUE,Args=[spark-submit,--deploy-mode,cluster,s3://my-bucket/caa/spark_extract.py,
        --input,s3://trail-bucket/AWSLogs/,--output,s3://my-bucket/caa/extract/,--since,2026-11-01]'

Glue (a Spark ETL job, glueetl; the script location is the file on S3, no extra Python modules):

    aws glue create-job --name caa-extract --role GlueCaaRole --glue-version 5.0 --worker-type G.1X \\
        --number-of-workers 10 --command Name=glueetl,ScriptLocation=s3://my-bucket/caa/spark_extract.py,PythonVersion=3
    aws glue start-job-run --job-name caa-extract --arguments \\
        '{"--input":"s3://trail-bucket/AWSLogs/","--output":"s3://my-bucket/caa/extract/","--since":"2026-11-01"}'

Databricks: a Python-script task with the same parameters. Glue adds its own arguments (--JOB_NAME ...);
unknown arguments are ignored.

Tuning: the cost is reading and inflating every trail file: about 120 MB/s of JSON per core in local
mode, i.e. roughly 2 core-minutes per GB of gzip (CloudTrail compresses about 12x). 300 GB of gzip a
day is then about 10 core-hours: 10 Glue G.1X workers (40 vCPUs) take about 15 minutes. Only the text of
the CodeArtifact records is kept and cached after the read (other services' records are tokenized,
never decoded into rows). Run daily with --since/--until over the last 2-3 days: late deliveries land
in their day folder and the re-run replaces that day. --files-per-day (default 1) spreads a large day
over several writers; a file holds at most 500k events (one ingest batch of caa). Trails are many small files: a larger
spark.sql.files.openCostInBytes (e.g. 8 MB) packs more of them into each task.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime, timedelta, timezone

from pyspark import StorageLevel
from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

CODEARTIFACT = "codeartifact.amazonaws.com"
MAX_EVENTS_PER_FILE = 500_000  # caa ingests a file in one DuckDB batch: this keeps it under 1 GiB

# The events table's columns, in order (core/schema/001_init.sql, cloudtrail_load.EVENT_COLUMNS).
EVENT_COLUMNS = ("event_id", "event_at", "event_name", "account_id", "region", "domain", "domain_owner",
                 "repository", "format", "namespace", "package", "version", "asset", "principal_arn",
                 "principal_type", "source_ip", "user_agent", "error_code", "request_uri")

# cloudtrail_load.RECORD_FIELDS, as a Spark schema: the subset of a record caa reads.
_S = T.StringType()
RECORD_SCHEMA = T.StructType([
    *(T.StructField(k, _S) for k in ("eventVersion", "eventID", "eventTime", "eventSource", "eventName",
                                     "awsRegion", "sourceIPAddress", "userAgent", "errorCode",
                                     "recipientAccountId")),
    T.StructField("userIdentity", T.StructType([T.StructField(k, _S) for k in ("type", "arn", "accountId")])),
    T.StructField("requestParameters", T.StructType([
        T.StructField(k, _S) for k in ("domainName", "domain", "domainOwner", "repositoryName", "repository",
                                       "packageFormat", "format", "packageNamespace", "namespace",
                                       "packageName", "package", "packageVersion", "asset")])),
    T.StructField("additionalEventData", T.StructType([T.StructField("requestUri", _S)])),
])
# A trail file: Records kept as raw JSON text per record, parsed with RECORD_SCHEMA only when the text
# names CodeArtifact. A record that is not an object then becomes NULL instead of failing its file.
FILE_SCHEMA = T.StructType([T.StructField("Records", T.ArrayType(_S))])

# The delivery day of a trail file, from its key: .../CloudTrail/<region>/YYYY/MM/DD/<file>.
_DAY_RE = r"/CloudTrail/[^/]+/([0-9]{4})/([0-9]{2})/([0-9]{2})/[^/]+$"

# eventTime as DuckDB's TRY_CAST(eventTime AS TIMESTAMPTZ) reads ISO 8601 (TimeZone UTC): optional
# whitespace around; Y-M-D (or Y/M/D, 'Y M D', Y\M\D) alone (midnight); or a 'T' or whitespace,
# H:M[:S[.fraction]] (1-2 digits each, the fraction truncated to microseconds, 24:00:00 is the next
# midnight) and an optional Z, +HH, +HHMM, +HH:MM or ' UTC' (any case). Anything else is NULL, so the
# record is rejected. Groups: 1 year, 3 month, 4 day, 5-8 hour, minute, second, fraction, 9 the zone.
_TIME_RE = (r"^\s*([0-9]{4})([-/ \\])([0-9]{1,2})\2([0-9]{1,2})"
            r"(?:(?:T|\s+)([0-9]{1,2}):([0-9]{1,2})(?::([0-9]{1,2})(?:\.([0-9]*))?)?"
            r"(Z|[+-][0-9]{2}(?::?[0-9]{2})?| (?i:utc))?\s*)?$")
_CANONICAL_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z$"  # CloudTrail's own

# cloudtrail_load.NORMALIZE_SQL in Spark SQL, clause for clause, over the records of {records} (columns
# r, day, file and the eventTime parts t1..t8 of _TIME_RE). regexp_extract('[^/]*$') is
# substring_index(.., '/', -1), LIKE '@%/%' is a leading '@' with a '/' after it, strpos is instr.
NORMALIZE_SQL = """
SELECT
    r.eventID AS event_id,
    CASE WHEN t_canonical THEN try_cast(r.eventTime AS TIMESTAMP)
         WHEN t_day IS NOT NULL AND ((t_h < 24 AND t_mi < 60 AND t_s < 60)
                                     OR (t_h = 24 AND t_mi = 0 AND t_s = 0 AND t_us = 0))
         THEN timestamp_micros(CAST(unix_date(t_day) AS BIGINT) * 86400000000 + ((t_h * 60 + t_mi) * 60 + t_s) * 1000000
                               + t_us - t_offset_min * 60000000) END AS event_at,
    r.eventName AS event_name,
    COALESCE(p.domainOwner, r.recipientAccountId) AS account_id,
    r.awsRegion AS region,
    COALESCE(p.domainName, p.domain) AS domain,
    p.domainOwner AS domain_owner,
    COALESCE(p.repositoryName, p.repository) AS repository,
    COALESCE(p.packageFormat, p.format) AS format,
    CASE WHEN ns_raw IS NOT NULL THEN TRIM(LEADING '@' FROM ns_raw)
         WHEN scoped THEN substr(substring_index(pkg_raw, '/', 1), 2) END AS namespace,
    CASE WHEN ns_raw IS NULL AND scoped THEN substr(pkg_raw, instr(pkg_raw, '/') + 1)
         ELSE pkg_raw END AS package,
    p.packageVersion AS version,
    CASE WHEN p.asset IS NOT NULL THEN p.asset
         WHEN p.packageVersion IS NOT NULL AND last_seg <> '' AND NOT startswith(last_seg, 'maven-metadata.xml')
              AND last_seg <> p.packageVersion THEN last_seg END AS asset,
    r.userIdentity.arn AS principal_arn,
    r.userIdentity.type AS principal_type,
    r.sourceIPAddress AS source_ip,
    r.userAgent AS user_agent,
    r.errorCode AS error_code,
    uri AS request_uri,
    day,
    file
FROM (
    SELECT r, day, file, t_canonical, r.requestParameters AS p, r.additionalEventData.requestUri AS uri,
           COALESCE(r.requestParameters.packageNamespace, r.requestParameters.namespace) AS ns_raw,
           COALESCE(r.requestParameters.packageName, r.requestParameters.package) AS pkg_raw,
           startswith(COALESCE(r.requestParameters.packageName, r.requestParameters.package), '@')
               AND instr(substr(COALESCE(r.requestParameters.packageName, r.requestParameters.package), 2), '/') > 0
               AS scoped,
           substring_index(COALESCE(r.additionalEventData.requestUri, ''), '/', -1) AS last_seg,
           CASE WHEN t_match THEN try_cast(concat(t1, '-', t2, '-', t3) AS DATE) END AS t_day,
           CAST(COALESCE(NULLIF(t4, ''), '0') AS BIGINT) AS t_h,
           CAST(COALESCE(NULLIF(t5, ''), '0') AS BIGINT) AS t_mi,
           CAST(COALESCE(NULLIF(t6, ''), '0') AS BIGINT) AS t_s,
           CAST(rpad(t7, 6, '0') AS BIGINT) AS t_us,
           CASE WHEN substr(t8, 1, 1) IN ('+', '-')
                THEN (CASE WHEN substr(t8, 1, 1) = '-' THEN -1 ELSE 1 END)
                     * (CAST(substr(t8, 2, 2) AS BIGINT) * 60
                        + COALESCE(CAST(NULLIF(substr(replace(t8, ':', ''), 4, 2), '') AS INT), 0))
                ELSE 0 END AS t_offset_min
    FROM {records}
    WHERE r.eventSource = 'codeartifact.amazonaws.com'
)
"""


def trail_paths(source: str, since: date | None, until: date | None) -> str:
    """One glob of the trail's day folders in [since, until]: org and single-account layouts alike."""
    base = source.rstrip("/")
    if not base.endswith("/AWSLogs") and base != "AWSLogs":
        base += "/AWSLogs"
    if since is None and until is None:
        days = "[0-9][0-9][0-9][0-9]/[0-9][0-9]/[0-9][0-9]"
    else:
        start = since or date(2013, 1, 1)  # CloudTrail began in November 2013
        end = until or datetime.now(timezone.utc).date() + timedelta(days=1)  # noqa: UP017 - EMR's Python 3.9
        if start > end:
            raise SystemExit(f"spark_extract: --since {start} is after --until {end}")
        parts = []
        for y in range(start.year, end.year + 1):
            if date(y, 1, 1) >= start and date(y, 12, 31) <= end:
                parts.append(f"{y:04d}/[0-9][0-9]/[0-9][0-9]")
                continue
            for m in range(1, 13):
                first, last = date(y, m, 1), date(y + m // 12, m % 12 + 1, 1) - timedelta(days=1)
                lo, hi = max(first, start), min(last, end)
                if lo > hi:
                    continue
                whole = lo == first and hi == last
                dd = ",".join(f"{d:02d}" for d in range(lo.day, hi.day + 1))
                parts.append(f"{y:04d}/{m:02d}/" + ("[0-9][0-9]" if whole else "{" + dd + "}"))
        days = parts[0] if len(parts) == 1 else "{" + ",".join(parts) + "}"
    # {a/b,c} with a slash inside is expanded by Hadoop's globber into one pattern per alternative.
    return f"{base}/{{o-*/[0-9]*,[0-9]*}}/CloudTrail/*/{days}"


def configure(spark: SparkSession) -> None:
    """Session settings the extract relies on (runtime SQL settings only: fine on a shared session)."""
    for key, value in {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",  # proleptic Gregorian, as DuckDB reads it
        "spark.sql.json.enablePartialResults": "true",  # a wrongly typed field is NULL, not its whole record
    }.items():
        spark.conf.set(key, value)


def read_trail(spark: SparkSession, source: str, since: date | None = None, until: date | None = None
               ) -> DataFrame | None:
    """One row per readable trail file: file, day, not_a_list, ca (the raw text of its CodeArtifact records)."""
    try:
        raw = (spark.read.schema(FILE_SCHEMA)
               .option("multiLine", True).option("mode", "PERMISSIVE")
               .option("pathGlobFilter", "*.json.gz").option("ignoreCorruptFiles", True)
               .json(trail_paths(source, since, until)))
    except AnalysisException as e:
        if "PATH_NOT_FOUND" in str(e) or "Path does not exist" in str(e):
            return None
        raise
    file = F.col("_metadata.file_path")
    return raw.select(
        file.alias("file"),
        F.concat_ws("-", *(F.regexp_extract(file, _DAY_RE, i) for i in (1, 2, 3))).alias("day"),
        F.col("Records").isNull().alias("not_a_list"),
        F.filter("Records", lambda s: s.contains(CODEARTIFACT)).alias("ca"),
    )


def normalize(spark: SparkSession, files: DataFrame) -> DataFrame:
    """The events columns (+ day, file) of every CodeArtifact record, rejected ones included."""
    records = (files.select("file", "day", F.explode("ca").alias("s"))
               .select("file", "day", F.from_json("s", RECORD_SCHEMA).alias("r")))
    t = F.col("r.eventTime")
    records = records.select(
        "*", t.rlike(_CANONICAL_RE).alias("t_canonical"), t.rlike(_TIME_RE).alias("t_match"),
        *(F.regexp_extract(t, _TIME_RE, g).alias(f"t{i}") for i, g in enumerate((1, 3, 4, 5, 6, 7, 8, 9), 1)))
    return spark.sql(NORMALIZE_SQL, records=records)


def rejected(events: DataFrame) -> Column:
    return F.col("event_id").isNull() | F.col("event_at").isNull() | F.col("event_name").isNull()


def dedupe(events: DataFrame) -> DataFrame:
    """One row per eventID: the copy from the earliest day folder, then the first file by key."""
    first = Window.partitionBy("event_id").orderBy("day", "file")
    return (events.where(~rejected(events))
            .withColumn("copy_no", F.row_number().over(first)).where("copy_no = 1").drop("copy_no"))


def write_days(events: DataFrame, output: str, files_per_day: int = 1) -> None:
    """Parquet under output/day=YYYY-MM-DD/, replacing only the days present in `events`."""
    spread = F.pmod(F.xxhash64("event_id"), F.lit(files_per_day)) if files_per_day > 1 else F.lit(0)
    (events.repartition("day", spread)
     .sortWithinPartitions("day", "event_at", "event_id")
     .select(*EVENT_COLUMNS, "day")
     .write.mode("overwrite").option("partitionOverwriteMode", "dynamic").option("compression", "zstd")
     .option("maxRecordsPerFile", MAX_EVENTS_PER_FILE)
     .partitionBy("day").parquet(output))


def extract(spark: SparkSession, source: str, output: str, since: date | None = None, until: date | None = None,
            files_per_day: int = 1) -> dict[str, int]:
    """Run the extract; returns its counts (files, unreadable, not_a_list, records, rejected, events, days)."""
    configure(spark)
    files = read_trail(spark, source, since, until)
    stats = dict.fromkeys(("files", "unreadable", "not_a_list", "records", "rejected", "events", "days"), 0)
    if files is None:
        print(f"spark_extract: no trail files under {source} for the window; nothing written", flush=True)
        return stats
    listed = files.inputFiles()  # before persist: a cached plan no longer shows its files
    files = files.persist(StorageLevel.MEMORY_AND_DISK)
    events = None
    try:
        row = files.agg(F.count("*").alias("n"), F.count_if("not_a_list").alias("bad")).first()
        stats.update(files=len(listed), unreadable=len(listed) - row["n"], not_a_list=row["bad"])
        events = normalize(spark, files).persist(StorageLevel.MEMORY_AND_DISK)
        counts = events.agg(F.count("*").alias("n"), F.count_if(rejected(events)).alias("rejected"),
                            F.collect_set(F.when(~rejected(events), F.col("day"))).alias("days")).first()
        stats.update(records=counts["n"], rejected=counts["rejected"], days=len(counts["days"]))
        _report_bad_files(spark, files, listed, stats)
        files.unpersist()  # `events` holds what the write needs
        if counts["days"]:
            write_days(dedupe(events), output, files_per_day)
            stats["events"] = spark.read.parquet(*(f"{output.rstrip('/')}/day={d}" for d in counts["days"])).count()
    finally:
        files.unpersist()
        if events is not None:
            events.unpersist()
    print("spark_extract: " + " ".join(f"{k}={v}" for k, v in stats.items()) + f" output={output}", flush=True)
    if stats["rejected"]:
        print(f"spark_extract: {stats['rejected']} CodeArtifact records had no eventID, no eventName or an "
              "unreadable eventTime and were dropped (the direct collector rejects them too)", flush=True)
    return stats


def _report_bad_files(spark: SparkSession, files: DataFrame, listed: list[str], stats: dict[str, int]) -> None:
    if stats["not_a_list"]:
        names = [r.file for r in files.where("not_a_list").select("file").limit(10).collect()]
        print(f"spark_extract: {stats['not_a_list']} files are not CloudTrail JSON (no Records list), "
              f"skipped: {', '.join(names)}", flush=True)
    if stats["unreadable"]:  # listed, yet no row: Spark skipped it (ignoreCorruptFiles)
        # inputFiles() spells file:///x where _metadata.file_path spells file:/x: compare the keys under AWSLogs/.
        key = F.substring_index("file", "/AWSLogs/", -1)
        listed_df = spark.createDataFrame([(f.rsplit("/AWSLogs/", 1)[-1], f) for f in listed], "key string, file string")
        names = [r.file for r in listed_df.join(files.select(key.alias("key")), "key", "left_anti")
                 .select("file").limit(10).collect()]
        print(f"spark_extract: {stats['unreadable']} files are not complete gzip files (truncated or corrupt), "
              f"skipped: {', '.join(names)}; fix: re-run their days once they are delivered again", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spark_extract.py", description=__doc__.split("\n\n")[0],
                                     allow_abbrev=False)  # Glue adds --JOB_NAME, --TempDir, ...
    parser.add_argument("--input", required=True, help="the trail: s3://bucket/[prefix/]AWSLogs/ or a local path")
    parser.add_argument("--output", required=True, help="the extract: s3://bucket/caa/extract/ or a local path")
    parser.add_argument("--since", type=date.fromisoformat, help="first day folder (YYYY-MM-DD, UTC)")
    parser.add_argument("--until", type=date.fromisoformat, help="last day folder (YYYY-MM-DD, UTC)")
    parser.add_argument("--files-per-day", type=int, default=1, help="Parquet writers per day (default 1)")
    args, _unknown = parser.parse_known_args(argv)
    spark = SparkSession.builder.appName("caa-spark-extract").getOrCreate()
    extract(spark, args.input, args.output, args.since, args.until, max(1, args.files_per_day))
    return 0


if __name__ == "__main__":
    sys.exit(main())
