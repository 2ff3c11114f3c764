-- Purpose: data health: how many rows each table of the store holds, and the trail files ingested.
-- $params: none
-- Columns: table_name VARCHAR; row_count BIGINT
-- Grain:   one row per table of the public schema
-- Source:  events and downloads are counted from the event_days rollup (equal by construction, and a
--          scan of thousands of rows instead of millions when filters are set).
SELECT 'events' AS table_name, (SELECT CAST(coalesce(sum(events), 0) AS BIGINT) FROM event_days) AS row_count
UNION ALL SELECT 'downloads (view)', (SELECT CAST(coalesce(sum(downloads), 0) AS BIGINT) FROM event_days)
UNION ALL SELECT 'package_versions', (SELECT count(*) FROM package_versions)
UNION ALL SELECT 'assets', (SELECT count(*) FROM assets)
UNION ALL SELECT 'package_dependencies', (SELECT count(*) FROM package_dependencies)
UNION ALL SELECT 'repositories', (SELECT count(*) FROM repositories)
UNION ALL SELECT 'domains', (SELECT count(*) FROM domains)
UNION ALL SELECT 'storage_snapshots', (SELECT count(*) FROM storage_snapshots)
UNION ALL SELECT 'usage_metrics', (SELECT count(*) FROM usage_metrics)
UNION ALL SELECT 'cost_actuals', (SELECT count(*) FROM cost_actuals)
UNION ALL SELECT 'cloudtrail_files', (SELECT count(*) FROM cloudtrail_files)
UNION ALL SELECT 'collector_runs', (SELECT count(*) FROM collector_runs)
