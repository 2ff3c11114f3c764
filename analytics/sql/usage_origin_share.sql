-- Purpose: internal vs upstream-cached share of downloads in a window: each download joined to the
--          inventory's origin of its version in its repository (package_versions.origin_type), the names
--          as CodeArtifact compares them (core/schema/021_name_keys.sql: pip's `Zope.Interface` is the stored
--          `zope-interface`).
-- $params: $start_at TIMESTAMPTZ (inclusive), $end_at TIMESTAMPTZ (exclusive)
-- Columns: origin_type VARCHAR (INTERNAL, EXTERNAL, UNKNOWN; 'NOT_IN_INVENTORY' when the version is no
--          longer, or not yet, in package_versions), downloads BIGINT, share_pct DOUBLE (of all downloads
--          in the window)
-- Grain:   one row per origin_type with downloads in the window
-- Reads:   the download_days rollup (whole days: $start_at and $end_at are UTC midnights), not events
WITH d AS (  -- the window's downloads per version as recorded, then keyed (a version has few spellings)
    SELECT account_id, region, domain, repository, format, namespace, package, version, sum(downloads) AS downloads
    FROM download_days
    WHERE day >= CAST($start_at AT TIME ZONE 'UTC' AS DATE) AND day < CAST($end_at AT TIME ZONE 'UTC' AS DATE)
    GROUP BY ALL
),
v AS (  -- one origin per version key (CodeArtifact lists one spelling; any_value keeps a downloads row once)
    SELECT account_id, region, domain, repository, format, namespace_key(format, namespace) AS namespace_key,
           package_key(format, package) AS package_key, version_key(format, version) AS version_key,
           any_value(origin_type) AS origin_type
    FROM package_versions
    GROUP BY ALL
)
SELECT coalesce(v.origin_type, 'NOT_IN_INVENTORY') AS origin_type,
       CAST(sum(d.downloads) AS BIGINT) AS downloads,
       100.0 * sum(d.downloads) / sum(sum(d.downloads)) OVER () AS share_pct
FROM d
LEFT JOIN v
  ON v.account_id = d.account_id AND v.region = d.region AND v.domain = d.domain
 AND v.repository = d.repository AND v.format = d.format
 AND v.namespace_key IS NOT DISTINCT FROM namespace_key(d.format, d.namespace)
 AND v.package_key = package_key(d.format, d.package) AND v.version_key = version_key(d.format, d.version)
GROUP BY ALL
ORDER BY downloads DESC, origin_type
