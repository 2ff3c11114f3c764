-- Alert state for `caa alerts send`: which spike was alerted, at what size, on which channels.
-- A spike is keyed by its kind, where it happened (account, region, domain, repository, format,
-- namespace, package) or who drove it (principal_arn for auth bursts), and its start hour. It alerts
-- once; it alerts again only when it has grown (excess up by 50% or more, or its end moved later),
-- and a channel that failed is retried on the next run with the same alert.
CREATE TABLE alert_state (
    spike_key     VARCHAR NOT NULL PRIMARY KEY,  -- kind|account|region|domain|repository|format|namespace|package|principal|start
    kind          VARCHAR NOT NULL,              -- 'download' | 'auth'
    account_id    VARCHAR,
    region        VARCHAR,
    domain        VARCHAR,
    repository    VARCHAR,
    package       VARCHAR,
    principal_arn VARCHAR,
    start_at      TIMESTAMPTZ NOT NULL,
    end_at        TIMESTAMPTZ NOT NULL,          -- the end the last alert reported
    excess        DOUBLE NOT NULL,               -- the excess the last alert reported
    sent_at       TIMESTAMPTZ NOT NULL,          -- when the last alert went out
    channels      VARCHAR[] NOT NULL,            -- channels that delivered the last alert: email, sns, webhook
    alerts_sent   INTEGER NOT NULL               -- how many times this spike alerted (1 + re-alerts)
);
