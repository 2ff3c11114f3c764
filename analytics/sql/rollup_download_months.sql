-- Purpose: the download_months rollup rows (core/schema/014_rollups_by_domain_and_month.sql) of the calendar
--          months $first to $last: each month's download_days rows summed per version.
-- $params: $first, $last DATE: the first days of the first and the last month (analytics/rollups.py refresh,
--          after the months' days)
-- Columns: the columns of download_months, in order (this is an INSERT into the refresh's TEMP table
--          new_download_months)
-- Grain:   one row per month x account x region x domain x repository x format x namespace x package x version
INSERT INTO new_download_months
SELECT CAST(date_trunc('month', day) AS DATE) AS month, account_id, region, domain, repository, format, namespace,
       package, version, sum(downloads) AS downloads, max(last_at) AS last_at
FROM download_days
WHERE day >= $first AND day < $last + INTERVAL 1 MONTH
GROUP BY ALL
