"""Evaluation helpers and an accuracy smoke test on held-out concurrency sweeps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optimizer.surrogate import (
    aiconfigurator_rows,
    architecture_groups,
    dedupe_runs,
    evaluate,
    format_table,
    metrics,
)


def test_metrics_by_hand():
    measured = pd.DataFrame({"ttft_ms": [100.0, 200.0], "tpot_ms": [10.0, 20.0]})
    pred = pd.DataFrame(
        {
            "ttft_ms": [110.0, 150.0],
            "tpot_ms": [10.0, 30.0],
            "ttft_ms_lo": [90.0, 160.0],
            "ttft_ms_hi": [120.0, 170.0],
            "tpot_ms_lo": [9.0, 25.0],
            "tpot_ms_hi": [11.0, 35.0],
        }
    )
    m = metrics(measured, pred)
    assert m["ttft_mape"] == pytest.approx((0.1 + 0.25) / 2)
    assert m["tpot_median_ape"] == pytest.approx(0.25)
    # signed: +10 % and -25 % (TTFT), 0 % and +50 % (TPOT)
    assert m["ttft_median_pe"] == pytest.approx((0.1 - 0.25) / 2)
    assert m["tpot_median_pe"] == pytest.approx(0.25)
    assert m["ttft_coverage"] == 0.5 and m["tpot_coverage"] == 0.5


def test_aiconfigurator_rows_and_architecture_groups(agg_runs):
    runs = dedupe_runs(agg_runs)
    assert int(aiconfigurator_rows(runs).sum()) == 757
    groups = architecture_groups(runs)
    by_model = dict(zip(runs["model"], groups, strict=True))
    assert by_model["deepseek-ai/DeepSeek-R1"] == by_model["deepseek-ai/DeepSeek-V3"]
    assert by_model["meta-llama/Llama-3.1-8B-Instruct"] != by_model["meta-llama/Llama-3.1-70B"]


def test_evaluation_runs_keep_one_copy_of_a_measurement_under_two_names(agg_runs):
    from optimizer.surrogate import evaluation_runs

    v3 = agg_runs[agg_runs["model"] == "deepseek-ai/DeepSeek-V3"].head(5)
    renamed = v3.assign(model="deepseek-ai/DeepSeek-R1")  # same architecture
    other = agg_runs[agg_runs["model"] == "meta-llama/Llama-3.1-8B-Instruct"].head(5)
    kept, _ = evaluation_runs(pd.concat([v3, renamed, other]))
    assert len(kept) == 10
    assert (kept["model"] == "deepseek-ai/DeepSeek-V3").sum() == 5
    # a different measurement of the same knobs is a repeat, not a copy: both stay
    remeasured = renamed.assign(tpot_ms=renamed["tpot_ms"] * 1.01)
    kept, _ = evaluation_runs(pd.concat([v3, remeasured]))
    assert len(kept) == 10


def test_reference_evaluation_runs(agg_runs):
    from optimizer.surrogate import evaluation_runs

    kept, left_out = evaluation_runs(agg_runs)
    assert (len(kept), len(left_out)) == (2971, 53)


@pytest.mark.slow
def test_unseen_configuration_accuracy_smoke(small_runs):
    from optimizer.surrogate import Surrogate

    results = evaluate(
        small_runs, Surrogate(max_iter=150), splits=("unseen", "family", "prior"), n_splits=3
    )
    unseen, family, prior = (r.figures for r in results)
    assert [r.split for r in results][1] == "unseen engine/format"
    assert family["tpot_mape"] < prior["tpot_mape"] and np.isfinite(family["ttft_mape"])
    assert unseen["tpot_mape"] < 0.35 and unseen["ttft_mape"] < 0.8
    assert unseen["tpot_mape"] < prior["tpot_mape"]
    assert 0.75 <= unseen["tpot_coverage"] <= 0.99
    assert "unseen configuration" in format_table(results)
    assert np.isfinite(unseen["ttft_median_ape"])


def test_measured_families_group_architecture_gpu_engine_and_format():
    from optimizer.surrogate.evaluation import measured_families

    runs = pd.DataFrame(
        {
            "gpu": ["h100_sxm", "h100_sxm", "h100_sxm", "h200_sxm", "h100_sxm"],
            "engine": ["vllm", "vllm", "vllm", "vllm", "sglang"],
            "quantization": ["fp8", "fp8", "bf16", "fp8", "fp8"],
        }
    )
    architectures = pd.Series(["a", "a", "a", "a", "a"])
    groups = measured_families(runs, architectures)
    assert groups[0] == groups[1]
    assert len(set(groups.tolist())) == 4


def test_repeat_noise_compares_each_row_with_its_repeats():
    from optimizer.surrogate.evaluation import repeat_noise

    base = {
        "model": "m",
        "gpu": "g",
        "engine": "vllm",
        "quantization": "bf16",
        "tp": 1,
        "dp": 1,
        "ep": 1,
        "isl": 1024,
        "osl": 128,
        "concurrency": 8,
        "kv_cache_dtype": None,
    }
    runs = pd.DataFrame(
        [
            {**base, "ttft_ms": 100.0, "tpot_ms": 10.0},
            {**base, "ttft_ms": 150.0, "tpot_ms": 10.0},
            {**base, "concurrency": 16, "ttft_ms": 120.0, "tpot_ms": 12.0},  # no repeat
        ]
    )
    noise = repeat_noise(runs)
    assert noise["rows"] == 2
    # |150 - 100| / 100 and |100 - 150| / 150, averaged
    assert noise["ttft_ms"] == pytest.approx(100 * (0.5 + 1 / 3) / 2)
    assert noise["tpot_ms"] == pytest.approx(0.0)
