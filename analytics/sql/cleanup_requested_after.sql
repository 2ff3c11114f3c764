-- Purpose: for the cleanup backtest: which versions were downloaded after the replayed point in time,
--          i.e. which selections would have been false deletions.
-- $params: start_at TIMESTAMPTZ (exclusive, the replayed "now"), end_at TIMESTAMPTZ (inclusive)
-- Columns: domain, repository, format, namespace, package, version VARCHAR; downloads_after BIGINT;
--          first_requested_at TIMESTAMPTZ
-- Grain:   one row per downloaded version per repository (the download key of the downloads view)
SELECT domain, repository, format, namespace, package, version,
       count(*) AS downloads_after, min(event_at) AS first_requested_at
FROM downloads
WHERE event_at > $start_at AND event_at <= $end_at
GROUP BY ALL
ORDER BY ALL
