-- Purpose: auth-failure series per principal and UTC hour, for the auth detector: access-denied
--          events (any API call) and successful GetAuthorizationToken calls (a token loop).
-- $params: $start_at TIMESTAMPTZ (inclusive), $end_at TIMESTAMPTZ (exclusive),
--          $denied_codes VARCHAR[] (error codes that mean "access denied", e.g. AccessDenied,
--          AccessDeniedException, UnauthorizedException)
-- Columns: principal_arn VARCHAR ('unknown' when missing), hour_at TIMESTAMP (UTC, naive),
--          denied BIGINT, tokens BIGINT, token_sessions BIGINT (distinct session_key of the token
--          calls within each account, region and domain, summed, as auth_hours counts them: a CI job asks
--          for 1-3 tokens at once, so the detector scores sessions)
-- Grain:   one row per principal x hour with at least one denied event or token call
-- Reads:   events (with a repository or format filter on, which the auth_hours rollup of
--          spike_auth_series.sql cannot apply)
SELECT coalesce(principal_arn, 'unknown') AS principal_arn,
       date_trunc('hour', event_at AT TIME ZONE 'UTC') AS hour_at,
       count(*) FILTER (WHERE list_contains($denied_codes, error_code)) AS denied,
       count(*) FILTER (WHERE event_name = 'GetAuthorizationToken' AND error_code IS NULL) AS tokens,
       count(DISTINCT (account_id, region, domain, session_key(principal_arn, source_ip, event_at)))
           FILTER (WHERE event_name = 'GetAuthorizationToken' AND error_code IS NULL) AS token_sessions
FROM events
WHERE event_at >= $start_at AND event_at < $end_at
  AND (list_contains($denied_codes, error_code)
       OR (event_name = 'GetAuthorizationToken' AND error_code IS NULL))
GROUP BY ALL
ORDER BY ALL
