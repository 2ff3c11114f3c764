-- Purpose: Cost Explorer actuals (cost_actuals) per UTC day, account and kind, to set beside the
--          modeled cost.
-- Convention: kind 'storage' = usage types ending in TimedStorage-ByteHrs (quantity in GB-Mo);
--          kind 'requests' = usage types ending in Requests (quantity in requests). Global-Requests
--          (the free tier, at $0) is already included in the regional <CODE>-Requests quantities, so
--          it adds to cost (0) but not to quantity. Other usage types are left out.
-- $params: $start DATE, $end DATE (both inclusive)
-- Columns: usage_date DATE, account_id VARCHAR, kind VARCHAR, actual_usd DOUBLE,
--          actual_quantity DOUBLE
-- Grain:   one row per (usage_date, account_id, kind) with a Cost Explorer row
SELECT usage_date, account_id,
       CASE WHEN usage_type LIKE '%TimedStorage-ByteHrs' THEN 'storage' ELSE 'requests' END AS kind,
       sum(cost_usd) AS actual_usd,
       coalesce(sum(usage_quantity) FILTER (WHERE usage_type NOT LIKE 'Global-%'), 0) AS actual_quantity
FROM cost_actuals
WHERE usage_date BETWEEN $start AND $end
  AND (usage_type LIKE '%TimedStorage-ByteHrs' OR usage_type LIKE '%Requests')
GROUP BY ALL
ORDER BY usage_date, account_id, kind
