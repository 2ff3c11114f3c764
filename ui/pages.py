"""The dashboard's pages in menu order: URL key -> (title, module). Each module has `page(view)` (its
layout) and `default_loads(settings, earlier)` (what it loads with no filters and its widgets at their
defaults, which ui/precompute.py computes after a collection).

Reads and writes nothing.
"""

from __future__ import annotations

from types import ModuleType

from ui import cleanup, costs, health, overview, spikes, usage

PAGES: dict[str, tuple[str, ModuleType]] = {
    "overview": ("Overview", overview),
    "costs": ("Costs", costs),
    "usage": ("Usage", usage),
    "spikes": ("Spikes", spikes),
    "cleanup": ("Cleanup", cleanup),
    "health": ("Data health", health),
}
