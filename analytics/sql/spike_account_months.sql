-- Purpose: billed requests per account and calendar month (UTC), over the whole store whatever the
--          filters: the free tier (prices.free_requests_per_month) is the account's, so a spike's cost
--          depends on the account's month, not on the slice a page shows.
-- $params: $months DATE[] (first days of the months wanted)
-- Columns: account_id VARCHAR, month DATE, requests BIGINT
-- Grain:   one row per account x month with at least one billed request
SELECT account_id, CAST(date_trunc('month', day) AS DATE) AS month, sum(events) AS requests
FROM query_table('"' || replace(current_database(), '"', '""') || '".main.event_days')  -- never the filtered view
WHERE ok AND list_contains($months, CAST(date_trunc('month', day) AS DATE))
GROUP BY ALL
ORDER BY ALL
