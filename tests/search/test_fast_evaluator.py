"""The fast evaluator: internal consistency (Little's law, capacity, percentiles) and
monotone responses to the SLO, the load and the hardware."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from search_testing import SMALL_PINS

from optimizer.domain import SLO, Workload
from optimizer.search.candidates import build_candidates
from optimizer.search.fast_evaluator import FastEvaluator


@pytest.fixture(scope="module")
def evaluated(surrogate, scenario):
    candidates = build_candidates(
        scenario, engines=["vllm"], restrictions=FastEvaluator.restrictions, pins=SMALL_PINS
    )
    frame = candidates.frame
    return frame, FastEvaluator(scenario, surrogate).evaluate(frame)


def test_every_candidate_gets_every_metric(evaluated):
    frame, metrics = evaluated
    assert metrics.index.equals(frame.index)
    assert not metrics.drop(columns=["binding"]).isna().any().any()
    assert set(metrics["binding"]) <= {"ttft_p95", "tpot_p95", "batch_limit", "throughput_peak"}


def test_littles_law_holds_at_the_operating_point(evaluated):
    _, m = evaluated
    # mean running requests = arrival rate x mean end-to-end latency
    assert np.allclose(m["concurrency"], m["rate_per_replica"] * m["e2e_mean_ms"] / 1000, rtol=1e-3)
    assert np.allclose(m["rate_per_replica"] * m["replicas"], 4.0, rtol=1e-6)


def test_replicas_follow_capacity_with_headroom(evaluated, scenario):
    _, m = evaluated
    usable = m["max_rate_per_replica"] * (1 - scenario.headroom)
    assert (m["replicas"] == np.maximum(1, np.ceil(4.0 / usable - 1e-9))).all()
    assert (m["rate_per_replica"] <= usable * (1 + 1e-6)).all()


def test_feasible_candidates_meet_the_slo_at_the_operating_point(evaluated):
    _, m = evaluated
    feasible = m[m["slo_feasible"]]
    assert len(feasible) > 0
    assert (feasible["ttft_p95_ms"] <= 1000 * (1 + 1e-6)).all()
    assert (feasible["tpot_p95_ms"] <= 40 * (1 + 1e-6)).all()
    assert (feasible[["violation_ttft_p95", "violation_tpot_p95"]] <= 1e-6).all().all()
    assert (feasible["p_slo"] >= 0.5 - 1e-6).all()


def test_percentiles_and_intervals_are_ordered(evaluated):
    _, m = evaluated
    for metric in ("ttft", "tpot", "e2e"):
        assert (m[f"{metric}_p50_ms"] <= m[f"{metric}_p95_ms"] + 1e-9).all()
        assert (m[f"{metric}_p95_ms"] <= m[f"{metric}_p99_ms"] + 1e-9).all()
        assert (m[f"{metric}_p95_ms_lo"] <= m[f"{metric}_p95_ms"]).all()
        assert (m[f"{metric}_p95_ms"] <= m[f"{metric}_p95_ms_hi"]).all()


def test_cost_is_replica_price_over_tokens(evaluated):
    frame, m = evaluated
    tokens_per_hour = m["rate_per_replica"] * 256 * 3600
    assert np.allclose(m["usd_per_mtok"], m["usd_per_hour_replica"] / tokens_per_hour * 1e6)
    assert np.allclose(m["usd_per_hour"], m["usd_per_hour_replica"] * m["replicas"])
    assert (m["gpus_total"] == m["replicas"] * frame["gpus_per_replica"]).all()


def test_a_tighter_slo_never_raises_capacity(surrogate, scenario, evaluated):
    frame, loose = evaluated
    tight = dataclasses.replace(scenario, slo=SLO.parse("ttft_p95<=500ms,tpot_p95<=25ms"))
    strict = FastEvaluator(tight, surrogate).evaluate(frame)
    both = loose["slo_feasible"] & strict["slo_feasible"]
    assert (
        strict.loc[both, "max_rate_per_replica"] <= loose.loc[both, "max_rate_per_replica"]
    ).all()
    assert (strict["slo_feasible"] <= loose["slo_feasible"]).all()


def test_more_load_never_lowers_latency_of_a_fixed_fleet(surrogate, scenario, evaluated):
    frame, _ = evaluated
    light = FastEvaluator(
        dataclasses.replace(scenario, workload=Workload.simple(1024, 256, rate=0.5), slo=SLO()),
        surrogate,
    ).evaluate(frame)
    heavy = FastEvaluator(
        dataclasses.replace(scenario, workload=Workload.simple(1024, 256, rate=2.0), slo=SLO()),
        surrogate,
    ).evaluate(frame)
    same = light["replicas"] == heavy["replicas"]
    assert same.any()
    for column in ("ttft_p95_ms", "tpot_p95_ms", "e2e_p99_ms"):
        assert (heavy.loc[same, column] >= light.loc[same, column] * (1 - 1e-9)).all()


def test_candidates_differing_only_in_block_size_tie(surrogate, scenario):
    candidates = build_candidates(
        scenario,
        engines=["vllm"],
        restrictions=FastEvaluator.restrictions,
        pins={
            "tp": (1,),
            "max_batch_size": (64,),
            "spec_method": ("none",),
            "max_num_batched_tokens": (8192,),
            "quantization": ("bf16",),
            "kv_cache_dtype": ("bf16",),
        },
    ).frame
    assert sorted(candidates["kv_block_size"]) == [16, 32, 64, 128]
    metrics = FastEvaluator(scenario, surrogate).evaluate(candidates)
    assert metrics.drop(columns=["binding"]).nunique().max() == 1


def test_speculation_helps_a_light_load_and_hurts_a_saturated_batch(surrogate, scenario):
    frame = build_candidates(
        scenario,
        engines=["vllm"],
        restrictions=FastEvaluator.restrictions,
        pins={
            "tp": (1,),
            "max_batch_size": (256,),
            "spec_method": ("none", "ngram"),
            "spec_draft_len": (3,),
            **SMALL_PINS,
            "quantization": ("bf16",),
            "kv_cache_dtype": ("bf16",),
        },
    ).frame
    evaluator = FastEvaluator(dataclasses.replace(scenario, slo=SLO()), surrogate)
    none, ngram = (
        (frame["spec_method"] == "none").to_numpy(),
        (frame["spec_method"] == "ngram").to_numpy(),
    )
    arrays = evaluator._arrays(frame)
    light, _, _ = evaluator._tpot(arrays, np.full(len(frame), 1.0))
    heavy, _, _ = evaluator._tpot(arrays, np.full(len(frame), 230.0))
    assert light[ngram][0] < light[none][0]
    assert heavy[ngram][0] > heavy[none][0]


def test_closed_loop_clients_are_split_over_replicas(surrogate, scenario, evaluated):
    frame, _ = evaluated
    closed = dataclasses.replace(scenario, workload=Workload.simple(1024, 256, concurrency=64))
    m = FastEvaluator(closed, surrogate).evaluate(frame)
    assert np.allclose(m["concurrency"] * m["replicas"], 64)
    assert (m["concurrency"] <= m["batch_limit"] * closed.max_batch_utilization + 1e-9).all()
