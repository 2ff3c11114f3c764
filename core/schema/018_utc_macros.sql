-- 018: UTC without ICU. `ts AT TIME ZONE 'UTC'` goes through ICU's time-zone rules for every row, and the
-- rollups (analytics/sql/rollup_*.sql) spent a fifth of their CPU there (measured on the bench trail's 4.9M
-- events: 9.5 to 7.4 CPU-s, the same rows). A UTC instant and its UTC wall-clock time are the same count of
-- microseconds since the epoch, so these two macros convert exactly, whatever the session's TimeZone.

-- ts AT TIME ZONE 'UTC' for a TIMESTAMPTZ: its UTC wall-clock TIMESTAMP (truncate or cast it to DATE for a
-- UTC hour, minute or day).
CREATE MACRO utc_wall(ts) AS make_timestamp(epoch_us(ts));

-- t AT TIME ZONE 'UTC' for a TIMESTAMP read as UTC wall-clock time: its instant, a TIMESTAMPTZ.
CREATE MACRO utc_instant(t) AS make_timestamptz(epoch_us(t));

-- 008's session (one principal from one source IP in one UTC minute), the same key, through utc_wall.
CREATE OR REPLACE MACRO session_key(principal_arn, source_ip, event_at) AS
    (principal_arn, source_ip, date_trunc('minute', utc_wall(event_at)));
