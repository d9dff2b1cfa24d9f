"""From per-request records to the report: percentiles per tenant, goodput, KV, preemptions.

Per request (milliseconds):

* ``ttft`` -- arrival to first token; ``queue`` -- arrival to first admission;
* ``tpot`` -- ``(finish - first token) / (output tokens - 1)`` (undefined for one-token
  answers); ``itl`` -- the request's mean gap between streamed chunks (one chunk per
  decode step, ``k + 1`` tokens at most with speculative decoding);
* ``e2e`` -- arrival to last token.

Goodput counts the requests that meet their tenant's SLO *individually*: a request
meets a latency bound when its own value is at most the bound (the highest percentile
set for that metric is used as the per-request threshold, as in DistServe's goodput).
An SLO is *met* when every percentile bound holds on the tenant's distribution.

The first ``warmup_fraction`` of the requests (by arrival) are excluded from every
statistic, and throughput is measured from the first measured arrival to the last
measured completion.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from optimizer.domain.slo import SLO
from optimizer.simulate.records import EngineStats, RequestLog

__all__ = [
    "PERCENTILES",
    "KVReport",
    "LatencySummary",
    "SLOCheck",
    "SimulationReport",
    "SpecReport",
    "TenantReport",
    "build_report",
    "request_frame",
    "weighted_percentiles",
]

PERCENTILES: tuple[int, ...] = (50, 90, 95, 99)
_METRICS = ("ttft", "tpot", "itl", "e2e", "queue")


@dataclass(frozen=True)
class LatencySummary:
    """Mean and percentiles (ms) of one metric; NaN when no request has a value."""

    mean: float
    p50: float
    p90: float
    p95: float
    p99: float
    count: int

    @classmethod
    def of(cls, values: np.ndarray) -> LatencySummary:
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            nan = math.nan
            return cls(nan, nan, nan, nan, nan, 0)
        p = np.percentile(finite, PERCENTILES)
        return cls(float(finite.mean()), *map(float, p), int(finite.size))

    def percentile(self, level: str) -> float:
        """The value at ``"p50"``, ``"p90"``, ``"p95"`` or ``"p99"``."""
        return float(getattr(self, level))


@dataclass(frozen=True)
class SLOCheck:
    """One SLO bound checked on a tenant's distribution."""

    bound: str
    limit: float
    value: float
    met: bool


@dataclass(frozen=True)
class TenantReport:
    """Latency, throughput and SLO attainment of one tenant (or of all requests).

    Attributes:
        name: tenant name (``"all"`` for the overall row).
        requests: measured requests.
        completed: of which completed.
        rejected: of which could never fit in the KV cache.
        ttft, tpot, itl, e2e, queue: latency summaries (ms).
        throughput_req_s: completed requests per second of the measured window.
        output_tok_s: output tokens per second.
        goodput_req_s: completed requests meeting the SLO individually, per second.
        slo_attainment: share of measured requests meeting the SLO individually.
        slo_met: every bound holds on the distribution (``None`` without an SLO).
        checks: the bounds checked.
        preemptions: preemptions of its requests.
        prefix_hit_rate: share of its prompt tokens served by the prefix cache.
    """

    name: str
    requests: int
    completed: int
    rejected: int
    ttft: LatencySummary
    tpot: LatencySummary
    itl: LatencySummary
    e2e: LatencySummary
    queue: LatencySummary
    throughput_req_s: float
    output_tok_s: float
    goodput_req_s: float
    slo_attainment: float | None
    slo_met: bool | None
    checks: tuple[SLOCheck, ...]
    preemptions: int
    prefix_hit_rate: float


@dataclass(frozen=True)
class KVReport:
    """KV-cache behaviour over the run (averages are time-weighted over busy time).

    Attributes:
        total_blocks: blocks per engine rank.
        block_size: tokens per block.
        utilisation: mean share of blocks in use by running sequences and pinned
            prefixes.
        peak_utilisation: highest share at a step boundary.
        cached_share: mean share held by evictable cached prefixes.
        waste_fraction: share of the decoding sequences' block slots left empty.
        waste_tokens_per_sequence: mean empty slots per decoding sequence.
        preemptions: sequences preempted (recompute).
        evicted_blocks: cached prefix blocks evicted.
        prefix_hit_rate: share of admitted prompt tokens served by the cache.
        mean_running: time-average running sequences per rank.
    """

    total_blocks: int
    block_size: int
    utilisation: float
    peak_utilisation: float
    cached_share: float
    waste_fraction: float
    waste_tokens_per_sequence: float
    preemptions: int
    evicted_blocks: int
    prefix_hit_rate: float
    mean_running: float


