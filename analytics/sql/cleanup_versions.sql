-- Purpose: the facts the cleanup policy judges each stored package version by, as of a point in time:
--          its downloads (matched by domain, repository, format, namespace, package and version, with
--          namespaces compared by IS NOT DISTINCT FROM because NULL means "none"), its size, and its
--          package's upstream origin control. Only downloads at or before $as_of count, and versions
--          published after $as_of are left out, so the same query replays the past for a backtest.
--          Every status is returned; the policy decides which statuses may be selected.
-- $params: as_of TIMESTAMPTZ (the store's "now", normally its newest event)
-- Columns: account_id, region, domain, repository, format, namespace, package, version, status,
--          origin_type, origin_upstream VARCHAR (ALLOW / BLOCK / NULL when the package row is missing);
--          published_at, first_seen_at, last_downloaded_at TIMESTAMPTZ (NULL = no download up to $as_of);
--          downloads_30d, downloads_90d, downloads_365d, downloads_total BIGINT (windows ending at $as_of);
--          size_bytes BIGINT (sum of the version's assets, not deduplicated), asset_count BIGINT
-- Grain:   one row per version per repository (package_versions), ordered by the version key
WITH dl AS (
    SELECT domain, repository, format, namespace, package, version,
           max(event_at) AS last_downloaded_at,
           count(*) FILTER (WHERE event_at > $as_of - INTERVAL 30 DAY) AS downloads_30d,
           count(*) FILTER (WHERE event_at > $as_of - INTERVAL 90 DAY) AS downloads_90d,
           count(*) FILTER (WHERE event_at > $as_of - INTERVAL 365 DAY) AS downloads_365d,
           count(*) AS downloads_total
    FROM downloads
    WHERE event_at <= $as_of
    GROUP BY ALL
),
sized AS (
    SELECT account_id, region, domain, repository, format, namespace, package, version,
           sum(size_bytes) AS size_bytes, count(*) AS asset_count
    FROM assets
    GROUP BY ALL
)
SELECT v.account_id, v.region, v.domain, v.repository, v.format, v.namespace, v.package, v.version,
       v.status, v.origin_type, p.origin_upstream, v.published_at, v.first_seen_at, dl.last_downloaded_at,
       coalesce(dl.downloads_30d, 0) AS downloads_30d, coalesce(dl.downloads_90d, 0) AS downloads_90d,
       coalesce(dl.downloads_365d, 0) AS downloads_365d, coalesce(dl.downloads_total, 0) AS downloads_total,
       coalesce(s.size_bytes, 0) AS size_bytes, coalesce(s.asset_count, 0) AS asset_count
FROM package_versions v
LEFT JOIN packages p
       ON p.account_id = v.account_id AND p.region = v.region AND p.domain = v.domain
      AND p.repository = v.repository AND p.format = v.format AND p.namespace IS NOT DISTINCT FROM v.namespace
      AND p.package = v.package
LEFT JOIN dl
       ON dl.domain = v.domain AND dl.repository = v.repository AND dl.format = v.format
      AND dl.namespace IS NOT DISTINCT FROM v.namespace AND dl.package = v.package AND dl.version = v.version
LEFT JOIN sized s
       ON s.account_id = v.account_id AND s.region = v.region AND s.domain = v.domain
      AND s.repository = v.repository AND s.format = v.format AND s.namespace IS NOT DISTINCT FROM v.namespace
      AND s.package = v.package AND s.version = v.version
WHERE v.published_at IS NULL OR v.published_at <= $as_of
ORDER BY v.account_id, v.region, v.domain, v.repository, v.format, v.namespace NULLS FIRST, v.package, v.version
