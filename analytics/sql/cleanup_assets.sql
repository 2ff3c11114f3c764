-- Purpose: which stored asset (by sha256) each version references, to work out per domain what deleting
--          versions really frees: CodeArtifact stores an asset once per domain however many
--          repositories hold it, so bytes come back only when no kept version in the domain references
--          the sha256. Versions in Disposed or Deleted status no longer hold their assets and are left out.
--          An asset without a sha256 is keyed by its version and file name (it cannot be shared).
-- $params: none
-- Columns: account_id, region, domain, repository, format, namespace, package, version VARCHAR;
--          sha256 VARCHAR (the content key); size_bytes BIGINT
-- Grain:   one row per version per repository and distinct sha256, in no order (reclaim groups them)
SELECT a.account_id, a.region, a.domain, a.repository, a.format, a.namespace, a.package, a.version,
       coalesce(a.sha256, 'no-sha256:' || a.repository || '/' || a.format || '/' || coalesce(a.namespace, '')
                || '/' || a.package || '@' || a.version || '/' || a.asset) AS sha256,
       max(coalesce(a.size_bytes, 0)) AS size_bytes
FROM assets a
JOIN package_versions v
  ON v.account_id = a.account_id AND v.region = a.region AND v.domain = a.domain
 AND v.repository = a.repository AND v.format = a.format AND v.namespace IS NOT DISTINCT FROM a.namespace
 AND v.package = a.package AND v.version = a.version
WHERE v.status NOT IN ('Disposed', 'Deleted')
GROUP BY ALL
