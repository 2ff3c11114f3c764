-- Purpose: the download_months rollup rows (core/schema/014_rollups_by_domain_and_month.sql) of the calendar
--          month starting $month: the month's download_days rows summed per version.
-- $params: $month DATE: a month's first day (analytics/rollups.py refresh, after the month's days)
-- Columns: the columns of download_months, in order (this is an INSERT into the refresh's TEMP table
--          new_download_months)
-- Grain:   one row per month x account x region x domain x repository x format x namespace x package x version
INSERT INTO new_download_months
SELECT $month AS month, account_id, region, domain, repository, format, namespace, package, version,
       sum(downloads) AS downloads, max(last_at) AS last_at
FROM download_days
WHERE day >= $month AND day < $month + INTERVAL 1 MONTH
GROUP BY ALL
