-- Purpose: the event_days rollup rows (core/schema/005_rollups.sql) of the UTC days in [$lo, $hi):
--          events per day, account, region, domain, repository, format, event name and outcome, and
--          how many of them are downloads (is_download, core/schema/008_definitions.sql).
-- $params: $lo, $hi TIMESTAMPTZ: UTC midnights bounding whole days (analytics/rollups.py refresh)
-- Columns: the columns of event_days, in order (this is an INSERT into the refresh's TEMP table new_event_days)
-- Grain:   one row per day x account x region x domain x repository x format x event name x ok
INSERT INTO new_event_days
SELECT CAST(utc_wall(event_at) AS DATE) AS day, account_id, region, domain, repository, format,
       event_name, error_code IS NULL AS ok,
       count(*) AS events,
       count(*) FILTER (WHERE is_download(event_name, error_code, version, asset)) AS downloads,
       min(event_at) AS first_at, max(event_at) AS last_at,
       max(event_at) FILTER (WHERE is_download(event_name, error_code, version, asset)) AS last_download_at
FROM events
WHERE event_at >= $lo AND event_at < $hi
GROUP BY ALL
