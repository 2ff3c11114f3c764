-- Purpose: repositories (current inventory) with no traffic in a window: no successful CodeArtifact
--          event names them (no download, metadata read, publish or other API call).
-- $params: $start_at TIMESTAMPTZ (inclusive), $end_at TIMESTAMPTZ (exclusive; a UTC midnight)
-- Columns: account_id, region, domain, repository VARCHAR, created_at TIMESTAMPTZ,
--          last_event_at TIMESTAMPTZ (newest successful event before $end_at; NULL when never),
--          last_download_at TIMESTAMPTZ (newest download before $end_at; NULL when never)
-- Grain:   one row per repository in `repositories` without a successful event in the window
WITH seen AS (  -- from the event_days rollup: $end_at is a UTC midnight, so whole days are exact
    SELECT account_id, region, domain, repository,
           max(last_at) AS last_event_at,
           max(last_download_at) AS last_download_at
    FROM event_days
    WHERE ok AND day < CAST($end_at AT TIME ZONE 'UTC' AS DATE) AND repository IS NOT NULL
    GROUP BY ALL
)
SELECT r.account_id, r.region, r.domain, r.repository, r.created_at, s.last_event_at, s.last_download_at
FROM repositories AS r
LEFT JOIN seen AS s USING (account_id, region, domain, repository)
WHERE s.last_event_at IS NULL OR s.last_event_at < $start_at
ORDER BY r.account_id, r.region, r.domain, r.repository
