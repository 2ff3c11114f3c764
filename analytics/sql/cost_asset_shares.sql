-- Purpose: how each domain's storage is attributed to the assets of its repositories, packages and
--          versions: the share of the domain's bytes each asset row carries.
-- Convention:
--   * The current inventory (assets joined to package_versions; Disposed versions are not billed and
--     left out). An asset is identified by sha256 within its domain (by the row itself when sha256 is
--     NULL); CodeArtifact stores and bills it once per domain, whatever the number of repositories.
--   * An asset held by several rows is split by $split:
--       'equal'           equally between the repositories holding it (and equally between the rows of
--                         one repository);
--       'first_publisher' wholly to one row: an INTERNAL version first, then the earliest
--                         published_at, then repository name;
--       'download_share'  in proportion to the downloads of each row's version in its repository in
--                         [$start_at, $end_at); equally (as 'equal') when none of them was downloaded.
--   * share = attributed_bytes / domain_bytes, where domain_bytes is the sum of the domain's distinct
--     assets, so the shares of a domain add up to 1 and attributed storage cost adds up to the domain's
--     (when all its assets have size 0, every row gets an equal share).
--   * $level sums the asset rows up: 'asset' (each row), 'version', 'package', 'repository' or 'domain'
--     (the columns below the level are NULL; downloads only at 'version' and 'asset'). A cost report by
--     repository then reads 16 rows, not the 120,000 of a large inventory.
-- $params: $split VARCHAR, $start_at TIMESTAMPTZ, $end_at TIMESTAMPTZ (the download window), $level VARCHAR
-- Columns: account_id, region, domain, repository, format, namespace, package, version, asset, sha256
--          VARCHAR; size_bytes BIGINT; downloads BIGINT; attributed_bytes DOUBLE; domain_bytes DOUBLE;
--          share DOUBLE
-- Grain:   one row per $level: at 'asset', per asset of a non-Disposed version per repository
WITH held AS (
    SELECT a.account_id, a.region, a.domain, a.repository, a.format, a.namespace, a.package, a.version,
           a.asset, a.sha256, coalesce(a.size_bytes, 0) AS size_bytes, v.origin_type, v.published_at,
           coalesce(a.sha256, concat_ws('/', 'row', a.repository, a.format, a.namespace, a.package,
                                        a.version, a.asset)) AS asset_key
    FROM assets AS a
    JOIN package_versions AS v
      ON a.account_id = v.account_id AND a.region = v.region AND a.domain = v.domain
     AND a.repository = v.repository AND a.format = v.format
     AND a.namespace IS NOT DISTINCT FROM v.namespace AND a.package = v.package AND a.version = v.version
    WHERE v.status <> 'Disposed'
),
downloads_per_version AS (  -- whole UTC days ($start_at and $end_at are UTC midnights): the download_days rollup,
                            -- per version as CodeArtifact compares names (core/schema/021_name_keys.sql)
    SELECT account_id, region, domain, repository, format, namespace_key(format, namespace) AS namespace_key,
           package_key(format, package) AS package_key, version_key(format, version) AS version_key,
           CAST(sum(downloads) AS BIGINT) AS downloads
    FROM (SELECT account_id, region, domain, repository, format, namespace, package, version,
                 sum(downloads) AS downloads
          FROM download_days
          WHERE day >= CAST($start_at AT TIME ZONE 'UTC' AS DATE) AND day < CAST($end_at AT TIME ZONE 'UTC' AS DATE)
            -- read only when used: the download_share split weighs by them, and only the version and asset
            -- levels show them (the Costs page's default, equal split by repository: 175 against 234 ms at 200M)
            AND ($split = 'download_share' OR $level IN ('version', 'asset'))
          GROUP BY ALL)
    GROUP BY ALL
),
per_repository AS (  -- the rows of each asset in each repository (a GROUP BY and a join: a window
                     -- partitioned by these keys sorted the 64-character sha256s, ~100 ms for 120,000 rows)
    SELECT account_id, region, domain, asset_key, repository, count(*) AS rows_in_repository
    FROM held
    GROUP BY ALL
),
weighted AS (
    SELECT h.*, coalesce(d.downloads, 0) AS downloads,
           1.0 / r.rows_in_repository AS equal_weight,
           CASE WHEN row_number() OVER (
                         PARTITION BY h.account_id, h.region, h.domain, h.asset_key
                         ORDER BY (h.origin_type = 'INTERNAL') DESC NULLS LAST, h.published_at NULLS LAST,
                                  h.repository, h.format, h.package, h.version, h.asset) = 1
                THEN 1.0 ELSE 0.0 END AS first_weight,
           sum(coalesce(d.downloads, 0)) OVER (PARTITION BY h.account_id, h.region, h.domain, h.asset_key)
             AS asset_downloads
    FROM held AS h
    JOIN per_repository AS r
      ON h.account_id = r.account_id AND h.region = r.region AND h.domain = r.domain
     AND h.asset_key = r.asset_key AND h.repository = r.repository
    LEFT JOIN downloads_per_version AS d
      ON h.account_id = d.account_id AND h.region = d.region AND h.domain = d.domain
     AND h.repository = d.repository AND h.format = d.format
     AND d.namespace_key IS NOT DISTINCT FROM namespace_key(h.format, h.namespace)
     AND d.package_key = package_key(h.format, h.package) AND d.version_key = version_key(h.format, h.version)
),
chosen AS (
    SELECT *,
           CASE $split
               WHEN 'equal' THEN equal_weight
               WHEN 'first_publisher' THEN first_weight
               WHEN 'download_share' THEN CASE WHEN asset_downloads > 0 THEN CAST(downloads AS DOUBLE)
                                               ELSE equal_weight END
           END AS weight
    FROM weighted
),
per_asset AS (  -- each asset's weights summed (as per_repository: an aggregate and a join, not a window)
    SELECT account_id, region, domain, asset_key, sum(weight) AS asset_weight
    FROM chosen
    GROUP BY ALL
),
attributed AS (
    SELECT c.*, c.size_bytes * c.weight / a.asset_weight AS attributed_bytes
    FROM chosen AS c
    JOIN per_asset AS a
      ON c.account_id = a.account_id AND c.region = a.region AND c.domain = a.domain AND c.asset_key = a.asset_key
),
shares AS (
    SELECT account_id, region, domain, repository, format, namespace, package, version, asset, sha256,
           size_bytes, downloads, attributed_bytes,
           sum(attributed_bytes) OVER (PARTITION BY account_id, region, domain) AS domain_bytes,
           CASE WHEN domain_bytes = 0 THEN 1.0 / count(*) OVER (PARTITION BY account_id, region, domain)
                ELSE attributed_bytes / domain_bytes END AS share
    FROM attributed
)
SELECT account_id, region, domain,
       CASE WHEN $level <> 'domain' THEN repository END AS repository,
       CASE WHEN $level IN ('package', 'version', 'asset') THEN format END AS format,
       CASE WHEN $level IN ('package', 'version', 'asset') THEN namespace END AS namespace,
       CASE WHEN $level IN ('package', 'version', 'asset') THEN package END AS package,
       CASE WHEN $level IN ('version', 'asset') THEN version END AS version,
       CASE WHEN $level = 'asset' THEN asset END AS asset,
       CASE WHEN $level = 'asset' THEN sha256 END AS sha256,
       CAST(sum(size_bytes) AS BIGINT) AS size_bytes,
       CASE WHEN $level IN ('version', 'asset') THEN max(downloads) END AS downloads,
       sum(attributed_bytes) AS attributed_bytes, max(domain_bytes) AS domain_bytes, sum(share) AS share
FROM shares
GROUP BY ALL
ORDER BY account_id, region, domain, repository, format, namespace, package, version, asset
