"""Dashboard pages (layout only). Each module has `page(view)`; numbers come from analytics/."""
