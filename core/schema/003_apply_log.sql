-- 003: the audit trail of `caa apply`. Forward-only: later changes go in a new NNN_*.sql file.
-- One apply_runs row per `caa apply` invocation, one apply_log row per version it planned, skipped or
-- tried to change. A batch's apply_log rows and its apply_runs counters are committed in one transaction
-- right after the AWS call returns, so an interrupted run leaves exactly the batches that were done, and a
-- re-run of the same input (same input_sha256) skips the versions already logged with result 'ok'.

CREATE SEQUENCE apply_run_ids START 1;
CREATE TABLE apply_runs (
    run_id        BIGINT NOT NULL DEFAULT nextval('apply_run_ids'),
    input_file    VARCHAR NOT NULL,   -- the report path as given
    input_sha256  VARCHAR NOT NULL,   -- hash of the report's bytes: the key that makes re-runs resume
    action        VARCHAR NOT NULL,   -- unlist / archive / dispose / delete / staged
    mode          VARCHAR NOT NULL,   -- dry-run / execute
    who           VARCHAR NOT NULL,   -- caller ARN(s) from sts:GetCallerIdentity and the OS user
    report_at     TIMESTAMPTZ,        -- the report time the download re-check compares with
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ,
    status        VARCHAR NOT NULL,   -- running / planned / ok / partial / failed / interrupted
    batches_done  BIGINT NOT NULL DEFAULT 0,
    ok            BIGINT NOT NULL DEFAULT 0,
    failed        BIGINT NOT NULL DEFAULT 0,
    skipped       BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE apply_log (
    run_id            BIGINT NOT NULL,
    logged_at         TIMESTAMPTZ NOT NULL,   -- when the call returned (or the row was planned/skipped); `at` is reserved in DuckDB
    who               VARCHAR NOT NULL,       -- caller ARN (sts:GetCallerIdentity) and OS user
    action            VARCHAR NOT NULL,       -- unlist / archive / dispose / delete / staged:archive / staged:dispose
    account_id        VARCHAR NOT NULL,       -- the domain owner
    region            VARCHAR NOT NULL,
    domain            VARCHAR NOT NULL,
    repository        VARCHAR NOT NULL,
    format            VARCHAR NOT NULL,
    namespace         VARCHAR,                -- NULL when the package has none
    package           VARCHAR NOT NULL,
    version           VARCHAR NOT NULL,
    expected_status   VARCHAR,                -- passed as expectedStatus
    expected_revision VARCHAR,                -- passed in versionRevisions (not for delete, which has none)
    result            VARCHAR NOT NULL,       -- ok / failed / skipped / planned
    error_code        VARCHAR,                -- failedVersions errorCode (e.g. MISMATCHED_REVISION) or AWS error
    message           VARCHAR,                -- why a row was skipped, or the error message
    new_status        VARCHAR,                -- successfulVersions status (e.g. Archived)
    new_revision      VARCHAR,                -- successfulVersions revision (the staged dispose expects it)
    input_sha256      VARCHAR NOT NULL,
    batch             BIGINT                  -- batch number within the run; NULL for planned/skipped rows
);
