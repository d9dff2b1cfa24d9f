"""The simulator against closed forms: M/D/1, M/M/1, Little's law, speculative
acceptance, KV block waste."""

from __future__ import annotations

import numpy as np
import pytest
from simhelpers import ConstantStep, ExponentialStep, LinearStep, limits, requests

from optimizer.domain import (
    EmpiricalLength,
    FixedLength,
    LogNormalLength,
    PoissonArrivals,
    TenantClass,
    UniformLength,
    Workload,
)
from optimizer.simulate import (
    SpecDecoding,
    expected_block_waste,
    expected_tokens_per_step,
    run_requests,
)

SERVICE_S = 1.0
N_QUEUE = 400_000


def _mean_wait(step, rho: float) -> float:
    """Mean queueing delay (s) of one-token requests on a batch-of-one engine."""
    workload = Workload.simple(1, 1, rate=rho / SERVICE_S)
    report = run_requests(requests(workload, N_QUEUE, seed=0), limits(max_batch=1), step)
    return float(np.mean(report.records["queue_ms"])) / 1e3


@pytest.mark.slow
@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_md1_mean_queueing_delay(rho):
    exact = rho * SERVICE_S / (2 * (1 - rho))  # Pollaczek-Khinchine, deterministic service
    assert _mean_wait(ConstantStep(SERVICE_S), rho) == pytest.approx(exact, rel=0.03)


@pytest.mark.slow
@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_mm1_mean_queueing_delay(rho):
    exact = rho * SERVICE_S / (1 - rho)
    step = ExponentialStep(SERVICE_S, seed=1)
    assert _mean_wait(step, rho) == pytest.approx(exact, rel=0.03)


def test_service_time_is_the_sum_of_its_steps():
    # isl 1, osl 5: one prefill step plus four decode steps, each 0.1 s, no queueing
    workload = Workload.simple(1, 5, rate=0.01)
    report = run_requests(requests(workload, 50), limits(max_batch=1), ConstantStep(0.1))
    e2e = report.records["e2e_ms"]
    assert np.allclose(e2e, 500.0)
    assert np.allclose(report.records["ttft_ms"], 100.0)
    assert np.allclose(report.records["tpot_ms"], 100.0)


def test_littles_law_from_the_engines_own_integral():
    tenant = TenantClass(
        name="t",
        share=1.0,
        isl=LogNormalLength(median=800, sigma=0.6, max_tokens=6000),
        osl=LogNormalLength(median=200, sigma=0.6, max_tokens=1500),
    )
    workload = Workload(arrivals=PoissonArrivals(rate=20.0), tenants=(tenant,))
    report = run_requests(
        requests(workload, 20_000, seed=3), limits(max_batch=64), LinearStep(per_seq=2e-4)
    )
    assert report.overall.completed == 20_000
    little = report.arrival_rate * report.mean_e2e_all_s
    assert report.mean_in_system == pytest.approx(little, rel=0.02)
    assert report.kv.mean_running > 5  # batching actually happened


@pytest.mark.parametrize(("alpha", "k"), [(0.6, 3), (0.8, 5), (0.35, 2)])
def test_mean_accepted_tokens_per_step_matches_the_formula(alpha, k):
    spec = SpecDecoding.fixed("eagle", k, alpha=alpha)
    workload = Workload.simple(32, 2000, rate=2.0)
    report = run_requests(
        requests(workload, 400, seed=5), limits(max_batch=16), LinearStep(), spec=spec
    )
    expected = expected_tokens_per_step(alpha, k)
    assert report.spec is not None
    assert report.spec.expected_tokens_per_step == pytest.approx(expected)
    assert report.spec.mean_acceptance_length == pytest.approx(expected, rel=0.01)
    # emitted tokens per step are cut at each answer's last step, so slightly lower
    assert 0.97 * expected < report.spec.emitted_tokens_per_step <= expected * 1.001


@pytest.mark.parametrize("block", [16, 64])
def test_kv_block_waste_matches_its_expectation(block):
    # input uniform over many blocks, fixed output: every decode step's length is
    # prompt + j, so the expected waste is the mean over prompts and steps
    low, high, osl = 500, 1523, 300
    tenant = TenantClass(
        name="t",
        share=1.0,
        isl=UniformLength(low=low, high=high),
        osl=FixedLength(tokens=osl),
    )
    workload = Workload(arrivals=PoissonArrivals(rate=4.0), tenants=(tenant,))
    report = run_requests(
        requests(workload, 3000, seed=11), limits(block_size=block, max_batch=64), LinearStep()
    )
    prompts = np.arange(low, high + 1)
    lengths = (prompts[:, None] + np.arange(0, osl)[None, :]).ravel()
    exact = expected_block_waste(lengths, None, block)
    assert exact == pytest.approx((block - 1) / 2, rel=0.02)
    assert report.kv.waste_tokens_per_sequence == pytest.approx(exact, rel=0.05)


def test_expected_block_waste_of_an_empirical_distribution():
    dist = EmpiricalLength(values=(16, 17, 31), weights=(1.0, 2.0, 1.0))
    waste = expected_block_waste(np.array(dist.values), np.array(dist.weights), 16)
    assert waste == pytest.approx((0 + 2 * 15 + 1) / 4)
