-- 001: the store's first schema. Forward-only: later changes go in 002_*.sql and never edit this file.
-- Every *_at column is a UTC TIMESTAMPTZ; namespaces are spelled as the CodeArtifact API spells them
-- (npm scope without '@', maven groupId) and are NULL when a package has none.

CREATE TABLE store_meta (key VARCHAR NOT NULL, value BIGINT NOT NULL);
INSERT INTO store_meta VALUES ('store_version', 0);

-- One row per CloudTrail eventID of codeartifact.amazonaws.com. No PRIMARY KEY: the loader dedupes by
-- an anti-join restricted to the batch's time window (an index would make the table ~6x larger).
CREATE TABLE events (
    event_id       VARCHAR NOT NULL,
    event_at       TIMESTAMPTZ NOT NULL,
    event_name     VARCHAR NOT NULL,
    account_id     VARCHAR,      -- account billed for the request: the domain owner, else the trail's account
    region         VARCHAR,
    domain         VARCHAR,
    domain_owner   VARCHAR,
    repository     VARCHAR,
    format         VARCHAR,
    namespace      VARCHAR,
    package        VARCHAR,
    version        VARCHAR,
    asset          VARCHAR,      -- file name at the end of request_uri, only for version asset fetches
    principal_arn  VARCHAR,
    principal_type VARCHAR,
    source_ip      VARCHAR,
    user_agent     VARCHAR,
    error_code     VARCHAR,
    request_uri    VARCHAR
);

-- Successful package-manager fetches of a version's asset (metadata requests have no version/asset).
CREATE VIEW downloads AS
SELECT * FROM events
WHERE event_name = 'ReadFromRepository' AND error_code IS NULL AND version IS NOT NULL AND asset IS NOT NULL;

CREATE TABLE domains (
    account_id       VARCHAR NOT NULL,   -- the domain owner
    region           VARCHAR NOT NULL,
    domain           VARCHAR NOT NULL,
    status           VARCHAR,
    created_at       TIMESTAMPTZ,
    repository_count BIGINT,
    asset_size_bytes BIGINT,
    encryption_key   VARCHAR,
    last_seen_at     TIMESTAMPTZ NOT NULL
);

CREATE TABLE repositories (
    account_id            VARCHAR NOT NULL,
    region                VARCHAR NOT NULL,
    domain                VARCHAR NOT NULL,
    repository            VARCHAR NOT NULL,
    administrator_account VARCHAR,
    description           VARCHAR,
    upstreams             VARCHAR[],
    external_connections  VARCHAR[],
    created_at            TIMESTAMPTZ,
    tags                  MAP(VARCHAR, VARCHAR),
    last_seen_at          TIMESTAMPTZ NOT NULL
);

CREATE TABLE packages (
    account_id      VARCHAR NOT NULL,
    region          VARCHAR NOT NULL,
    domain          VARCHAR NOT NULL,
    repository      VARCHAR NOT NULL,
    format          VARCHAR NOT NULL,
    namespace       VARCHAR,
    package         VARCHAR NOT NULL,
    origin_publish  VARCHAR,   -- ALLOW / BLOCK
    origin_upstream VARCHAR,   -- ALLOW / BLOCK
    last_seen_at    TIMESTAMPTZ NOT NULL
);

-- The current inventory: one row per version per repository.
CREATE TABLE package_versions (
    account_id    VARCHAR NOT NULL,
    region        VARCHAR NOT NULL,
    domain        VARCHAR NOT NULL,
    repository    VARCHAR NOT NULL,
    format        VARCHAR NOT NULL,
    namespace     VARCHAR,
    package       VARCHAR NOT NULL,
    version       VARCHAR NOT NULL,
    status        VARCHAR NOT NULL,
    revision      VARCHAR,
    origin_type   VARCHAR,   -- INTERNAL / EXTERNAL / UNKNOWN
    published_at  TIMESTAMPTZ,
    first_seen_at TIMESTAMPTZ NOT NULL,
    last_seen_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE assets (
    account_id VARCHAR NOT NULL,
    region     VARCHAR NOT NULL,
    domain     VARCHAR NOT NULL,
    repository VARCHAR NOT NULL,
    format     VARCHAR NOT NULL,
    namespace  VARCHAR,
    package    VARCHAR NOT NULL,
    version    VARCHAR NOT NULL,
    asset      VARCHAR NOT NULL,
    size_bytes BIGINT,
    sha256     VARCHAR
);

-- Dependencies declared by INTERNAL versions (list_package_version_dependencies).
CREATE TABLE package_dependencies (
    account_id           VARCHAR NOT NULL,
    region               VARCHAR NOT NULL,
    domain               VARCHAR NOT NULL,
    repository           VARCHAR NOT NULL,
    format               VARCHAR NOT NULL,
    namespace            VARCHAR,
    package              VARCHAR NOT NULL,
    version              VARCHAR NOT NULL,
    dependency_namespace VARCHAR,
    dependency_package   VARCHAR NOT NULL,
    dependency_type      VARCHAR,
    version_requirement  VARCHAR
);

-- Daily deduplicated domain size from describe_domain (last reading of the day wins).
CREATE TABLE storage_snapshots (
    snapshot_date    DATE NOT NULL,
    account_id       VARCHAR NOT NULL,
    region           VARCHAR NOT NULL,
    domain           VARCHAR NOT NULL,
    asset_size_bytes BIGINT NOT NULL,
    collected_at     TIMESTAMPTZ NOT NULL
);

-- AWS/Usage CallCount (Service=CodeArtifact), hourly sums.
CREATE TABLE usage_metrics (
    metric_at  TIMESTAMPTZ NOT NULL,
    account_id VARCHAR NOT NULL,
    region     VARCHAR NOT NULL,
    metric     VARCHAR NOT NULL,
    resource   VARCHAR NOT NULL,   -- the API operation
    value      DOUBLE NOT NULL
);

-- Cost Explorer daily actuals for SERVICE = "AWS CodeArtifact".
CREATE TABLE cost_actuals (
    usage_date     DATE NOT NULL,
    account_id     VARCHAR NOT NULL,
    usage_type     VARCHAR NOT NULL,
    cost_usd       DOUBLE NOT NULL,
    usage_quantity DOUBLE NOT NULL,
    unit           VARCHAR
);

-- Ledger of trail files already ingested: a known (source, key, etag) is never fetched again.
CREATE TABLE cloudtrail_files (
    source       VARCHAR NOT NULL,
    key          VARCHAR NOT NULL,
    etag         VARCHAR,
    size_bytes   BIGINT,
    events       BIGINT,       -- CodeArtifact records in the file (before dedupe)
    processed_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE watermarks (
    collector  VARCHAR NOT NULL,
    scope      VARCHAR NOT NULL,
    value      VARCHAR NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE SEQUENCE collector_run_ids START 1;
CREATE TABLE collector_runs (
    run_id        BIGINT NOT NULL DEFAULT nextval('collector_run_ids'),
    collector     VARCHAR NOT NULL,
    scope         VARCHAR NOT NULL,
    account_id    VARCHAR,
    region        VARCHAR,
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ,
    status        VARCHAR NOT NULL,   -- running / ok / partial / failed / interrupted
    rows          BIGINT NOT NULL DEFAULT 0,
    skipped       BIGINT NOT NULL DEFAULT 0,
    skipped_items VARCHAR[],
    error         VARCHAR
);
