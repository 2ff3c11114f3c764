-- 006: the dashboard's default views, precomputed. A page opened in a fresh dashboard process used to
-- compute its default view live (forecast fits, the cleanup policy and its backtest: seconds per page).
-- After a collection (`caa collect`, the demo build, `caa refresh`, the scheduler's analytics job),
-- ui/precompute.py runs every load the pages make with no filters, default widgets and the
-- settings' cleanup policy, and stores each result here under the store version it was computed from.
-- The dashboard reads a load from here when its key and the current store_version match, and computes it
-- live otherwise (any filter, another policy, a store version nobody refreshed). Each refresh deletes the
-- rows of older versions. The key never contains settings values or credentials, only their hash.
CREATE TABLE page_cache (
    key           VARCHAR NOT NULL PRIMARY KEY,  -- sha256 hex of kind, args, filters, analytics settings and code
    kind          VARCHAR NOT NULL,              -- the loader (ui.views.LOADERS)
    store_version BIGINT NOT NULL,               -- store_meta 'store_version' the payload was computed from
    payload       BLOB NOT NULL,                 -- the loader's result, pickled
    computed_at   TIMESTAMPTZ NOT NULL,
    seconds       DOUBLE NOT NULL                -- time the loader took
);
