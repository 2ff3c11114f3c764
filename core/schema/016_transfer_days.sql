-- 016: the data-transfer model sized when its days are rolled up, and summed per repository, so the bill
-- page reads a row per day, repository, format and client (23k rows a year at 200M events) instead of
-- joining every row of download_ip_days (18.3M a year) to the assets on nine text columns (1.5-2.8 s a
-- view at 200M; the target is 300 ms).
-- download_ip_days gains size_bytes: the size the inventory (assets) had for the asset when the day was
-- rolled up, NULL when it had none. A download so left unsized is sized again by the first publish after
-- an inventory load that brings its asset (analytics/rollups.py resize); an asset deleted later keeps
-- the size its downloads were given (until a rebuild of the rollup, which sizes from the inventory of its
-- time).
-- transfer_days: download_ip_days per day, repository, format and source IP, its bytes summed
-- (downloads x size_bytes), with the downloads it could not size. Both are lake datasets (core/lake.py).
-- download_ip_days' rows written before have no size: their files are retired (at caa_now, so a reader of
-- the old snapshot keeps them for the lake's grace) and its rows emptied, which makes the next write
-- session's heal rebuild it, and transfer_days with it, before anything is published.
ALTER TABLE download_ip_days_rows ADD COLUMN size_bytes BIGINT;
CREATE TABLE transfer_days_rows (
    day               DATE NOT NULL,
    account_id        VARCHAR,
    region            VARCHAR,
    domain            VARCHAR,
    repository        VARCHAR,
    format            VARCHAR,
    source_ip         VARCHAR,        -- as in events (NULL when the event had none)
    downloads         BIGINT NOT NULL,
    unsized_downloads BIGINT NOT NULL, -- of downloads, those whose asset had no size (bytes leaves them out)
    bytes             BIGINT NOT NULL  -- sum of downloads x size_bytes
);
CREATE VIEW transfer_days AS SELECT * FROM transfer_days_rows;
UPDATE lake_files SET retired_at = getvariable('caa_now') WHERE dataset = 'download_ip_days' AND retired_at IS NULL;
DELETE FROM download_ip_days_rows;
