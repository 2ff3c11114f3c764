-- Purpose: bytes served by downloads per UTC day, repository, package and source IP, for the data-
--          transfer model (analytics/transfer.py classes each source IP against the repository's region).
-- Convention: a download (the downloads view) serves its asset's size_bytes from the current inventory
--          (assets); a download of an asset the inventory no longer has counts in unsized_downloads.
-- $params: $start DATE, $end DATE (both inclusive, UTC days)
-- Columns: usage_date DATE; account_id, region, domain, repository, format, namespace, package, version,
--          source_ip VARCHAR; downloads BIGINT, unsized_downloads BIGINT, bytes DOUBLE
-- Grain:   one row per (usage_date, account_id, region, domain, repository, format, namespace, package,
--          version, source_ip) with a download
WITH sizes AS (
    SELECT account_id, region, domain, repository, format, namespace, package, version, asset,
           max(size_bytes) AS size_bytes
    FROM assets
    GROUP BY ALL
)
SELECT CAST(d.event_at AT TIME ZONE 'UTC' AS DATE) AS usage_date, d.account_id, d.region, d.domain,
       d.repository, d.format, d.namespace, d.package, d.version, d.source_ip,
       count(*) AS downloads, count(*) FILTER (WHERE s.size_bytes IS NULL) AS unsized_downloads,
       coalesce(sum(s.size_bytes), 0)::DOUBLE AS bytes
FROM downloads AS d
LEFT JOIN sizes AS s
  ON d.account_id = s.account_id AND d.region = s.region AND d.domain = s.domain
 AND d.repository = s.repository AND d.format = s.format AND d.namespace IS NOT DISTINCT FROM s.namespace
 AND d.package = s.package AND d.version = s.version AND d.asset = s.asset
WHERE d.event_at >= CAST($start AS TIMESTAMP) AT TIME ZONE 'UTC'
  AND d.event_at < CAST($end + 1 AS TIMESTAMP) AT TIME ZONE 'UTC'
GROUP BY ALL
ORDER BY ALL
