-- Purpose: the cost-allocation tags the bill shows on each CodeArtifact domain and repository (CUR 2.0
--          resource_tags): the AWS-native team split.
-- Convention: the tags of the resource's latest usage line that carries any; keys as the export spells
--          them (user tags as user_<key> in CUR 2.0).
-- $params: none
-- Columns: account_id, region, domain, repository VARCHAR (NULL for a domain), tags MAP(VARCHAR, VARCHAR)
-- Grain:   one row per tagged domain or repository
SELECT account_id, region, domain, repository, resource_tags AS tags
FROM cur_line_items
WHERE domain IS NOT NULL AND resource_tags IS NOT NULL AND cardinality(resource_tags) > 0
QUALIFY row_number() OVER (PARTITION BY account_id, region, domain, repository
                           ORDER BY usage_start_at DESC NULLS LAST, billing_period DESC) = 1
ORDER BY account_id, region, domain, repository NULLS FIRST