@dataclass(frozen=True)
class SpecReport:
    """Speculative decoding over the run.

    Attributes:
        method: drafting method.
        mean_acceptance_length: tokens per verification step of the acceptance draws
            (vLLM's ``mean_acceptance_length``).
        emitted_tokens_per_step: tokens per verification step actually emitted (the
            last step of a sequence is cut at its output length).
        expected_tokens_per_step: ``E[X]`` at the largest draft length of the schedule.
    """

    method: str
    mean_acceptance_length: float
    emitted_tokens_per_step: float
    expected_tokens_per_step: float


@dataclass(frozen=True)
class SimulationReport:
    """What a simulation run measured.

    Attributes:
        tenants: one row per tenant.
        overall: all measured requests together.
        duration_s: measured window.
        engines: engine ranks simulated (replicas x attention data parallel).
        kv: KV-cache behaviour.
        spec: speculative decoding, if on.
        pp_bubble: mean idle share of pipeline stages while busy (0 without ``pp``).
        itl_token_ms: token-weighted inter-token latency percentiles over all steps.
        mean_in_system: time-average requests in the system (queued or running), from
            the engines' own integral (Little's law: ``= arrival rate x mean e2e``).
        arrival_rate: measured arrivals per second over the whole run.
        mean_e2e_all_s: mean end-to-end seconds over all completed requests.
        calibration: how step times were obtained (scales and their source).
        setup: the simulated configuration (limits, KV pool, memory figures).
        loop: event-loop counts summed over engines (steps, mixed steps, stretches
            jumped over, most running sequences on one engine).
        records: per-request columns (see :func:`request_frame`).
    """

    tenants: tuple[TenantReport, ...]
    overall: TenantReport
    duration_s: float
    engines: int
    kv: KVReport
    spec: SpecReport | None
    pp_bubble: float
    itl_token_ms: dict[str, float]
    mean_in_system: float
    arrival_rate: float
    mean_e2e_all_s: float
    calibration: dict[str, Any] = field(default_factory=dict)
    setup: dict[str, Any] = field(default_factory=dict)
    loop: dict[str, int] = field(default_factory=dict)
    records: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def tenant(self, name: str) -> TenantReport:
        """The row of tenant ``name``."""
        for row in self.tenants:
            if row.name == name:
                return row
        raise KeyError(name)

    @property
    def slo_met(self) -> bool | None:
        """Every tenant with an SLO meets it (``None`` when no tenant has one)."""
        flags = [t.slo_met for t in self.tenants if t.slo_met is not None]
        return all(flags) if flags else None

    def to_dict(self, *, per_request: bool = False) -> dict[str, Any]:
        """JSON-ready figures (NaN as ``None``); ``per_request`` adds the records."""
        out = asdict(self)
        out.pop("records")
        if per_request:
            out["records"] = {k: v.tolist() for k, v in self.records.items()}
        return _clean(out)


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float | np.floating):
        return None if not math.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def weighted_percentiles(
    values: Sequence[float], weights: Sequence[float], levels: Sequence[float]
) -> list[float]:
    """Percentiles of ``values`` where each value counts ``weight`` times."""
    v = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if v.size == 0 or w.sum() <= 0:
        return [math.nan] * len(levels)
    order = np.argsort(v)
    v, w = v[order], w[order]
    cum = np.cumsum(w) / w.sum()
    index = np.searchsorted(cum, np.asarray(levels, dtype=np.float64) / 100.0, side="left")
    return [float(x) for x in v[np.minimum(index, v.size - 1)]]


