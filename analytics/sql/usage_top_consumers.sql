-- Purpose: top consumers by successful downloads in a window [$start_at, $end_at), with growth against the
--          previous window of the same length [$prev_start_at, $start_at).
-- $params: $prev_start_at, $start_at, $end_at TIMESTAMPTZ; $top BIGINT (rows returned)
-- Columns: principal_arn VARCHAR ('unknown' when missing), packages BIGINT (distinct packages fetched in
--          the window, as CodeArtifact compares names), downloads BIGINT, principals BIGINT (always 1 here),
--          prev_downloads BIGINT, growth_pct DOUBLE (100 x (downloads - prev_downloads) / prev_downloads;
--          NULL when the previous window had none)
-- Grain:   one row per consumer (principal_arn) with downloads in the window;
--          the $top by downloads (ties by key)
-- Reads:   the download_principal_days rollup (whole days), not events
WITH d AS (  -- one row per principal, spelling and window (whole UTC days: $prev_start_at, $start_at and $end_at
            -- are UTC midnights): the names are keyed once per row of this, not per day row
    SELECT principal_arn, format, namespace, package, day >= CAST($start_at AT TIME ZONE 'UTC' AS DATE) AS cur,
           sum(downloads) AS downloads
    FROM download_principal_days
    WHERE day >= CAST($prev_start_at AT TIME ZONE 'UTC' AS DATE) AND day < CAST($end_at AT TIME ZONE 'UTC' AS DATE)
    GROUP BY ALL
)
SELECT coalesce(principal_arn, 'unknown') AS principal_arn,
       -- packages as CodeArtifact compares names: two spellings of one package are one (021_name_keys.sql)
       count(DISTINCT (format, namespace_key(format, namespace), package_key(format, package))) FILTER (WHERE cur)
           AS packages,
       CAST(sum(downloads) FILTER (WHERE cur) AS BIGINT) AS downloads,
       count(DISTINCT principal_arn) FILTER (WHERE cur) AS principals,
       CAST(coalesce(sum(downloads) FILTER (WHERE NOT cur), 0) AS BIGINT) AS prev_downloads,
       100.0 * (sum(downloads) FILTER (WHERE cur) - coalesce(sum(downloads) FILTER (WHERE NOT cur), 0))
           / nullif(sum(downloads) FILTER (WHERE NOT cur), 0) AS growth_pct
FROM d
GROUP BY coalesce(principal_arn, 'unknown')
HAVING sum(downloads) FILTER (WHERE cur) > 0
ORDER BY downloads DESC, principal_arn
LIMIT $top
