-- Purpose: data health: how fresh each source's newest data is, against the wall clock $now.
-- $params: $now TIMESTAMPTZ (the reader's current time)
-- Columns: source VARCHAR (CloudTrail events / Inventory / Domain sizes / CloudWatch AWS/Usage / Cost Explorer);
--          newest_at TIMESTAMPTZ (the newest data point: event time, collection time, metric hour or cost day);
--          age_hours DOUBLE (NULL when the source has no data)
-- Grain:   one row per source, in the order above
WITH sources AS (
    SELECT 1 AS n, 'CloudTrail events' AS source, (SELECT max(last_at) FROM event_days) AS newest_at
    UNION ALL SELECT 2, 'Inventory', (SELECT max(last_seen_at) FROM package_versions)
    UNION ALL SELECT 3, 'Domain sizes', (SELECT max(collected_at) FROM storage_snapshots)
    UNION ALL SELECT 4, 'CloudWatch AWS/Usage', (SELECT max(metric_at) FROM usage_metrics)
    UNION ALL SELECT 5, 'Cost Explorer', (SELECT max(usage_date)::TIMESTAMPTZ FROM cost_actuals)
)
SELECT source, newest_at, (epoch($now) - epoch(newest_at)) / 3600.0 AS age_hours
FROM sources ORDER BY n
