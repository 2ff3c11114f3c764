-- Purpose: the days each source covers, to pick the window of full days that modeled cost and Cost
--          Explorer actuals can be compared over, and the forecast's history.
-- $params: none
-- Columns: first_snapshot_date, last_snapshot_date DATE; first_event_at, latest_event_at TIMESTAMPTZ;
--          first_actual_date, last_actual_date DATE (NULL when a source is empty)
-- Grain:   one row for the whole store
SELECT (SELECT min(snapshot_date) FROM storage_snapshots) AS first_snapshot_date,
       (SELECT max(snapshot_date) FROM storage_snapshots) AS last_snapshot_date,
       (SELECT min(first_at) FROM event_days) AS first_event_at,  -- the rollup of events
       (SELECT max(last_at) FROM event_days) AS latest_event_at,
       (SELECT min(usage_date) FROM cost_actuals) AS first_actual_date,
       (SELECT max(usage_date) FROM cost_actuals) AS last_actual_date
