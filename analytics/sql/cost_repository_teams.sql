-- Purpose: each repository's "team" tag, the fallback for team attribution (settings.teams, globs
--          over repository names, wins over the tag; applied by analytics/costs.py).
-- $params: none
-- Columns: account_id, region, domain, repository VARCHAR; tag_team VARCHAR (NULL when untagged)
-- Grain:   one row per repository (the latest seen when collected several times)
SELECT account_id, region, domain, repository, tags['team'] AS tag_team
FROM repositories
QUALIFY row_number() OVER (PARTITION BY account_id, region, domain, repository
                           ORDER BY last_seen_at DESC) = 1
ORDER BY account_id, region, domain, repository
