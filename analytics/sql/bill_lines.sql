-- Purpose: the CodeArtifact lines of the bill (cur_line_items, from the CUR 2.0 export) over UTC days,
--          each classed for reconciliation and allocation.
-- Convention:
--   * kind: 'storage' (usage types with TimedStorage, GB-Mo), 'requests' (usage types with Requests),
--     'transfer' (DataTransfer-* and <from>-<to>-AWS-Out/In-Bytes usage types, GB), 'other_usage' (other
--     Usage lines), 'credit' (Credit), 'refund' (Refund), 'discount' (line item types with Discount),
--     'tax' (Tax), 'fee' (anything else: Fee, RIFee, ...). Usage is line_item_type Usage,
--     DiscountedUsage or SavingsPlanCoveredUsage.
--   * free_tier: a usage line AWS charged $0 for although it has usage (the monthly free requests, a
--     free storage allowance), or a Global-* usage type (the free tier's own SKU).
--   * quantity: the usage amount, 0 on Global-* lines (the free tier's own SKU), whose usage the regional
--     lines already count.
--   * net_cost: line_item_net_unblended_cost (after discounts) when the export has it, else the
--     unblended cost. has_net tells which.
--   * A line belongs to the UTC day its usage starts; lines without a usage start (some credits and
--     taxes) belong to the first day of their billing period.
-- $params: $start DATE, $end DATE (both inclusive)
-- Columns: usage_date DATE, billing_period DATE, payer_account_id, account_id, region, domain, repository,
--          resource_id, line_item_type, usage_type, kind VARCHAR, free_tier BOOLEAN, usage_amount DOUBLE,
--          quantity DOUBLE,
--          unblended_cost DOUBLE, net_cost DOUBLE, has_net BOOLEAN, description VARCHAR
-- Grain:   one row per cur_line_items row in the window
SELECT coalesce(usage_date, billing_period) AS usage_date, billing_period, payer_account_id, account_id, region,
       domain, repository, resource_id, line_item_type, usage_type,
       CASE
           WHEN line_item_type = 'Tax' THEN 'tax'
           WHEN line_item_type = 'Credit' THEN 'credit'
           WHEN line_item_type = 'Refund' THEN 'refund'
           WHEN line_item_type LIKE '%Discount%' AND line_item_type <> 'DiscountedUsage' THEN 'discount'
           WHEN line_item_type NOT IN ('Usage', 'DiscountedUsage', 'SavingsPlanCoveredUsage') THEN 'fee'
           WHEN usage_type LIKE '%TimedStorage%' THEN 'storage'
           WHEN usage_type LIKE '%DataTransfer%' OR regexp_matches(usage_type, '-AWS-(Out|In)-Bytes$') THEN 'transfer'
           WHEN usage_type LIKE '%Requests%' THEN 'requests'
           ELSE 'other_usage'
       END AS kind,
       kind IN ('storage', 'requests', 'transfer', 'other_usage')
         AND ((unblended_cost = 0 AND coalesce(usage_amount, 0) > 0) OR usage_type LIKE 'Global-%') AS free_tier,
       usage_amount,
       CASE WHEN usage_type LIKE 'Global-%' THEN 0 ELSE coalesce(usage_amount, 0) END AS quantity,
       unblended_cost, coalesce(net_unblended_cost, unblended_cost) AS net_cost,
       net_unblended_cost IS NOT NULL AS has_net, description
FROM cur_line_items
WHERE coalesce(usage_date, billing_period) BETWEEN $start AND $end
ORDER BY usage_date, account_id, region, kind, domain, repository
