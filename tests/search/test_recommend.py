"""End-to-end recommendations and the sanity properties of the issue: the front is
non-dominated, a tighter SLO never yields a cheaper recommendation, a faster GPU at the
same price is never worse, an infeasible SLO is explained, pools are compared."""

from __future__ import annotations

import json

import pytest
from search_testing import MODEL, SMALL_PINS, brute_force_nondominated

from optimizer.catalog import get_gpu
from optimizer.domain import (
    SLO,
    FixedLength,
    LogNormalLength,
    PoissonArrivals,
    TenantClass,
    Workload,
)
from optimizer.search.objectives import objective_matrix
from optimizer.search.pareto import round_significant
from optimizer.search.recommend import Recommender
from optimizer.search.request import RecommendRequest
from optimizer.settings import Settings

PINS = {**SMALL_PINS, "max_batch_size": (16, 64, 256)}


def _request(**changes) -> RecommendRequest:
    base = {
        "model": MODEL,
        "gpus": ("h100_sxm",),
        "workload": Workload.simple(1024, 256, rate=4.0),
        "slo": SLO.parse("ttft_p95<=1s,tpot_p95<=40ms"),
        "engines": ("vllm", "trtllm"),
        "pins": PINS,
    }
    base.update(changes)
    return RecommendRequest(**base)


@pytest.fixture(scope="module")
def recommendation(recommender):
    return recommender.recommend(_request())


def test_recommends_the_cheapest_configuration_meeting_the_slo(recommendation):
    rec = recommendation
    assert rec.found and rec.chosen is not None
    feasible = rec.candidates[rec.candidates["slo_feasible"]]
    assert rec.chosen["usd_per_mtok"] == feasible["usd_per_mtok"].min()
    assert rec.chosen["ttft_p95_ms"] <= 1000 and rec.chosen["tpot_p95_ms"] <= 40
    assert "cheapest" in rec.reason and "binds" in rec.reason
    deployment = rec.deployment.pools[0].deployment
    assert deployment.launch.command.split()[:2] in (
        ["vllm", "serve"],
        ["trtllm-serve", "serve"],
    ) or (deployment.launch.command.startswith("trtllm-serve"))
    assert deployment.capacity.serving_replicas >= rec.chosen["replicas"]
    json.dumps(rec.to_dict(candidates=True))


def test_the_front_is_verified_non_dominated(recommendation):
    rec = recommendation
    feasible = rec.candidates[rec.candidates["slo_feasible"]]
    points = round_significant(objective_matrix(feasible, rec.objectives))
    keep = brute_force_nondominated(points)
    expected = {tuple(p) for p, k in zip(points, keep, strict=True) if k}
    front = round_significant(objective_matrix(rec.front, rec.objectives))
    assert {tuple(p) for p in front} == expected
    assert len(front) == len(expected)  # one row per distinct point
    assert rec.chosen.name in rec.front.index


def test_runners_up_differ_in_layout_and_cost_no_less(recommendation):
    rec = recommendation
    layouts = rec.runners_up[["engine", "tp", "quantization"]].astype(str).agg("/".join, axis=1)
    assert layouts.is_unique
    assert (rec.runners_up["usd_per_mtok"] >= rec.chosen["usd_per_mtok"]).all()


@pytest.mark.parametrize(
    ("loose", "tight"),
    [
        ("ttft_p95<=2s,tpot_p95<=60ms", "ttft_p95<=1s,tpot_p95<=60ms"),
        ("ttft_p95<=2s,tpot_p95<=60ms", "ttft_p95<=2s,tpot_p95<=20ms"),
        ("tpot_p99<=80ms", "tpot_p99<=30ms,e2e_p95<=8s"),
    ],
)
def test_a_tighter_slo_never_yields_a_cheaper_recommendation(recommender, loose, tight):
    cost = []
    for slo in (loose, tight):
        rec = recommender.recommend(_request(slo=SLO.parse(slo), compare_pools=False))
        cost.append(rec.chosen["usd_per_mtok"] if rec.found else float("inf"))
    assert cost[1] >= cost[0]


