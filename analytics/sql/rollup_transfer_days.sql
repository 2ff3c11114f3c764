-- Purpose: the transfer_days rollup rows (core/schema/016_transfer_days.sql) of the days the refresh just
--          recomputed for download_ip_days: its rows summed per day, repository, format and source IP, the
--          bytes as downloads x size_bytes, so the data-transfer model's account and repository views read
--          a row per client and repository a day (analytics/sql/transfer_served.sql)
-- $params: none: it reads the refresh's TEMP table new_download_ip_days (analytics/rollups.py refresh)
-- Columns: the columns of transfer_days, in order (an INSERT into the TEMP table new_transfer_days)
-- Grain:   one row per day x account x region x domain x repository x format x source_ip
INSERT INTO new_transfer_days
SELECT day, account_id, region, domain, repository, format, source_ip,
       sum(downloads) AS downloads,
       coalesce(sum(downloads) FILTER (WHERE size_bytes IS NULL), 0) AS unsized_downloads,
       coalesce(sum(downloads * size_bytes), 0) AS bytes
FROM new_download_ip_days
GROUP BY ALL
