"""Capacity: the highest arrival rate at which an endpoint still meets its SLOs.

:func:`max_rate_meeting_slo` rescales the workload's arrival process to a rate (same
shape: Poisson stays Poisson, a bursty or on/off process keeps its burstiness, a trace
is replayed faster or slower), simulates it, and bisects on the rate (geometrically,
until the bracket is within ``rel_tol``) for the largest one at which every tenant's SLO
holds. Every probe uses the same seed, so the arrival times of two probes are the same
draws scaled (common random numbers) and the outcome is monotone in the rate in
practice. The first probe is the rate that keeps every rank's batch full at its
decode step time; the bracket grows or shrinks from there.

With a finite number of requests an overloaded endpoint still finishes them all, with
latencies that grow with the backlog; use enough requests (a few thousand) that the
backlog of an overloaded rate breaks the SLO.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from optimizer.domain.endpoint import EndpointConfig
from optimizer.domain.gpu import GPUSpec
from optimizer.domain.model_spec import ModelSpec
from optimizer.domain.slo import SLO
from optimizer.domain.workload import (
    BurstyArrivals,
    ClosedLoop,
    ConstantRate,
    OnOffArrivals,
    PoissonArrivals,
    TraceReplay,
    Workload,
)
from optimizer.errors import InvalidInputError
from optimizer.simulate.config import SimulationOptions
from optimizer.simulate.metrics import SimulationReport
from optimizer.simulate.replica import Replica
from optimizer.simulate.simulator import mean_lengths, prepared_replica, simulate_replica
from optimizer.simulate.step_time import StepCost
from optimizer.simulate.trace import Trace, read_trace

__all__ = ["CapacityResult", "find_capacity", "max_rate_meeting_slo", "scale_arrivals"]


@dataclass(frozen=True)
class CapacityResult:
    """The capacity found and how it was bracketed.

    Attributes:
        rate: highest arrival rate (requests/s, whole endpoint) meeting every SLO;
            0 when even the lowest probed rate misses it.
        report: the simulation at ``rate`` (``None`` when ``rate`` is 0).
        probes: ``(rate, slo met)`` of every simulation, in order.
        rate_per_replica: ``rate / replicas``.
    """

    rate: float
    report: SimulationReport | None
    probes: tuple[tuple[float, bool], ...]
    rate_per_replica: float


def scale_arrivals(workload: Workload, rate: float, trace: Trace | None = None) -> Workload:
    """The workload with its arrival process rescaled to a mean of ``rate`` requests/s.

    Raises:
        InvalidInputError: a closed-loop process (it has no rate) or ``rate <= 0``.
    """
    if not rate > 0:
        raise InvalidInputError("rate", f"must be > 0, got {rate}")
    process = workload.arrivals
    if isinstance(process, PoissonArrivals | BurstyArrivals | ConstantRate):
        new: Any = process.model_copy(update={"rate": rate})
    elif isinstance(process, OnOffArrivals):
        factor = rate / process.rate
        new = process.model_copy(
            update={"rate_on": process.rate_on * factor, "rate_off": process.rate_off * factor}
        )
    elif isinstance(process, TraceReplay):
        if trace is None:
            trace = read_trace(process.path)
        span = float(trace.timestamp[-1])
        if span <= 0 or len(trace) < 2:
            raise InvalidInputError("arrivals.path", "a trace needs two distinct timestamps")
        base = (len(trace) - 1) / span
        new = process.model_copy(update={"time_scale": rate / base})
    elif isinstance(process, ClosedLoop):
        raise InvalidInputError(
            "arrivals",
            "capacity needs an open-loop arrival process (closed loop has no rate)",
            ["poisson", "gamma", "on_off", "constant", "trace"],
        )
    else:  # pragma: no cover - the discriminated union has no other kind
        raise InvalidInputError("arrivals", f"unknown kind {process!r}")
    return workload.model_copy(update={"arrivals": new})


def _start_rate(replica: Replica, mean_osl: float) -> float:
    batch = replica.max_concurrency
    tokens = replica.memory.get("mean_tokens", 1024.0)
    step_s, _ = replica.step.decode(batch, batch * tokens)
    return replica.ranks * batch / max(mean_osl * step_s, 1e-9)


def find_capacity(
    replica: Replica,
    workload: Workload,
    *,
    slo: SLO | None = None,
    n_requests: int = 2000,
    seed: int = 0,
    options: SimulationOptions | None = None,
    rel_tol: float = 0.02,
    max_probes: int = 40,
    trace: Trace | None = None,
) -> CapacityResult:
    """Bisect on the arrival rate of ``workload`` for a built replica (see the module).

    Raises:
        InvalidInputError: no SLO to meet, a closed-loop workload, ``rel_tol <= 0``.
    """
    if not any((slo or t.slo) is not None for t in workload.tenants):
        raise InvalidInputError(
            "slo", "no SLO to meet: pass one (e.g. --slo 'ttft_p95<=2s') or give tenants an slo"
        )
    if not rel_tol > 0:
        raise InvalidInputError("rel_tol", f"must be > 0, got {rel_tol}")
    if isinstance(workload.arrivals, TraceReplay) and trace is None:
        trace = read_trace(workload.arrivals.path)
    probes: list[tuple[float, bool]] = []
    reports: dict[float, SimulationReport] = {}

    def met(rate: float) -> bool:
        scaled = scale_arrivals(workload, rate, trace)
        report = simulate_replica(
            replica,
            scaled,
            n_requests=n_requests,
            seed=seed,
            options=options,
            slo=slo,
            trace=trace,
        )
        ok = bool(report.slo_met)
        probes.append((rate, ok))
        reports[rate] = report
        return ok

    rate = _start_rate(replica, mean_lengths(workload, trace)[1])
    lo = hi = None
    if met(rate):
        lo = rate
        while len(probes) < max_probes:
            rate *= 2.0
            if not met(rate):
                hi = rate
                break
            lo = rate
    else:
        hi = rate
        while len(probes) < max_probes:
            rate /= 2.0
            if met(rate):
                lo = rate
                break
            hi = rate
    if lo is None:
        return CapacityResult(0.0, None, tuple(probes), 0.0)
    while hi is not None and hi / lo > 1.0 + rel_tol and len(probes) < max_probes:
        mid = (lo * hi) ** 0.5
        if met(mid):
            lo = mid
        else:
            hi = mid
    replicas = replica.endpoint.replicas
    return CapacityResult(lo, reports[lo], tuple(probes), lo / replicas)


def max_rate_meeting_slo(
    endpoint: EndpointConfig,
    model: ModelSpec | str,
    gpu: GPUSpec | str,
    workload: Workload,
    *,
    slo: SLO | None = None,
    n_requests: int = 2000,
    seed: int = 0,
    step_model: StepCost | None = None,
    surrogate: Any = None,
    options: SimulationOptions | None = None,
    rel_tol: float = 0.02,
    max_probes: int = 40,
) -> CapacityResult:
    """The highest arrival rate (requests/s) at which the endpoint meets the SLOs.

    Args:
        endpoint: engine knobs (all ``replicas`` serve the traffic).
        model: model spec or catalog id.
        gpu: GPU spec or catalog id.
        workload: an open-loop workload; its rate is what is searched.
        slo: hold every tenant to this SLO (default: each tenant's own).
        n_requests: requests per probe.
        seed: seed of every probe (common random numbers).
        step_model: step times to use as they are.
        surrogate: fitted surrogate to calibrate the operator prior on.
        options: simulator settings.
        rel_tol: stop when the bracket's ratio is within ``1 + rel_tol``.
        max_probes: most simulations.

    Returns:
        The capacity, the report at it, and the probes.

    Raises:
        InvalidInputError: no SLO, a closed-loop workload, an endpoint that does not fit.

    Example:
        >>> from optimizer.domain import SLO, EndpointConfig, Workload
        >>> result = max_rate_meeting_slo(EndpointConfig(engine="vllm"),
        ...     "meta-llama/Llama-3.1-8B-Instruct", "h100_sxm",
        ...     Workload.simple(1000, 200, rate=1.0), slo=SLO.parse("ttft_p95<=1s"),
        ...     n_requests=500)                                            # doctest: +SKIP
        >>> result.rate > 0                                                 # doctest: +SKIP
        True
    """
    options = options or SimulationOptions()
    replica, trace = prepared_replica(
        endpoint, model, gpu, workload, options=options, step_model=step_model, surrogate=surrogate
    )
    return find_capacity(
        replica,
        workload,
        slo=slo,
        n_requests=n_requests,
        seed=seed,
        options=options,
        rel_tol=rel_tol,
        max_probes=max_probes,
        trace=trace,
    )
