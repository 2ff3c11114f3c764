-- Purpose: for the cleanup backtest: which versions were downloaded after the replayed point in time,
--          i.e. which selections would have been false deletions.
-- Convention: the whole UTC days inside the window are read from the download_days rollup; only its
--          partial first day, and its last day unless that day's rollup row is exact, from the raw downloads
--          (the caller narrows `events` to those days, analytics/cleanup.py requested_after: 90 days of raw
--          downloads took 2.4 s at 200M events).
-- $params: start_at TIMESTAMPTZ (exclusive, the replayed "now"), end_at TIMESTAMPTZ (inclusive); days_to DATE:
--          the days before it come from download_days, from its midnight to end_at from raw downloads
--          (end_at's day, or the day after when no event is newer than end_at: cleanup.raw_from)
-- Columns: account_id, region, domain, repository, format, namespace, package, version VARCHAR;
--          downloads_after BIGINT; first_requested_at TIMESTAMPTZ
-- Grain:   one row per downloaded version per repository (the download key of the downloads view)
WITH bounds AS (  -- [inner_lo, inner_hi): the whole days after start_at's and before $days_to
    SELECT CAST(CAST($start_at AT TIME ZONE 'UTC' AS DATE) + 1 AS TIMESTAMP) AT TIME ZONE 'UTC' AS inner_lo,
           CAST($days_to AS TIMESTAMP) AT TIME ZONE 'UTC' AS inner_hi
),
edges AS (
    SELECT account_id, region, domain, repository, format, namespace, package, version,
           count(*) AS n, min(event_at) AS first_at
    FROM downloads, bounds
    WHERE event_at > $start_at AND event_at <= $end_at AND (event_at < inner_lo OR event_at >= inner_hi)
    GROUP BY ALL
),
whole_days AS (
    SELECT account_id, region, domain, repository, format, namespace, package, version,
           sum(downloads) AS n, min(first_at) AS first_at
    FROM download_days, bounds
    WHERE day >= CAST(inner_lo AT TIME ZONE 'UTC' AS DATE) AND day < CAST(inner_hi AT TIME ZONE 'UTC' AS DATE)
    GROUP BY ALL
)
SELECT account_id, region, domain, repository, format, namespace, package, version,
       CAST(sum(n) AS BIGINT) AS downloads_after, min(first_at) AS first_requested_at
FROM (SELECT * FROM edges UNION ALL SELECT * FROM whole_days)
GROUP BY ALL
ORDER BY ALL
