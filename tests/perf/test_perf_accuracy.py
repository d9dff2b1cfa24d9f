"""Held-out accuracy of the operator models, and transfer from one GPU to another.

The thresholds are the errors measured on aiconfigurator-core 0.12.0's H100 / vLLM
tables (in the comments) with a margin; ``benchmarks/kernel_accuracy.py`` prints the
same figures for every GPU, engine and operator.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optimizer.errors import InvalidInputError
from optimizer.perf.accuracy import (
    error_summary,
    evaluate_held_out,
    evaluate_transfer,
    fastest_per_shape,
    holdout_split,
)

# operator: (median, mean) absolute percentage error allowed on the "slice" split
SLICE_LIMITS = {
    "gemm": (0.06, 0.08),  # measured 3.6 %, 5.0 % (every other k held out)
    "context_attention": (0.05, 0.10),  # measured 3.1 %, 6.4 % (every other prompt length)
    "generation_attention": (0.04, 0.07),  # measured 1.8 %, 4.4 % (every other cached length)
    "moe": (0.04, 0.07),  # measured 2.2 %, 4.4 % (every other token count)
    "custom_all_reduce": (0.05, 0.07),  # measured 2.6 %, 4.1 % (every other message size)
}


@pytest.mark.parametrize("operator", sorted(SLICE_LIMITS))
def test_held_out_slices_are_predicted_within_the_measured_error(h100_tables, operator):
    result = evaluate_held_out(h100_tables[operator], how="slice")
    median, mean = SLICE_LIMITS[operator]
    assert result.errors.median < median, str(result.errors)
    assert result.errors.mean < mean, str(result.errors)
    assert result.errors.rows > 30
    assert result.fit_seconds < 5


def test_held_out_random_gemm_shapes(h100_tables):
    result = evaluate_held_out(h100_tables["gemm"], how="random", seed=0)
    assert result.errors.median < 0.06, str(result.errors)  # measured 3.6 %
    assert result.errors.mean < 0.09, str(result.errors)  # measured 5.9 %


def test_transfer_from_h100_to_h200_beats_the_roofline_alone():
    """H200 kernels predicted as if unmeasured: from H100 measurements and peak figures."""
    results = {
        r.operator: r
        for r in evaluate_transfer(
            "h100_sxm", "h200_sxm", "vllm", ("gemm", "context_attention", "generation_attention")
        )
    }
    # measured: transferred 5.3 % / 8.8 % / 4.2 % median; roofline 17.3 % / 18.4 % / 25.4 %
    limits = {
        "gemm": (0.08, 0.25),
        "context_attention": (0.13, 0.25),
        "generation_attention": (0.07, 0.32),
    }
    for operator, (transferred, roofline) in limits.items():
        result = results[operator]
        assert result.coverage == 1.0
        assert result.transferred is not None
        assert result.transferred.median < transferred, f"{operator}: {result.transferred}"
        assert result.roofline.median < roofline, f"{operator}: {result.roofline}"
        assert result.transferred.median < result.roofline.median


def test_splits_hold_out_whole_shapes_and_interior_slices_only():
    frame = pd.DataFrame(
        {
            "k": [1, 2, 3, 4, 5, 1, 2, 3, 4, 5],
            "kernel_source": ["a"] * 5 + ["b"] * 5,
            "latency_ms": np.arange(1.0, 11.0),
        }
    )
    train, test = holdout_split(frame, "gemm", "slice")
    assert sorted(test["k"].unique()) == [2, 4] and 1 in set(train["k"]) and 5 in set(train["k"])
    train, test = holdout_split(frame, "gemm", "random", fraction=0.5, seed=3)
    assert not set(train["k"]) & set(test["k"])  # both kernels of a shape stay together
    assert fastest_per_shape(frame)["latency_ms"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    with pytest.raises(InvalidInputError, match="how"):
        holdout_split(frame, "gemm", "diagonal")
    with pytest.raises(InvalidInputError, match="operator"):
        holdout_split(frame, "mla")


def test_error_summary_by_hand():
    summary = error_summary(np.array([1.0, 2.2, 2.7]), np.array([1.0, 2.0, 3.0]))
    assert summary.median == pytest.approx(0.1)
    assert summary.mean == pytest.approx(0.2 / 3)
    assert summary.rows == 3
