"""Pareto plots: the data each plot shows, and valid PNG / self-contained HTML files."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from optimizer.errors import InvalidInputError
from optimizer.report import pareto_html, pareto_plot_data, pareto_png

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture()
def candidates() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "usd_per_mtok": [1.0, 2.0, 3.0, 2.5, 4.0, math.inf],
            "ttft_p95_ms": [900.0, 400.0, 200.0, 800.0, 500.0, 100.0],
            "engine": ["vllm", "sglang", "trtllm", "vllm", "sglang", "vllm"],
            "tp": [1, 2, 4, 2, 8, 1],
        },
        index=[10, 11, 12, 13, 14, 15],
    )


@pytest.fixture()
def front(candidates) -> pd.DataFrame:
    return candidates.loc[[12, 10, 11]]  # deliberately not sorted


def test_data_splits_front_and_dominated(candidates, front):
    data = pareto_plot_data(
        candidates,
        front,
        x="usd_per_mtok",
        y="ttft_p95_ms",
        chosen=candidates.loc[11],
        slo_lines={"ttft_p95_ms": 850.0, "tpot_p95_ms": 50.0},
    )
    assert data.front["usd_per_mtok"].tolist() == [1.0, 2.0, 3.0]  # sorted along x
    assert sorted(data.dominated["usd_per_mtok"].tolist()) == [2.5, 4.0]
    assert data.dropped == 1  # the infinite-cost candidate
    assert data.chosen == (2.0, 400.0)
    assert data.y_lines == {"SLO ttft_p95_ms <= 850": 850.0}
    assert data.x_lines == {}  # tpot is on neither axis
    assert data.hover == ("engine", "tp")


def test_slo_on_the_x_axis_is_a_vertical_line(candidates, front):
    data = pareto_plot_data(
        candidates, front, x="ttft_p95_ms", y="usd_per_mtok", slo_lines={"ttft_p95_ms": 2000}
    )
    assert data.x_lines == {"SLO ttft_p95_ms <= 2000": 2000.0} and data.y_lines == {}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"x": "missing"}, "candidates"),
        ({"x": "engine"}, "candidates"),
        ({"chosen": pd.Series({"usd_per_mtok": 1.0})}, "chosen"),
        ({"chosen": pd.Series({"usd_per_mtok": math.nan, "ttft_p95_ms": 1.0})}, "chosen"),
        ({"slo_lines": {"ttft_p95_ms": math.inf}}, "slo_lines.ttft_p95_ms"),
        ({"hover": ["nope"]}, "hover"),
    ],
)
def test_bad_input_names_the_field(candidates, front, kwargs, field):
    arguments = {"x": "usd_per_mtok", "y": "ttft_p95_ms", **kwargs}
    with pytest.raises(InvalidInputError) as err:
        pareto_plot_data(candidates, front, **arguments)
    assert err.value.field == field


def test_no_candidates_is_an_error(candidates):
    with pytest.raises(InvalidInputError) as err:
        pareto_plot_data(candidates.iloc[:0], candidates.iloc[:0], x="usd_per_mtok", y="tp")
    assert err.value.field == "candidates"


def test_png_file_is_written(tmp_path, candidates, front):
    path = pareto_png(
        candidates,
        front,
        x="usd_per_mtok",
        y="ttft_p95_ms",
        chosen=candidates.loc[11],
        slo_lines={"ttft_p95_ms": 850.0},
        path=tmp_path / "plots" / "front.png",
        title="Llama-3.1-70B on H100",
    )
    assert path == tmp_path / "plots" / "front.png"
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000


def test_svg_by_suffix_and_unknown_suffix_refused(tmp_path, candidates, front):
    svg = pareto_png(
        candidates, front, x="usd_per_mtok", y="ttft_p95_ms", chosen=None, slo_lines={},
        path=tmp_path / "front.svg",
    )  # fmt: skip
    assert svg.read_text(encoding="utf-8").lstrip().startswith("<?xml")
    with pytest.raises(InvalidInputError) as err:
        pareto_png(
            candidates, front, x="usd_per_mtok", y="ttft_p95_ms", chosen=None, slo_lines={},
            path=tmp_path / "front.jpeg",
        )  # fmt: skip
    assert err.value.field == "path"
    assert not (tmp_path / "front.jpeg").exists()


def test_html_is_self_contained_and_holds_the_data(tmp_path, candidates, front):
    path = pareto_html(
        candidates,
        front,
        x="usd_per_mtok",
        y="ttft_p95_ms",
        chosen=candidates.loc[11],
        slo_lines={"ttft_p95_ms": 850.0},
        path=tmp_path / "front.html",
    )
    html = path.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html>") and "</html>" in html
    external_scripts = re.findall(r"<script[^>]*\bsrc=", html)
    assert external_scripts == []  # plotly.js is inline: nothing is fetched at view time
    assert len(html) > 1_000_000  # plotly.js is embedded
    for text in ("Pareto front", "dominated", "chosen", "SLO ttft_p95_ms", "engine: trtllm"):
        assert text in html
    assert "[1.0,2.0,3.0]" in html.replace(" ", "")  # the front's x values
    with pytest.raises(InvalidInputError):
        pareto_html(
            candidates, front, x="usd_per_mtok", y="ttft_p95_ms", chosen=None, slo_lines={},
            path=tmp_path / "front.png",
        )  # fmt: skip


def test_large_sweep_plots_quickly(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"cost": rng.uniform(1, 10, 5000), "ttft": rng.uniform(50, 5000, 5000)})
    front = frame.nsmallest(20, "cost")
    data = pareto_plot_data(frame, front, x="cost", y="ttft")
    assert len(data.front) == 20 and len(data.dominated) == 4980
    path = pareto_png(
        frame, front, x="cost", y="ttft", chosen=None, slo_lines={"ttft": 2000},
        path=tmp_path / "sweep.png",
    )  # fmt: skip
    assert path.read_bytes().startswith(PNG_MAGIC)
