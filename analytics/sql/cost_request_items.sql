-- Purpose: successful requests per UTC day by who and what they were for, to attribute each
--          (day, account, region)'s request cost to repositories, packages and principals.
-- Convention: a request is one event with error_code IS NULL (see cost_requests_daily.sql).
--          Domain-level calls (GetAuthorizationToken, GetRepositoryEndpoint, ...) have repository
--          NULL; metadata reads have version NULL.
-- $params: $start DATE, $end DATE (both inclusive, UTC days)
-- Columns: usage_date DATE; account_id, region, domain, repository, format, namespace, package, version,
--          principal_arn VARCHAR; requests BIGINT
-- Grain:   one row per (usage_date, account_id, region, domain, repository, format, namespace, package,
--          version, principal_arn) with at least one successful request
SELECT CAST(event_at AT TIME ZONE 'UTC' AS DATE) AS usage_date, account_id, region, domain, repository,
       format, namespace, package, version, principal_arn, count(*) AS requests
FROM events
WHERE event_at >= CAST($start AS TIMESTAMP) AT TIME ZONE 'UTC'
  AND event_at < CAST($end + 1 AS TIMESTAMP) AT TIME ZONE 'UTC'
  AND error_code IS NULL
GROUP BY ALL
ORDER BY ALL
