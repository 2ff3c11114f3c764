-- Purpose: how many successful downloads (the `downloads` view: ReadFromRepository of a version's
--          asset with no error) happened in a window; the "Downloads (30 d)" KPI.
-- $params: $start_at TIMESTAMPTZ (inclusive), $end_at TIMESTAMPTZ (exclusive)
-- Columns: downloads BIGINT
-- Grain:   one row for the window
-- Reads:   the download_days rollup (whole days: $start_at and $end_at are UTC midnights), not events
SELECT CAST(coalesce(sum(downloads), 0) AS BIGINT) AS downloads
FROM download_days
WHERE day >= CAST($start_at AT TIME ZONE 'UTC' AS DATE) AND day < CAST($end_at AT TIME ZONE 'UTC' AS DATE)
