-- 020: the inventory's assets move out of the store file into the lake (core/lake.py ASSETS), as the events,
-- rollups and the trail-file ledger did (011, 012, 019): a row for each file of each package version with its
-- SHA-256, 120,000 rows for an estate of 120,000 versions, the largest table of the store file, and every
-- publish copied it, also the cloudtrail collector's every 30 minutes when the inventory had not changed.
--  * assets becomes assets_rows under a view of its name over one Parquet file and the rows. The inventory
--    collector takes the file's rows back into assets_rows before it replaces a repository's (lake.thaw), and
--    the publish after it writes them as one new file (lake.freeze), so the store file holds them only during
--    an inventory session.
ALTER TABLE assets RENAME TO assets_rows;
CREATE VIEW assets AS SELECT * FROM assets_rows;
