-- Purpose: the download_days rollup rows (core/schema/005_rollups.sql) of the UTC days in [$lo, $hi):
--          downloads per day and package version (the `downloads` view, summed).
-- $params: $lo, $hi TIMESTAMPTZ: UTC midnights bounding whole days (analytics/rollups.py refresh)
-- Columns: the columns of download_days, in order (this is an INSERT into the refresh's TEMP table new_download_days)
-- Grain:   one row per day x account x region x domain x repository x format x namespace x package x version
INSERT INTO new_download_days
SELECT CAST(utc_wall(event_at) AS DATE) AS day, account_id, region, domain, repository, format,
       namespace, package, version, count(*) AS downloads, min(event_at) AS first_at, max(event_at) AS last_at
FROM downloads
WHERE event_at >= $lo AND event_at < $hi
GROUP BY ALL
