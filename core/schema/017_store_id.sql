-- 017: a random identity for the store, copied into its reader snapshot, so that a process that keeps
-- something computed from a snapshot (analytics/cleanup.py facts) tells two stores apart that sit at the
-- same path at the same store version (a store deleted and collected again while the dashboard runs).
INSERT INTO store_meta SELECT 'store_id', CAST(floor(random() * 9.0e18) AS BIGINT)
WHERE NOT EXISTS (SELECT 1 FROM store_meta WHERE key = 'store_id');
