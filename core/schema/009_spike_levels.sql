-- 009: what the spike detectors read beyond 007's sessions (analytics/spikes.py):
--  * download_sessions_days gains rows of level 'domain': a package across every repository of its domain
--    (domain, format, namespace, package; repository NULL), so a surge spread over several repositories,
--    none of which sees much, is scored on its whole.
--  * download_sessions_days gains downloads_sq, the sum over its sessions of (downloads in the session)^2:
--    with the downloads it gives the index of dispersion of clustered downloads (sum n^2 / sum n), the
--    noise the volume signal allows for (a CI job fetching 50 files in a minute is normal, not a spike).
--  * principal_hours: billed requests and downloads per principal and UTC hour, with the same sum of
--    squares per session, for the request-volume signal (a job looping on requests is one session a
--    minute, however many requests it makes).
-- Both are rollups of `events`, kept by the before-publish hook (analytics/rollups.py). Emptying
-- event_days below makes that hook's heal rebuild every rollup, the new rows included, in the next write
-- session, before anything is published.
CREATE TABLE principal_hours (
    hour_at       TIMESTAMPTZ NOT NULL,   -- the UTC hour's start
    account_id    VARCHAR,
    region        VARCHAR,
    principal_arn VARCHAR NOT NULL,       -- 'unknown' when the event had none
    requests      BIGINT NOT NULL,        -- events without an error code (billed requests)
    downloads     BIGINT NOT NULL,        -- of which downloads (is_download)
    sessions      BIGINT NOT NULL,        -- distinct session_key among the requests
    requests_sq   BIGINT NOT NULL         -- sum over those sessions of (requests in the session)^2
);

ALTER TABLE download_sessions_days ADD COLUMN downloads_sq BIGINT NOT NULL DEFAULT 0;

DELETE FROM event_days;
