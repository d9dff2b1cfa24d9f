"""Capacity plan: how many replicas serve a peak rate, and how many stay warm for bursts.

Two pools make up the fleet:

* **serving replicas** — enough for the peak rate with headroom: each replica runs at
  most ``1 - headroom`` of its capacity at peak,
  ``serving = ceil(peak_rps / (replica_capacity_rps * (1 - headroom)))``.
* **warm pool** — started replicas kept ready so that a burst of ``burst_factor x peak``
  is absorbed while new replicas cold-start (``scale_up_seconds``): until the autoscaler's
  new replicas serve, the running fleet must carry the burst at full capacity,
  ``warm = max(0, ceil(burst_factor * peak_rps / replica_capacity_rps) - serving)``.
  Bursts that last longer than the cold start are then carried by the scaled-up fleet.
  With ``scale_up_seconds == 0`` new replicas serve at once and no warm pool is kept.

Cost counts every running replica (serving plus warm), at ``hours_per_month`` (730) hours
a month. ``replicas_for_rate`` is the vectorised serving-replica count for a sweep.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from optimizer.capacity.cost import HOURS_PER_MONTH
from optimizer.errors import InvalidInputError

__all__ = ["CapacityPlan", "plan_capacity", "replicas_for_rate"]

# Rounding guard: 10 / (2 * 0.8) must be 6.25 -> 7, but 6.0000000001 must stay 6.
_EPS = 1e-9


def _ceil(value: float) -> int:
    return math.ceil(value - _EPS)


class CapacityPlan(BaseModel):
    """Replicas, GPUs and cost to serve a peak rate with headroom and a burst reserve.

    All rates are requests per second; money is US dollars.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    peak_rps: float = Field(description="target request rate at peak")
    replica_capacity_rps: float = Field(description="rate one replica sustains within the SLO")
    headroom: float = Field(description="fraction of each replica's capacity kept free at peak")
    burst_factor: float = Field(description="burst rate as a multiple of the peak")
    burst_rps: float = Field(description="burst_factor x peak_rps")
    scale_up_seconds: float = Field(description="cold start of a new replica")
    burst_requests_during_scale_up: float = Field(
        description="requests that arrive at the burst rate while a new replica cold-starts"
    )
    serving_replicas: int = Field(description="replicas that carry the peak with headroom")
    warm_pool_replicas: int = Field(description="extra started replicas for bursts")
    total_replicas: int
    utilisation_at_peak: float = Field(description="peak load / serving capacity")
    utilisation_at_burst: float = Field(description="burst load / capacity of all replicas")
    gpus_per_replica: int
    total_gpus: int
    usd_per_hour_per_replica: float
    usd_per_hour: float
    hours_per_month: float
    usd_per_month: float
    assumptions: list[str]


def _positive(value: float, field: str) -> float:
    if isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise InvalidInputError(field, f"must be a positive finite number, got {value!r}")
    return float(value)


def _headroom(value: float) -> float:
    if isinstance(value, bool) or not math.isfinite(value) or not 0 <= value < 1:
        raise InvalidInputError("headroom", f"must be in [0, 1), got {value!r}")
    return float(value)


def replicas_for_rate(
    peak_rps: npt.ArrayLike, replica_capacity_rps: npt.ArrayLike, headroom: float = 0.2
) -> np.ndarray:
    """Serving replicas for each (broadcast) pair of peak rate and replica capacity.

    A capacity of 0 (a candidate that cannot serve within the SLO) needs ``-1``
    replicas, the marker of "impossible"; callers treat it as infeasible.

    Raises:
        InvalidInputError: a negative rate or capacity, or headroom outside [0, 1).

    Example:
        >>> replicas_for_rate(10.0, [2.0, 4.0, 0.0]).tolist()
        [7, 4, -1]
    """
    headroom = _headroom(headroom)
    peak = np.asarray(peak_rps, dtype=np.float64)
    capacity = np.asarray(replica_capacity_rps, dtype=np.float64)
    if np.any(~np.isfinite(peak)) or np.any(peak < 0):
        raise InvalidInputError("peak_rps", "must be finite and >= 0 everywhere")
    if np.any(np.isnan(capacity)) or np.any(capacity < 0):
        raise InvalidInputError("replica_capacity_rps", "must be >= 0 everywhere (not NaN)")
    with np.errstate(divide="ignore", invalid="ignore"):
        needed = np.ceil(peak / (capacity * (1.0 - headroom)) - _EPS)
    needed = np.where(capacity > 0, np.maximum(needed, 1.0), -1.0)
    return needed.astype(np.int64)


