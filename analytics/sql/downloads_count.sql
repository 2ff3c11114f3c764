-- Purpose: how many successful downloads (the `downloads` view: ReadFromRepository of a version's
--          asset with no error) happened in a window; the "Downloads (30 d)" KPI.
-- $params: $start_at TIMESTAMPTZ (inclusive), $end_at TIMESTAMPTZ (exclusive)
-- Columns: downloads BIGINT
-- Grain:   one row for the window
SELECT count(*) AS downloads
FROM downloads
WHERE event_at >= $start_at AND event_at < $end_at
