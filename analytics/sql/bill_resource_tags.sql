-- Purpose: the team the bill's cost-allocation tag names on each CodeArtifact domain and repository
--          (CUR 2.0 resource_tags): the AWS-native team split.
-- Convention: the tags of the resource's latest usage line that carries the tag. The key is looked up as
--          given, as CUR 2.0 spells a user tag (user_<key>), and as legacy CUR spelled it (user:<key>).
-- $params: $key VARCHAR (settings.costs.bill_team_tag)
-- Columns: account_id, region, domain, repository VARCHAR (NULL for a domain), team VARCHAR
-- Grain:   one row per domain or repository whose bill lines carry the tag
WITH tagged AS (
    SELECT account_id, region, domain, repository, usage_start_at, billing_period,
           nullif(coalesce(resource_tags[$key], resource_tags['user_' || $key],
                           resource_tags['user_' || lower($key)], resource_tags['user:' || $key]), '') AS team
    FROM cur_line_items
    WHERE domain IS NOT NULL AND resource_tags IS NOT NULL
)
SELECT account_id, region, domain, repository, team
FROM tagged
WHERE team IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY account_id, region, domain, repository
                           ORDER BY usage_start_at DESC NULLS LAST, billing_period DESC) = 1
ORDER BY account_id, region, domain, repository NULLS FIRST
