-- Purpose: the store's "now": the newest event, which every "last 30 days" and "this month" is relative
--          to (not the wall clock), so an estate collected days ago still shows its data.
-- $params: none
-- Columns: latest_event_at TIMESTAMPTZ (NULL when there are no events), events BIGINT
-- Grain:   one row for the whole store
-- Source:  the event_days rollup (analytics/rollups.py): the same numbers as events, at any size.
SELECT max(last_at) AS latest_event_at, CAST(coalesce(sum(events), 0) AS BIGINT) AS events
FROM event_days
