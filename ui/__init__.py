"""Dashboard pages (layout only, `page(view)` each) and their plumbing: cached loads (views.py), the
precompute of each page's declared defaults (precompute.py) and the plotly figures (figures.py)."""
