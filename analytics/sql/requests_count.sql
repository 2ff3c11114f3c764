-- Purpose: how many CodeArtifact requests succeeded in a window (what the request price applies to).
-- Convention: a request is one CloudTrail event with error_code IS NULL, counted once.
-- $params: $start_at TIMESTAMPTZ (inclusive), $end_at TIMESTAMPTZ (exclusive)
-- Columns: requests BIGINT
-- Grain:   one row
SELECT count(*) AS requests FROM events WHERE event_at >= $start_at AND event_at < $end_at AND error_code IS NULL
