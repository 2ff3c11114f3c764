-- Purpose: successful requests per UTC day and repository, from the event_days rollup: the rows of
--          cost_request_items.sql summed to the repository (no events read, whatever the store's size).
-- Convention: a request is one event with error_code IS NULL (event_days.ok; see cost_requests_daily.sql).
--          Domain-level calls (GetAuthorizationToken, ...) have repository NULL.
-- $params: $start DATE, $end DATE (both inclusive, UTC days)
-- Columns: usage_date DATE; account_id, region, domain, repository, format VARCHAR; requests BIGINT
-- Grain:   one row per (usage_date, account_id, region, domain, repository, format) with at least one
--          successful request
SELECT day AS usage_date, account_id, region, domain, repository, format, CAST(sum(events) AS BIGINT) AS requests
FROM event_days
WHERE day BETWEEN $start AND $end AND ok
GROUP BY ALL
ORDER BY ALL
