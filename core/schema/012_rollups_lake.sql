-- 012: the rollups move out of the store file into day-partitioned Parquet beside the events (core/lake.py),
-- so a publish copies only the small tables, whatever the store's age.
--  * event_files becomes lake_files, the catalog of every dataset's files (its `dataset` column names
--    'events' or a rollup table).
--  * Each rollup table becomes <table>_rows (the rows of a store from before this migration wait there
--    until the first write session moves them into files) under a view of the table's name, rebuilt over
--    the live files whenever the catalog changes.
ALTER TABLE event_files RENAME TO lake_files;
ALTER TABLE lake_files ADD COLUMN dataset VARCHAR DEFAULT 'events';
UPDATE lake_files SET dataset = 'events';
ALTER TABLE event_days RENAME TO event_days_rows;
CREATE VIEW event_days AS SELECT * FROM event_days_rows;
ALTER TABLE download_days RENAME TO download_days_rows;
CREATE VIEW download_days AS SELECT * FROM download_days_rows;
ALTER TABLE download_sessions_days RENAME TO download_sessions_days_rows;
CREATE VIEW download_sessions_days AS SELECT * FROM download_sessions_days_rows;
ALTER TABLE principal_hours RENAME TO principal_hours_rows;
CREATE VIEW principal_hours AS SELECT * FROM principal_hours_rows;
