-- Purpose: the clients of the data-transfer model: each source IP that downloaded in a window, with the
--          region of the repository it downloaded from (analytics/transfer.py classes each pair against AWS's
--          IP ranges, then sql/transfer_served.sql sums the bytes per class).
-- $params: $start DATE, $end DATE (both inclusive, UTC days)
-- Columns: source_ip VARCHAR (NULL when the events had none), region VARCHAR
-- Grain:   one row per (source_ip, region) with a download in the window
-- Reads:   the transfer_days rollup (the clients of download_ip_days, a row per repository and client a day)
SELECT DISTINCT source_ip, region
FROM transfer_days
WHERE day >= $start AND day <= $end
