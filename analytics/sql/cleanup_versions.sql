-- Purpose: the facts the cleanup policy judges each stored package version by, as of a point in time:
--          its downloads (matched by account, Region, domain, repository, format, namespace, package and
--          version (a domain's name is unique only within its account and Region), the names as
--          CodeArtifact compares them (core/schema/021_name_keys.sql), with namespaces compared by IS NOT
--          DISTINCT FROM because NULL means "none"), its size, and its
--          package's upstream origin control. Only downloads at or before $as_of count, and versions
--          published after $as_of are left out, so the same query replays the past for a backtest.
--          Every status is returned; the policy decides which statuses may be selected.
-- $params: as_of TIMESTAMPTZ (the store's "now", normally its newest event); split DATE: the whole months
--          before it are read from the download_months rollup, the days from it on from download_days
--          (analytics/cleanup.py: $as_of's month start; the earliest date, to read only days, under a date
--          filter, which cuts months that download_months sums whole); days_to DATE: the days before it
--          come from download_days, from its midnight to $as_of from raw downloads ($as_of's day, or the
--          day after when no event is newer than $as_of, so that day's rollup row is exact: nothing raw);
--          sized BOOLEAN: package_versions' assets_bytes and assets_count hold every version's assets
--          (core/lake.py versions_sized: after every publish), so they are read instead of summing the
--          assets per version and joining the sums on eight text columns (45-70 of 230-310 ms at 120,000
--          versions)
-- Columns: account_id, region, domain, repository, format, namespace, package, version, status,
--          origin_type, origin_upstream VARCHAR (ALLOW / BLOCK / NULL when the package row is missing);
--          published_at, first_seen_at, last_downloaded_at TIMESTAMPTZ (NULL = no download up to $as_of);
--          downloads_30d, downloads_90d, downloads_365d, downloads_total BIGINT (windows ending at $as_of);
--          size_bytes BIGINT (sum of the version's assets, not deduplicated), asset_count BIGINT
-- Grain:   one row per version per repository (package_versions), in no order (evaluate sorts them;
--          sorting 120,000 rows here cost ~70 ms at 200M)
-- Source:  whole months before $split from download_months (a month counts for a window when it starts
--          after the window's first day, or is the month of a first day in its first half), whole UTC days
--          from $split to $as_of's day from download_days, and for each window the days of its first month
--          after its first day from download_days too (or, when its first day is in the month's first half,
--          less the month's days up to the first day: half a month of rows at most, where a window's first
--          month cost 60 ms at 200M; the month row itself is counted in the one read of the months instead
--          of each window reading its month again: the same time within this machine's noise); the
--          partial days come from raw downloads, each read by a time range DuckDB prunes: $as_of's own day
--          up to $as_of (unless $days_to says its rollup row is exact), and the first day of each window
--          after its start. The counts equal a scan of `downloads`.
--          Each source is summed per version where it is read (a year of months is 12 rows a version), so
--          the names-as-compared grouping (dl) sees a few rows a version: 244 against 315 ms at 200M,
--          where one grouping of every piece with a filtered sum per window took 133 ms of DuckDB's CPU.
WITH pieces AS (  -- per version and source: its downloads in all, the last one, and each window's part
    SELECT account_id, region, domain, repository, format, namespace, package, version, sum(downloads) AS total,
           max(last_at) AS last_at,
           sum(downloads) FILTER (WHERE month > CAST(($as_of - INTERVAL 30 DAY) AT TIME ZONE 'UTC' AS DATE)
               OR month = CAST(date_trunc('month', ($as_of - INTERVAL 30 DAY) AT TIME ZONE 'UTC') AS DATE)
                  AND dayofmonth(($as_of - INTERVAL 30 DAY) AT TIME ZONE 'UTC') <= 15) AS d30,
           sum(downloads) FILTER (WHERE month > CAST(($as_of - INTERVAL 90 DAY) AT TIME ZONE 'UTC' AS DATE)
               OR month = CAST(date_trunc('month', ($as_of - INTERVAL 90 DAY) AT TIME ZONE 'UTC') AS DATE)
                  AND dayofmonth(($as_of - INTERVAL 90 DAY) AT TIME ZONE 'UTC') <= 15) AS d90,
           sum(downloads) FILTER (WHERE month > CAST(($as_of - INTERVAL 365 DAY) AT TIME ZONE 'UTC' AS DATE)
               OR month = CAST(date_trunc('month', ($as_of - INTERVAL 365 DAY) AT TIME ZONE 'UTC') AS DATE)
                  AND dayofmonth(($as_of - INTERVAL 365 DAY) AT TIME ZONE 'UTC') <= 15) AS d365
    FROM download_months WHERE month < $split AND month < CAST($as_of AT TIME ZONE 'UTC' AS DATE)
    GROUP BY ALL
    UNION ALL
    SELECT account_id, region, domain, repository, format, namespace, package, version, sum(downloads), max(last_at),
           sum(downloads) FILTER (WHERE day > CAST(($as_of - INTERVAL 30 DAY) AT TIME ZONE 'UTC' AS DATE)),
           sum(downloads) FILTER (WHERE day > CAST(($as_of - INTERVAL 90 DAY) AT TIME ZONE 'UTC' AS DATE)),
           sum(downloads) FILTER (WHERE day > CAST(($as_of - INTERVAL 365 DAY) AT TIME ZONE 'UTC' AS DATE))
    FROM download_days WHERE day >= $split AND day < $days_to
    GROUP BY ALL
    UNION ALL
    SELECT account_id, region, domain, repository, format, namespace, package, version,
           NULL, NULL, sum(downloads) FILTER (WHERE w = 30),
           sum(downloads) FILTER (WHERE w = 90), sum(downloads) FILTER (WHERE w = 365)
    FROM (  -- constant bounds (from $as_of), so DuckDB prunes each range, and drops the branch
            -- not taken: the days after the first day, or (when fewer) the month's days up to it, taken off
            -- the month that the first piece counted
        SELECT account_id, region, domain, repository, format, namespace, package, version,
               downloads, 30 AS w FROM download_days
        WHERE day > CAST(($as_of - INTERVAL 30 DAY) AT TIME ZONE 'UTC' AS DATE)
          AND day < least(CAST(date_trunc('month', ($as_of - INTERVAL 30 DAY) AT TIME ZONE 'UTC') AS DATE) + INTERVAL 1 MONTH, $split)
          AND dayofmonth(($as_of - INTERVAL 30 DAY) AT TIME ZONE 'UTC') > 15
        UNION ALL
        SELECT account_id, region, domain, repository, format, namespace, package, version,
               -downloads, 30 FROM download_days
        WHERE day >= CAST(date_trunc('month', ($as_of - INTERVAL 30 DAY) AT TIME ZONE 'UTC') AS DATE)
          AND day <= CAST(($as_of - INTERVAL 30 DAY) AT TIME ZONE 'UTC' AS DATE)
          AND CAST(date_trunc('month', ($as_of - INTERVAL 30 DAY) AT TIME ZONE 'UTC') AS DATE) < $split
          AND dayofmonth(($as_of - INTERVAL 30 DAY) AT TIME ZONE 'UTC') <= 15
        UNION ALL
        SELECT account_id, region, domain, repository, format, namespace, package, version,
               downloads, 90 AS w FROM download_days
        WHERE day > CAST(($as_of - INTERVAL 90 DAY) AT TIME ZONE 'UTC' AS DATE)
          AND day < least(CAST(date_trunc('month', ($as_of - INTERVAL 90 DAY) AT TIME ZONE 'UTC') AS DATE) + INTERVAL 1 MONTH, $split)
          AND dayofmonth(($as_of - INTERVAL 90 DAY) AT TIME ZONE 'UTC') > 15
        UNION ALL
        SELECT account_id, region, domain, repository, format, namespace, package, version,
               -downloads, 90 FROM download_days
        WHERE day >= CAST(date_trunc('month', ($as_of - INTERVAL 90 DAY) AT TIME ZONE 'UTC') AS DATE)
          AND day <= CAST(($as_of - INTERVAL 90 DAY) AT TIME ZONE 'UTC' AS DATE)
          AND CAST(date_trunc('month', ($as_of - INTERVAL 90 DAY) AT TIME ZONE 'UTC') AS DATE) < $split
          AND dayofmonth(($as_of - INTERVAL 90 DAY) AT TIME ZONE 'UTC') <= 15
        UNION ALL
        SELECT account_id, region, domain, repository, format, namespace, package, version,
               downloads, 365 AS w FROM download_days
        WHERE day > CAST(($as_of - INTERVAL 365 DAY) AT TIME ZONE 'UTC' AS DATE)
          AND day < least(CAST(date_trunc('month', ($as_of - INTERVAL 365 DAY) AT TIME ZONE 'UTC') AS DATE) + INTERVAL 1 MONTH, $split)
          AND dayofmonth(($as_of - INTERVAL 365 DAY) AT TIME ZONE 'UTC') > 15
        UNION ALL
        SELECT account_id, region, domain, repository, format, namespace, package, version,
               -downloads, 365 FROM download_days
        WHERE day >= CAST(date_trunc('month', ($as_of - INTERVAL 365 DAY) AT TIME ZONE 'UTC') AS DATE)
          AND day <= CAST(($as_of - INTERVAL 365 DAY) AT TIME ZONE 'UTC' AS DATE)
          AND CAST(date_trunc('month', ($as_of - INTERVAL 365 DAY) AT TIME ZONE 'UTC') AS DATE) < $split
          AND dayofmonth(($as_of - INTERVAL 365 DAY) AT TIME ZONE 'UTC') <= 15)
    GROUP BY ALL
    UNION ALL
    SELECT account_id, region, domain, repository, format, namespace, package, version,
           count(*), max(event_at), count(*), count(*),
           count(*)  -- $as_of's day is in every window
    FROM downloads
    WHERE event_at >= CAST($days_to AS TIMESTAMP) AT TIME ZONE 'UTC' AND event_at <= $as_of
    GROUP BY ALL
    UNION ALL
    SELECT account_id, region, domain, repository, format, namespace, package, version,
           NULL, NULL, count(*) FILTER (WHERE w = 30),
           count(*) FILTER (WHERE w = 90), count(*) FILTER (WHERE w = 365)
    FROM (SELECT *, 30 AS w FROM downloads
          WHERE event_at > $as_of - INTERVAL 30 DAY
            AND event_at < CAST(CAST(($as_of - INTERVAL 30 DAY) AT TIME ZONE 'UTC' AS DATE) + 1 AS TIMESTAMP)
                           AT TIME ZONE 'UTC'
          UNION ALL
          SELECT *, 90 FROM downloads
          WHERE event_at > $as_of - INTERVAL 90 DAY
            AND event_at < CAST(CAST(($as_of - INTERVAL 90 DAY) AT TIME ZONE 'UTC' AS DATE) + 1 AS TIMESTAMP)
                           AT TIME ZONE 'UTC'
          UNION ALL
          SELECT *, 365 FROM downloads
          WHERE event_at > $as_of - INTERVAL 365 DAY
            AND event_at < CAST(CAST(($as_of - INTERVAL 365 DAY) AT TIME ZONE 'UTC' AS DATE) + 1 AS TIMESTAMP)
                           AT TIME ZONE 'UTC')
    GROUP BY ALL
),
dl AS (  -- per version as CodeArtifact compares names (core/schema/021_name_keys.sql): a download under a
          -- client's spelling (pip's `Zope.Interface`) is one of the stored version's (`zope-interface`)
    SELECT account_id, region, domain, repository, format, namespace_key(format, namespace) AS namespace_key,
           package_key(format, package) AS package_key, version_key(format, version) AS version_key,
           max(last_at) AS last_downloaded_at, CAST(coalesce(sum(d30), 0) AS BIGINT) AS downloads_30d,
           CAST(coalesce(sum(d90), 0) AS BIGINT) AS downloads_90d,
           CAST(coalesce(sum(d365), 0) AS BIGINT) AS downloads_365d,
           CAST(coalesce(sum(total), 0) AS BIGINT) AS downloads_total
    FROM pieces
    GROUP BY ALL
),
sized AS (  -- only when the versions' rows do not hold their sums (not $sized): none is read otherwise
    SELECT account_id, region, domain, repository, format, namespace, package, version,
           CAST(sum(size_bytes) AS BIGINT) AS size_bytes, count(*) AS asset_count  -- BIGINT as the rows'
    FROM assets
    WHERE NOT $sized
    GROUP BY ALL
)
SELECT v.account_id, v.region, v.domain, v.repository, v.format, v.namespace, v.package, v.version,
       v.status, v.origin_type, p.origin_upstream, v.published_at, v.first_seen_at, dl.last_downloaded_at,
       coalesce(dl.downloads_30d, 0) AS downloads_30d, coalesce(dl.downloads_90d, 0) AS downloads_90d,
       coalesce(dl.downloads_365d, 0) AS downloads_365d, coalesce(dl.downloads_total, 0) AS downloads_total,
       CASE WHEN $sized THEN v.assets_bytes ELSE coalesce(s.size_bytes, 0) END AS size_bytes,
       CASE WHEN $sized THEN v.assets_count ELSE coalesce(s.asset_count, 0) END AS asset_count
FROM package_versions v
LEFT JOIN packages p
       ON p.account_id = v.account_id AND p.region = v.region AND p.domain = v.domain
      AND p.repository = v.repository AND p.format = v.format AND p.namespace IS NOT DISTINCT FROM v.namespace
      AND p.package = v.package
LEFT JOIN dl
       ON dl.account_id = v.account_id AND dl.region = v.region AND dl.domain = v.domain
      AND dl.repository = v.repository AND dl.format = v.format
      AND dl.namespace_key IS NOT DISTINCT FROM namespace_key(v.format, v.namespace)
      AND dl.package_key = package_key(v.format, v.package) AND dl.version_key = version_key(v.format, v.version)
LEFT JOIN sized s
       ON s.account_id = v.account_id AND s.region = v.region AND s.domain = v.domain
      AND s.repository = v.repository AND s.format = v.format AND s.namespace IS NOT DISTINCT FROM v.namespace
      AND s.package = v.package AND s.version = v.version
WHERE v.published_at IS NULL OR v.published_at <= $as_of
