-- Purpose: the declared dependencies of INTERNAL versions (what a kept in-house build still needs), for
--          the cleanup policy's dependency protection. The dependent version's key comes with each row
--          so the policy can keep only the edges of versions it keeps.
-- $params: none
-- Columns: account_id, region, domain, repository, format, namespace, package, version VARCHAR (the
--          dependent version); dependency_namespace, dependency_package, dependency_type,
--          version_requirement VARCHAR (a range in the format's own syntax, NULL when not declared)
-- Grain:   one row per dependency of a version per repository
SELECT d.account_id, d.region, d.domain, d.repository, d.format, d.namespace, d.package, d.version,
       d.dependency_namespace, d.dependency_package, d.dependency_type, d.version_requirement
FROM package_dependencies d
JOIN package_versions v
  ON v.account_id = d.account_id AND v.region = d.region AND v.domain = d.domain
 AND v.repository = d.repository AND v.format = d.format AND v.namespace IS NOT DISTINCT FROM d.namespace
 AND v.package = d.package AND v.version = d.version
WHERE v.origin_type = 'INTERNAL'
ORDER BY ALL
