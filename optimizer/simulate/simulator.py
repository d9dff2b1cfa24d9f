"""``simulate``: an endpoint configuration under a workload, end to end.

Puts the pieces together: :func:`~optimizer.simulate.replica.build_replica` (limits, KV
pool, operator-prior step times), optionally
:func:`calibrated_replica` (step times scaled to a fitted surrogate's closed-loop
TTFT/TPOT), :func:`~optimizer.simulate.traffic.generate_requests` (reading a trace
file when the workload replays one) and :func:`~optimizer.simulate.runner.run_requests`.

Calibrations are cached per (surrogate, model, GPU, configuration, lengths), so calling
:func:`simulate` for many workloads or seeds on one configuration pays for it once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from optimizer.domain.endpoint import EndpointConfig
from optimizer.domain.enums import SpecMethod
from optimizer.domain.gpu import GPUSpec
from optimizer.domain.model_spec import ModelSpec
from optimizer.domain.slo import SLO
from optimizer.domain.workload import TraceReplay, Workload
from optimizer.errors import InvalidInputError
from optimizer.simulate.calibration import (
    DEFAULT_WAVES,
    CalibrationCache,
    anchor_concurrencies,
    calibrate,
    surrogate_targets,
)
from optimizer.simulate.config import SimulationOptions
from optimizer.simulate.metrics import SimulationReport
from optimizer.simulate.replica import Replica, build_replica
from optimizer.simulate.runner import run_requests
from optimizer.simulate.step_time import StepCost, StepTimeModel
from optimizer.simulate.trace import Trace, read_trace
from optimizer.simulate.traffic import generate_requests

__all__ = [
    "calibrated_replica",
    "mean_lengths",
    "prepared_replica",
    "simulate",
    "simulate_replica",
]

_CACHE = CalibrationCache()


def mean_lengths(workload: Workload, trace: Trace | None = None) -> tuple[float, float]:
    """Mean input (shared prefixes included) and output tokens of a workload."""
    if trace is not None:
        return float(trace.input_tokens.mean()), float(trace.output_tokens.mean())
    prefix = sum(
        t.share * t.shared_prefix_tokens * t.shared_prefix_fraction for t in workload.tenants
    )
    return workload.mean_isl() + prefix, workload.mean_osl()


def calibrated_replica(
    replica: Replica,
    surrogate: Any,
    *,
    isl: int,
    osl: int,
    anchors: tuple[int, ...] | None = None,
    waves: int = DEFAULT_WAVES,
    cache: CalibrationCache | None = _CACHE,
) -> Replica:
    """The replica with step times calibrated on ``surrogate`` (see
    :mod:`optimizer.simulate.calibration`) at closed-loop anchors.

    Args:
        replica: a replica whose step model is a :class:`StepTimeModel`.
        surrogate: a fitted :class:`~optimizer.surrogate.Surrogate` (``predict``).
        isl, osl: lengths of the closed-loop anchors (the workload's means).
        anchors: clients per rank (default: 4 points from 1 to the rank's capacity).
        waves: requests per client in each calibration run.
        cache: where calibrations are kept (``None``: no caching).

    Raises:
        InvalidInputError: the step model is not a :class:`StepTimeModel`.
    """
    step = replica.step
    if not isinstance(step, StepTimeModel):
        raise InvalidInputError("step_model", "calibration needs a StepTimeModel")
    isl, osl = max(int(isl), 1), max(int(osl), 2)
    anchors = anchors or anchor_concurrencies(replica.max_concurrency)
    core = replica.endpoint.model_copy(
        update={
            "pp": 1,
            "spec_method": SpecMethod.NONE,
            "spec_draft_len": 0,
            "replicas": 1,
            "max_batch_size": None,
            "kv_block_size": None,
        }
    )
    key = (
        surrogate,
        replica.model.model_id,
        replica.gpu.model_dump_json(),
        core.model_dump_json(),
        replica.limits.token_budget,
        isl,
        osl,
        anchors,
        waves,
    )
    result = cache.get(key) if cache is not None else None
    if result is None:
        points = surrogate_targets(
            surrogate, replica.model, replica.gpu, replica.endpoint, anchors, isl, osl
        )
        _, result = calibrate(step, replica.limits, points, waves=waves, source="surrogate")
        if cache is not None:
            cache.put(key, result)
    return replica.with_step(result.apply(step), result.as_dict())


def _setup(replica: Replica) -> dict[str, Any]:
    limits = replica.limits
    return {
        "model": replica.model.model_id,
        "gpu": replica.gpu.id,
        "endpoint": replica.endpoint.model_dump(mode="json"),
        "engine_ranks": replica.ranks,
        "max_batch": limits.max_batch,
        "token_budget": limits.token_budget,
        "kv_blocks_per_rank": limits.total_blocks,
        "kv_block_size": limits.block_size,
        "kv_tokens_per_rank": limits.total_blocks * limits.block_size,
        "prefix_caching": limits.prefix_caching,
        "scheduling": "priority" if limits.priority else "fcfs",
        **{k: v for k, v in replica.memory.items()},
    }


def simulate_replica(
    replica: Replica,
    workload: Workload,
    *,
    n_requests: int = 2000,
    seed: int = 0,
    options: SimulationOptions | None = None,
    slo: SLO | None = None,
    trace: Trace | None = None,
) -> SimulationReport:
    """Simulate a workload on a built replica (see :func:`simulate`)."""
    options = options or SimulationOptions()
    if trace is None and isinstance(workload.arrivals, TraceReplay):
        trace = read_trace(workload.arrivals.path)
    requests = generate_requests(
        workload, n_requests, np.random.default_rng(seed), sessions=options.sessions, trace=trace
    )
    step = replica.step
    bubble = step.pp_bubble if isinstance(step, StepTimeModel) and replica.endpoint.pp > 1 else None
    warm = None
    if requests.clients is not None and options.closed_loop_start == "steady":
        isl, osl = mean_lengths(workload, trace)
        warm = (max(round(isl), 1), max(round(osl), 1))
    return run_requests(
        requests,
        replica.limits,
        step,
        ranks=replica.ranks,
        router=options.router,
        spec=replica.spec,
        seed=seed,
        slo_by_tenant=[slo or t.slo for t in workload.tenants],
        warmup_fraction=options.warmup_fraction,
        bubble=bubble,
        calibration=replica.calibration,
        setup=_setup(replica),
        warm=warm,
    )


def prepared_replica(
    endpoint: EndpointConfig,
    model: ModelSpec | str,
    gpu: GPUSpec | str,
    workload: Workload,
    *,
    options: SimulationOptions,
    step_model: StepCost | None = None,
    surrogate: Any = None,
) -> tuple[Replica, Trace | None]:
    """The replica to simulate ``workload`` on (calibrated on ``surrogate`` when given and
    no ``step_model`` is), and the trace the workload replays (``None`` if it replays none)."""
    trace = (
        read_trace(workload.arrivals.path) if isinstance(workload.arrivals, TraceReplay) else None
    )
    isl, osl = mean_lengths(workload, trace)
    replica = build_replica(
        endpoint, model, gpu, options=options, step_model=step_model, mean_tokens=isl + osl
    )
    if surrogate is not None and step_model is None:
        replica = calibrated_replica(replica, surrogate, isl=round(isl), osl=round(osl))
    return replica, trace


def simulate(
    endpoint: EndpointConfig,
    model: ModelSpec | str,
    gpu: GPUSpec | str,
    workload: Workload,
    *,
    n_requests: int = 2000,
    seed: int = 0,
    step_model: StepCost | None = None,
    surrogate: Any = None,
    options: SimulationOptions | None = None,
    slo: SLO | None = None,
) -> SimulationReport:
    """Simulate serving ``workload`` with ``endpoint`` on ``model`` and ``gpu``.

    Args:
        endpoint: engine knobs (``replicas x dp`` engine ranks behind the router).
        model: model spec or catalog id.
        gpu: GPU spec or catalog id.
        workload: arrivals and tenants (a trace file is read when it replays one).
        n_requests: requests to simulate (a trace may hold fewer).
        seed: seed of the traffic and acceptance draws.
        step_model: step times to use as they are (default: the operator prior).
        surrogate: a fitted surrogate to calibrate the operator prior on (ignored with
            ``step_model``); without either, step times are the uncalibrated prior.
        options: simulator settings (routing, scheduling, caching, acceptance, ...).
        slo: hold every tenant to this SLO instead of its own.

    Returns:
        The report: per-tenant latency percentiles, throughput, goodput, KV usage.

    Raises:
        InvalidInputError: bad workload or options (the field is named), or an
            endpoint that leaves no memory for the KV cache.

    Example:
        >>> from optimizer.domain import EndpointConfig, Workload
        >>> report = simulate(EndpointConfig(engine="vllm"), "meta-llama/Llama-3.1-8B-Instruct",
        ...                   "h100_sxm", Workload.simple(1000, 200, rate=2.0),
        ...                   n_requests=300)                              # doctest: +SKIP
        >>> report.overall.ttft.p95 > 0                                   # doctest: +SKIP
        True
    """
    options = options or SimulationOptions()
    replica, trace = prepared_replica(
        endpoint, model, gpu, workload, options=options, step_model=step_model, surrogate=surrogate
    )
    return simulate_replica(
        replica, workload, n_requests=n_requests, seed=seed, options=options, slo=slo, trace=trace
    )
