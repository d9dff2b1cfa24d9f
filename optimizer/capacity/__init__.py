"""Capacity planning: replica cost, cold start, and replicas for a peak rate with bursts.

Example:
    >>> from optimizer.capacity import plan_capacity
    >>> plan = plan_capacity(peak_rps=10, replica_capacity_rps=2, gpus_per_replica=2,
    ...                      usd_per_hour_per_replica=5.0, scale_up_seconds=120)
    >>> plan.total_replicas, plan.usd_per_month
    (8, 29200.0)
"""

from __future__ import annotations

from optimizer.capacity.cold_start import (
    ColdStartAssumptions,
    ColdStartBreakdown,
    PerEngineSeconds,
    cold_start_breakdown,
    cold_start_seconds,
)
from optimizer.capacity.cost import (
    HOURS_PER_MONTH,
    monthly_usd,
    replica_usd_per_hour,
    usd_per_million_tokens,
    usd_per_million_tokens_array,
)
from optimizer.capacity.plan import CapacityPlan, plan_capacity, replicas_for_rate

__all__ = [
    "HOURS_PER_MONTH",
    "CapacityPlan",
    "ColdStartAssumptions",
    "ColdStartBreakdown",
    "PerEngineSeconds",
    "cold_start_breakdown",
    "cold_start_seconds",
    "monthly_usd",
    "plan_capacity",
    "replica_usd_per_hour",
    "replicas_for_rate",
    "usd_per_million_tokens",
    "usd_per_million_tokens_array",
]
