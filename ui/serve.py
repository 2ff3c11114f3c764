"""`caa dashboard`'s server process: `streamlit run dashboard.py` (`python -m ui.serve run <script> <flags>`, the
arguments of the `streamlit` command), in a process that first imports what the dashboard's first run would
import (preload). Streamlit runs the script in its server process only when a browser asks for a page, so
without it the first page after `caa dashboard` started waited for pandas, plotly and caa's pages to import:
on the demo estate (seed 11), a cold page took 0.8-1.2 s, 0.3-0.6 s with them imported (2026-12-06).

Reads and writes nothing itself; the server reads the store (dashboard.py).
"""

from __future__ import annotations

import sys

# the plotly.graph_objs packages of the figures ui/figures.py draws: plotly imports a trace's or the layout's
# property classes (marker, legend, axes...) only when a figure first sets them (0.18 s for these 379 modules)
FIGURES = ("layout", "bar", "scatter", "pie", "treemap")


def preload() -> None:
    """Import the dashboard's modules (its pages, with pandas, plotly and the analytics they use) and what plotly
    and pyarrow load only on first use: the figures' property classes, their pandas input (narwhals) and the
    JSON that st.plotly_chart sends, and Arrow's conversion to pandas (every query's frame)."""
    import importlib
    import pkgutil

    import pandas as pd
    import plotly.graph_objects as go
    import plotly.io as pio
    import pyarrow as pa

    # what dashboard.py imports (ui.pages imports every page, and they ui.figures, pandas and plotly)
    import analytics.filters  # noqa: F401
    import core.errors  # noqa: F401
    import core.settings  # noqa: F401
    import core.store  # noqa: F401
    import ui.common  # noqa: F401
    import ui.pages  # noqa: F401
    import ui.sidebar  # noqa: F401

    for name in FIGURES:
        package = importlib.import_module(f"plotly.graph_objs.{name}")
        for found in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            importlib.import_module(found.name)
    x = pd.Series([pd.Timestamp("2026-01-01")])
    y = pd.Series([1.0])
    pio.to_json(go.Figure([go.Bar(x=x, y=y), go.Scatter(x=x, y=y), go.Pie(values=y),
                           go.Treemap(labels=["a"], parents=[""], values=y)]))
    pa.table({"a": [1], "b": ["x"]}).to_pandas()


def main() -> None:
    preload()
    from streamlit.web.cli import main as streamlit

    sys.exit(streamlit())


if __name__ == "__main__":
    main()
