-- Purpose: the download_sessions_days rollup rows (core/schema/007_session_rollup.sql) of the UTC days in
--          [$lo, $hi): distinct sessions (session_key, core/schema/008_definitions.sql) and downloads per
--          day for each spike-detector level. The downloads are grouped once into (package, session) rows,
--          from which each level counts its distinct sessions.
-- $params: $lo, $hi TIMESTAMPTZ: UTC midnights bounding whole days (analytics/rollups.py refresh)
-- Columns: the columns of download_sessions_days, in order (this is an INSERT)
-- Grain:   one row per day x level x that level's key ('package': domain, repository, format, namespace,
--          package; 'repository': domain, repository; 'principal': principal_arn)
INSERT INTO download_sessions_days
WITH s AS MATERIALIZED (
    SELECT CAST(event_at AT TIME ZONE 'UTC' AS DATE) AS day, account_id, region, domain, repository, format,
           namespace, package, principal_arn, session_key(principal_arn, source_ip, event_at) AS session,
           count(*) AS n
    FROM downloads
    WHERE event_at >= $lo AND event_at < $hi
    GROUP BY ALL
)
SELECT day, 'package', account_id, region, domain, repository, format, namespace, package, NULL, count(*), sum(n)
FROM s GROUP BY day, account_id, region, domain, repository, format, namespace, package
UNION ALL
SELECT day, 'repository', account_id, region, domain, repository, NULL, NULL, NULL, NULL,
       count(DISTINCT session), sum(n)
FROM s GROUP BY day, account_id, region, domain, repository
UNION ALL
SELECT day, 'principal', account_id, region, NULL, NULL, NULL, NULL, NULL, coalesce(principal_arn, 'unknown'),
       count(DISTINCT session), sum(n)
FROM s GROUP BY day, account_id, region, coalesce(principal_arn, 'unknown')
