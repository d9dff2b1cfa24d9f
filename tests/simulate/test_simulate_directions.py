"""Direction tests: the knobs move the outputs the way serving engines do."""

from __future__ import annotations

import pytest
from simhelpers import LinearStep, limits, requests

from optimizer.domain import (
    BurstyArrivals,
    ClosedLoop,
    EndpointConfig,
    FixedLength,
    LogNormalLength,
    PoissonArrivals,
    TenantClass,
    Workload,
)
from optimizer.simulate import SpecDecoding, StepTimeModel, run_requests
from optimizer.simulate.calibration import closed_loop_requests

KV_TOKENS = 400_000


def _kv_bound_run(block: int):
    # 600 clients of ~2,500-token sequences need ~1.5M tokens: the KV pool binds
    tenant = TenantClass(
        name="t",
        share=1.0,
        isl=LogNormalLength(median=2000, sigma=0.4, max_tokens=8000),
        osl=FixedLength(tokens=400),
    )
    workload = Workload(arrivals=ClosedLoop(concurrency=600), tenants=(tenant,))
    pool = limits(total_blocks=KV_TOKENS // block, block_size=block, max_batch=1024)
    return run_requests(requests(workload, 3000, seed=2), pool, LinearStep(per_seq=5e-5))


def test_larger_blocks_waste_more_and_run_fewer_sequences():
    small, large = _kv_bound_run(16), _kv_bound_run(256)
    assert large.kv.waste_tokens_per_sequence > 5 * small.kv.waste_tokens_per_sequence
    assert large.kv.waste_fraction > small.kv.waste_fraction
    assert large.kv.mean_running < small.kv.mean_running
    assert large.overall.throughput_req_s < small.overall.throughput_req_s


def _prefix_run(block: int, caching: bool = True, step=None):
    tenant = TenantClass(
        name="t",
        share=1.0,
        isl=LogNormalLength(median=300, sigma=0.5, max_tokens=2000),
        osl=FixedLength(tokens=50),
        shared_prefix_tokens=1000,
        shared_prefix_fraction=1.0,
    )
    workload = Workload(arrivals=PoissonArrivals(rate=4.0), tenants=(tenant,))
    pool = limits(block_size=block, total_blocks=2_000_000 // block, prefix_caching=caching)
    return run_requests(requests(workload, 1500, seed=4), pool, step or LinearStep())


def test_larger_blocks_reuse_less_of_a_shared_prefix():
    rates = [_prefix_run(b).kv.prefix_hit_rate for b in (16, 128, 512)]
    assert rates[0] > rates[1] > rates[2] > 0
    # only whole blocks are reused: 992 of the 1000 shared tokens with 16-token blocks
    assert _prefix_run(16).overall.prefix_hit_rate == pytest.approx(
        _prefix_run(16).kv.prefix_hit_rate
    )


def test_prefix_caching_of_a_system_prompt_cuts_ttft(prior_step):
    on = _prefix_run(16, caching=True, step=prior_step)
    off = _prefix_run(16, caching=False, step=prior_step)
    assert off.kv.prefix_hit_rate == 0
    assert on.kv.prefix_hit_rate > 0.5
    assert on.overall.ttft.mean < 0.6 * off.overall.ttft.mean


def _spec_model(llama, h100, spec):
    endpoint = EndpointConfig(
        engine="vllm",
        spec_method=spec.method if spec else "none",
        spec_draft_len=spec.max_draft_len if spec else 0,
    )
    return StepTimeModel.from_endpoint(
        llama, h100, endpoint, max_batch=256, max_tokens=8192, spec=spec
    )


def _closed_loop(step, spec, concurrency: int):
    pool = limits(max_batch=max(concurrency, 1), lookahead_tokens=spec.max_draft_len if spec else 0)
    return run_requests(
        closed_loop_requests(concurrency, 512, 256, 6 * concurrency + 10), pool, step, spec=spec
    )


def test_speculation_cuts_tpot_at_concurrency_one(llama, h100):
    spec = SpecDecoding.fixed("eagle3", 3)  # published acceptance (alpha ~0.74)
    plain = _closed_loop(_spec_model(llama, h100, None), None, 1)
    fast = _closed_loop(_spec_model(llama, h100, spec), spec, 1)
    assert fast.overall.tpot.mean < 0.7 * plain.overall.tpot.mean


def test_low_acceptance_speculation_loses_throughput_at_saturation(llama, h100):
    spec = SpecDecoding.fixed("eagle", 2, alpha=0.3)
    plain = _closed_loop(_spec_model(llama, h100, None), None, 256)
    slow = _closed_loop(_spec_model(llama, h100, spec), spec, 256)
    assert slow.overall.output_tok_s < plain.overall.output_tok_s
    # ... while the same speculation still helps a single user
    one = _closed_loop(_spec_model(llama, h100, spec), spec, 1)
    alone = _closed_loop(_spec_model(llama, h100, None), None, 1)
    assert one.overall.tpot.mean < alone.overall.tpot.mean


def test_a_draft_schedule_turns_speculation_off_for_large_batches(llama, h100):
    spec = SpecDecoding(
        method="eagle", schedule=((8, 3),), acceptance=SpecDecoding.fixed("eagle", 3).acceptance
    )
    step = _spec_model(llama, h100, spec)
    assert step.draft_len(8) == 3 and step.draft_len(9) == 0
    plain = _spec_model(llama, h100, None)
    # same cost as no speculation (up to the interpolation grid of the larger table)
    assert step.decode(64, 64_000)[0] == pytest.approx(plain.decode(64, 64_000)[0], rel=1e-2)
    assert step.decode(4, 4_000)[0] > plain.decode(4, 4_000)[0]


def test_bursty_arrivals_raise_the_ttft_tail(prior_step):
    tenant = TenantClass(
        name="t",
        share=1.0,
        isl=LogNormalLength(median=1000, sigma=0.5, max_tokens=8000),
        osl=LogNormalLength(median=200, sigma=0.5, max_tokens=2000),
    )
    runs = {}
    for name, arrivals in (
        ("poisson", PoissonArrivals(rate=12.0)),
        ("bursty", BurstyArrivals(rate=12.0, cv=4.0)),
    ):
        workload = Workload(arrivals=arrivals, tenants=(tenant,))
        runs[name] = run_requests(requests(workload, 4000, seed=8), limits(), prior_step)
    poisson, bursty = runs["poisson"], runs["bursty"]
    assert bursty.arrival_rate == pytest.approx(poisson.arrival_rate, rel=0.1)
    assert bursty.overall.ttft.p99 > 1.5 * poisson.overall.ttft.p99
