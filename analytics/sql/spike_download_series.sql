-- Purpose: download series for spike detection: sessions and downloads per series and time bucket.
--          A session is one (principal_arn, source_ip, UTC minute): a CI job that fetches a package 40
--          times in one minute is one session, so the detector scores sessions (robust to such clusters)
--          and sizes a spike in downloads.
-- $params: $level VARCHAR: 'package' (domain, repository, format, namespace, package), 'repository'
--          (domain, repository) or 'principal' (principal_arn); $grain VARCHAR: 'hour' or 'day';
--          $start_at TIMESTAMPTZ (inclusive), $end_at TIMESTAMPTZ (exclusive)
-- Columns: account_id, region, domain, repository, format, namespace, package, principal_arn VARCHAR
--          (NULL where not part of $level), bucket_at TIMESTAMP (UTC, naive), sessions BIGINT,
--          downloads BIGINT
-- Grain:   one row per series x bucket with at least one download (the caller zero-fills the grid)
SELECT
    account_id,
    region,
    CASE WHEN $level <> 'principal' THEN domain END AS domain,
    CASE WHEN $level <> 'principal' THEN repository END AS repository,
    CASE WHEN $level = 'package' THEN format END AS format,
    CASE WHEN $level = 'package' THEN namespace END AS namespace,
    CASE WHEN $level = 'package' THEN package END AS package,
    CASE WHEN $level = 'principal' THEN coalesce(principal_arn, 'unknown') END AS principal_arn,
    date_trunc($grain, event_at AT TIME ZONE 'UTC') AS bucket_at,
    count(DISTINCT (principal_arn, source_ip, date_trunc('minute', event_at AT TIME ZONE 'UTC'))) AS sessions,
    count(*) AS downloads
FROM downloads
WHERE event_at >= $start_at AND event_at < $end_at
GROUP BY ALL
ORDER BY ALL
