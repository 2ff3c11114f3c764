-- Purpose: the download_ip_days rollup rows (core/schema/015_download_ip_days.sql, 016) of the UTC days in
--          [$lo, $hi): downloads per day, asset and source IP (the `downloads` view, counted), with the
--          asset's size, which the data-transfer model reads (transfer_days, and
--          analytics/sql/transfer_served.sql: bytes served by where the client was). The size is the one the
--          day's downloads of the asset already had (the inventory may have lost the asset since), else the
--          inventory's (assets), else NULL.
-- $params: $lo, $hi TIMESTAMPTZ: UTC midnights bounding whole days (analytics/rollups.py refresh); $given
--          BOOLEAN: whether download_ip_days holds rows of these days (false on a backfill's new days: the
--          join to them is then to nothing, but DuckDB built its hash table on the downloads, not on them)
-- Columns: the columns of download_ip_days, in order (this is an INSERT into the refresh's TEMP table
--          new_download_ip_days)
-- Grain:   one row per day x account x region x domain x repository x format x namespace x package x version
--          x asset x source_ip
INSERT INTO new_download_ip_days
WITH served AS (
    SELECT CAST(utc_wall(event_at) AS DATE) AS day, account_id, region, domain, repository, format,
           namespace, package, version, asset, source_ip, count(*) AS downloads
    FROM downloads
    WHERE event_at >= $lo AND event_at < $hi
    GROUP BY ALL
),
sizes AS (  -- an asset is one row of assets; max() keeps the query whole if a store ever held two. Keyed as
           -- CodeArtifact compares names (core/schema/021_name_keys.sql): a download recorded under a
           -- client's spelling (NuGet's `acme.core.1.0.0-beta.nupkg`) has the stored asset's size
    SELECT account_id, region, domain, repository, format, namespace_key(format, namespace) AS namespace_key,
           package_key(format, package) AS package_key, version_key(format, version) AS version_key,
           asset_key(format, asset) AS asset_key, max(size_bytes) AS size_bytes
    FROM assets
    WHERE size_bytes IS NOT NULL
    GROUP BY ALL
),
given AS (  -- the sizes these days' downloads already had: kept when the inventory has since lost the asset
    SELECT day, account_id, region, domain, repository, format, namespace, package, version, asset,
           max(size_bytes) AS size_bytes
    FROM download_ip_days
    WHERE day >= CAST($lo AT TIME ZONE 'UTC' AS DATE) AND day < CAST($hi AT TIME ZONE 'UTC' AS DATE)
      AND size_bytes IS NOT NULL AND $given
    GROUP BY ALL
)
SELECT d.day, d.account_id, d.region, d.domain, d.repository, d.format, d.namespace, d.package, d.version,
       d.asset, d.source_ip, d.downloads, coalesce(g.size_bytes, s.size_bytes) AS size_bytes
FROM served AS d
LEFT JOIN given AS g
  ON d.day = g.day AND d.account_id = g.account_id AND d.region = g.region AND d.domain = g.domain
 AND d.repository = g.repository AND d.format = g.format AND d.namespace IS NOT DISTINCT FROM g.namespace
 AND d.package = g.package AND d.version = g.version AND d.asset = g.asset
LEFT JOIN sizes AS s
  ON d.account_id = s.account_id AND d.region = s.region AND d.domain = s.domain
 AND d.repository = s.repository AND d.format = s.format
 AND namespace_key(d.format, d.namespace) IS NOT DISTINCT FROM s.namespace_key
 AND package_key(d.format, d.package) = s.package_key AND version_key(d.format, d.version) = s.version_key
 AND asset_key(d.format, d.asset) = s.asset_key
