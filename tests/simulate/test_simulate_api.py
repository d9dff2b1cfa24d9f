"""The public API end to end: simulate, capacity, reports, replicas, pipeline, traces."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from simhelpers import GPU, MODEL, ConstantStep

import optimizer.simulate as sim
from optimizer.domain import (
    SLO,
    BurstyArrivals,
    ClosedLoop,
    EndpointConfig,
    FixedLength,
    LogNormalLength,
    OnOffArrivals,
    PoissonArrivals,
    TenantClass,
    TraceReplay,
    Workload,
)
from optimizer.errors import InvalidInputError
from optimizer.simulate import (
    SimulationOptions,
    build_replica,
    find_capacity,
    max_rate_meeting_slo,
    scale_arrivals,
    simulate,
)


def _chat(rate: float = 8.0, slo: SLO | None = None) -> Workload:
    tenant = TenantClass(
        name="chat",
        share=1.0,
        isl=LogNormalLength(median=1000, sigma=0.5, max_tokens=8000),
        osl=LogNormalLength(median=250, sigma=0.5, max_tokens=2000),
        slo=slo,
    )
    return Workload(arrivals=PoissonArrivals(rate=rate), tenants=(tenant,))


def test_package_exports_are_complete():
    missing = [name for name in sim.__all__ if not hasattr(sim, name)]
    assert not missing


def test_simulate_reports_every_figure():
    slo = SLO.parse("ttft_p95<=2s,tpot_p95<=60ms")
    report = simulate(EndpointConfig(engine="vllm"), MODEL, GPU, _chat(slo=slo), n_requests=800)
    row = report.tenant("chat")
    assert row.completed == 800 and row.slo_met is True
    assert 0 < row.ttft.p50 <= row.ttft.p90 <= row.ttft.p95 <= row.ttft.p99
    assert 0 < row.tpot.mean < 60 and row.e2e.mean > row.ttft.mean
    assert row.goodput_req_s == pytest.approx(row.throughput_req_s, rel=0.05)
    assert {c.bound for c in row.checks} == {"ttft_p95_ms", "tpot_p95_ms"}
    assert 0 < report.kv.utilisation < 1 and report.kv.waste_fraction > 0
    assert report.setup["kv_block_size"] == 16 and report.setup["max_batch"] == 256
    assert report.calibration["source"].startswith("operator prior")
    assert report.itl_token_ms["p99"] >= report.itl_token_ms["p50"] > 0
    payload = json.dumps(report.to_dict(per_request=True))
    assert '"ttft_ms"' in payload and "NaN" not in payload


def test_simulate_is_fast_enough_for_a_search_loop():
    endpoint = EndpointConfig(engine="vllm", max_batch_size=128)
    simulate(endpoint, MODEL, GPU, _chat(), n_requests=200)  # warm the kernel tables
    started = time.perf_counter()
    simulate(endpoint, MODEL, GPU, _chat(rate=12.0), n_requests=2000)
    assert time.perf_counter() - started < 0.6  # 0.11 s measured; shared CI machines


def test_an_slo_that_cannot_hold_is_missed_and_goodput_drops():
    strict = SLO.parse("ttft_p99<=30ms")
    report = simulate(
        EndpointConfig(engine="vllm"), MODEL, GPU, _chat(), n_requests=500, slo=strict
    )
    row = report.tenant("chat")
    assert row.slo_met is False and row.goodput_req_s < row.throughput_req_s
    assert report.slo_met is False


def test_replicas_and_data_parallel_ranks_share_the_load():
    one = simulate(
        EndpointConfig(engine="vllm", max_batch_size=32),
        MODEL,
        GPU,
        _chat(rate=30),
        n_requests=1500,
    )
    two = simulate(
        EndpointConfig(engine="vllm", max_batch_size=32, replicas=2),
        MODEL,
        GPU,
        _chat(rate=30),
        n_requests=1500,
    )
    assert two.engines == 2 and one.engines == 1
    assert two.overall.ttft.p95 < one.overall.ttft.p95


def test_pipeline_parallelism_reports_its_bubble():
    model = "meta-llama/Llama-3.1-70B"
    light = simulate(
        EndpointConfig(engine="vllm", tp=2, pp=2), model, GPU, _chat(rate=0.02), n_requests=60
    )
    assert 0.3 < light.pp_bubble < 0.6  # mostly one micro-batch in a two-stage pipeline
    busy = simulate(
        EndpointConfig(engine="vllm", tp=2, pp=2), model, GPU, _chat(rate=6.0), n_requests=600
    )
    assert busy.pp_bubble < light.pp_bubble


def test_speculative_endpoint_reports_acceptance():
    endpoint = EndpointConfig(engine="vllm", spec_method="eagle3", spec_draft_len=3)
    report = simulate(
        endpoint,
        MODEL,
        GPU,
        _chat(rate=2.0),
        n_requests=300,
        options=SimulationOptions(acceptance_rate=0.8),
    )
    assert report.spec is not None and report.spec.method == "eagle3"
    assert report.spec.mean_acceptance_length == pytest.approx(
        sim.expected_tokens_per_step(0.8, 3), rel=0.03
    )


def test_trace_replay_through_simulate(tmp_path):
    path = tmp_path / "trace.jsonl"
    lines = [
        json.dumps({"timestamp": i * 0.25, "input_tokens": 500 + i, "output_tokens": 50})
        for i in range(40)
    ]
    path.write_text("\n".join(lines))
    tenant = TenantClass(name="t", share=1.0, isl=FixedLength(tokens=1), osl=FixedLength(tokens=1))
    workload = Workload(arrivals=TraceReplay(path=path), tenants=(tenant,))
    report = simulate(EndpointConfig(engine="vllm"), MODEL, GPU, workload, n_requests=1000)
    assert report.overall.requests == 40
    assert report.records["isl"].tolist() == list(range(500, 540))


def test_an_endpoint_that_does_not_fit_is_refused():
    with pytest.raises(InvalidInputError, match="leaves no KV cache"):
        build_replica(EndpointConfig(engine="vllm"), "meta-llama/Llama-3.1-70B", GPU)


def test_scale_arrivals_keeps_the_shape():
    base = _chat()
    assert scale_arrivals(base, 3.0).arrivals.rate == 3.0
    bursty = base.model_copy(update={"arrivals": BurstyArrivals(rate=1.0, cv=2.0)})
    assert scale_arrivals(bursty, 4.0).arrivals.cv == 2.0
    onoff = base.model_copy(
        update={"arrivals": OnOffArrivals(rate_on=4, rate_off=1, on_s=1, off_s=1)}
    )
    assert scale_arrivals(onoff, 5.0).arrivals.rate == pytest.approx(5.0)
    closed = base.model_copy(update={"arrivals": ClosedLoop(concurrency=4)})
    with pytest.raises(InvalidInputError, match="open-loop"):
        scale_arrivals(closed, 1.0)
    with pytest.raises(InvalidInputError, match="rate"):
        scale_arrivals(base, -1.0)


def test_capacity_matches_the_md1_waiting_time_quantile():
    # batch of one, 0.1 s per request: TTFT p95 <= 0.5 s means P(wait <= 0.4 s) >= 0.95;
    # Erlang's M/D/1 waiting-time distribution puts that at 6.94 req/s
    tenant = TenantClass(
        name="t",
        share=1.0,
        isl=FixedLength(tokens=10),
        osl=FixedLength(tokens=1),
        slo=SLO.parse("ttft_p95<=500ms"),
    )
    workload = Workload(arrivals=PoissonArrivals(rate=1.0), tenants=(tenant,))
    replica = build_replica(
        EndpointConfig(engine="vllm", max_batch_size=1), MODEL, GPU, step_model=ConstantStep(0.1)
    )
    result = find_capacity(replica, workload, n_requests=20_000, rel_tol=0.01)
    assert result.rate == pytest.approx(6.94, rel=0.05)
    assert result.report is not None and result.report.slo_met
    failing = [rate for rate, ok in result.probes if not ok]
    assert failing and min(failing) <= result.rate * 1.011


def test_capacity_needs_an_slo():
    with pytest.raises(InvalidInputError, match="no SLO"):
        max_rate_meeting_slo(EndpointConfig(engine="vllm"), MODEL, GPU, _chat(), n_requests=100)


def test_records_align_with_requests():
    report = simulate(EndpointConfig(engine="vllm"), MODEL, GPU, _chat(), n_requests=300, seed=4)
    r = report.records
    assert len(r["ttft_ms"]) == 300
    assert np.all(r["first_token_s"] <= r["finish_s"])
    assert np.all(r["first_scheduled_s"] >= r["arrival_s"])
