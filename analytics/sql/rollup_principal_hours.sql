-- Purpose: the principal_hours rollup rows (core/schema/009_spike_levels.sql) of the UTC days in
--          [$lo, $hi): billed requests, downloads, sessions and the sum of squared requests per session,
--          per principal, domain and hour (a session is counted within its domain: 014). A session is grouped
--          by its parts (principal as recorded, source IP, the UTC minute out of session_key()), the hour
--          taken from the minute after grouping (the same rows, 18% less CPU than the struct on the bench trail).
-- $params: $lo, $hi TIMESTAMPTZ: UTC midnights bounding whole days (analytics/rollups.py refresh)
-- Columns: the columns of principal_hours (this is an INSERT into the refresh's TEMP table new_principal_hours)
-- Grain:   one row per UTC hour x account x region x principal x domain with at least one billed request
INSERT INTO new_principal_hours (hour_at, account_id, region, principal_arn, requests, downloads, sessions, requests_sq,
                                 domain)
WITH s AS (  -- one row per session (a session lies in one hour)
    SELECT account_id, region, domain, principal_arn, source_ip,
           struct_extract(session_key(principal_arn, source_ip, event_at), 3) AS minute,
           count(*) AS n, count(*) FILTER (WHERE is_download(event_name, error_code, version, asset)) AS d
    FROM events
    WHERE event_at >= $lo AND event_at < $hi AND error_code IS NULL
    GROUP BY ALL
)
SELECT utc_instant(date_trunc('hour', minute)) AS hour_at, account_id, region, coalesce(principal_arn, 'unknown'),
       sum(n), sum(d), count(*), sum(n * n), domain
FROM s
GROUP BY hour_at, account_id, region, domain, coalesce(principal_arn, 'unknown')
