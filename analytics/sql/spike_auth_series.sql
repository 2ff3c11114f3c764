-- Purpose: auth-failure series per principal and UTC hour, for the auth detector: access-denied
--          events (any API call) and successful GetAuthorizationToken calls (a token loop).
-- $params: $start_at TIMESTAMPTZ (inclusive), $end_at TIMESTAMPTZ (exclusive),
--          $denied_codes VARCHAR[] (error codes that mean "access denied", e.g. AccessDenied,
--          AccessDeniedException, UnauthorizedException)
-- Columns: principal_arn VARCHAR ('unknown' when missing), hour_at TIMESTAMP (UTC, naive),
--          denied BIGINT, tokens BIGINT, token_sessions BIGINT (distinct session_key of the token
--          calls within each domain, summed: a CI job asks for 1-3 tokens at once, so the detector scores
--          sessions)
-- Grain:   one row per principal x hour with at least one denied event or token call
-- Reads:   the auth_hours rollup (whole hours: both bounds are whole UTC hours), not events; with a
--          repository or format filter on, spikes.auth_series reads spike_auth_series_events.sql instead
SELECT principal_arn, hour_at AT TIME ZONE 'UTC' AS hour_at,
       CAST(coalesce(sum(events) FILTER (WHERE error_code IS NOT NULL), 0) AS BIGINT) AS denied,
       CAST(coalesce(sum(events) FILTER (WHERE error_code IS NULL), 0) AS BIGINT) AS tokens,
       CAST(coalesce(sum(token_sessions), 0) AS BIGINT) AS token_sessions
FROM auth_hours
WHERE hour_at >= $start_at AND hour_at < $end_at
  AND (list_contains($denied_codes, error_code) OR error_code IS NULL)
GROUP BY ALL
ORDER BY ALL
