-- Purpose: the download_ip_days rollup rows (core/schema/015_download_ip_days.sql) of the UTC days in
--          [$lo, $hi): downloads per day, asset and source IP (the `downloads` view, counted), which the
--          data-transfer model reads (analytics/sql/transfer_served.sql: bytes served by where the client was).
-- $params: $lo, $hi TIMESTAMPTZ: UTC midnights bounding whole days (analytics/rollups.py refresh)
-- Columns: the columns of download_ip_days, in order (this is an INSERT into the refresh's TEMP table
--          new_download_ip_days)
-- Grain:   one row per day x account x region x domain x repository x format x namespace x package x version
--          x asset x source_ip
INSERT INTO new_download_ip_days
SELECT CAST(event_at AT TIME ZONE 'UTC' AS DATE) AS day, account_id, region, domain, repository, format,
       namespace, package, version, asset, source_ip, count(*) AS downloads
FROM downloads
WHERE event_at >= $lo AND event_at < $hi
GROUP BY ALL
