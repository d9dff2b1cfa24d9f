"""Researcher outputs: Pareto-front plots (PNG, interactive HTML) and the candidate table.

Example:
    >>> import pandas as pd
    >>> from optimizer.report import pareto_plot_data
    >>> frame = pd.DataFrame({"usd_per_mtok": [1.0, 2.0, 3.0], "ttft_p95_ms": [900, 300, 600]})
    >>> data = pareto_plot_data(frame, frame.iloc[:2], x="usd_per_mtok", y="ttft_p95_ms")
    >>> len(data.front), len(data.dominated)
    (2, 1)
"""

from __future__ import annotations

from optimizer.report.plots import (
    HTML_SUFFIXES,
    IMAGE_SUFFIXES,
    ParetoPlotData,
    pareto_html,
    pareto_plot_data,
    pareto_png,
    render_matplotlib,
    render_plotly,
)
from optimizer.report.tables import TABLE_SUFFIXES, read_candidates, write_candidates

__all__ = [
    "HTML_SUFFIXES",
    "IMAGE_SUFFIXES",
    "TABLE_SUFFIXES",
    "ParetoPlotData",
    "pareto_html",
    "pareto_plot_data",
    "pareto_png",
    "read_candidates",
    "render_matplotlib",
    "render_plotly",
    "write_candidates",
]
