-- Purpose: the download_sessions_days rollup rows (core/schema/007_session_rollup.sql and 009) of the UTC
--          days in [$lo, $hi): per day and spike-detector level, the sessions (session_key,
--          core/schema/008_definitions.sql), the downloads and the sum over sessions of (downloads in the
--          session)^2. The downloads are grouped once into (package, session) rows; each level then sums
--          them per session of its own, so its sessions are distinct and its squares are of its sessions.
--          A session is grouped by its parts (principal as recorded, source IP, and the UTC minute taken
--          out of session_key(), the one definition), not by session_key()'s struct: the struct, and the
--          principal a second time beside it (coalesced), cost every grouping more; the day is the minute's,
--          taken after the grouping (the same rows, 10% less CPU on the bench trail).
-- $params: $lo, $hi TIMESTAMPTZ: UTC midnights bounding whole days (analytics/rollups.py refresh)
-- Columns: the columns of download_sessions_days (this is an INSERT into the refresh's TEMP table new_download_sessions_days)
-- Grain:   one row per day x level x that level's key ('package': domain, repository, format, namespace,
--          package; 'domain': domain, format, namespace, package; 'repository': domain, repository;
--          'principal': principal_arn). A package's namespace and name are the ones CodeArtifact stores
--          (namespace_key, package_key: core/schema/021_name_keys.sql, since 024): a client's other spelling
--          (pip's `Zope.Interface` for the stored `zope-interface`) is the same series.
INSERT INTO new_download_sessions_days (day, level, account_id, region, domain, repository, format, namespace,
                                    package, principal_arn, sessions, downloads, downloads_sq)
WITH s AS MATERIALIZED (
    SELECT account_id, region, domain, repository, format,
           namespace_key(format, namespace) AS namespace, package_key(format, package) AS package,
           principal_arn, source_ip, struct_extract(session_key(principal_arn, source_ip, event_at), 3) AS minute,
           count(*) AS n
    FROM downloads
    WHERE event_at >= $lo AND event_at < $hi
    GROUP BY ALL
),
dom AS (SELECT account_id, region, domain, format, namespace, package, principal_arn, source_ip, minute, sum(n) AS n
        FROM s GROUP BY ALL),
repo AS (SELECT account_id, region, domain, repository, principal_arn, source_ip, minute, sum(n) AS n FROM s GROUP BY ALL),
who AS (SELECT account_id, region, principal_arn, source_ip, minute, sum(n) AS n FROM s GROUP BY ALL)
SELECT CAST(minute AS DATE) AS day, 'package', account_id, region, domain, repository, format, namespace, package,
       NULL, count(*), sum(n), sum(n * n)
FROM s GROUP BY day, account_id, region, domain, repository, format, namespace, package
UNION ALL
SELECT CAST(minute AS DATE) AS day, 'domain', account_id, region, domain, NULL, format, namespace, package, NULL,
       count(*), sum(n), sum(n * n)
FROM dom GROUP BY day, account_id, region, domain, format, namespace, package
UNION ALL
SELECT CAST(minute AS DATE) AS day, 'repository', account_id, region, domain, repository, NULL, NULL, NULL, NULL,
       count(*), sum(n), sum(n * n)
FROM repo GROUP BY day, account_id, region, domain, repository
UNION ALL
SELECT CAST(minute AS DATE) AS day, 'principal', account_id, region, NULL, NULL, NULL, NULL, NULL,
       coalesce(principal_arn, 'unknown'), count(*), sum(n), sum(n * n)
FROM who GROUP BY day, account_id, region, coalesce(principal_arn, 'unknown')
