-- Purpose: top packages by successful downloads in a window [$start_at, $end_at), with growth against the
--          previous window of the same length [$prev_start_at, $start_at).
-- $params: $prev_start_at, $start_at, $end_at TIMESTAMPTZ; $top BIGINT (rows returned)
-- Columns: format, namespace, package VARCHAR (the package's most downloaded spelling in the window; ties: the
--          first in order), repositories BIGINT (distinct domain/repository in the window),
--          downloads BIGINT, principals BIGINT (distinct principals in the window),
--          prev_downloads BIGINT, growth_pct DOUBLE (100 x (downloads - prev_downloads) / prev_downloads;
--          NULL when the previous window had none)
-- Grain:   one row per package as CodeArtifact compares names (format, namespace_key, package_key:
--          core/schema/021_name_keys.sql; pip's `Zope.Interface` and `zope_interface` are one package) over
--          every domain and repository with downloads in the window; the $top by downloads (ties by key)
-- Reads:   the download_principal_days rollup (whole days), not events
WITH d AS (  -- one row per spelling, repository, principal and window (whole UTC days: $prev_start_at, $start_at
            -- and $end_at are UTC midnights): the names are keyed once per row of this, not per day row
    SELECT format, namespace, package, domain, repository, principal_arn,
           day >= CAST($start_at AT TIME ZONE 'UTC' AS DATE) AS cur, sum(downloads) AS downloads
    FROM download_principal_days
    WHERE day >= CAST($prev_start_at AT TIME ZONE 'UTC' AS DATE) AND day < CAST($end_at AT TIME ZONE 'UTC' AS DATE)
    GROUP BY ALL
),
k AS MATERIALIZED (
    SELECT *, namespace_key(format, namespace) AS nk, package_key(format, package) AS pk FROM d
),
top AS (
    SELECT format, nk, pk,
           count(DISTINCT (domain, repository)) FILTER (WHERE cur) AS repositories,
           CAST(sum(downloads) FILTER (WHERE cur) AS BIGINT) AS downloads,
           count(DISTINCT principal_arn) FILTER (WHERE cur) AS principals,
           CAST(coalesce(sum(downloads) FILTER (WHERE NOT cur), 0) AS BIGINT) AS prev_downloads,
           100.0 * (sum(downloads) FILTER (WHERE cur) - coalesce(sum(downloads) FILTER (WHERE NOT cur), 0))
               / nullif(sum(downloads) FILTER (WHERE NOT cur), 0) AS growth_pct
    FROM k
    GROUP BY format, nk, pk
    HAVING sum(downloads) FILTER (WHERE cur) > 0
    ORDER BY downloads DESC, format, nk, pk
    LIMIT $top
),
spellings AS (  -- the top packages' spellings and their downloads in the window
    SELECT k.format, k.nk, k.pk, k.namespace, k.package, sum(k.downloads) FILTER (WHERE k.cur) AS n
    FROM k SEMI JOIN top AS t ON k.format = t.format AND k.nk IS NOT DISTINCT FROM t.nk AND k.pk = t.pk
    GROUP BY ALL
),
names AS (
    SELECT format, nk, pk,
           first(namespace ORDER BY n DESC NULLS LAST, namespace NULLS FIRST, package) AS namespace,
           first(package ORDER BY n DESC NULLS LAST, namespace NULLS FIRST, package) AS package
    FROM spellings
    GROUP BY ALL
)
SELECT t.format, s.namespace, s.package, t.repositories, t.downloads, t.principals, t.prev_downloads, t.growth_pct
FROM top AS t
JOIN names AS s ON s.format = t.format AND s.nk IS NOT DISTINCT FROM t.nk AND s.pk = t.pk
ORDER BY t.downloads DESC, t.format, t.nk, t.pk
