"""Splitting traffic into pools: by request length, and by tenant.

Two ways one deployment can become several, each priced against the single shared
pool by the recommender:

* **by length** -- requests with prompts up to a threshold go to one pool, longer ones
  to another (each pool may pick another GPU SKU and configuration: short prompts
  favour cheap, memory-light GPUs, long ones large-memory ones). Only for a single
  tenant whose prompt lengths vary; thresholds at the 50th and 80th percentile of the
  prompt length.
* **by tenant** -- each tenant class gets its own pool, sized for its own SLO.

Each pool serves its share of the traffic: open-loop rates are scaled by the share
(splitting a Poisson stream gives Poisson streams; a bursty or constant stream is
kept bursty or constant as an approximation), closed-loop clients are divided and
rounded up.

Example:
    >>> from optimizer.domain import Workload
    >>> [pool.name for pool in split_by_tenant(Workload.simple(512, 64, rate=2.0))]
    ['default']

"""

from __future__ import annotations

import math
from dataclasses import dataclass

from optimizer.domain.workload import (
    ArrivalProcess,
    BurstyArrivals,
    ClosedLoop,
    ConstantRate,
    FixedLength,
    OnOffArrivals,
    PoissonArrivals,
    TraceReplay,
    Workload,
)
from optimizer.errors import InvalidInputError
from optimizer.search.lengths import length_quantile, split_lengths

__all__ = [
    "LENGTH_SPLIT_QUANTILES",
    "PoolSpec",
    "scale_arrivals",
    "split_by_length",
    "split_by_tenant",
]

LENGTH_SPLIT_QUANTILES: tuple[float, ...] = (0.5, 0.8)
"""Prompt-length quantiles tried as the short/long threshold."""


@dataclass(frozen=True)
class PoolSpec:
    """One pool of a split deployment: its name, share of requests and workload."""

    name: str
    share: float
    workload: Workload
    description: str


def scale_arrivals(arrivals: ArrivalProcess, share: float) -> ArrivalProcess:
    """The arrivals a pool receiving ``share`` of the requests sees."""
    if not 0 < share <= 1:
        raise InvalidInputError("share", f"must be in (0, 1], got {share}")
    if isinstance(arrivals, PoissonArrivals):
        return PoissonArrivals(rate=arrivals.rate * share)
    if isinstance(arrivals, BurstyArrivals):
        return BurstyArrivals(rate=arrivals.rate * share, cv=arrivals.cv)
    if isinstance(arrivals, ConstantRate):
        return ConstantRate(rate=arrivals.rate * share)
    if isinstance(arrivals, OnOffArrivals):
        return arrivals.model_copy(
            update={"rate_on": arrivals.rate_on * share, "rate_off": arrivals.rate_off * share}
        )
    if isinstance(arrivals, ClosedLoop):
        return ClosedLoop(concurrency=max(1, math.ceil(arrivals.concurrency * share)))
    assert isinstance(arrivals, TraceReplay)
    raise InvalidInputError("workload.arrivals", "a trace replay cannot be split into pools")


def split_by_tenant(workload: Workload) -> list[PoolSpec]:
    """One pool per tenant, carrying that tenant's share of the traffic."""
    pools = []
    for tenant in workload.tenants:
        single = tenant.model_copy(update={"share": 1.0})
        arrivals = scale_arrivals(workload.arrivals, tenant.share)
        pools.append(
            PoolSpec(
                tenant.name,
                tenant.share,
                Workload(arrivals=arrivals, tenants=(single,)),
                f"tenant {tenant.name} ({tenant.share:.0%} of requests)",
            )
        )
    return pools


def split_by_length(workload: Workload) -> list[tuple[float, list[PoolSpec]]]:
    """Short/long splits of a single tenant's prompts, one per threshold.

    Returns:
        ``[(threshold, [short pool, long pool]), ...]``; empty for several tenants or
        fixed prompt lengths.
    """
    if len(workload.tenants) != 1 or isinstance(workload.tenants[0].isl, FixedLength):
        return []
    tenant = workload.tenants[0]
    splits = []
    for q in LENGTH_SPLIT_QUANTILES:
        threshold = length_quantile(tenant.isl, q)
        parts = split_lengths(tenant.isl, threshold)
        if parts is None:
            continue
        pools = []
        for label, (share, isl) in zip(("short", "long"), parts, strict=True):
            single = tenant.model_copy(update={"share": 1.0, "isl": isl})
            arrivals = scale_arrivals(workload.arrivals, share)
            relation = "<=" if label == "short" else ">"
            pools.append(
                PoolSpec(
                    label,
                    share,
                    Workload(arrivals=arrivals, tenants=(single,)),
                    f"prompts {relation} {threshold:.0f} tokens ({share:.0%} of requests)",
                )
            )
        splits.append((threshold, pools))
    return splits