def request_frame(log: RequestLog, frontend_s: float = 0.0) -> dict[str, np.ndarray]:
    """Per-request columns: ids, tenant, lengths, times (s) and latencies (ms); the
    client sees first tokens and ends ``frontend_s`` after the engine produces them."""
    r = log.requests
    arrival = np.asarray(log.arrival, dtype=np.float64)
    first = np.asarray(log.first_token, dtype=np.float64) + frontend_s
    finish = np.asarray(log.finish, dtype=np.float64) + frontend_s
    scheduled = np.asarray(log.first_scheduled, dtype=np.float64)
    steps = np.asarray(log.decode_steps, dtype=np.float64)
    osl = r.osl.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(osl > 1, (finish - first) / (osl - 1), np.nan)
        itl = np.where(steps > 0, (finish - first) / steps, np.nan)
    return {
        "tenant": r.tenant.copy(),
        "isl": r.isl.copy(),
        "osl": r.osl.copy(),
        "session": r.session.copy(),
        "replica": np.asarray(log.replica, dtype=np.int64),
        "arrival_s": arrival,
        "first_scheduled_s": scheduled,
        "first_token_s": first,
        "finish_s": finish,
        "ttft_ms": 1e3 * (first - arrival),
        "tpot_ms": 1e3 * tpot,
        "itl_ms": 1e3 * itl,
        "e2e_ms": 1e3 * (finish - arrival),
        "queue_ms": 1e3 * (scheduled - arrival),
        "preemptions": np.asarray(log.preemptions, dtype=np.int64),
        "cached_tokens": np.asarray(log.cached_tokens, dtype=np.int64),
        "decode_steps": steps.astype(np.int64),
        "rejected": np.asarray(log.rejected, dtype=bool),
    }


def _per_request_threshold(slo: SLO, metric: str) -> float | None:
    for level in ("p99", "p95", "p50"):
        value = getattr(slo, f"{metric}_{level}_ms")
        if value is not None:
            return float(value)
    return None


def _meets(records: dict[str, np.ndarray], mask: np.ndarray, slo: SLO) -> np.ndarray:
    ok = mask & np.isfinite(records["finish_s"])
    for metric in ("ttft", "tpot", "e2e"):
        limit = _per_request_threshold(slo, metric)
        if limit is None:
            continue
        values = records[f"{metric}_ms"]
        if metric == "tpot":
            ok &= ~(values > limit)  # one-token answers have no TPOT and pass
        else:
            ok &= values <= limit
    if slo.min_output_tok_s_per_user is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            speed = 1e3 / records["tpot_ms"]
        ok &= ~(speed < slo.min_output_tok_s_per_user)
    return ok


def _checks(summaries: dict[str, LatencySummary], slo: SLO, speed: float) -> tuple[SLOCheck, ...]:
    checks = []
    for bound, limit in slo.latency_bounds().items():
        metric, level, _ = bound.split("_")
        value = summaries[metric].percentile(level)
        checks.append(SLOCheck(bound, limit, value, bool(value <= limit)))
    if slo.min_output_tok_s_per_user is not None:
        limit = slo.min_output_tok_s_per_user
        checks.append(SLOCheck("min_output_tok_s_per_user", limit, speed, bool(speed >= limit)))
    return tuple(checks)


def _tenant_row(
    name: str,
    records: dict[str, np.ndarray],
    mask: np.ndarray,
    slo: SLO | None,
    duration: float,
) -> TenantReport:
    done = mask & np.isfinite(records["finish_s"])
    summaries = {m: LatencySummary.of(records[f"{m}_ms"][mask]) for m in _METRICS}
    completed = int(done.sum())
    per_second = 1.0 / duration if duration > 0 else math.nan
    isl = records["isl"][mask].astype(np.float64)
    hits = records["cached_tokens"][mask].astype(np.float64)
    goodput = attainment = met = None
    checks: tuple[SLOCheck, ...] = ()
    if slo is not None:
        meets = _meets(records, mask, slo)
        goodput = float(meets.sum()) * per_second
        attainment = float(meets.sum() / max(int(mask.sum()), 1))
        tpot = records["tpot_ms"][done]
        tpot = tpot[np.isfinite(tpot)]
        speed = float(1e3 / np.median(tpot)) if tpot.size else math.nan
        checks = _checks(summaries, slo, speed)
        met = all(c.met for c in checks) and completed == int(mask.sum())
    return TenantReport(
        name=name,
        requests=int(mask.sum()),
        completed=completed,
        rejected=int(records["rejected"][mask].sum()),
        **summaries,
        throughput_req_s=completed * per_second,
        output_tok_s=float(records["osl"][done].sum()) * per_second,
        goodput_req_s=goodput if goodput is not None else math.nan,
        slo_attainment=attainment,
        slo_met=met,
        checks=checks,
        preemptions=int(records["preemptions"][mask].sum()),
        prefix_hit_rate=float(hits.sum() / isl.sum()) if isl.sum() else 0.0,
    )


