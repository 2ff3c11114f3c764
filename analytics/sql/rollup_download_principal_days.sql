-- Purpose: the download_principal_days rollup rows (core/schema/013_principal_rollups.sql) of the UTC days in
--          [$lo, $hi): downloads per day, package version and principal (the `downloads` view, summed), which
--          the usage tables read (distinct principals and packages over whole days).
-- $params: $lo, $hi TIMESTAMPTZ: UTC midnights bounding whole days (analytics/rollups.py refresh)
-- Columns: the columns of download_principal_days, in order (this is an INSERT into the refresh's TEMP table
--          new_download_principal_days)
-- Grain:   one row per day x account x region x domain x repository x format x namespace x package x version
--          x principal_arn
INSERT INTO new_download_principal_days
SELECT CAST(utc_wall(event_at) AS DATE) AS day, account_id, region, domain, repository, format,
       namespace, package, version, principal_arn, count(*) AS downloads
FROM downloads
WHERE event_at >= $lo AND event_at < $hi
GROUP BY ALL
