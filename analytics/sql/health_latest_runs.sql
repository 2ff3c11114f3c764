-- Purpose: data health: the latest run of every collector in every scope, with its error (which
--          carries its fix text) and the files or records it skipped.
-- $params: none
-- Columns: collector, scope VARCHAR; status VARCHAR (ok / partial / failed / interrupted / running);
--          started_at, finished_at TIMESTAMPTZ; secs DOUBLE; rows, skipped BIGINT;
--          skipped_items VARCHAR[] (one "item: why" per skipped file or record group); error VARCHAR
-- Grain:   one row per (collector, scope), failing first, then by collector and scope
SELECT collector, scope, status, started_at, finished_at,
       epoch(finished_at) - epoch(started_at) AS secs,
       rows, skipped, skipped_items, error
FROM collector_runs
QUALIFY row_number() OVER (PARTITION BY collector, scope ORDER BY started_at DESC, run_id DESC) = 1
ORDER BY status = 'ok', collector, scope
