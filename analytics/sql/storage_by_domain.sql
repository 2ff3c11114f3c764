-- Purpose: current storage per domain: each domain's latest storage_snapshots row.
--          A domain whose latest snapshot is older than the newest snapshot of its own account and
--          region was not seen by the last inventory that did reach that account and region: it is
--          treated as deleted and left out. (A whole account or region that failed to collect keeps
--          its last known sizes.)
-- $params: none
-- Columns: account_id, region, domain VARCHAR; snapshot_date DATE; asset_size_bytes BIGINT;
--          storage_gb DOUBLE (= asset_size_bytes / 1024^3, i.e. GiB, the unit AWS bills as "GB")
-- Grain:   one row per (account_id, region, domain), ordered by storage_gb descending
WITH latest AS (
    SELECT account_id, region, domain, snapshot_date, asset_size_bytes
    FROM storage_snapshots
    QUALIFY row_number() OVER (PARTITION BY account_id, region, domain
                               ORDER BY snapshot_date DESC, collected_at DESC) = 1
),
present AS (
    SELECT *, max(snapshot_date) OVER (PARTITION BY account_id, region) AS newest_in_region
    FROM latest
)
SELECT account_id, region, domain, snapshot_date, asset_size_bytes,
       asset_size_bytes / 1024 ^ 3 AS storage_gb
FROM present
WHERE snapshot_date = newest_in_region
ORDER BY storage_gb DESC, account_id, region, domain
