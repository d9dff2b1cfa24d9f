"""Serving simulator: tail latency, goodput and capacity under real arrival patterns.

A discrete-event simulator of engine replicas with continuous batching, chunked
prefill, paged KV cache with prefix caching, preemption by recompute, speculative
decoding and pipeline parallelism, behind a router; step times come from the operator
prior of :mod:`optimizer.perf.step`, optionally calibrated on the learned surrogate so
that both layers tell one story (layer 3 of the design notes).

Modules: :mod:`~optimizer.simulate.traffic` (arrivals, lengths, tenants, sessions),
:mod:`~optimizer.simulate.trace` (trace files), :mod:`~optimizer.simulate.kv_cache`,
:mod:`~optimizer.simulate.speculative`, :mod:`~optimizer.simulate.step_time`,
:mod:`~optimizer.simulate.engine` (one rank's event loop),
:mod:`~optimizer.simulate.router`, :mod:`~optimizer.simulate.metrics`,
:mod:`~optimizer.simulate.calibration`, :mod:`~optimizer.simulate.replica`,
:mod:`~optimizer.simulate.runner`, :mod:`~optimizer.simulate.simulator`,
:mod:`~optimizer.simulate.capacity`, :mod:`~optimizer.simulate.config`.

Example:
    >>> from optimizer.domain import SLO, EndpointConfig, Workload
    >>> from optimizer.simulate import simulate, max_rate_meeting_slo
    >>> endpoint = EndpointConfig(engine="vllm", tp=1, max_batch_size=128)
    >>> workload = Workload.simple(1000, 250, rate=5.0)
    >>> report = simulate(endpoint, "meta-llama/Llama-3.1-8B-Instruct", "h100_sxm",
    ...                   workload, n_requests=2000, seed=0)          # doctest: +SKIP
    >>> report.overall.ttft.p99, report.overall.goodput_req_s         # doctest: +SKIP
    >>> max_rate_meeting_slo(endpoint, "meta-llama/Llama-3.1-8B-Instruct", "h100_sxm",
    ...     workload, slo=SLO.parse("ttft_p95<=2s,tpot_p95<=50ms")).rate  # doctest: +SKIP
"""

from __future__ import annotations

from optimizer.simulate.calibration import (
    Calibration,
    CalibrationCache,
    CalibrationPoint,
    anchor_concurrencies,
    calibrate,
    closed_loop_means,
    surrogate_targets,
)
from optimizer.simulate.capacity import (
    CapacityResult,
    find_capacity,
    max_rate_meeting_slo,
    scale_arrivals,
)
from optimizer.simulate.config import (
    EndpointFile,
    SimulationOptions,
    WorkloadFile,
    load_endpoint_file,
    load_workload_file,
)
from optimizer.simulate.engine import Engine, EngineLimits
from optimizer.simulate.kv_cache import (
    PrefixCache,
    block_waste,
    blocks_for,
    expected_block_waste,
)
from optimizer.simulate.metrics import (
    KVReport,
    LatencySummary,
    SimulationReport,
    SLOCheck,
    SpecReport,
    TenantReport,
)
from optimizer.simulate.records import EngineStats, RequestLog
from optimizer.simulate.replica import Replica, build_replica
from optimizer.simulate.router import RoutingPolicy
from optimizer.simulate.runner import run_engines, run_requests
from optimizer.simulate.simulator import (
    calibrated_replica,
    mean_lengths,
    simulate,
    simulate_replica,
)
from optimizer.simulate.speculative import (
    PUBLISHED_ACCEPTANCE,
    AcceptanceModel,
    SpecDecoding,
    alpha_from_acceptance_length,
    expected_tokens_per_step,
)
from optimizer.simulate.step_time import StepCost, StepTables, StepTimeModel
from optimizer.simulate.trace import Trace, read_trace
from optimizer.simulate.traffic import MultiTurn, RequestSet, generate_requests

__all__ = [
    "PUBLISHED_ACCEPTANCE",
    "AcceptanceModel",
    "Calibration",
    "CalibrationCache",
    "CalibrationPoint",
    "CapacityResult",
    "EndpointFile",
    "Engine",
    "EngineLimits",
    "EngineStats",
    "KVReport",
    "LatencySummary",
    "MultiTurn",
    "PrefixCache",
    "Replica",
    "RequestLog",
    "RequestSet",
    "RoutingPolicy",
    "SLOCheck",
    "SimulationOptions",
    "SimulationReport",
    "SpecDecoding",
    "SpecReport",
    "StepCost",
    "StepTables",
    "StepTimeModel",
    "TenantReport",
    "Trace",
    "WorkloadFile",
    "alpha_from_acceptance_length",
    "anchor_concurrencies",
    "block_waste",
    "blocks_for",
    "build_replica",
    "calibrate",
    "calibrated_replica",
    "closed_loop_means",
    "expected_block_waste",
    "expected_tokens_per_step",
    "find_capacity",
    "generate_requests",
    "load_endpoint_file",
    "load_workload_file",
    "max_rate_meeting_slo",
    "mean_lengths",
    "read_trace",
    "run_engines",
    "run_requests",
    "scale_arrivals",
    "simulate",
    "simulate_replica",
    "surrogate_targets",
]
