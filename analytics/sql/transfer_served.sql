-- Purpose: bytes served by downloads per transfer class (where the client was) and UTC day, account and
--          region, or repository, or package, for the data-transfer model (analytics/transfer.py).
-- Convention: a download (the downloads view) serves its asset's size_bytes from the current inventory
--          (assets); a download of an asset the inventory no longer has counts in unsized_downloads. A
--          client's class comes from $ips / $regions / $classes (transfer.py classes each pair of
--          sql/transfer_clients.sql against AWS's IP ranges), joined here so the bytes are summed in
--          DuckDB: a row per day, version and client was 1M rows to pandas at 9.8M events.
-- $params: $start DATE, $end DATE (both inclusive, UTC days); $level VARCHAR: 'account' (account_id,
--          region), 'repository' (and domain, repository) or 'package' (and format, namespace, package);
--          $per_day BOOLEAN (usage_date NULL when false: the whole window); $ips, $regions, $classes
--          VARCHAR[]: one client per index (an IP may be NULL)
-- Columns: usage_date DATE; account_id, region, domain, repository, format, namespace, package VARCHAR (NULL
--          where not part of $level); transfer_class VARCHAR; downloads BIGINT, unsized_downloads BIGINT,
--          bytes DOUBLE
-- Grain:   one row per [usage_date x] $level's key x transfer_class with a download
-- Reads:   the download_ip_days rollup (downloads per day, asset and source IP), not events, and assets
WITH sizes AS (
    SELECT account_id, region, domain, repository, format, namespace, package, version, asset,
           max(size_bytes) AS size_bytes
    FROM assets
    GROUP BY ALL
),
clients AS (
    SELECT unnest($ips::VARCHAR[]) AS source_ip, unnest($regions::VARCHAR[]) AS region,
           unnest($classes::VARCHAR[]) AS transfer_class
)
SELECT CASE WHEN $per_day THEN d.day END AS usage_date, d.account_id, d.region,
       CASE WHEN $level <> 'account' THEN d.domain END AS domain,
       CASE WHEN $level <> 'account' THEN d.repository END AS repository,
       CASE WHEN $level = 'package' THEN d.format END AS format,
       CASE WHEN $level = 'package' THEN d.namespace END AS namespace,
       CASE WHEN $level = 'package' THEN d.package END AS package,
       c.transfer_class,
       CAST(sum(d.downloads) AS BIGINT) AS downloads,
       CAST(coalesce(sum(d.downloads) FILTER (WHERE s.size_bytes IS NULL), 0) AS BIGINT) AS unsized_downloads,
       coalesce(sum(d.downloads * s.size_bytes), 0)::DOUBLE AS bytes
FROM download_ip_days AS d  -- whole UTC days, as asked
LEFT JOIN sizes AS s
  ON d.account_id = s.account_id AND d.region = s.region AND d.domain = s.domain
 AND d.repository = s.repository AND d.format = s.format AND d.namespace IS NOT DISTINCT FROM s.namespace
 AND d.package = s.package AND d.version = s.version AND d.asset = s.asset
LEFT JOIN clients AS c ON d.source_ip IS NOT DISTINCT FROM c.source_ip AND d.region IS NOT DISTINCT FROM c.region
WHERE d.day >= $start AND d.day <= $end
GROUP BY ALL
ORDER BY ALL
