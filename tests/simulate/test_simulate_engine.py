"""The event loop: chunked prefill, batch cap, preemption, priorities, closed loop,
routing, and that jumping over stretches equals stepping token by token."""

from __future__ import annotations

import numpy as np
import pytest
from simhelpers import ConstantStep, LinearStep, limits, requests

from optimizer.domain import (
    ClosedLoop,
    FixedLength,
    LogNormalLength,
    PoissonArrivals,
    TenantClass,
    Workload,
)
from optimizer.simulate import (
    Engine,
    EngineLimits,
    MultiTurn,
    RequestLog,
    RoutingPolicy,
    run_engines,
    run_requests,
)


class GrowingStep:
    """Decode steps that grow with the cached tokens (so stretches must integrate)."""

    def decode(self, batch, kv_tokens):
        return 0.005 + 1e-4 * batch + 1e-8 * kv_tokens, 1e-8

    def mixed(self, batch, kv_tokens, chunks, running=0):
        return 0.005 + 1e-4 * batch + 1e-8 * kv_tokens + 1e-5 * sum(c for c, _ in chunks)


def _lognormal(rate=8.0):
    tenant = TenantClass(
        name="t",
        share=1.0,
        isl=LogNormalLength(median=600, sigma=0.6, max_tokens=4000),
        osl=LogNormalLength(median=120, sigma=0.6, max_tokens=800),
    )
    return Workload(arrivals=PoissonArrivals(rate=rate), tenants=(tenant,))


def test_stretches_equal_step_by_step_simulation():
    reqs = requests(_lognormal(), 300, seed=1)
    jumped, engines = run_engines(reqs, limits(max_batch=32), GrowingStep())
    # a horizon at every step boundary's neighbourhood forces single-step stretches
    log = RequestLog(reqs)
    engine = Engine(log, limits(max_batch=32), GrowingStep())
    engine.submit_many(list(range(len(reqs))))
    t = 0.0
    while engine.outstanding:
        t += 0.004  # shorter than any step: each call runs at most one step
        engine.run_until(t)
    assert engine.stats.stretches > engines[0].stats.stretches
    assert np.allclose(log.finish, jumped.finish, rtol=1e-9, atol=1e-9)
    assert np.allclose(log.first_token, jumped.first_token, rtol=1e-9, atol=1e-9)


def test_long_prompts_are_chunked_by_the_token_budget():
    workload = Workload.simple(10_000, 2, rate=0.001)
    report = run_requests(
        requests(workload, 3), limits(token_budget=4096, max_batch=4), ConstantStep(0.1)
    )
    # 10,000 prompt tokens need three steps of at most 4,096 tokens: TTFT = 0.3 s
    assert np.allclose(report.records["ttft_ms"], 300.0)
    assert report.loop["mixed_steps"] == 9


def test_running_batch_never_exceeds_the_cap():
    report = run_requests(requests(_lognormal(rate=50.0), 2000), limits(max_batch=8), LinearStep())
    assert report.loop["max_running"] == 8
    assert report.overall.queue.p99 > 0


def test_preemption_by_recompute_when_blocks_run_out():
    # 40 blocks of 16 tokens: four 100-token prompts fit, their growth to 260 does not
    workload = Workload.simple(100, 160, concurrency=4)
    pool = EngineLimits(total_blocks=40, block_size=16, max_batch=4, token_budget=4096)
    report = run_requests(requests(workload, 8), pool, ConstantStep(0.01))
    assert report.overall.completed == 8
    assert report.kv.preemptions > 0
    assert report.records["preemptions"].sum() == report.kv.preemptions
    assert report.kv.peak_utilisation <= 1.0


def test_requests_that_can_never_fit_are_rejected():
    workload = Workload.simple(1000, 100, rate=1.0)
    pool = EngineLimits(total_blocks=10, block_size=16, max_batch=4, token_budget=4096)
    report = run_requests(requests(workload, 5), pool, ConstantStep(0.01))
    assert report.overall.rejected == 5 and report.overall.completed == 0


