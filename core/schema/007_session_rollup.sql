-- 007: a daily rollup of download sessions for the spike detectors (analytics/sql/spike_download_series.sql).
-- A session is one (principal_arn, source_ip, UTC minute); distinct sessions do not add up across series,
-- so each detector level has its own rows: 'package' (domain, repository, format, namespace, package),
-- 'repository' (domain, repository) and 'principal' (principal_arn), the other key columns NULL. They do
-- add up across days (a minute lies in one day). Maintained with the other rollups (analytics/rollups.py),
-- and built for an existing store right after this file runs.
CREATE TABLE download_sessions_days (
    day           DATE NOT NULL,
    level         VARCHAR NOT NULL,   -- 'package' | 'repository' | 'principal'
    account_id    VARCHAR,
    region        VARCHAR,
    domain        VARCHAR,
    repository    VARCHAR,
    format        VARCHAR,
    namespace     VARCHAR,
    package       VARCHAR,
    principal_arn VARCHAR,            -- 'unknown' when the event had none
    sessions      BIGINT NOT NULL,
    downloads     BIGINT NOT NULL
);
