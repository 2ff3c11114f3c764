-- 005: daily rollups of `events`, so dashboard questions over months of history read thousands of rows
-- instead of scanning millions. Maintained by analytics/rollups.py: every UTC day the loaders touch is
-- recomputed from `events` before the next publish, so a rollup row is always a pure function of that
-- day's events (re-runs, late files and duplicates included). Queries still aggregate over rows.
-- The rows for an existing store are built by the before-publish hook's heal (analytics/rollups.py).

-- One row per UTC day, account, region, domain, repository, format, event name and outcome.
CREATE TABLE event_days (
    day              DATE NOT NULL,          -- UTC day of event_at
    account_id       VARCHAR,
    region           VARCHAR,
    domain           VARCHAR,
    repository       VARCHAR,
    format           VARCHAR,
    event_name       VARCHAR NOT NULL,
    ok               BOOLEAN NOT NULL,       -- error_code IS NULL (a billed request)
    events           BIGINT NOT NULL,
    downloads        BIGINT NOT NULL,        -- rows of the `downloads` view among them
    first_at         TIMESTAMPTZ NOT NULL,
    last_at          TIMESTAMPTZ NOT NULL,
    last_download_at TIMESTAMPTZ             -- NULL when none of them is a download
);

-- One row per UTC day and downloaded package version (the `downloads` view, summed).
CREATE TABLE download_days (
    day        DATE NOT NULL,
    account_id VARCHAR,
    region     VARCHAR,
    domain     VARCHAR,
    repository VARCHAR,
    format     VARCHAR,
    namespace  VARCHAR,
    package    VARCHAR,
    version    VARCHAR,
    downloads  BIGINT NOT NULL,
    first_at   TIMESTAMPTZ NOT NULL,
    last_at    TIMESTAMPTZ NOT NULL
);
