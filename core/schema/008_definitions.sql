-- 008: one definition of a download and of a session, as macros every query uses: the `downloads` view
-- (below), the daily rollups (analytics/sql/rollup_*.sql) and the spike series (analytics/sql/spike_*.sql).
-- Before this file each of them spelled the predicate or the session key out again.

-- A download: a successful package-manager fetch of a version's asset (metadata requests have no
-- version or asset; a failed request has an error code).
CREATE MACRO is_download(event_name, error_code, version, asset) AS
    event_name = 'ReadFromRepository' AND error_code IS NULL AND version IS NOT NULL AND asset IS NOT NULL;

-- A session: one principal from one source IP in one UTC minute. A CI job that fetches a package 40 times
-- in a minute is one session, so detectors that score sessions are robust to such clusters.
CREATE MACRO session_key(principal_arn, source_ip, event_at) AS
    (principal_arn, source_ip, date_trunc('minute', event_at AT TIME ZONE 'UTC'));

CREATE OR REPLACE VIEW downloads AS
SELECT * FROM events WHERE is_download(event_name, error_code, version, asset);
