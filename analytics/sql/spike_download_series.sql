-- Purpose: download series for spike detection: sessions and downloads per series and time bucket.
--          A session is session_key (core/schema/008_definitions.sql): one principal from one IP in one
--          UTC minute, so the detector scores sessions (robust to a CI job's clusters) and sizes a spike
--          in downloads.
-- $params: $level VARCHAR: 'package' (domain, repository, format, namespace, package), 'domain' (the
--          package across its domain: domain, format, namespace, package), 'repository' (domain,
--          repository) or 'principal' (principal_arn); $grain VARCHAR: 'hour' or 'day';
--          $start_at TIMESTAMPTZ (inclusive), $end_at TIMESTAMPTZ (exclusive);
--          $full_lo, $full_hi TIMESTAMPTZ: the UTC midnights bounding the whole days read from the
--          download_sessions_days rollup (spikes.series computes them; equal, e.g. both $end_at, to read
--          everything raw: the hour grain, or a list filter with $level other than 'package', since those
--          rollup rows do not carry the filtered columns)
-- Columns: account_id, region, domain, repository, format, namespace, package, principal_arn VARCHAR
--          (NULL where not part of $level; a package's namespace and name as CodeArtifact stores them,
--          namespace_key and package_key, as the rollup's since 024), bucket_at TIMESTAMP (UTC, naive),
--          sessions BIGINT, downloads BIGINT, downloads_sq BIGINT (the sum over sessions of their downloads squared)
-- Grain:   one row per series x bucket with at least one download (the caller zero-fills the grid), in no
--          order: every caller groups by the series (ORDER BY ALL cost 110 of 160 ms at 200M events)
-- Source:  the whole days [full_lo, full_hi) from the rollup, the partial first and last days (or
--          everything, without the rollup) from raw downloads; the two never overlap, so no bucket is
--          counted twice, and the numbers equal a scan of downloads.
WITH raw AS (  -- constant bounds, so DuckDB prunes both ranges by event_at
    SELECT * FROM downloads WHERE event_at >= $start_at AND event_at < least($end_at, $full_lo)
    UNION ALL
    SELECT * FROM downloads WHERE event_at >= greatest($full_lo, $full_hi) AND event_at < $end_at
),
per_session AS (  -- the series' sessions and their downloads (a session lies in one bucket)
    SELECT
        account_id,
        region,
        CASE WHEN $level <> 'principal' THEN domain END AS domain,
        CASE WHEN $level IN ('package', 'repository') THEN repository END AS repository,
        CASE WHEN $level IN ('package', 'domain') THEN format END AS format,
        CASE WHEN $level IN ('package', 'domain') THEN namespace_key(format, namespace) END AS namespace,
        CASE WHEN $level IN ('package', 'domain') THEN package_key(format, package) END AS package,
        CASE WHEN $level = 'principal' THEN coalesce(principal_arn, 'unknown') END AS principal_arn,
        date_trunc($grain, event_at AT TIME ZONE 'UTC') AS bucket_at,
        session_key(principal_arn, source_ip, event_at) AS session,
        count(*) AS n
    FROM raw
    GROUP BY ALL
)
SELECT account_id, region, domain, repository, format, namespace, package, principal_arn, bucket_at,
       count(*) AS sessions, sum(n) AS downloads, sum(n * n) AS downloads_sq
FROM per_session
GROUP BY account_id, region, domain, repository, format, namespace, package, principal_arn, bucket_at
UNION ALL
SELECT account_id, region, domain, repository, format, namespace, package, principal_arn,
       CAST(day AS TIMESTAMP) AS bucket_at, sessions, downloads, downloads_sq
FROM download_sessions_days
WHERE level = $level
  AND day >= CAST($full_lo AT TIME ZONE 'UTC' AS DATE)
  AND day < CAST($full_hi AT TIME ZONE 'UTC' AS DATE)
