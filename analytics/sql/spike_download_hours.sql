-- Purpose: hourly sessions and downloads inside candidate spike windows and the same hours 1..$weeks
--          weeks earlier (the hour-of-week baseline), to place a spike's start and end and size it.
-- $params: $level VARCHAR ('package', 'domain', 'repository' or 'principal', as in spike_download_series);
--          $weeks BIGINT; one list per window field, all the same length: $window_ids BIGINT[],
--          $account_ids, $regions, $domains, $repositories, $formats, $namespaces, $packages,
--          $principals VARCHAR[] (NULL where not part of $level; $namespaces and $packages as the series name
--          them, as CodeArtifact stores them, and matched so: namespace_key, package_key), $from_at,
--          $to_at TIMESTAMPTZ[]
-- Columns: window_id BIGINT, weeks_back BIGINT (0 = the window itself), hour_at TIMESTAMP (UTC, naive,
--          shifted forward by weeks_back weeks so it lines up with the window), sessions BIGINT,
--          downloads BIGINT
-- Grain:   one row per window x weeks_back x hour with at least one download
WITH w AS (
    SELECT unnest($window_ids) AS window_id, unnest($account_ids) AS account_id, unnest($regions) AS region,
           unnest($domains) AS domain, unnest($repositories) AS repository, unnest($formats) AS format,
           unnest($namespaces) AS namespace, unnest($packages) AS package, unnest($principals) AS principal_arn,
           unnest($from_at) AS from_at, unnest($to_at) AS to_at
),
k AS (SELECT range AS weeks_back FROM range(0, $weeks + 1)),
d AS (
    SELECT w.window_id, k.weeks_back, session_key(e.principal_arn, e.source_ip, e.event_at) AS session,
           (e.event_at AT TIME ZONE 'UTC') + to_days(CAST(7 * k.weeks_back AS INTEGER)) AS shifted_at
    FROM w
    CROSS JOIN k
    JOIN downloads AS e
      ON e.account_id = w.account_id AND e.region = w.region
     AND e.event_at >= w.from_at - to_days(CAST(7 * k.weeks_back AS INTEGER))
     AND e.event_at < w.to_at - to_days(CAST(7 * k.weeks_back AS INTEGER))
     AND ($level = 'principal' OR e.domain = w.domain)
     AND ($level IN ('principal', 'domain') OR e.repository = w.repository)
     AND ($level NOT IN ('package', 'domain') OR (e.format = w.format
                                                  AND namespace_key(e.format, e.namespace) IS NOT DISTINCT FROM w.namespace
                                                  AND package_key(e.format, e.package) = w.package))
     AND ($level <> 'principal' OR coalesce(e.principal_arn, 'unknown') = w.principal_arn)
)
SELECT window_id, weeks_back, date_trunc('hour', shifted_at) AS hour_at,
       count(DISTINCT session) AS sessions,  -- whole weeks back: the same minutes
       count(*) AS downloads
FROM d
GROUP BY ALL
ORDER BY ALL
