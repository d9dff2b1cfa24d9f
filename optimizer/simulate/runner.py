"""Run requests through engine ranks and summarise: the pure core of a simulation.

:func:`run_requests` needs no model or GPU: it takes the requests, one rank's limits and
a step-time model (:class:`~optimizer.simulate.step_time.StepCost`), which is what the
closed-form tests and the calibration use. :func:`optimizer.simulate.simulate` builds
those from an endpoint configuration and a workload.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from optimizer.domain.slo import SLO
from optimizer.simulate.engine import Engine, EngineLimits
from optimizer.simulate.metrics import SimulationReport, SpecReport, build_report
from optimizer.simulate.records import RequestLog
from optimizer.simulate.router import RoutingPolicy, route
from optimizer.simulate.speculative import SpecDecoding
from optimizer.simulate.step_time import StepCost
from optimizer.simulate.traffic import RequestSet

__all__ = ["run_engines", "run_requests"]


def run_engines(
    requests: RequestSet,
    limits: EngineLimits,
    step: StepCost,
    *,
    ranks: int = 1,
    router: RoutingPolicy | str = RoutingPolicy.LEAST_OUTSTANDING,
    spec: SpecDecoding | None = None,
    seed: int = 0,
    bubble: Callable[[int], float] | None = None,
    warm: tuple[int, int] | None = None,
) -> tuple[RequestLog, list[Engine]]:
    """Simulate ``ranks`` identical engine ranks behind a router until every request ends
    (``warm``: closed-loop steady-state start, see :func:`~optimizer.simulate.router.route`).

    Returns:
        The request log and the engines (for their statistics).
    """
    log = RequestLog(requests)
    streams = np.random.default_rng(seed).spawn(ranks)
    engines = [
        Engine(log, limits, step, spec=spec, rng=streams[i], replica=i, bubble=bubble)
        for i in range(ranks)
    ]
    route(requests, engines, router, warm=warm)
    return log, engines


def _spec_report(spec: SpecDecoding | None, engines: Sequence[Engine]) -> SpecReport | None:
    if spec is None:
        return None
    drawn_tokens = sum(e.acceptance_draws[0] for e in engines)
    drawn_steps = sum(e.acceptance_draws[1] for e in engines)
    steps = sum(e.stats.spec_steps for e in engines)
    tokens = sum(e.stats.spec_tokens for e in engines)
    return SpecReport(
        method=spec.method.value,
        mean_acceptance_length=drawn_tokens / drawn_steps if drawn_steps else float("nan"),
        emitted_tokens_per_step=tokens / steps if steps else float("nan"),
        expected_tokens_per_step=spec.acceptance.expected_tokens(spec.max_draft_len),
    )


def run_requests(
    requests: RequestSet,
    limits: EngineLimits,
    step: StepCost,
    *,
    ranks: int = 1,
    router: RoutingPolicy | str = RoutingPolicy.LEAST_OUTSTANDING,
    spec: SpecDecoding | None = None,
    seed: int = 0,
    slo_by_tenant: Sequence[SLO | None] | None = None,
    warmup_fraction: float = 0.0,
    bubble: Callable[[int], float] | None = None,
    calibration: dict[str, Any] | None = None,
    setup: dict[str, Any] | None = None,
    warm: tuple[int, int] | None = None,
) -> SimulationReport:
    """Simulate the requests and build the report.

    Args:
        requests: what arrives (see :func:`~optimizer.simulate.traffic.generate_requests`).
        limits: one rank's batch, token budget and KV pool.
        step: one rank's step times (a ``frontend_s`` attribute, if any, is added to
            every request's first token and end).
        ranks: identical ranks behind the router.
        router: routing policy.
        spec: speculative decoding, if on.
        seed: seed of the acceptance draws.
        slo_by_tenant: the SLO each tenant is held to (default: none).
        warmup_fraction: share of requests, by arrival, left out of the statistics.
        bubble: idle pipeline-stage share by running batch (pipeline parallelism).
        calibration: how ``step`` was obtained, copied into the report.
        setup: the simulated configuration, copied into the report.
        warm: closed loop: start in steady state with requests of these ``(input,
            output)`` tokens in flight (``None``: all clients send at time 0).

    Example:
        >>> import numpy as np
        >>> from optimizer.domain import Workload
        >>> from optimizer.simulate.traffic import generate_requests
        >>> class Fixed:
        ...     def decode(self, batch, kv_tokens): return 0.01, 0.0
        ...     def mixed(self, batch, kv_tokens, chunks, running=0): return 0.02
        >>> requests = generate_requests(Workload.simple(100, 10, rate=5.0), 500,
        ...                              np.random.default_rng(0))
        >>> limits = EngineLimits(total_blocks=10_000, block_size=16, max_batch=8,
        ...                       token_budget=2048)
        >>> report = run_requests(requests, limits, Fixed())
        >>> report.overall.completed
        500
    """
    log, engines = run_engines(
        requests,
        limits,
        step,
        ranks=ranks,
        router=router,
        spec=spec,
        seed=seed,
        bubble=bubble,
        warm=warm,
    )
    tenants = len(requests.tenant_names)
    return build_report(
        log,
        [e.stats for e in engines],
        total_blocks=limits.total_blocks,
        block_size=limits.block_size,
        evicted_blocks=sum(e.cache.evicted for e in engines),
        slo_by_tenant=list(slo_by_tenant) if slo_by_tenant is not None else [None] * tenants,
        warmup_fraction=warmup_fraction,
        spec=_spec_report(spec, engines),
        calibration=calibration,
        setup=setup,
        frontend_s=float(getattr(step, "frontend_s", 0.0)),
    )
