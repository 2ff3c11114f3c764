-- 025: each stored version's assets summed in its own row. The cleanup report needs every version's size
-- (analytics/sql/cleanup_versions.sql), and summed it by grouping every asset by eight text columns and
-- joining the sums back to the versions on the same eight: 45-70 ms of its 230-310 ms at 120,000 versions,
-- every time the report or the dashboard's cleanup page opened. The assets change only in an inventory
-- session, so they are summed when they change instead (core/lake.py size_versions):
--  * assets_bytes: the sum of the version's assets' size_bytes (0 without assets or sizes);
--  * assets_count: the number of its assets rows.
-- Both NULL until counted: a row an inventory session wrote (or this migration added) is counted by the next
-- publish, in the transaction that writes the assets' file when the assets changed. A reader uses the columns
-- only when no row is NULL and no asset waits in assets_rows (lake.versions_sized); otherwise it sums the
-- assets as before.
ALTER TABLE package_versions ADD COLUMN assets_bytes BIGINT;
ALTER TABLE package_versions ADD COLUMN assets_count BIGINT;
