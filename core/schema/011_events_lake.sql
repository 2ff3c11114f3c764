-- 011: `events` moves out of the store file into day-partitioned Parquet (core/lake.py), so publishing a
-- store copies its small tables, not its history.
--  * event_files is the catalog of the files; a row commits with the data that depends on it.
--  * The events table becomes event_rows: the events of a store from before this migration wait there
--    until the first write session moves them into files (core/lake.py move_rows), after which it stays
--    empty. `events` is a view over the live files and event_rows (the downloads view reads it).
CREATE TABLE event_files (
    file       VARCHAR NOT NULL,     -- day=YYYY-MM-DD/<uuid>.parquet, relative to <stem>.events/
    day        DATE NOT NULL,        -- the UTC day of every event in the file
    rows       BIGINT NOT NULL,
    min_at     TIMESTAMPTZ,
    max_at     TIMESTAMPTZ,
    bytes      BIGINT,
    added_at   TIMESTAMPTZ NOT NULL,
    retired_at TIMESTAMPTZ           -- set when compaction replaced it; swept an hour later
);
ALTER TABLE events RENAME TO event_rows;
CREATE VIEW events AS SELECT * FROM event_rows;
