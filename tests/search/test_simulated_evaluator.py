"""The simulator in the loop: same metric columns and planning rules as the fast
evaluator, on a few candidates."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from optimizer.domain import SLO, Workload
from optimizer.errors import InvalidInputError
from optimizer.search.candidates import build_candidates
from optimizer.search.evaluator import METRIC_COLUMNS
from optimizer.search.simulated_evaluator import SimulatorEvaluator


@pytest.fixture(scope="module")
def candidates(scenario):
    frame = build_candidates(
        scenario,
        engines=["vllm"],
        pins={
            "tp": (1, 2),
            "pp": (1,),
            "quantization": ("fp8",),
            "kv_cache_dtype": ("fp8",),
            "max_batch_size": (64,),
            "spec_method": ("none",),
            "kv_block_size": (16,),
            "max_num_batched_tokens": (8192,),
        },
    ).frame
    assert len(frame) == 2
    return frame


def test_simulated_metrics_follow_the_planning_rules(surrogate, scenario, candidates):
    metrics = SimulatorEvaluator(scenario, surrogate, n_requests=300).evaluate(candidates)
    assert set(METRIC_COLUMNS) <= set(metrics.columns)
    assert np.allclose(metrics["rate_per_replica"] * metrics["replicas"], 4.0)
    feasible = metrics[metrics["slo_feasible"]]
    assert len(feasible) >= 1
    assert (feasible[["violation_ttft_p95", "violation_tpot_p95"]] <= 0).all().all()
    usable = feasible["max_rate_per_replica"] * (1 - scenario.headroom)
    assert (feasible["replicas"] == np.ceil(4.0 / usable - 1e-9)).all()
    assert (metrics["ttft_p95_ms_lo"] == metrics["ttft_p95_ms"]).all()


def test_an_impossible_slo_is_infeasible_and_closed_loop_is_refused(
    surrogate, scenario, candidates
):
    hard = dataclasses.replace(scenario, slo=SLO.parse("ttft_p95<=1ms"))
    metrics = SimulatorEvaluator(hard, surrogate, n_requests=200).evaluate(candidates.head(1))
    assert not metrics["slo_feasible"].any()
    assert (metrics["violation_ttft_p95"] > 0).all() and (metrics["p_slo"] == 0).all()
    closed = dataclasses.replace(scenario, workload=Workload.simple(100, 10, concurrency=4))
    with pytest.raises(InvalidInputError, match="open-loop"):
        SimulatorEvaluator(closed)
