-- 015: downloads per day, asset and client source IP, so the data-transfer model (analytics/transfer.py,
-- analytics/sql/transfer_served.sql) reads a row per asset and client a day instead of every raw download
-- of the bill's months (3.3-5.0 s a call at 9.8M events; the bill page makes four). It is a lake dataset
-- like the other rollups (core/lake.py). A store from before this migration has none of its rows: the next
-- write session's heal (analytics/rollups.py) rebuilds every rollup.
CREATE TABLE download_ip_days_rows (
    day        DATE NOT NULL,
    account_id VARCHAR,
    region     VARCHAR,
    domain     VARCHAR,
    repository VARCHAR,
    format     VARCHAR,
    namespace  VARCHAR,
    package    VARCHAR,
    version    VARCHAR,
    asset      VARCHAR,
    source_ip  VARCHAR,               -- as in events (NULL when the event had none)
    downloads  BIGINT NOT NULL
);
CREATE VIEW download_ip_days AS SELECT * FROM download_ip_days_rows;
