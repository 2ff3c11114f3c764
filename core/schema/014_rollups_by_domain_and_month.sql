-- 014: principal_hours and auth_hours gain the domain (auth_hours also its account and region), so a
-- dashboard filtered to a domain reads the request-volume and auth-spike series from the rollups instead
-- of every raw event of its days (at 200M events: 5 s and 2 s per view, target 1 s). A session
-- (session_key, core/schema/008_definitions.sql) is now counted within one domain in both rollups and in
-- the queries that read raw events beside them (analytics/sql/spike_principal_requests.sql,
-- spike_auth_series_events.sql): a build that talks to two domains in one minute opens two sessions, one
-- per registry it is configured with.
-- download_months: downloads per version and calendar month (the download_days rows of the month, summed),
-- so the cleanup report's windows and totals read a row a month for the past instead of a row a day
-- (analytics/sql/cleanup_versions.sql; 7.5M day rows at 200M events).
-- The rows written before have no domain: their files are retired (at the migration's time, caa_now, so
-- a reader of the old snapshot keeps them for the lake's grace) and every rollup is emptied, which makes
-- the next write session's heal (analytics/rollups.py) rebuild them all before anything is published.
CREATE TABLE download_months_rows (
    month      DATE NOT NULL,         -- the month's first day (UTC)
    account_id VARCHAR,
    region     VARCHAR,
    domain     VARCHAR,
    repository VARCHAR,
    format     VARCHAR,
    namespace  VARCHAR,
    package    VARCHAR,
    version    VARCHAR,
    downloads  BIGINT NOT NULL,
    last_at    TIMESTAMPTZ NOT NULL
);
CREATE VIEW download_months AS SELECT * FROM download_months_rows;
ALTER TABLE principal_hours_rows ADD COLUMN domain VARCHAR;
ALTER TABLE auth_hours_rows ADD COLUMN account_id VARCHAR;
ALTER TABLE auth_hours_rows ADD COLUMN region VARCHAR;
ALTER TABLE auth_hours_rows ADD COLUMN domain VARCHAR;
UPDATE lake_files SET retired_at = getvariable('caa_now') WHERE dataset <> 'events' AND retired_at IS NULL;
DELETE FROM event_days_rows;
DELETE FROM download_days_rows;
DELETE FROM download_sessions_days_rows;
DELETE FROM download_principal_days_rows;
DELETE FROM principal_hours_rows;
DELETE FROM auth_hours_rows;