def build_report(
    log: RequestLog,
    stats: Sequence[EngineStats],
    *,
    total_blocks: int,
    block_size: int,
    evicted_blocks: int,
    slo_by_tenant: Sequence[SLO | None],
    warmup_fraction: float = 0.0,
    spec: SpecReport | None = None,
    calibration: dict[str, Any] | None = None,
    setup: dict[str, Any] | None = None,
    frontend_s: float = 0.0,
) -> SimulationReport:
    """Summarise a finished run.

    Args:
        log: the run's request table.
        stats: every engine's statistics.
        total_blocks: KV blocks per engine rank.
        block_size: tokens per block.
        evicted_blocks: prefix blocks evicted over all engines.
        slo_by_tenant: the SLO each tenant is held to (``None``: none).
        warmup_fraction: share of the requests, by arrival, left out of the statistics.
        spec: speculative-decoding figures, if on.
        calibration: how the step times were obtained.
        setup: the simulated configuration, copied into the report.
        frontend_s: latency outside the engine added to every request's first token
            and end.
    """
    records = request_frame(log, frontend_s)
    n = len(records["isl"])
    arrival = records["arrival_s"]
    order = np.argsort(np.where(np.isfinite(arrival), arrival, np.inf), kind="stable")
    measured = np.zeros(n, dtype=bool)
    measured[order[round(warmup_fraction * n) :]] = True
    measured &= np.isfinite(arrival)
    finish = records["finish_s"]
    if measured.any():
        start = float(arrival[measured].min())
        ends = finish[measured & np.isfinite(finish)]
        end = float(ends.max()) if ends.size else start
    else:
        start = end = 0.0
    duration = end - start
    names = log.requests.tenant_names
    rows = tuple(
        _tenant_row(name, records, measured & (records["tenant"] == i), slo_by_tenant[i], duration)
        for i, name in enumerate(names)
    )
    overall = _tenant_row("all", records, measured, None, duration)

    busy = sum(s.busy_time for s in stats)
    horizon = sum(s.end_time for s in stats)
    engines = len(stats)
    seq_steps = sum(s.decode_seq_steps for s in stats)
    waste = sum(s.decode_waste_tokens for s in stats)
    prompt_tokens = sum(s.prompt_tokens for s in stats)
    kv = KVReport(
        total_blocks=total_blocks,
        block_size=block_size,
        utilisation=sum(s.kv_used_area for s in stats) / (busy * total_blocks) if busy else 0.0,
        peak_utilisation=max((s.kv_peak_blocks for s in stats), default=0) / total_blocks,
        cached_share=sum(s.kv_cached_area for s in stats) / (busy * total_blocks) if busy else 0.0,
        waste_fraction=(
            waste / (waste + sum(s.decode_token_steps for s in stats)) if seq_steps else 0.0
        ),
        waste_tokens_per_sequence=waste / seq_steps if seq_steps else 0.0,
        preemptions=sum(s.preemptions for s in stats),
        evicted_blocks=evicted_blocks,
        prefix_hit_rate=sum(s.hit_tokens for s in stats) / prompt_tokens if prompt_tokens else 0.0,
        mean_running=sum(s.running_area for s in stats) / horizon if horizon else 0.0,
    )
    itl = weighted_percentiles(
        [x for s in stats for x in s.itl_seconds],
        [w for s in stats for w in s.itl_weight],
        PERCENTILES,
    )
    done = np.isfinite(finish) & np.isfinite(arrival)
    span = float(np.nanmax(finish[done])) if done.any() else 0.0
    last_end = max((s.end_time for s in stats), default=0.0)
    return SimulationReport(
        tenants=rows,
        overall=overall,
        duration_s=duration,
        engines=engines,
        kv=kv,
        spec=spec,
        pp_bubble=sum(s.bubble_area for s in stats) / busy if busy else 0.0,
        itl_token_ms={f"p{p}": 1e3 * v for p, v in zip(PERCENTILES, itl, strict=True)},
        mean_in_system=sum(s.in_system_area for s in stats) / last_end if last_end else 0.0,
        arrival_rate=float(np.isfinite(arrival).sum()) / span if span else math.nan,
        mean_e2e_all_s=float((finish[done] - arrival[done]).mean()) if done.any() else math.nan,
        calibration=dict(calibration or {}),
        setup=dict(setup or {}),
        loop={
            "steps": sum(s.steps for s in stats),
            "mixed_steps": sum(s.mixed_steps for s in stats),
            "stretches": sum(s.stretches for s in stats),
            "max_running": max((s.max_running for s in stats), default=0),
        },
        records=records,
    )
