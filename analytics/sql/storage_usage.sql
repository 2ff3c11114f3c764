-- Purpose: billable storage month-to-date (GB-months) per account and region, for the modeled storage
--          cost.
-- Convention:
--   * The month is the calendar month of $as_of; month-to-date is its first day through $as_of, each
--     day counted whole: a domain's bytes that day x 24 = its byte-hours for the day.
--   * A domain's bytes on a day are its latest storage_snapshots row on or before that day (gaps in
--     collection are carried forward; a snapshot from the previous month carries into day 1). Days
--     before a domain's first snapshot count 0. Several rows on one day: the last collected wins.
--   * A domain whose latest snapshot is older than the newest snapshot of its account and region is
--     treated as deleted: it counts through the day of its latest snapshot only.
--   * gb_month = byte_hours / (1024^3 x 24 x days_in_month), days_in_month of $as_of's month (so
--     250 GiB held for all 30 days of June = 250 GB-months).
--   * The free tier ($free_storage_gb_month per account) is taken off the account's GB-months and the
--     remainder split over its regions in proportion to their GB-months.
--   * Cost (applied by the caller, per region) = billable_gb_month x storage_usd_per_gb_month.
-- $params: $as_of DATE (the store's newest event day), $free_storage_gb_month DOUBLE
-- Columns: account_id VARCHAR, region VARCHAR, domains BIGINT, byte_hours DOUBLE, gb_month DOUBLE,
--          billable_gb_month DOUBLE
-- Grain:   one row per (account_id, region) with a domain stored during the month to date
WITH snaps AS (
    SELECT snapshot_date, account_id, region, domain, asset_size_bytes
    FROM storage_snapshots
    WHERE snapshot_date <= $as_of
    QUALIFY row_number() OVER (PARTITION BY account_id, region, domain, snapshot_date
                               ORDER BY collected_at DESC) = 1
),
last_days AS (
    SELECT account_id, region, domain,
           CASE WHEN max(snapshot_date) = max(max(snapshot_date)) OVER (PARTITION BY account_id, region)
                THEN $as_of ELSE max(snapshot_date) END AS last_day
    FROM snaps
    GROUP BY account_id, region, domain
),
days AS (
    SELECT CAST(t.day AS DATE) AS day
    FROM range(CAST(date_trunc('month', $as_of) AS TIMESTAMP), CAST($as_of + 1 AS TIMESTAMP),
               INTERVAL 1 DAY) AS t(day)
),
grid AS (
    SELECT l.account_id, l.region, l.domain, days.day
    FROM last_days AS l JOIN days ON days.day <= l.last_day
),
daily AS (
    SELECT g.account_id, g.region, g.domain, g.day, s.asset_size_bytes
    FROM grid AS g
    ASOF JOIN snaps AS s
      ON g.account_id = s.account_id AND g.region = s.region AND g.domain = s.domain
     AND g.day >= s.snapshot_date
),
per_region AS (
    SELECT account_id, region, count(DISTINCT domain) AS domains,
           CAST(sum(asset_size_bytes * 24) AS DOUBLE) AS byte_hours,
           byte_hours / (1024 ^ 3 * 24 * day(last_day($as_of))) AS gb_month
    FROM daily
    GROUP BY account_id, region
),
per_account AS (
    SELECT *, sum(gb_month) OVER (PARTITION BY account_id) AS account_gb_month
    FROM per_region
)
SELECT account_id, region, domains, byte_hours, gb_month,
       CASE WHEN account_gb_month = 0 THEN 0.0
            ELSE greatest(account_gb_month - $free_storage_gb_month, 0) * gb_month / account_gb_month
       END AS billable_gb_month
FROM per_account
ORDER BY account_id, region
