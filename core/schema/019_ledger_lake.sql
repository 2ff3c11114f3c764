-- 019: the trail-file ledger's closed months move out of the store file into the lake (core/lake.py LEDGER),
-- as the events and rollups did (011, 012): the ledger keeps a row for every trail file ever read (a year of
-- an organization's trail is millions of rows), and every publish copied all of them.
--  * cloudtrail_files becomes cloudtrail_files_rows under a view of its name over the lake's files and the
--    rows; each batch still inserts its files' rows there, in its own transaction, and the rows of months
--    before the open month (core/lake.py open_month) go into a file a month before each publish.
--  * `day` is the trail file's day folder (YYYY/MM/DD of a trail, day=YYYY-MM-DD of a Spark extract):
--    what the listing matches a run's files on, and what the files are partitioned by. NULL when the key
--    has none (such rows stay in the store file).
ALTER TABLE cloudtrail_files RENAME TO cloudtrail_files_rows;
ALTER TABLE cloudtrail_files_rows ADD COLUMN day DATE;
UPDATE cloudtrail_files_rows SET day = CASE
    WHEN regexp_matches(key, '/(\d{4})/(\d{2})/(\d{2})/[^/]*$')
        THEN TRY_CAST(regexp_replace(regexp_extract(key, '/(\d{4}/\d{2}/\d{2})/[^/]*$', 1), '/', '-', 'g') AS DATE)
    WHEN regexp_matches(key, '(^|/)day=\d{4}-\d{2}-\d{2}/')
        THEN TRY_CAST(regexp_extract(key, '(^|/)day=(\d{4}-\d{2}-\d{2})/', 2) AS DATE)
END;
CREATE VIEW cloudtrail_files AS SELECT * FROM cloudtrail_files_rows;
