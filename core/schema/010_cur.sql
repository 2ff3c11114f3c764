-- 010: the bill itself, from AWS Data Exports (CUR 2.0), written by collectors/cur.py.
--  * cur_line_items: every CodeArtifact row (line_item_product_code = 'AWSCodeArtifact') of the export,
--    as billed. A billing period's rows are replaced as a whole when AWS re-delivers the period.
--  * cur_files: the ledger of the export files read, by (source, key, etag): a period whose files are
--    all known is not read again.

CREATE TABLE cur_line_items (
    source              VARCHAR NOT NULL,   -- the export root it came from (s3://bucket/prefix or a folder)
    billing_period      DATE NOT NULL,      -- first day of the period (the BILLING_PERIOD=YYYY-MM folder)
    payer_account_id    VARCHAR,            -- bill_payer_account_id
    account_id          VARCHAR NOT NULL,   -- line_item_usage_account_id
    line_item_type      VARCHAR NOT NULL,   -- Usage, Tax, Credit, Refund, Discount, EdpDiscount, ...
    usage_start_at      TIMESTAMPTZ,
    usage_end_at        TIMESTAMPTZ,
    usage_date          DATE,               -- UTC day of usage_start_at
    usage_type          VARCHAR,            -- e.g. USE1-Requests, USE1-TimedStorage-ByteHrs
    operation           VARCHAR,
    region              VARCHAR,            -- product_region_code
    resource_id         VARCHAR,            -- line_item_resource_id (NULL when the export has no resource ids)
    domain              VARCHAR,            -- from a domain or repository ARN in resource_id
    repository          VARCHAR,            -- from a repository ARN in resource_id
    usage_amount        DOUBLE,             -- line_item_usage_amount, in pricing_unit
    pricing_unit        VARCHAR,
    unblended_cost      DOUBLE NOT NULL,    -- line_item_unblended_cost, in currency_code
    net_unblended_cost  DOUBLE,             -- line_item_net_unblended_cost (after discounts), when exported
    currency_code       VARCHAR,
    description         VARCHAR,            -- line_item_line_item_description
    resource_tags       MAP(VARCHAR, VARCHAR)  -- enabled cost-allocation tags, keys as the export spells them
);

CREATE TABLE cur_files (
    source         VARCHAR NOT NULL,
    billing_period DATE NOT NULL,
    key            VARCHAR NOT NULL,   -- path under the source
    etag           VARCHAR,            -- S3 ETag, or size and mtime for a local file
    size_bytes     BIGINT,
    rows           BIGINT,             -- CodeArtifact rows taken from the file
    processed_at   TIMESTAMPTZ NOT NULL
);
