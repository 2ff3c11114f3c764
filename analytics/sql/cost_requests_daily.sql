-- Purpose: modeled requests per account and region per UTC day, in the units Cost Explorer bills
--          (<REGIONCODE>-Requests). The one request model: month-to-date, reports and forecasts use it.
-- Convention:
--   * A request is one CloudTrail event with error_code IS NULL, counted once (events holds one row
--     per eventID); failed calls are not counted. The account is events.account_id (the domain
--     owner, who is billed).
--   * The free tier ($free_requests per account and calendar month) is consumed in date order and,
--     within a day, in region name order, counting from the 1st of the month even when $start is
--     later (as Cost Explorer's Global-Requests rows show it). billable_requests are the day's
--     requests beyond it. Cost (applied by the caller, per region)
--     = billable_requests / 10,000 x request_usd_per_10k.
-- $params: $start DATE, $end DATE (both inclusive, UTC days), $free_requests BIGINT
-- Columns: usage_date DATE, account_id VARCHAR, region VARCHAR, requests BIGINT,
--          billable_requests BIGINT
-- Grain:   one row per (usage_date, account_id, region) with at least one successful request
WITH per_day AS (  -- from the event_days rollup (analytics/rollups.py): whole UTC days of events
    SELECT day AS usage_date, account_id, region, CAST(sum(events) AS BIGINT) AS requests
    FROM event_days
    WHERE day >= date_trunc('month', $start) AND day <= $end AND ok
    GROUP BY ALL
),
cumulative AS (
    SELECT *, sum(requests) OVER (PARTITION BY account_id, date_trunc('month', usage_date)
                                  ORDER BY usage_date, region ROWS UNBOUNDED PRECEDING) AS cum_requests
    FROM per_day
)
SELECT usage_date, account_id, region, requests,
       CAST(greatest(cum_requests - $free_requests, 0)
            - greatest(cum_requests - requests - $free_requests, 0) AS BIGINT) AS billable_requests
FROM cumulative
WHERE usage_date >= $start
ORDER BY usage_date, account_id, region