def test_priority_scheduling_serves_the_high_priority_tenant_first():
    tenants = (
        TenantClass(
            name="gold",
            share=0.5,
            isl=FixedLength(tokens=200),
            osl=FixedLength(tokens=50),
            priority=5,
        ),
        TenantClass(
            name="bronze", share=0.5, isl=FixedLength(tokens=200), osl=FixedLength(tokens=50)
        ),
    )
    workload = Workload(arrivals=PoissonArrivals(rate=30.0), tenants=tenants)
    reqs = requests(workload, 3000, seed=2)
    fcfs = run_requests(reqs, limits(max_batch=4), LinearStep(base=0.003))
    prio = run_requests(reqs, limits(max_batch=4, priority=True), LinearStep(base=0.003))
    assert prio.tenant("gold").queue.mean < 0.5 * fcfs.tenant("gold").queue.mean
    assert prio.tenant("bronze").queue.mean > fcfs.tenant("bronze").queue.mean


def test_closed_loop_keeps_its_clients_busy():
    workload = Workload.simple(200, 40, concurrency=6)
    report = run_requests(requests(workload, 120), limits(), ConstantStep(0.01))
    assert report.overall.completed == 120
    assert report.loop["max_running"] == 6
    assert report.kv.mean_running == pytest.approx(6.0, rel=0.05)


def test_steady_closed_loop_start_spreads_the_clients():
    workload = Workload.simple(200, 40, concurrency=8)
    burst = run_requests(requests(workload, 80), limits(), ConstantStep(0.01))
    steady = run_requests(requests(workload, 80), limits(), ConstantStep(0.01), warm=(200, 40))
    assert steady.overall.completed == 80
    # spread clients prefill one or two prompts per step, a burst prefills all eight
    assert steady.loop["mixed_steps"] > 2 * burst.loop["mixed_steps"]


@pytest.mark.parametrize("policy", list(RoutingPolicy))
def test_routing_policies_spread_the_load(policy):
    report = run_requests(
        requests(_lognormal(rate=20.0), 2000, seed=3),
        limits(max_batch=16),
        LinearStep(),
        ranks=4,
        router=policy,
    )
    served = np.bincount(report.records["replica"], minlength=4)
    assert report.overall.completed == 2000 and (served > 300).all()


def test_least_outstanding_beats_round_robin_on_the_tail():
    reqs = requests(_lognormal(rate=28.0), 3000, seed=4)
    kwargs = {"ranks": 4}
    rr = run_requests(reqs, limits(max_batch=4), LinearStep(), router="round_robin", **kwargs)
    lo = run_requests(reqs, limits(max_batch=4), LinearStep(), router="least_outstanding", **kwargs)
    assert lo.overall.ttft.p99 < rr.overall.ttft.p99


def test_session_affinity_keeps_a_conversation_on_one_rank_and_its_cache_warm():
    tenant = TenantClass(
        name="chat", share=1.0, isl=FixedLength(tokens=300), osl=FixedLength(tokens=60)
    )
    workload = Workload(arrivals=PoissonArrivals(rate=6.0), tenants=(tenant,))
    reqs = requests(workload, 1200, seed=5, sessions={"chat": MultiTurn(turns=4, think_time_s=3)})
    sticky = run_requests(reqs, limits(), LinearStep(), ranks=4, router="session_affinity")
    spread = run_requests(reqs, limits(), LinearStep(), ranks=4, router="round_robin")
    sessions, replicas = reqs.session, sticky.records["replica"]
    for sid in np.unique(sessions)[:50]:
        assert len(set(replicas[sessions == sid])) == 1
    assert sticky.kv.prefix_hit_rate > spread.kv.prefix_hit_rate + 0.2


def test_a_workload_at_the_same_seed_is_reproducible():
    reqs = requests(_lognormal(), 500, seed=9)
    one = run_requests(reqs, limits(max_batch=16), GrowingStep())
    two = run_requests(reqs, limits(max_batch=16), GrowingStep())
    assert np.array_equal(one.records["finish_s"], two.records["finish_s"])


def test_closed_loop_workload_through_the_router_splits_clients():
    workload = Workload(
        arrivals=ClosedLoop(concurrency=10),
        tenants=(
            TenantClass(
                name="t", share=1.0, isl=FixedLength(tokens=50), osl=FixedLength(tokens=20)
            ),
        ),
    )
    report = run_requests(requests(workload, 200), limits(), ConstantStep(0.01), ranks=3)
    assert report.overall.completed == 200
    assert report.loop["max_running"] == 4  # 10 clients over 3 ranks: 4, 3, 3
