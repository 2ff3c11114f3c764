-- Purpose: top repositories by successful downloads in a window [$start_at, $end_at), with growth against the
--          previous window of the same length [$prev_start_at, $start_at).
-- $params: $prev_start_at, $start_at, $end_at TIMESTAMPTZ; $top BIGINT (rows returned)
-- Columns: account_id, region, domain, repository VARCHAR,
--          downloads BIGINT, principals BIGINT (distinct principals in the window),
--          prev_downloads BIGINT, growth_pct DOUBLE (100 x (downloads - prev_downloads) / prev_downloads;
--          NULL when the previous window had none)
-- Grain:   one row per repository with downloads in the window; the $top by downloads (ties by key)
WITH d AS (
    SELECT *, event_at >= $start_at AS cur
    FROM downloads
    WHERE event_at >= $prev_start_at AND event_at < $end_at
)
SELECT account_id, region, domain, repository,
       count(DISTINCT (format, namespace, package)) FILTER (WHERE cur) AS packages,
       count(*) FILTER (WHERE cur) AS downloads,
       count(DISTINCT principal_arn) FILTER (WHERE cur) AS principals,
       count(*) FILTER (WHERE NOT cur) AS prev_downloads,
       100.0 * (count(*) FILTER (WHERE cur) - count(*) FILTER (WHERE NOT cur))
           / nullif(count(*) FILTER (WHERE NOT cur), 0) AS growth_pct
FROM d
GROUP BY account_id, region, domain, repository
HAVING count(*) FILTER (WHERE cur) > 0
ORDER BY downloads DESC, account_id, region, domain, repository
LIMIT $top