def test_a_faster_gpu_at_the_same_price_is_never_worse(surrogate):
    base = get_gpu("h100_sxm")
    faster = base.model_copy(
        update={
            "id": "h100_faster",
            "mem_bw_tb_s": base.mem_bw_tb_s * 1.3,
            "bf16_tflops": base.bf16_tflops * 1.3,
            "fp8_tflops": base.fp8_tflops * 1.3,
            "interconnect_gb_s": base.interconnect_gb_s * 1.3,
        }
    )
    recommender = Recommender(surrogate, gpus={"h100_faster": faster})
    for slo in ("ttft_p95<=1s,tpot_p95<=40ms", "ttft_p95<=400ms,tpot_p95<=15ms"):
        costs = {}
        for gpu in ("h100_sxm", "h100_faster"):
            request = _request(gpus=(gpu,), slo=SLO.parse(slo), compare_pools=False)
            rec = recommender.recommend(request)
            costs[gpu] = rec.chosen["usd_per_mtok"] if rec.found else float("inf")
        assert costs["h100_faster"] <= costs["h100_sxm"]


def test_an_infeasible_slo_explains_the_closest_configurations(recommender):
    rec = recommender.recommend(_request(slo=SLO.parse("ttft_p95<=5ms,tpot_p95<=40ms")))
    assert not rec.found and rec.chosen is None and rec.deployment is None
    explanation = rec.explanation
    assert explanation is not None and not explanation.closest.empty
    assert "No configuration meets the SLO" in explanation.text
    assert (explanation.closest["miss_ttft_p95"] > 0).all()
    best = explanation.closest.iloc[0]
    assert best["best_ttft_p95"] == pytest.approx(explanation.relax["ttft_p95"])
    assert f"{100 * best['miss_ttft_p95']:.0f} % over" in explanation.text
    payload = rec.to_dict()
    assert payload["found"] is False and payload["explanation"]["closest"]


def test_no_fitting_configuration_is_explained_by_memory(recommender):
    rec = recommender.recommend(
        _request(model="meta-llama/Llama-3.1-405B", gpus=("l4",), engines=("vllm",))
    )
    assert not rec.found
    assert "do not fit in GPU memory" in rec.reason


def test_pools_by_prompt_length_are_priced_against_one_pool(recommender):
    tenant = TenantClass(
        name="mixed",
        share=1.0,
        isl=LogNormalLength(median=800, sigma=1.2, max_tokens=16000),
        osl=FixedLength(tokens=200),
    )
    workload = Workload(arrivals=PoissonArrivals(rate=6.0), tenants=(tenant,))
    rec = recommender.recommend(
        _request(
            workload=workload,
            gpus=("h100_sxm", "h200_sxm"),
            slo=SLO.parse("ttft_p95<=3s,tpot_p95<=40ms"),
        )
    )
    kinds = [o.kind for o in rec.options]
    assert kinds[0] == "shared" and "by_length" in kinds
    split = next(o for o in rec.options if o.kind == "by_length")
    assert [p.spec.name for p in split.pools] == ["short", "long"]
    assert sum(p.spec.share for p in split.pools) == pytest.approx(1.0)
    feasible = [o for o in rec.options if o.feasible]
    assert rec.deployment.usd_per_hour == min(o.usd_per_hour for o in feasible)
    assert set(rec.by_gpu["gpu"]) <= {"h100_sxm", "h200_sxm"}


def test_tenants_with_their_own_slos_get_shared_or_separate_pools(recommender):
    tenants = (
        TenantClass(
            name="chat",
            share=0.8,
            isl=FixedLength(tokens=600),
            osl=FixedLength(tokens=200),
            slo=SLO.parse("ttft_p95<=500ms,tpot_p95<=30ms"),
            priority=1,
        ),
        TenantClass(
            name="batch",
            share=0.2,
            isl=FixedLength(tokens=6000),
            osl=FixedLength(tokens=400),
            slo=SLO.parse("ttft_p95<=10s,tpot_p95<=80ms"),
        ),
    )
    workload = Workload(arrivals=PoissonArrivals(rate=5.0), tenants=tenants)
    rec = recommender.recommend(_request(workload=workload, slo=SLO()))
    kinds = {o.kind: o for o in rec.options}
    assert "by_tenant" in kinds
    assert [p.spec.name for p in kinds["by_tenant"].pools] == ["chat", "batch"]
    if rec.chosen is not None:
        assert rec.chosen["chat:ttft_p95_ms"] <= 500
        assert rec.chosen["batch:ttft_p95_ms"] <= 10_000
    feasible = [o for o in rec.options if o.feasible]
    assert rec.deployment.usd_per_hour == min(o.usd_per_hour for o in feasible)


def test_contract_prices_change_the_cost(surrogate):
    cheap = Recommender(surrogate, settings=Settings(gpu_prices={"h100_sxm": 1.0}))
    rec = cheap.recommend(_request(compare_pools=False))
    assert rec.chosen["usd_per_hour_replica"] == pytest.approx(rec.chosen["gpus_per_replica"] * 1.0)
