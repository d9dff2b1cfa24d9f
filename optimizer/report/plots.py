"""Pareto-front plots: a static PNG (matplotlib) and an interactive HTML page (plotly).

As in optuna's visualisation package, a pure function first computes what to draw
(``ParetoPlotData``: the dominated candidates, the front sorted along x, the chosen point,
the SLO lines that fall on an axis) and two thin renderers draw it. Tests check the data;
the renderers only place it on a canvas.

matplotlib draws on an Agg canvas without pyplot, so no display and no global figure
state are involved; plotly writes one self-contained HTML file with plotly.js embedded,
so the page opens offline. Both libraries are imported only when a plot is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from optimizer.errors import InvalidInputError

__all__ = [
    "HTML_SUFFIXES",
    "IMAGE_SUFFIXES",
    "ParetoPlotData",
    "pareto_html",
    "pareto_plot_data",
    "pareto_png",
    "render_matplotlib",
    "render_plotly",
]

IMAGE_SUFFIXES = (".png", ".svg", ".pdf")
"""File types ``pareto_png`` writes (matplotlib picks the format from the suffix)."""

HTML_SUFFIXES = (".html", ".htm")

_MAX_HOVER_COLUMNS = 12


@dataclass(frozen=True)
class ParetoPlotData:
    """What a Pareto plot shows, independent of the drawing library.

    Attributes:
        x, y: column names on the axes.
        dominated: candidates not on the front (finite x and y only), columns x, y and
            the hover columns.
        front: front points sorted by x, same columns.
        chosen: the chosen point's (x, y), or ``None``.
        x_lines: SLO limits drawn as vertical lines, label -> value.
        y_lines: SLO limits drawn as horizontal lines, label -> value.
        hover: columns shown on hover (HTML) besides x and y.
        dropped: candidate rows left out because x or y is not finite.
        title: plot title.
    """

    x: str
    y: str
    dominated: pd.DataFrame
    front: pd.DataFrame
    chosen: tuple[float, float] | None
    x_lines: dict[str, float] = field(default_factory=dict)
    y_lines: dict[str, float] = field(default_factory=dict)
    hover: tuple[str, ...] = ()
    dropped: int = 0
    title: str = ""


def _numeric_column(frame: pd.DataFrame, column: str, field_name: str) -> None:
    if column not in frame.columns:
        raise InvalidInputError(
            field_name, f"has no column {column!r}", allowed=[str(c) for c in frame.columns]
        )
    if not pd.api.types.is_numeric_dtype(frame[column]):
        raise InvalidInputError(field_name, f"column {column!r} is not numeric")


def _finite(frame: pd.DataFrame, x: str, y: str) -> pd.Series:
    return pd.Series(
        np.isfinite(frame[x].to_numpy(dtype=float)) & np.isfinite(frame[y].to_numpy(dtype=float)),
        index=frame.index,
    )


def pareto_plot_data(
    candidates: pd.DataFrame,
    front: pd.DataFrame,
    *,
    x: str,
    y: str,
    chosen: pd.Series | None = None,
    slo_lines: Mapping[str, float] | None = None,
    hover: Sequence[str] | None = None,
    title: str = "",
) -> ParetoPlotData:
    """Split the candidates into front and dominated points and place the SLO lines.

    Args:
        candidates: every evaluated candidate (one row each).
        front: the Pareto-front rows; rows whose index is also in ``candidates`` are not
            drawn twice.
        x, y: numeric columns for the axes.
        chosen: the recommended row (needs ``x`` and ``y`` entries), or ``None``.
        slo_lines: column -> limit; a limit on ``x`` becomes a vertical line, on ``y`` a
            horizontal one; limits on other columns are not on these axes and are skipped.
        hover: extra columns shown on hover; default: up to 12 other columns.
        title: plot title.

    Raises:
        InvalidInputError: no candidates, a missing or non-numeric axis column, a
            non-finite SLO limit, or a chosen point without finite x and y.
    """
    if candidates.empty:
        raise InvalidInputError("candidates", "no rows to plot")
    _numeric_column(candidates, x, "candidates")
    _numeric_column(candidates, y, "candidates")
    if not front.empty:
        _numeric_column(front, x, "front")
        _numeric_column(front, y, "front")
    if hover is None:
        hover_columns = tuple(
            str(c) for c in candidates.columns if c not in (x, y) and c in front.columns
        )[:_MAX_HOVER_COLUMNS]
    else:
        missing = [c for c in hover if c not in candidates.columns]
        if missing:
            raise InvalidInputError("hover", f"unknown columns {missing}")
        hover_columns = tuple(hover)

    keep = candidates[_finite(candidates, x, y)]
    dropped = len(candidates) - len(keep)
    front_keep = front[_finite(front, x, y)] if not front.empty else front
    columns = [x, y, *hover_columns]
    dominated = keep.loc[~keep.index.isin(front_keep.index), columns]
    front_rows = (
        front_keep[[c for c in columns if c in front_keep.columns]]
        .sort_values([x, y], kind="stable")
        .reset_index(drop=True)
    )

    point: tuple[float, float] | None = None
    if chosen is not None:
        if x not in chosen.index or y not in chosen.index:
            raise InvalidInputError("chosen", f"needs {x!r} and {y!r} entries")
        cx, cy = float(chosen[x]), float(chosen[y])
        if not (math.isfinite(cx) and math.isfinite(cy)):
            raise InvalidInputError("chosen", f"({cx}, {cy}) is not a finite point")
        point = (cx, cy)

    x_lines: dict[str, float] = {}
    y_lines: dict[str, float] = {}
    for column, limit in (slo_lines or {}).items():
        value = float(limit)
        if not math.isfinite(value):
            raise InvalidInputError(f"slo_lines.{column}", f"limit must be finite, got {limit!r}")
        if column == x:
            x_lines[f"SLO {column} <= {value:g}"] = value
        if column == y:
            y_lines[f"SLO {column} <= {value:g}"] = value
    return ParetoPlotData(
        x=x,
        y=y,
        dominated=dominated.reset_index(drop=True),
        front=front_rows,
        chosen=point,
        x_lines=x_lines,
        y_lines=y_lines,
        hover=hover_columns,
        dropped=dropped,
        title=title,
    )


def _output_path(path: Path | str, suffixes: tuple[str, ...]) -> Path:
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise InvalidInputError("path", f"unsupported file type {path.suffix!r}", suffixes)
    return path


def _subtitle(data: ParetoPlotData) -> str:
    text = f"{len(data.front)} on the front, {len(data.dominated)} dominated"
    if data.dropped:
        text += f", {data.dropped} not plotted (no finite {data.x}/{data.y})"
    return text


def render_matplotlib(data: ParetoPlotData, path: Path) -> Path:
    """Draw ``data`` with matplotlib on an Agg canvas and save it to ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 5.5), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if not data.dominated.empty:
        axes.scatter(
            data.dominated[data.x],
            data.dominated[data.y],
            s=10,
            color="0.7",
            alpha=0.6,
            label="dominated",
        )
    if not data.front.empty:
        axes.plot(
            data.front[data.x],
            data.front[data.y],
            marker="o",
            markersize=5,
            drawstyle="steps-post",
            color="tab:blue",
            label="Pareto front",
        )
    if data.chosen is not None:
        axes.scatter(
            [data.chosen[0]],
            [data.chosen[1]],
            marker="*",
            s=220,
            color="tab:red",
            edgecolor="black",
            zorder=5,
            label="chosen",
        )
    for label, value in data.x_lines.items():
        axes.axvline(value, linestyle="--", color="tab:orange", label=label)
    for label, value in data.y_lines.items():
        axes.axhline(value, linestyle="--", color="tab:green", label=label)
    axes.set_xlabel(data.x)
    axes.set_ylabel(data.y)
    axes.set_title(data.title or f"{data.y} vs {data.x}")
    figure.suptitle(_subtitle(data), fontsize="small", color="0.3")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def _hover_text(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    rows = frame[list(columns)].astype(str).to_numpy()
    return ["<br>".join(f"{c}: {v}" for c, v in zip(columns, row, strict=True)) for row in rows]


def render_plotly(data: ParetoPlotData, path: Path) -> Path:
    """Draw ``data`` with plotly into a self-contained HTML file at ``path``."""
    import plotly.graph_objects as go

    figure = go.Figure()
    hover_template = f"{data.x}: %{{x}}<br>{data.y}: %{{y}}<br>%{{text}}<extra></extra>"
    if not data.dominated.empty:
        figure.add_trace(
            go.Scatter(
                x=data.dominated[data.x].tolist(),
                y=data.dominated[data.y].tolist(),
                mode="markers",
                name="dominated",
                marker={"size": 5, "color": "rgba(150,150,150,0.6)"},
                text=_hover_text(data.dominated, data.hover),
                hovertemplate=hover_template,
            )
        )
    if not data.front.empty:
        front_hover = [c for c in data.hover if c in data.front.columns]
        figure.add_trace(
            go.Scatter(
                x=data.front[data.x].tolist(),
                y=data.front[data.y].tolist(),
                mode="lines+markers",
                line={"shape": "hv", "color": "#1f77b4"},
                name="Pareto front",
                text=_hover_text(data.front, front_hover),
                hovertemplate=hover_template,
            )
        )
    if data.chosen is not None:
        figure.add_trace(
            go.Scatter(
                x=[data.chosen[0]],
                y=[data.chosen[1]],
                mode="markers",
                name="chosen",
                marker={"symbol": "star", "size": 16, "color": "#d62728"},
            )
        )
    for label, value in data.x_lines.items():
        figure.add_vline(x=value, line_dash="dash", line_color="#ff7f0e", annotation_text=label)
    for label, value in data.y_lines.items():
        figure.add_hline(y=value, line_dash="dash", line_color="#2ca02c", annotation_text=label)
    title = data.title or f"{data.y} vs {data.x}"
    figure.update_layout(
        title={"text": f"{title}<br><sup>{_subtitle(data)}</sup>"},
        xaxis_title=data.x,
        yaxis_title=data.y,
        template="plotly_white",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.write_html(path, include_plotlyjs=True, full_html=True)
    return path


def pareto_png(
    candidates: pd.DataFrame,
    front: pd.DataFrame,
    *,
    x: str,
    y: str,
    chosen: pd.Series | None,
    slo_lines: dict[str, float],
    path: Path,
    title: str = "",
) -> Path:
    """A static Pareto plot (PNG, or SVG/PDF by suffix): front, dominated points, chosen
    point and SLO lines.

    Args:
        candidates: every evaluated candidate.
        front: the Pareto-front rows.
        x, y: numeric columns on the axes (e.g. ``ttft_p95_ms`` and ``usd_per_mtok``).
        chosen: the recommended row, or ``None``.
        slo_lines: column -> limit (lines on the axis of that column).
        path: output file; its folder is created if needed.
        title: plot title (default "y vs x").

    Returns:
        ``path``.

    Raises:
        InvalidInputError: see ``pareto_plot_data``, or a suffix not in ``IMAGE_SUFFIXES``.

    Example:
        >>> frame = pd.DataFrame({"cost": [1.0, 2.0, 3.0], "ttft": [3.0, 1.0, 2.0]})
        >>> pareto_png(frame, frame.iloc[:2], x="cost", y="ttft", chosen=frame.iloc[0],
        ...            slo_lines={"ttft": 2.5}, path=Path("front.png"))  # doctest: +SKIP
    """
    output = _output_path(path, IMAGE_SUFFIXES)
    data = pareto_plot_data(
        candidates, front, x=x, y=y, chosen=chosen, slo_lines=slo_lines, title=title
    )
    return render_matplotlib(data, output)


def pareto_html(
    candidates: pd.DataFrame,
    front: pd.DataFrame,
    *,
    x: str,
    y: str,
    chosen: pd.Series | None,
    slo_lines: dict[str, float],
    path: Path,
    title: str = "",
    hover: Sequence[str] | None = None,
) -> Path:
    """An interactive Pareto plot as one self-contained HTML file (plotly.js embedded).

    Arguments as ``pareto_png``, plus ``hover``: columns shown when pointing at a
    candidate (default: up to 12 columns besides x and y).

    Raises:
        InvalidInputError: see ``pareto_plot_data``, or a suffix other than .html/.htm.
    """
    output = _output_path(path, HTML_SUFFIXES)
    data = pareto_plot_data(
        candidates, front, x=x, y=y, chosen=chosen, slo_lines=slo_lines, hover=hover, title=title
    )
    return render_plotly(data, output)
