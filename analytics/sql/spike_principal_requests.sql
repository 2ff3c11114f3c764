-- Purpose: billed requests, downloads and sessions per principal and UTC hour, for the request-volume
--          signal (analytics/spikes.py): a principal's runaway loop is one session a minute however
--          many requests it makes, so its requests are scored against its own hour-of-week baseline.
-- $params: $start_at TIMESTAMPTZ (inclusive), $end_at TIMESTAMPTZ (exclusive); $full_lo, $full_hi
--          TIMESTAMPTZ: the UTC midnights bounding the whole days read from the principal_hours rollup
--          (equal, e.g. both $end_at, to read everything raw: a list filter on repository or format,
--          which principal_hours does not carry)
-- Columns: account_id, region, principal_arn VARCHAR ('unknown' when missing), hour_at TIMESTAMP (UTC,
--          naive), requests BIGINT, downloads BIGINT, sessions BIGINT (a session is counted within its
--          domain, as principal_hours counts it), requests_sq BIGINT (the sum over sessions of their
--          requests squared)
-- Grain:   one row per principal x hour with at least one billed request, in no order (the caller groups by
--          principal: ORDER BY ALL over every principal-hour of the baseline was a sort of ~180k rows)
-- Source:  as spike_download_series: whole days from the rollup, the partial first and last days raw.
WITH raw AS (  -- constant bounds, so DuckDB prunes both ranges by event_at
    SELECT * FROM events
    WHERE error_code IS NULL AND event_at >= $start_at AND event_at < least($end_at, $full_lo)
    UNION ALL
    SELECT * FROM events
    WHERE error_code IS NULL AND event_at >= greatest($full_lo, $full_hi) AND event_at < $end_at
),
s AS (  -- one row per session (a session lies in one hour and one domain)
    SELECT account_id, region, domain, coalesce(principal_arn, 'unknown') AS principal_arn,
           date_trunc('hour', event_at AT TIME ZONE 'UTC') AS hour_at, session_key(principal_arn, source_ip, event_at),
           count(*) AS n, count(*) FILTER (WHERE is_download(event_name, error_code, version, asset)) AS d
    FROM raw
    GROUP BY ALL
)
SELECT account_id, region, principal_arn, hour_at, sum(n) AS requests, sum(d) AS downloads, count(*) AS sessions,
       sum(n * n) AS requests_sq
FROM s
GROUP BY account_id, region, principal_arn, hour_at
UNION ALL
SELECT account_id, region, principal_arn, hour_at AT TIME ZONE 'UTC', sum(requests), sum(downloads), sum(sessions),
       sum(requests_sq)
FROM principal_hours  -- its rows are per domain
WHERE hour_at >= $full_lo AND hour_at < $full_hi
GROUP BY account_id, region, principal_arn, hour_at
