-- Purpose: data freshness for the dashboard: for each collector, its latest run in every scope
--          (account/region or trail source), summarised.
-- $params: none
-- Columns: collector VARCHAR; status VARCHAR (the worst latest status over its scopes:
--          failed > interrupted > partial > running > ok); scopes BIGINT; failing_scopes BIGINT (latest
--          run not ok); last_started_at, last_finished_at TIMESTAMPTZ (newest over its scopes);
--          rows BIGINT (rows written by those latest runs); error VARCHAR (one error of a failing scope)
-- Grain:   one row per collector, ordered by collector
WITH latest AS (
    SELECT *,
           CASE status WHEN 'failed' THEN 5 WHEN 'interrupted' THEN 4 WHEN 'partial' THEN 3
                       WHEN 'running' THEN 2 WHEN 'ok' THEN 1 ELSE 0 END AS severity
    FROM collector_runs
    QUALIFY row_number() OVER (PARTITION BY collector, scope ORDER BY started_at DESC, run_id DESC) = 1
)
SELECT collector,
       arg_max(status, severity) AS status,
       count(*) AS scopes,
       count(*) FILTER (WHERE status <> 'ok') AS failing_scopes,
       max(started_at) AS last_started_at,
       max(finished_at) AS last_finished_at,
       CAST(sum(rows) AS BIGINT) AS rows,
       arg_max(error, severity) FILTER (WHERE error IS NOT NULL) AS error
FROM latest
GROUP BY collector
ORDER BY collector
