-- Purpose: which days and billing periods the collected bill (cur_line_items) covers.
-- $params: none
-- Columns: first_date DATE, last_date DATE, periods BIGINT, lines BIGINT, with_resources BIGINT (usage lines
--          that carry a CodeArtifact resource id), usage_lines BIGINT
-- Grain:   one row
SELECT min(usage_date) AS first_date, max(usage_date) AS last_date,
       count(DISTINCT billing_period) AS periods, count(*) AS lines,
       count(*) FILTER (WHERE domain IS NOT NULL AND line_item_type = 'Usage') AS with_resources,
       count(*) FILTER (WHERE line_item_type = 'Usage') AS usage_lines
FROM cur_line_items
