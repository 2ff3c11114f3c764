-- 024: the spike detectors' package and domain series (download_sessions_days' levels 'package' and 'domain',
-- analytics/sql/rollup_download_sessions_days.sql) are keyed by the package as CodeArtifact stores it
-- (namespace_key, package_key: 021), as the usage tables and the cleanup report already were: CloudTrail records
-- the spelling each client sent (pip's `Zope.Interface`, another tool's `zope_interface`, both the stored
-- `zope-interface`), and each spelling was a series of its own, so a spike spread over two spellings was two
-- halves, each maybe under the threshold.
--
-- The rows a store holds were grouped by the recorded spelling and add up all the same, so no check would notice:
-- the next write session rebuilds this rollup (analytics/rollups.py heal, on this 'rebuild:<rollup>' row) and
-- removes the row. A store without such rows (a new one) has nothing to rebuild: its first backfill would
-- otherwise compute the rollup twice. (The catalog and the rows table, not the rollup's view: a migration runs
-- before the lake's views are pointed at this store's files.)
INSERT INTO store_meta SELECT 'rebuild:download_sessions_days', 24
WHERE EXISTS (SELECT 1 FROM lake_files WHERE dataset = 'download_sessions_days' AND retired_at IS NULL)
   OR EXISTS (SELECT 1 FROM download_sessions_days_rows);
