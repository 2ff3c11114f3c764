-- Purpose: internal vs upstream-cached share of downloads in a window: each download joined to the
--          inventory's origin of its version in its repository (package_versions.origin_type).
-- $params: $start_at TIMESTAMPTZ (inclusive), $end_at TIMESTAMPTZ (exclusive)
-- Columns: origin_type VARCHAR (INTERNAL, EXTERNAL, UNKNOWN; 'NOT_IN_INVENTORY' when the version is no
--          longer, or not yet, in package_versions), downloads BIGINT, share_pct DOUBLE (of all downloads
--          in the window)
-- Grain:   one row per origin_type with downloads in the window
-- Reads:   the download_days rollup (whole days: $start_at and $end_at are UTC midnights), not events
SELECT coalesce(v.origin_type, 'NOT_IN_INVENTORY') AS origin_type,
       CAST(sum(d.downloads) AS BIGINT) AS downloads,
       100.0 * sum(d.downloads) / sum(sum(d.downloads)) OVER () AS share_pct
FROM download_days AS d
LEFT JOIN package_versions AS v
  ON v.account_id = d.account_id AND v.region = d.region AND v.domain = d.domain
 AND v.repository = d.repository AND v.format = d.format AND v.namespace IS NOT DISTINCT FROM d.namespace
 AND v.package = d.package AND v.version = d.version
WHERE d.day >= CAST($start_at AT TIME ZONE 'UTC' AS DATE) AND d.day < CAST($end_at AT TIME ZONE 'UTC' AS DATE)
GROUP BY ALL
ORDER BY downloads DESC, origin_type
