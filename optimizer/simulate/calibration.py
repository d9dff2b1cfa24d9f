"""Calibrate the simulator's step times on the learned surrogate: one story, two layers.

The operator prior gives the *shape* of step time -- how it grows with the batch, the
context and the prefill tokens. The surrogate, trained on measured runs, gives the
*level*: mean closed-loop TTFT and TPOT at a concurrency. Calibration makes the
simulator, run in closed loop the way the measured benchmarks ran (every client sends
its first request at time 0, then its next one as soon as the previous ends),
reproduce the surrogate's means at a few anchor concurrencies. It fits three things:

* ``decode_scale`` -- multiplies the decode work of every step, per anchor;
* ``prefill_scale`` -- multiplies the time prefill chunks add to a step, per anchor;
* ``frontend_ms`` -- one per-request latency outside the engine (HTTP, tokenisation,
  scheduling dispatch), added to every request's TTFT and end-to-end latency.

Between anchors the scales are interpolated in log batch size (the running batch of a
closed loop of ``C`` clients is about ``C``); beyond the last anchor they stay constant.

**Why it is linear.** A closed-loop client sends its next request the moment the
previous one ends -- at a step boundary -- so which steps every request spans does not
depend on how long the steps take. Mean TTFT and TPOT are then sums of step times,
``decode_scale x D + prefill_scale x P`` (plus ``frontend_ms`` for TTFT), and two
simulations per anchor (scales ``(1, 1)`` and ``(1, 2)``) give ``D`` and ``P`` exactly.
All scales and the frontend latency follow from one non-negative least-squares problem
on the relative errors of TTFT and TPOT at every anchor, with a smoothness penalty
(:data:`SMOOTHNESS`) on the prefill scales of neighbouring anchors that separates a
constant frontend latency from prefill cost.

The calibration runs the replica's step model without pipeline parallelism and
speculative decoding (which the surrogate does not know), on the replica's own batch
cap and KV pool, and applies the result to the full model.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.optimize import nnls

from optimizer.domain.endpoint import EndpointConfig
from optimizer.domain.gpu import GPUSpec
from optimizer.domain.model_spec import ModelSpec
from optimizer.errors import InvalidInputError
from optimizer.simulate.engine import EngineLimits
from optimizer.simulate.runner import run_engines
from optimizer.simulate.step_time import StepTimeModel
from optimizer.simulate.traffic import RequestSet

__all__ = [
    "DEFAULT_WAVES",
    "SMOOTHNESS",
    "Calibration",
    "CalibrationCache",
    "CalibrationPoint",
    "anchor_concurrencies",
    "calibrate",
    "closed_loop_means",
    "closed_loop_requests",
    "surrogate_targets",
]

DEFAULT_WAVES = 6
"""Closed-loop requests per client in a calibration run."""

SMOOTHNESS = 0.05
"""Weight of the penalty on differences of neighbouring anchors' prefill scales."""

_MIN_SCALE = 1e-3


@dataclass(frozen=True)
class CalibrationPoint:
    """A closed-loop target: ``concurrency`` clients per engine rank, fixed lengths,
    and the mean TTFT and TPOT (ms) the simulator must reproduce."""

    concurrency: int
    isl: int
    osl: int
    ttft_ms: float
    tpot_ms: float


