-- Purpose: top versions by successful downloads in a window [$start_at, $end_at), with growth against the
--          previous window of the same length [$prev_start_at, $start_at).
-- $params: $prev_start_at, $start_at, $end_at TIMESTAMPTZ; $top BIGINT (rows returned)
-- Columns: format, namespace, package, version VARCHAR (the version's most downloaded spelling in the window;
--          ties: the first in order),
--          downloads BIGINT, principals BIGINT (distinct principals in the window),
--          prev_downloads BIGINT, growth_pct DOUBLE (100 x (downloads - prev_downloads) / prev_downloads;
--          NULL when the previous window had none)
-- Grain:   one row per version as CodeArtifact compares names (format, namespace_key, package_key,
--          version_key: core/schema/021_name_keys.sql) over every domain and repository with downloads in the
--          window; the $top by downloads (ties by key)
-- Reads:   the download_principal_days rollup (whole days), not events
WITH d AS (  -- one row per spelling, principal and window (whole UTC days: $prev_start_at, $start_at and $end_at
            -- are UTC midnights). The versions are ranked by their spellings' downloads, which add up, and only
            -- the top ones' principals are counted over their spellings' rows: keying every row of this and
            -- grouping it again cost 40 ms more at 200M events, this 10
    SELECT format, namespace, package, version, principal_arn,
           day >= CAST($start_at AT TIME ZONE 'UTC' AS DATE) AS cur, sum(downloads) AS downloads
    FROM download_principal_days
    WHERE day >= CAST($prev_start_at AT TIME ZONE 'UTC' AS DATE) AND day < CAST($end_at AT TIME ZONE 'UTC' AS DATE)
    GROUP BY ALL
),
sp AS (  -- one row per spelling, keyed as CodeArtifact compares names
    SELECT format, namespace, package, version, namespace_key(format, namespace) AS nk,
           package_key(format, package) AS pk, version_key(format, version) AS vk,
           sum(downloads) FILTER (WHERE cur) AS cur_downloads, sum(downloads) FILTER (WHERE NOT cur) AS prev_downloads
    FROM d
    GROUP BY format, namespace, package, version
),
top AS (
    SELECT format, nk, pk, vk, CAST(sum(cur_downloads) AS BIGINT) AS downloads,
           CAST(coalesce(sum(prev_downloads), 0) AS BIGINT) AS prev_downloads,
           100.0 * (sum(cur_downloads) - coalesce(sum(prev_downloads), 0)) / nullif(sum(prev_downloads), 0)
               AS growth_pct
    FROM sp
    GROUP BY format, nk, pk, vk
    HAVING sum(cur_downloads) > 0
    ORDER BY downloads DESC, format, nk, pk, vk
    LIMIT $top
),
spellings AS MATERIALIZED (  -- the top versions' spellings
    SELECT t.format, t.nk, t.pk, t.vk, s.namespace, s.package, s.version, s.cur_downloads
    FROM sp AS s
    JOIN top AS t ON s.format = t.format AND s.nk IS NOT DISTINCT FROM t.nk AND s.pk = t.pk AND s.vk = t.vk
),
names AS (  -- the spelling shown: the window's most downloaded (ties: the first in order)
    SELECT format, nk, pk, vk,
           first(namespace ORDER BY cur_downloads DESC NULLS LAST, namespace NULLS FIRST, package, version) AS namespace,
           first(package ORDER BY cur_downloads DESC NULLS LAST, namespace NULLS FIRST, package, version) AS package,
           first(version ORDER BY cur_downloads DESC NULLS LAST, namespace NULLS FIRST, package, version) AS version
    FROM spellings
    GROUP BY ALL
),
who AS (  -- distinct principals of each top version in the window, over its spellings
    SELECT s.format, s.nk, s.pk, s.vk, count(DISTINCT d.principal_arn) AS principals
    FROM d
    JOIN spellings AS s ON d.format = s.format AND d.namespace IS NOT DISTINCT FROM s.namespace
     AND d.package = s.package AND d.version = s.version
    WHERE d.cur
    GROUP BY ALL
)
SELECT t.format, n.namespace, n.package, n.version, t.downloads, coalesce(w.principals, 0) AS principals,
       t.prev_downloads, t.growth_pct
FROM top AS t
JOIN names AS n ON n.format = t.format AND n.nk IS NOT DISTINCT FROM t.nk AND n.pk = t.pk AND n.vk = t.vk
LEFT JOIN who AS w ON w.format = t.format AND w.nk IS NOT DISTINCT FROM t.nk AND w.pk = t.pk AND w.vk = t.vk
ORDER BY t.downloads DESC, t.format, t.nk, t.pk, t.vk
