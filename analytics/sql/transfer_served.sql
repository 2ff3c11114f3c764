-- Purpose: bytes served by downloads per transfer class (where the client was) and UTC day, account and
--          region, or repository, or package, for the data-transfer model (analytics/transfer.py).
-- Convention: a download serves its asset's size_bytes as the rollup sized it (core/schema/016: the
--          inventory's size when the day was rolled up, or once the inventory first had the asset); a
--          download left without a size counts in unsized_downloads. A client's class comes from $ips /
--          $regions / $classes (transfer.py classes each pair of sql/transfer_clients.sql against AWS's IP
--          ranges), joined here so the bytes are summed in DuckDB.
-- $params: $start DATE, $end DATE (both inclusive, UTC days); $level VARCHAR: 'account' (account_id,
--          region), 'repository' (and domain, repository) or 'package' (and format, namespace, package);
--          $per_day BOOLEAN (usage_date NULL when false: the whole window); $ips, $regions, $classes
--          VARCHAR[]: one client per index (an IP may be NULL)
-- Columns: usage_date DATE; account_id, region, domain, repository, format, namespace, package VARCHAR (NULL
--          where not part of $level); transfer_class VARCHAR; downloads BIGINT, unsized_downloads BIGINT,
--          bytes DOUBLE
-- Grain:   one row per [usage_date x] $level's key x transfer_class with a download
-- Reads:   transfer_days (a row per day, repository, format and client) for the account and repository levels;
--          download_ip_days (a row per day, asset and client: 125x as many at 200M events) for packages. The
--          branch a level does not read has a constant false filter, so DuckDB does not scan its files.
WITH clients AS (
    SELECT unnest($ips::VARCHAR[]) AS source_ip, unnest($regions::VARCHAR[]) AS region,
           unnest($classes::VARCHAR[]) AS transfer_class
),
served AS (
    SELECT day, account_id, region, domain, repository, format, namespace, package, source_ip, downloads,
           CASE WHEN size_bytes IS NULL THEN downloads ELSE 0 END AS unsized_downloads,
           coalesce(downloads * size_bytes, 0) AS bytes
    FROM download_ip_days  -- whole UTC days, as asked
    WHERE $level = 'package' AND day >= $start AND day <= $end
    UNION ALL
    SELECT day, account_id, region, domain, repository, format, NULL, NULL, source_ip, downloads, unsized_downloads,
           bytes
    FROM transfer_days
    WHERE $level <> 'package' AND day >= $start AND day <= $end
)
SELECT CASE WHEN $per_day THEN d.day END AS usage_date, d.account_id, d.region,
       CASE WHEN $level <> 'account' THEN d.domain END AS domain,
       CASE WHEN $level <> 'account' THEN d.repository END AS repository,
       CASE WHEN $level = 'package' THEN d.format END AS format,
       CASE WHEN $level = 'package' THEN d.namespace END AS namespace,
       CASE WHEN $level = 'package' THEN d.package END AS package,
       c.transfer_class,
       CAST(sum(d.downloads) AS BIGINT) AS downloads,
       CAST(sum(d.unsized_downloads) AS BIGINT) AS unsized_downloads,
       coalesce(sum(d.bytes), 0)::DOUBLE AS bytes
FROM served AS d
LEFT JOIN clients AS c ON d.source_ip IS NOT DISTINCT FROM c.source_ip AND d.region IS NOT DISTINCT FROM c.region
GROUP BY ALL
ORDER BY ALL
