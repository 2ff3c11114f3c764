-- Purpose: the details of an auth spike: its events per user agent, source IP, repository, error code
--          and account/region inside each spike window and 1..$weeks weeks earlier (the usual share).
-- $params: $weeks BIGINT; $denied_codes VARCHAR[]; window lists of equal length: $window_ids BIGINT[],
--          $principals VARCHAR[], $signals VARCHAR[] ('access_denied': events with a denied error code;
--          'token_burst': successful GetAuthorizationToken calls), $from_at, $to_at TIMESTAMPTZ[]
-- Columns: window_id BIGINT, weeks_back BIGINT (0 = the spike window), dimension VARCHAR ('user_agent',
--          'source_ip', 'repository' as "domain/repository", 'error_code', 'billing' as
--          "account_id region"), value VARCHAR ('unknown' when missing), events BIGINT
-- Grain:   one row per window x weeks_back x dimension x value with at least one event
WITH w AS (
    SELECT unnest($window_ids) AS window_id, unnest($principals) AS principal_arn, unnest($signals) AS signal,
           unnest($from_at) AS from_at, unnest($to_at) AS to_at
),
k AS (SELECT range AS weeks_back FROM range(0, $weeks + 1)),
s AS (  -- each window and the same span 1..$weeks weeks earlier
    SELECT w.window_id, k.weeks_back, w.principal_arn, w.signal,
           w.from_at - to_days(CAST(7 * k.weeks_back AS INTEGER)) AS lo,
           w.to_at - to_days(CAST(7 * k.weeks_back AS INTEGER)) AS hi
    FROM w
    CROSS JOIN k
),
h AS (  -- each span's hours (since the epoch): an event finds its spans by its own hour
    SELECT *, unnest(range(CAST(floor(epoch(lo) / 3600) AS BIGINT), CAST(ceil(epoch(hi) / 3600) AS BIGINT))) AS hour_no
    FROM s
),
d AS (
    SELECT h.window_id, h.weeks_back, e.user_agent, e.source_ip, e.error_code,
           coalesce(e.domain, '') || '/' || coalesce(e.repository, '') AS repository,
           e.account_id || ' ' || e.region AS billing
    FROM h
    JOIN events AS e
      ON coalesce(e.principal_arn, 'unknown') = h.principal_arn
     AND CAST(floor(epoch(e.event_at) / 3600) AS BIGINT) = h.hour_no
    WHERE e.event_at >= h.lo AND e.event_at < h.hi
      AND ((h.signal = 'access_denied' AND list_contains($denied_codes, e.error_code))
           OR (h.signal = 'token_burst' AND e.event_name = 'GetAuthorizationToken' AND e.error_code IS NULL))
)
SELECT window_id, weeks_back, 'user_agent' AS dimension, coalesce(user_agent, 'unknown') AS value,
       count(*) AS events
FROM d GROUP BY ALL
UNION ALL
SELECT window_id, weeks_back, 'source_ip', coalesce(source_ip, 'unknown'), count(*) FROM d GROUP BY ALL
UNION ALL
SELECT window_id, weeks_back, 'repository', coalesce(repository, 'unknown'), count(*) FROM d GROUP BY ALL
UNION ALL
SELECT window_id, weeks_back, 'error_code', coalesce(error_code, 'none'), count(*) FROM d GROUP BY ALL
UNION ALL
SELECT window_id, weeks_back, 'billing', coalesce(billing, 'unknown'), count(*) FROM d GROUP BY ALL
ORDER BY ALL
