-- Purpose: the requests that came with a download spike: inside each spike window, the sessions
--          (session_key) that downloaded the spike's series, and every billed request those sessions
--          made in the window (its downloads, and the metadata and other requests of the same
--          principal, IP and minute), so the caller can turn excess downloads into excess requests.
-- $params: as spike_download_hours ($level and the window lists), without $weeks
-- Columns: window_id BIGINT, downloads BIGINT (billed downloads of those sessions), other BIGINT (their
--          other billed requests)
-- Grain:   one row per window with at least one download
WITH w AS (
    SELECT unnest($window_ids) AS window_id, unnest($account_ids) AS account_id, unnest($regions) AS region,
           unnest($domains) AS domain, unnest($repositories) AS repository, unnest($formats) AS format,
           unnest($namespaces) AS namespace, unnest($packages) AS package, unnest($principals) AS principal_arn,
           unnest($from_at) AS from_at, unnest($to_at) AS to_at
),
s AS (
    SELECT DISTINCT w.window_id, w.account_id, w.region, w.from_at, w.to_at,
           session_key(e.principal_arn, e.source_ip, e.event_at) AS session
    FROM w
    JOIN downloads AS e
      ON e.account_id = w.account_id AND e.region = w.region
     AND e.event_at >= w.from_at AND e.event_at < w.to_at
     AND ($level = 'principal' OR e.domain = w.domain)
     AND ($level IN ('principal', 'domain') OR e.repository = w.repository)
     AND ($level NOT IN ('package', 'domain') OR (e.format = w.format
                                                  AND namespace_key(e.format, e.namespace) IS NOT DISTINCT FROM w.namespace
                                                  AND package_key(e.format, e.package) = w.package))
     AND ($level <> 'principal' OR coalesce(e.principal_arn, 'unknown') = w.principal_arn)
)
SELECT s.window_id,
       count(*) FILTER (WHERE is_download(e.event_name, e.error_code, e.version, e.asset)) AS downloads,
       count(*) FILTER (WHERE NOT is_download(e.event_name, e.error_code, e.version, e.asset)) AS other
FROM s
JOIN events AS e
  ON e.account_id = s.account_id AND e.region = s.region AND e.error_code IS NULL
 AND e.event_at >= s.from_at AND e.event_at < s.to_at
 AND session_key(e.principal_arn, e.source_ip, e.event_at) = s.session
GROUP BY s.window_id
ORDER BY s.window_id
