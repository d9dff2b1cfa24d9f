"""What is being served: the model, the GPUs to choose from, the workload and the SLO.

A :class:`Scenario` gathers the question every evaluator answers ("how would this
configuration do here?") with the settings that decide what "meets the SLO" means:
the confidence required of the prediction and the batch utilisation a replica is
planned at. Per tenant it merges the workload-wide SLO with the tenant's own
(:meth:`Scenario.tenant_slo`).

Example:
    >>> from optimizer.catalog import get_gpu, load_model_spec
    >>> from optimizer.domain import SLO, Workload
    >>> s = Scenario(load_model_spec("meta-llama/Llama-3.1-8B"), (get_gpu("h100_sxm"),),
    ...              Workload.simple(1024, 128, rate=2.0), SLO.parse("ttft_p95<=1s"))
    >>> s.planning_rate, s.arrival_cv2
    (2.0, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from optimizer.capacity.cost import replica_usd_per_hour
from optimizer.domain.gpu import GPUSpec
from optimizer.domain.model_spec import ModelSpec
from optimizer.domain.slo import SLO
from optimizer.domain.workload import (
    BurstyArrivals,
    ClosedLoop,
    ConstantRate,
    OnOffArrivals,
    PoissonArrivals,
    TenantClass,
    TraceReplay,
    Workload,
)
from optimizer.errors import InvalidInputError
from optimizer.search.speculative import SpecDecodingAssumptions

__all__ = ["Scenario"]


@dataclass(frozen=True)
class Scenario:
    """A model, the candidate GPUs, a workload and an SLO, plus planning settings.

    Attributes:
        model: the served model.
        gpus: the GPU SKUs candidates may run on (each needs a price).
        workload: arrivals and tenant classes.
        slo: bounds every tenant must meet (a tenant's own SLO overrides per field).
        confidence: required probability that each bound holds given the surrogate's
            uncertainty (0.5 = the point prediction must meet it).
        max_batch_utilization: a replica is planned to run at most this share of its
            batch limit on average (the queue in front of a full batch grows without
            bound as this nears 1).
        headroom: share of each replica's SLO capacity kept free at the planned load
            (the capacity plan's headroom), so replicas = ceil(load / (capacity *
            (1 - headroom))).
        spec: speculative-decoding assumptions.
    """

    model: ModelSpec
    gpus: tuple[GPUSpec, ...]
    workload: Workload
    slo: SLO = field(default_factory=SLO)
    confidence: float = 0.5
    max_batch_utilization: float = 0.9
    headroom: float = 0.2
    spec: SpecDecodingAssumptions = field(default_factory=SpecDecodingAssumptions)

    def __post_init__(self) -> None:
        if not self.gpus:
            raise InvalidInputError("gpus", "name at least one GPU")
        for gpu in self.gpus:
            replica_usd_per_hour(gpu, 1)  # raises, naming the GPU, when it has no price
        if not 0.0 < self.confidence < 1.0:
            raise InvalidInputError("confidence", f"must be in (0, 1), got {self.confidence}")
        if not 0.0 < self.max_batch_utilization <= 1.0:
            raise InvalidInputError(
                "max_batch_utilization", f"must be in (0, 1], got {self.max_batch_utilization}"
            )
        if not 0.0 <= self.headroom < 1.0:
            raise InvalidInputError("headroom", f"must be in [0, 1), got {self.headroom}")
        if isinstance(self.workload.arrivals, TraceReplay):
            raise InvalidInputError(
                "workload.arrivals",
                "a trace replay has no analytical arrival rate; give its rate instead",
                ["poisson", "gamma", "on_off", "constant", "closed_loop"],
            )

    @property
    def gpu_by_id(self) -> dict[str, GPUSpec]:
        return {g.id: g for g in self.gpus}

    @property
    def closed_loop(self) -> bool:
        """Whether clients are closed-loop (a fixed concurrency) rather than arrivals."""
        return isinstance(self.workload.arrivals, ClosedLoop)

    @property
    def planning_rate(self) -> float | None:
        """Requests/s the deployment is sized for: the rate, or the on-period rate of
        on-off arrivals (the SLO must hold while traffic is on); ``None`` if closed-loop."""
        arrivals = self.workload.arrivals
        if isinstance(arrivals, OnOffArrivals):
            return arrivals.rate_on
        if isinstance(arrivals, PoissonArrivals | BurstyArrivals | ConstantRate):
            return arrivals.rate
        return None

    @property
    def concurrency(self) -> int | None:
        """Closed-loop clients, or ``None`` for open-loop arrivals."""
        arrivals = self.workload.arrivals
        return arrivals.concurrency if isinstance(arrivals, ClosedLoop) else None

    @property
    def arrival_cv2(self) -> float:
        """Squared coefficient of variation of inter-arrival times (0 when closed-loop)."""
        arrivals = self.workload.arrivals
        if isinstance(arrivals, BurstyArrivals):
            return arrivals.cv**2
        if isinstance(arrivals, ConstantRate | ClosedLoop):
            return 0.0
        return 1.0

    def tenant_slo(self, tenant: TenantClass) -> SLO:
        """The workload-wide SLO with the tenant's own bounds laid over it."""
        if tenant.slo is None:
            return self.slo
        merged: dict[str, Any] = self.slo.model_dump(exclude_none=True)
        merged.update(tenant.slo.model_dump(exclude_none=True))
        return SLO(**merged)