def plan_capacity(
    *,
    peak_rps: float,
    replica_capacity_rps: float,
    gpus_per_replica: int,
    usd_per_hour_per_replica: float,
    scale_up_seconds: float,
    headroom: float = 0.2,
    burst_factor: float = 1.5,
    min_replicas: int = 1,
    hours_per_month: float = HOURS_PER_MONTH,
    extra_assumptions: list[str] | None = None,
) -> CapacityPlan:
    """Replicas for ``peak_rps`` with headroom, a warm pool for bursts, GPUs and cost.

    Args:
        peak_rps: target request rate at peak (requests/s).
        replica_capacity_rps: the rate one replica sustains while meeting the SLO.
        gpus_per_replica: GPUs per replica (``tp * pp * dp``).
        usd_per_hour_per_replica: $/hour of one replica (``replica_usd_per_hour``).
        scale_up_seconds: cold start of a new replica (``cold_start_seconds``).
        headroom: fraction of each serving replica's capacity kept free at peak.
        burst_factor: burst rate as a multiple of the peak (>= 1).
        min_replicas: floor on serving replicas.
        hours_per_month: hours billed per month.
        extra_assumptions: sentences appended to the plan's assumptions (e.g. the
            cold-start assumptions, ``ColdStartAssumptions.describe``).

    Returns:
        A JSON-serialisable ``CapacityPlan``.

    Raises:
        InvalidInputError: a rate, capacity or GPU count that is not positive, a negative
            price or scale-up time, headroom outside [0, 1), or a burst factor below 1;
            the error names the field.

    Example:
        >>> plan = plan_capacity(peak_rps=10, replica_capacity_rps=2, gpus_per_replica=2,
        ...                      usd_per_hour_per_replica=5.0, scale_up_seconds=120)
        >>> plan.serving_replicas, plan.warm_pool_replicas, plan.total_gpus
        (7, 1, 16)
    """
    peak = _positive(peak_rps, "peak_rps")
    capacity = _positive(replica_capacity_rps, "replica_capacity_rps")
    headroom = _headroom(headroom)
    if isinstance(gpus_per_replica, bool) or gpus_per_replica < 1:
        raise InvalidInputError("gpus_per_replica", f"must be >= 1, got {gpus_per_replica}")
    if isinstance(min_replicas, bool) or min_replicas < 1:
        raise InvalidInputError("min_replicas", f"must be >= 1, got {min_replicas}")
    price = float(usd_per_hour_per_replica)
    if not math.isfinite(price) or price < 0:
        raise InvalidInputError(
            "usd_per_hour_per_replica", f"must be >= 0 and finite, got {usd_per_hour_per_replica!r}"
        )
    if not math.isfinite(scale_up_seconds) or scale_up_seconds < 0:
        raise InvalidInputError(
            "scale_up_seconds", f"must be >= 0 and finite, got {scale_up_seconds!r}"
        )
    if not math.isfinite(burst_factor) or burst_factor < 1:
        raise InvalidInputError("burst_factor", f"must be >= 1, got {burst_factor!r}")
    hours = _positive(hours_per_month, "hours_per_month")

    serving = max(min_replicas, _ceil(peak / (capacity * (1.0 - headroom))))
    burst = burst_factor * peak
    warm = max(0, _ceil(burst / capacity) - serving) if scale_up_seconds > 0 else 0
    total = serving + warm
    usd_per_hour = total * price
    assumptions = [
        f"a replica sustains {capacity:g} req/s within the SLO",
        f"serving replicas run at most {1 - headroom:.0%} of capacity at peak "
        f"({headroom:.0%} headroom)",
        f"bursts reach {burst_factor:g}x the peak ({burst:g} req/s) and last at least the "
        f"{scale_up_seconds:g} s cold start of a new replica; the warm pool carries them at "
        "full capacity until then",
        f"every started replica (serving and warm) is billed, {hours:g} h a month",
        *(extra_assumptions or []),
    ]
    return CapacityPlan(
        peak_rps=peak,
        replica_capacity_rps=capacity,
        headroom=headroom,
        burst_factor=float(burst_factor),
        burst_rps=burst,
        scale_up_seconds=float(scale_up_seconds),
        burst_requests_during_scale_up=burst * scale_up_seconds,
        serving_replicas=serving,
        warm_pool_replicas=warm,
        total_replicas=total,
        utilisation_at_peak=peak / (serving * capacity),
        utilisation_at_burst=burst / (total * capacity),
        gpus_per_replica=gpus_per_replica,
        total_gpus=total * gpus_per_replica,
        usd_per_hour_per_replica=price,
        usd_per_hour=usd_per_hour,
        hours_per_month=hours,
        usd_per_month=usd_per_hour * hours,
        assumptions=assumptions,
    )
