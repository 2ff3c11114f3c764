-- Purpose: who drove a download spike: downloads per principal, user agent and source IP inside each
--          spike window and in the same window 1..$weeks weeks earlier (their usual share), so the
--          caller can split the spike's excess between them.
-- $params: as spike_download_hours: $level, $weeks, and the window lists $window_ids, $account_ids,
--          $regions, $domains, $repositories, $formats, $namespaces, $packages, $principals, $from_at,
--          $to_at
-- Columns: window_id BIGINT, weeks_back BIGINT (0 = the spike window), dimension VARCHAR ('principal',
--          'user_agent', 'source_ip', 'repository'), value VARCHAR ('unknown' when missing), downloads BIGINT
-- Grain:   one row per window x weeks_back x dimension x value with at least one download
WITH w AS (
    SELECT unnest($window_ids) AS window_id, unnest($account_ids) AS account_id, unnest($regions) AS region,
           unnest($domains) AS domain, unnest($repositories) AS repository, unnest($formats) AS format,
           unnest($namespaces) AS namespace, unnest($packages) AS package, unnest($principals) AS principal_arn,
           unnest($from_at) AS from_at, unnest($to_at) AS to_at
),
k AS (SELECT range AS weeks_back FROM range(0, $weeks + 1)),
d AS (
    SELECT w.window_id, k.weeks_back, e.principal_arn, e.user_agent, e.source_ip, e.repository
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
SELECT window_id, weeks_back, 'principal' AS dimension, coalesce(principal_arn, 'unknown') AS value,
       count(*) AS downloads
FROM d GROUP BY ALL
UNION ALL
SELECT window_id, weeks_back, 'user_agent', coalesce(user_agent, 'unknown'), count(*) FROM d GROUP BY ALL
UNION ALL
SELECT window_id, weeks_back, 'source_ip', coalesce(source_ip, 'unknown'), count(*) FROM d GROUP BY ALL
UNION ALL
SELECT window_id, weeks_back, 'repository', coalesce(repository, 'unknown'), count(*) FROM d GROUP BY ALL
ORDER BY ALL
