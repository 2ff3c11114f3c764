-- Purpose: modeled storage per domain per UTC day, in the units Cost Explorer bills
--          (<REGIONCODE>-TimedStorage-ByteHrs, unit GB-Mo). The one storage model: month-to-date,
--          reports and forecasts use it.
-- Convention:
--   * A domain's bytes on a day are its latest storage_snapshots row on or before that day (gaps are
--     carried forward; several rows on one day: the last collected wins). Days before a domain's first
--     snapshot have no row. Storage is CodeArtifact's deduplicated domain size: repository sizes are
--     never added up.
--   * A domain whose latest snapshot (on or before $end) is older than the newest snapshot of its
--     account and region is treated as deleted: it has rows through the day of that snapshot only.
--   * byte_hours = bytes x 24; gb_month = byte_hours / (1024^3 x hours in that calendar month), so a
--     "GB" is 1024^3 bytes (GiB), as in the price list's GB-Mo: 250 GiB held all of a 30-day month
--     = 250 GB-months.
--   * The free storage allowance ($free_storage_gb_month per account and calendar month) is consumed
--     in date order, then region and domain name order, counting from the 1st of the month even when
--     $start is later (as Cost Explorer applies it). Cost (applied by the caller, per region)
--     = billable_gb_month x storage_usd_per_gb_month.
-- $params: $start DATE, $end DATE (both inclusive), $free_storage_gb_month DOUBLE
-- Columns: usage_date DATE, account_id, region, domain VARCHAR, asset_size_bytes BIGINT,
--          byte_hours DOUBLE, gb_month DOUBLE, billable_gb_month DOUBLE
-- Grain:   one row per (usage_date, account_id, region, domain) stored that day, ordered by them
WITH snaps AS (
    SELECT snapshot_date, account_id, region, domain, asset_size_bytes
    FROM storage_snapshots
    WHERE snapshot_date <= $end
    QUALIFY row_number() OVER (PARTITION BY account_id, region, domain, snapshot_date
                               ORDER BY collected_at DESC) = 1
),
last_days AS (
    SELECT account_id, region, domain,
           CASE WHEN max(snapshot_date) = max(max(snapshot_date)) OVER (PARTITION BY account_id, region)
                THEN $end ELSE max(snapshot_date) END AS last_day
    FROM snaps
    GROUP BY account_id, region, domain
),
days AS (
    SELECT CAST(t.day AS DATE) AS day
    FROM range(CAST(date_trunc('month', $start) AS TIMESTAMP), CAST($end + 1 AS TIMESTAMP),
               INTERVAL 1 DAY) AS t(day)
),
daily AS (
    SELECT g.day, g.account_id, g.region, g.domain, s.asset_size_bytes
    FROM (SELECT l.*, days.day FROM last_days AS l JOIN days ON days.day <= l.last_day) AS g
    ASOF JOIN snaps AS s
      ON g.account_id = s.account_id AND g.region = s.region AND g.domain = s.domain
     AND g.day >= s.snapshot_date
),
priced AS (
    SELECT day AS usage_date, account_id, region, domain, asset_size_bytes,
           CAST(asset_size_bytes AS DOUBLE) * 24 AS byte_hours,
           byte_hours / (1024 ^ 3 * 24 * day(last_day(day))) AS gb_month,
           sum(gb_month) OVER (PARTITION BY account_id, date_trunc('month', day)
                               ORDER BY day, region, domain ROWS UNBOUNDED PRECEDING) AS cum_gb_month
    FROM daily
)
SELECT usage_date, account_id, region, domain, asset_size_bytes, byte_hours, gb_month,
       greatest(cum_gb_month - $free_storage_gb_month, 0)
         - greatest(cum_gb_month - gb_month - $free_storage_gb_month, 0) AS billable_gb_month
FROM priced
WHERE usage_date >= $start
ORDER BY usage_date, account_id, region, domain
