-- Purpose: billable CodeArtifact requests in a window (a calendar month, or the month to date), per
--          account and region, for the modeled request cost.
-- Convention:
--   * A request is one CloudTrail event with error_code IS NULL (downloads, metadata reads, and every
--     other successful API call); failed calls are not counted.
--   * The account is events.account_id (the account billed: the domain owner, else the trail's account).
--   * The free tier ($free_requests per account per month) is taken off the account's month total:
--     billable = max(0, account_requests - $free_requests). When an account has requests in several
--     regions, billable requests are split over its regions in proportion to their requests, so each
--     region's share is priced at that region's rate (one region: billable_requests = billable).
--   * Cost (applied by the caller, per region) = billable_requests / 10,000 x request_usd_per_10k.
-- $params: $start_at TIMESTAMPTZ (inclusive), $end_at TIMESTAMPTZ (exclusive), $free_requests BIGINT
-- Columns: account_id VARCHAR, region VARCHAR, requests BIGINT, account_requests BIGINT,
--          billable_requests DOUBLE
-- Grain:   one row per (account_id, region) with at least one successful request in the window
WITH per_region AS (
    SELECT account_id, region, count(*) AS requests
    FROM events
    WHERE event_at >= $start_at AND event_at < $end_at AND error_code IS NULL
    GROUP BY account_id, region
),
per_account AS (
    SELECT *, sum(requests) OVER (PARTITION BY account_id) AS account_requests
    FROM per_region
)
SELECT account_id, region, requests, CAST(account_requests AS BIGINT) AS account_requests,
       greatest(account_requests - $free_requests, 0) * requests / account_requests AS billable_requests
FROM per_account
ORDER BY account_id, region
