-- Purpose: versions downloaded by exactly one principal in a window (candidates to vendor, pin or
--          question: one consumer carries the whole version).
-- $params: $start_at TIMESTAMPTZ (inclusive), $end_at TIMESTAMPTZ (exclusive)
-- Columns: account_id, region, domain, repository, format, namespace, package, version VARCHAR,
--          principal_arn VARCHAR (the one consumer), downloads BIGINT
-- Grain:   one row per version per repository with downloads in the window, all by one principal
SELECT account_id, region, domain, repository, format, namespace, package, version,
       any_value(principal_arn) AS principal_arn, count(*) AS downloads
FROM downloads
WHERE event_at >= $start_at AND event_at < $end_at
GROUP BY account_id, region, domain, repository, format, namespace, package, version
HAVING count(DISTINCT coalesce(principal_arn, 'unknown')) = 1
ORDER BY downloads DESC, account_id, region, domain, repository, format, namespace, package, version
