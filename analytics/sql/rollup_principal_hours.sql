-- Purpose: the principal_hours rollup rows (core/schema/009_spike_levels.sql) of the UTC days in
--          [$lo, $hi): billed requests, downloads, sessions and the sum of squared requests per session,
--          per principal, domain and hour (a session is counted within its domain: 014).
-- $params: $lo, $hi TIMESTAMPTZ: UTC midnights bounding whole days (analytics/rollups.py refresh)
-- Columns: the columns of principal_hours (this is an INSERT into the refresh's TEMP table new_principal_hours)
-- Grain:   one row per UTC hour x account x region x principal x domain with at least one billed request
INSERT INTO new_principal_hours (hour_at, account_id, region, principal_arn, requests, downloads, sessions, requests_sq,
                                 domain)
WITH s AS (  -- one row per session (a session lies in one hour)
    SELECT utc_instant(date_trunc('hour', utc_wall(event_at))) AS hour_at, account_id, region,
           domain, coalesce(principal_arn, 'unknown') AS principal_arn, session_key(principal_arn, source_ip, event_at),
           count(*) AS n, count(*) FILTER (WHERE is_download(event_name, error_code, version, asset)) AS d
    FROM events
    WHERE event_at >= $lo AND event_at < $hi AND error_code IS NULL
    GROUP BY ALL
)
SELECT hour_at, account_id, region, principal_arn, sum(n), sum(d), count(*), sum(n * n), domain
FROM s
GROUP BY hour_at, account_id, region, domain, principal_arn
