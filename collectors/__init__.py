"""Collectors: each pulls one AWS source into the DuckDB store (fetch -> normalize -> load)."""
