-- Purpose: how much download history the store holds: "unused for N days" is only evidence when the
--          trail reaches back that far, so a version never seen downloaded counts as idle since
--          max(its publication, the first event), never longer.
-- $params: none
-- Columns: first_event_at, latest_event_at TIMESTAMPTZ (both NULL when there are no events)
-- Grain:   one row for the whole store
-- Source:  the event_days rollup (analytics/rollups.py).
SELECT min(first_at) AS first_event_at, max(last_at) AS latest_event_at
FROM event_days
