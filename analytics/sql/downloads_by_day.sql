-- Purpose: successful downloads per UTC day and package format, for the downloads-over-time chart.
-- $params: $start_at TIMESTAMPTZ, $end_at TIMESTAMPTZ: a half-open window of whole UTC days
--          ([midnight of the first day, midnight after the last day))
-- Columns: day DATE (UTC), format VARCHAR ('unknown' when an event has none), downloads BIGINT
-- Grain:   one row per day in the window x format seen in the window; a day without downloads of a
--          format is a 0 row (so a line or bar chart shows the gap). No rows when the window is empty.
-- Reads:   the download_days rollup (whole days: $start_at and $end_at are UTC midnights), not events
WITH d AS (
    SELECT day, coalesce(format, 'unknown') AS format, downloads
    FROM download_days
    WHERE day >= CAST($start_at AT TIME ZONE 'UTC' AS DATE) AND day < CAST($end_at AT TIME ZONE 'UTC' AS DATE)
),
days AS (
    SELECT CAST(t.day AS DATE) AS day
    FROM range($start_at AT TIME ZONE 'UTC', $end_at AT TIME ZONE 'UTC', INTERVAL 1 DAY) AS t(day)
),
formats AS (SELECT DISTINCT format FROM d)
SELECT days.day, formats.format, CAST(coalesce(sum(d.downloads), 0) AS BIGINT) AS downloads
FROM days
CROSS JOIN formats
LEFT JOIN d ON d.day = days.day AND d.format = formats.format
GROUP BY days.day, formats.format
ORDER BY days.day, formats.format
