"""Workloads: sequence-length distributions, arrival processes, tenant classes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from optimizer.domain.slo import SLO

__all__ = [
    "ArrivalProcess",
    "BurstyArrivals",
    "ClosedLoop",
    "ConstantRate",
    "EmpiricalLength",
    "FixedLength",
    "LengthDistribution",
    "LogNormalLength",
    "OnOffArrivals",
    "PoissonArrivals",
    "TenantClass",
    "TraceReplay",
    "UniformLength",
    "Workload",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


# --- sequence lengths -------------------------------------------------------------------
class FixedLength(BaseModel):
    """Every request has exactly ``tokens`` tokens."""

    model_config = _FROZEN
    kind: Literal["fixed"] = "fixed"
    tokens: int = Field(ge=1)

    def mean(self) -> float:
        return float(self.tokens)


class UniformLength(BaseModel):
    """Integer lengths uniform on ``[low, high]``."""

    model_config = _FROZEN
    kind: Literal["uniform"] = "uniform"
    low: int = Field(ge=1)
    high: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> UniformLength:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be >= low ({self.low})")
        return self

    def mean(self) -> float:
        return (self.low + self.high) / 2


class LogNormalLength(BaseModel):
    """Log-normal lengths given by their median and the sigma of log(length), clipped to
    ``[1, max_tokens]``."""

    model_config = _FROZEN
    kind: Literal["lognormal"] = "lognormal"
    median: float = Field(gt=0)
    sigma: float = Field(ge=0)
    max_tokens: int | None = Field(default=None, ge=1)

    def mean(self) -> float:
        """Mean of the unclipped distribution: median * exp(sigma^2 / 2)."""
        return self.median * math.exp(self.sigma**2 / 2)


class EmpiricalLength(BaseModel):
    """Lengths drawn from observed values (e.g. a trace), optionally weighted."""

    model_config = _FROZEN
    kind: Literal["empirical"] = "empirical"
    values: tuple[int, ...] = Field(min_length=1)
    weights: tuple[float, ...] | None = None

    @model_validator(mode="after")
    def _check(self) -> EmpiricalLength:
        if any(v < 1 for v in self.values):
            raise ValueError("values must all be >= 1")
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise ValueError("weights must have one entry per value")
            if any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
                raise ValueError("weights must be >= 0 with a positive sum")
        return self

    def mean(self) -> float:
        if self.weights is None:
            return sum(self.values) / len(self.values)
        return sum(v * w for v, w in zip(self.values, self.weights, strict=True)) / sum(
            self.weights
        )


LengthDistribution = Annotated[
    FixedLength | UniformLength | LogNormalLength | EmpiricalLength,
    Field(discriminator="kind"),
]


# --- arrivals ---------------------------------------------------------------------------
class PoissonArrivals(BaseModel):
    """Open loop, exponential inter-arrival times at ``rate`` requests/s."""

    model_config = _FROZEN
    kind: Literal["poisson"] = "poisson"
    rate: float = Field(gt=0, description="requests per second")


class BurstyArrivals(BaseModel):
    """Open loop, Gamma inter-arrival times with coefficient of variation ``cv`` (>1 = bursty)."""

    model_config = _FROZEN
    kind: Literal["gamma"] = "gamma"
    rate: float = Field(gt=0)
    cv: float = Field(gt=0)


class OnOffArrivals(BaseModel):
    """Poisson at ``rate_on`` for ``on_s`` seconds, then ``rate_off`` for ``off_s``, repeating."""

    model_config = _FROZEN
    kind: Literal["on_off"] = "on_off"
    rate_on: float = Field(gt=0)
    rate_off: float = Field(ge=0)
    on_s: float = Field(gt=0)
    off_s: float = Field(gt=0)

    @property
    def rate(self) -> float:
        return (self.rate_on * self.on_s + self.rate_off * self.off_s) / (self.on_s + self.off_s)


class ConstantRate(BaseModel):
    """Open loop, evenly spaced arrivals."""

    model_config = _FROZEN
    kind: Literal["constant"] = "constant"
    rate: float = Field(gt=0)


class ClosedLoop(BaseModel):
    """``concurrency`` clients, each sending its next request when the previous one ends
    (what the bundled measured runs use)."""

    model_config = _FROZEN
    kind: Literal["closed_loop"] = "closed_loop"
    concurrency: int = Field(ge=1)


class TraceReplay(BaseModel):
    """Replay a trace file (CSV or JSONL: timestamp, input tokens, output tokens)."""

    model_config = _FROZEN
    kind: Literal["trace"] = "trace"
    path: Path
    time_scale: float = Field(default=1.0, gt=0, description=">1 replays faster")


ArrivalProcess = Annotated[
    PoissonArrivals | BurstyArrivals | OnOffArrivals | ConstantRate | ClosedLoop | TraceReplay,
    Field(discriminator="kind"),
]


# --- tenants and the workload -----------------------------------------------------------
class TenantClass(BaseModel):
    """One class of traffic: its share, its lengths, its SLO and its priority."""

    model_config = _FROZEN
    name: str = Field(min_length=1)
    share: float = Field(gt=0, le=1, description="fraction of requests")
    isl: LengthDistribution
    osl: LengthDistribution
    slo: SLO | None = None
    priority: int = Field(default=0, description="higher is served first")
    shared_prefix_tokens: int = Field(default=0, ge=0)
    shared_prefix_fraction: float = Field(default=0.0, ge=0, le=1)


class Workload(BaseModel):
    """What an endpoint must serve: an arrival process and one or more tenant classes.

    Example:
        >>> w = Workload.simple(isl=2048, osl=256, concurrency=8)
        >>> w.mean_isl(), w.mean_osl()
        (2048.0, 256.0)
    """

    model_config = _FROZEN
    arrivals: ArrivalProcess
    tenants: tuple[TenantClass, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _shares(self) -> Workload:
        total = sum(t.share for t in self.tenants)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"tenants: shares must sum to 1, got {total:g}")
        names = [t.name for t in self.tenants]
        if len(set(names)) != len(names):
            raise ValueError("tenants: names must be unique")
        return self

    @classmethod
    def simple(
        cls,
        isl: int,
        osl: int,
        *,
        concurrency: int | None = None,
        rate: float | None = None,
        slo: SLO | None = None,
    ) -> Workload:
        """One tenant with fixed lengths, closed-loop ``concurrency`` or Poisson ``rate``."""
        if (concurrency is None) == (rate is None):
            raise ValueError("give exactly one of concurrency or rate")
        arrivals: ClosedLoop | PoissonArrivals = (
            ClosedLoop(concurrency=concurrency)
            if concurrency is not None
            else PoissonArrivals(rate=rate)  # type: ignore[arg-type]
        )
        tenant = TenantClass(
            name="default",
            share=1.0,
            isl=FixedLength(tokens=isl),
            osl=FixedLength(tokens=osl),
            slo=slo,
        )
        return cls(arrivals=arrivals, tenants=(tenant,))

    def mean_isl(self) -> float:
        return sum(t.share * t.isl.mean() for t in self.tenants)

    def mean_osl(self) -> float:
        return sum(t.share * t.osl.mean() for t in self.tenants)