@dataclass(frozen=True)
class Calibration:
    """The fitted scales, the frontend latency, and the fit at the targets.

    Attributes:
        batch: running batch sizes the scales are given at (the anchors' concurrency).
        decode_scale: multiplies each step's decode work, per batch size.
        prefill_scale: multiplies the time prefill chunks add, per batch size.
        frontend_ms: latency added to every request's TTFT and end-to-end latency.
        points: the targets.
        fitted: ``(ttft_ms, tpot_ms)`` the calibrated simulator gives at each target.
        source: where the targets came from.
    """

    batch: tuple[int, ...]
    decode_scale: tuple[float, ...]
    prefill_scale: tuple[float, ...]
    frontend_ms: float
    points: tuple[CalibrationPoint, ...]
    fitted: tuple[tuple[float, float], ...]
    source: str

    def apply(self, step: StepTimeModel) -> StepTimeModel:
        """``step`` with these scales and frontend latency."""
        if len(self.batch) == 1:
            return step.with_scales(
                self.decode_scale[0], self.prefill_scale[0], frontend_s=self.frontend_ms / 1e3
            )
        return step.with_scales(
            self.decode_scale, self.prefill_scale, self.batch, frontend_s=self.frontend_ms / 1e3
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (relative errors at the targets in percent)."""
        return {
            "source": self.source,
            "frontend_ms": self.frontend_ms,
            "anchors": [
                {
                    "concurrency": p.concurrency,
                    "isl": p.isl,
                    "osl": p.osl,
                    "decode_scale": d,
                    "prefill_scale": f,
                    "target_ttft_ms": p.ttft_ms,
                    "target_tpot_ms": p.tpot_ms,
                    "ttft_error_pct": 100.0 * (ttft / p.ttft_ms - 1.0),
                    "tpot_error_pct": 100.0 * (tpot / p.tpot_ms - 1.0),
                }
                for p, d, f, (ttft, tpot) in zip(
                    self.points, self.decode_scale, self.prefill_scale, self.fitted, strict=True
                )
            ],
        }


def closed_loop_requests(concurrency: int, isl: int, osl: int, n_requests: int) -> RequestSet:
    """``n_requests`` requests of fixed lengths for ``concurrency`` closed-loop clients."""
    n = int(n_requests)
    none = np.full(n, -1, dtype=np.int64)
    zeros = np.zeros(n, dtype=np.int64)
    return RequestSet(
        arrival=np.full(n, np.nan),
        isl=np.full(n, int(isl), dtype=np.int64),
        osl=np.full(n, int(osl), dtype=np.int64),
        tenant=np.zeros(n, dtype=np.int32),
        priority=np.zeros(n, dtype=np.int32),
        lookup_ns=none,
        lookup_tokens=zeros,
        publish_ns=none.copy(),
        publish_prefill=zeros.copy(),
        publish_final=np.zeros(n, dtype=bool),
        session=none.copy(),
        tenant_names=("closed_loop",),
        clients=int(concurrency),
    )


def closed_loop_means(
    step: Any,
    limits: EngineLimits,
    concurrency: int,
    isl: int,
    osl: int,
    *,
    waves: int = DEFAULT_WAVES,
    warm: bool = False,
) -> tuple[float, float]:
    """Mean TTFT and TPOT (ms) of ``concurrency`` closed-loop clients on one rank, each
    sending ``waves`` requests (``warm``: the clients start spread over a request's
    life instead of all at time 0). The step model's frontend latency is included.
    """
    n = max(waves * concurrency, 16)
    requests = closed_loop_requests(concurrency, isl, osl, n)
    log, _ = run_engines(
        requests,
        replace(limits, prefix_caching=False),
        step,
        warm=(int(isl), int(osl)) if warm else None,
    )
    arrival = np.asarray(log.arrival)
    first = np.asarray(log.first_token)
    finish = np.asarray(log.finish)
    frontend = 1e3 * float(getattr(step, "frontend_s", 0.0))
    ttft = float(np.mean(first - arrival)) * 1e3 + frontend
    tpot = float(np.mean((finish - first) / (osl - 1))) * 1e3 if osl > 1 else math.nan
    return ttft, tpot


def _parts(
    step: StepTimeModel, limits: EngineLimits, point: CalibrationPoint, waves: int
) -> np.ndarray:
    """``[[D_ttft, P_ttft], [D_tpot, P_tpot]]``: decode and prefill shares of the means."""
    args = (limits, point.concurrency, point.isl, point.osl)
    one = closed_loop_means(step.with_scales(1.0, 1.0), *args, waves=waves)
    two = closed_loop_means(step.with_scales(1.0, 2.0), *args, waves=waves)
    rows = []
    for a, b in zip(one, two, strict=True):
        prefill = b - a
        rows.append([a - prefill, prefill])
    return np.asarray(rows, dtype=np.float64)


def _surrogate_base(step: StepTimeModel) -> StepTimeModel:
    """The step model as the surrogate sees the configuration: no pipeline, no drafts."""
    tables = replace(step.tables, pp=1, stage_share=1.0, p2p_ms_per_token=0.0)
    return StepTimeModel(tables, None)


def calibrate(
    step: StepTimeModel,
    limits: EngineLimits,
    points: Sequence[CalibrationPoint],
    *,
    waves: int = DEFAULT_WAVES,
    smoothness: float = SMOOTHNESS,
    source: str = "targets",
) -> tuple[StepTimeModel, Calibration]:
    """Scale ``step`` so that closed-loop simulation reproduces the targets.

    Args:
        step: the operator-prior step model of one rank (its scales are ignored).
        limits: the rank's limits.
        points: closed-loop targets, one per concurrency (at least one).
        waves: requests per client in each calibration run.
        smoothness: penalty weight on neighbouring prefill scales' difference.
        source: recorded in the result.

    Returns:
        The calibrated model (same tables, pipeline and speculation as ``step``) and
        the calibration summary.

    Raises:
        InvalidInputError: no points, two points at one concurrency, or a
            non-positive target.
    """
    if not points:
        raise InvalidInputError("calibration", "needs at least one target point")
    ordered = sorted(points, key=lambda p: p.concurrency)
    if len({p.concurrency for p in ordered}) != len(ordered):
        raise InvalidInputError("calibration", "one target per concurrency")
    base = _surrogate_base(step)
    n = len(ordered)
    rows: list[np.ndarray] = []
    targets: list[float] = []
    parts = []
    for i, point in enumerate(ordered):
        if not (point.ttft_ms > 0 and point.tpot_ms > 0):
            raise InvalidInputError("calibration", f"targets must be positive: {point}")
        (d_ttft, p_ttft), (d_tpot, p_tpot) = _parts(base, limits, point, waves)
        parts.append((d_ttft, p_ttft, d_tpot, p_tpot))
        row = np.zeros(2 * n + 1)
        row[i], row[n + i], row[2 * n] = d_ttft, p_ttft, 1.0
        rows.append(row / point.ttft_ms)
        targets.append(1.0)
        if math.isfinite(d_tpot):
            row = np.zeros(2 * n + 1)
            row[i], row[n + i] = d_tpot, p_tpot
            rows.append(row / point.tpot_ms)
            targets.append(1.0)
    for i in range(n - 1):
        row = np.zeros(2 * n + 1)
        row[n + i], row[n + i + 1] = smoothness, -smoothness
        rows.append(row)
        targets.append(0.0)
    solution, _ = nnls(np.asarray(rows), np.asarray(targets))
    decode = np.maximum(solution[:n], _MIN_SCALE)
    prefill = solution[n : 2 * n]
    frontend = float(solution[2 * n])
    fitted = tuple(
        (
            decode[i] * d_ttft + prefill[i] * p_ttft + frontend,
            decode[i] * d_tpot + prefill[i] * p_tpot,
        )
        for i, (d_ttft, p_ttft, d_tpot, p_tpot) in enumerate(parts)
    )
    summary = Calibration(
        batch=tuple(p.concurrency for p in ordered),
        decode_scale=tuple(float(x) for x in decode),
        prefill_scale=tuple(float(x) for x in prefill),
        frontend_ms=frontend,
        points=tuple(ordered),
        fitted=fitted,
        source=source,
    )
    return summary.apply(step), summary


def anchor_concurrencies(limit: int) -> tuple[int, ...]:
    """Anchor concurrencies up to ``limit``: 1, then 3 x 2^k (3, 6, 12, 24, ...) below
    it, then ``limit`` itself -- doubling steps that avoid the powers of two the
    reference benchmarks use, so agreement there is measured between anchors."""
    limit = max(int(limit), 1)
    values = {1, limit}
    x = 3
    while x < limit:
        values.add(x)
        x *= 2
    return tuple(sorted(values))


def surrogate_targets(
    surrogate: Any,
    model: ModelSpec,
    gpu: GPUSpec,
    endpoint: EndpointConfig,
    concurrencies: Sequence[int],
    isl: int,
    osl: int,
) -> list[CalibrationPoint]:
    """Closed-loop targets from a fitted surrogate (one ``predict`` call).

    ``concurrencies`` are clients per engine rank; the surrogate sees ``x dp`` clients
    on the endpoint without pipeline parallelism or speculative decoding.
    """
    import pandas as pd

    dp = endpoint.dp
    rows = pd.DataFrame(
        {
            "model": model.model_id,
            "gpu": gpu.id,
            "engine": endpoint.engine.value,
            "mode": "agg",
            "quantization": endpoint.quantization.value,
            "kv_cache_dtype": endpoint.kv_cache_dtype.value,
            "tp": endpoint.tp,
            "pp": 1,
            "dp": dp,
            "ep": endpoint.ep,
            "concurrency": [int(c) * dp for c in concurrencies],
            "isl": int(isl),
            "osl": int(osl),
        }
    )
    pred = surrogate.predict(rows)
    return [
        CalibrationPoint(int(c), int(isl), int(osl), float(t), float(p))
        for c, t, p in zip(concurrencies, pred["ttft_ms"], pred["tpot_ms"], strict=True)
    ]


class CalibrationCache:
    """Calibrations by configuration, least recently used dropped first."""

    def __init__(self, size: int = 64):
        self._size = size
        self._items: OrderedDict[tuple[Any, ...], Calibration] = OrderedDict()

    def get(self, key: tuple[Any, ...]) -> Calibration | None:
        """The cached entry, refreshed as most recent."""
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: tuple[Any, ...], value: Calibration) -> None:
        """Store an entry, dropping the oldest beyond the size."""
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)
