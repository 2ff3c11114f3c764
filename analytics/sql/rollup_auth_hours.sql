-- Purpose: the auth_hours rollup rows (core/schema/013_principal_rollups.sql) of the UTC days in [$lo, $hi):
--          per principal, account, region, domain and UTC hour, the events of each error code, and the
--          successful GetAuthorizationToken calls with their distinct sessions within the domain (what
--          spike_auth_series.sql counts). The calls are grouped by session first (its parts: principal as
--          recorded, source IP, the UTC minute out of session_key()), so a group's sessions are its rows: the
--          same rows as count(DISTINCT session_key(...)), 20% less CPU on the bench trail.
-- $params: $lo, $hi TIMESTAMPTZ: UTC midnights bounding whole days (analytics/rollups.py refresh)
-- Columns: the columns of auth_hours (this is an INSERT into the refresh's TEMP table new_auth_hours)
-- Grain:   one row per UTC hour x principal x account x region x domain x error code (NULL: the successful
--          token calls)
INSERT INTO new_auth_hours (hour_at, principal_arn, error_code, events, token_sessions, account_id, region, domain)
WITH s AS (  -- one row per session and error code
    SELECT account_id, region, domain, principal_arn, error_code, source_ip,
           struct_extract(session_key(principal_arn, source_ip, event_at), 3) AS minute, count(*) AS n
    FROM events
    WHERE event_at >= $lo AND event_at < $hi
      AND (error_code IS NOT NULL OR event_name = 'GetAuthorizationToken')
    GROUP BY ALL
)
SELECT utc_instant(date_trunc('hour', minute)) AS hour_at, coalesce(principal_arn, 'unknown'), error_code,
       sum(n) AS events, CASE WHEN error_code IS NULL THEN count(*) ELSE 0 END AS token_sessions,
       account_id, region, domain
FROM s
GROUP BY hour_at, coalesce(principal_arn, 'unknown'), error_code, account_id, region, domain
