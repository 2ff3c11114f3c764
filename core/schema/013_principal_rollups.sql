-- 013: two more rollups, so the usage tables and the auth-spike series of a large store read days and hours
-- instead of raw events (analytics/sql/rollup_download_principal_days.sql, rollup_auth_hours.sql). Both are
-- lake datasets like the other rollups (core/lake.py): <table>_rows under a view of the table's name.
-- A store from before this migration has none of their rows: the next write session's heal rebuilds every
-- rollup (analytics/rollups.py heal compares download_principal_days with download_days).
CREATE TABLE download_principal_days_rows (
    day           DATE NOT NULL,
    account_id    VARCHAR,
    region        VARCHAR,
    domain        VARCHAR,
    repository    VARCHAR,
    format        VARCHAR,
    namespace     VARCHAR,
    package       VARCHAR,
    version       VARCHAR,
    principal_arn VARCHAR,            -- as in events (NULL when the event had none)
    downloads     BIGINT NOT NULL
);
CREATE VIEW download_principal_days AS SELECT * FROM download_principal_days_rows;
CREATE TABLE auth_hours_rows (
    hour_at        TIMESTAMPTZ NOT NULL,  -- the UTC hour's start
    principal_arn  VARCHAR NOT NULL,      -- 'unknown' when the event had none
    error_code     VARCHAR,               -- NULL: successful GetAuthorizationToken calls
    events         BIGINT NOT NULL,
    token_sessions BIGINT NOT NULL        -- distinct session_key among the successful token calls; 0 on error rows
);
CREATE VIEW auth_hours AS SELECT * FROM auth_hours_rows;
