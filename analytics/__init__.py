"""Analytics over the DuckDB store: every number the dashboard, reports and e-mails show."""
