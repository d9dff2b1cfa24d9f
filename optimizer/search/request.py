"""A recommendation request: what to serve, under which SLO, and how to search.

Validated once, here, so that the recommender and the audit record see the same
values (``RecommendRequest.model_dump(mode="json")`` is what storage keeps).

Example:
    >>> from optimizer.domain import SLO, Workload
    >>> r = RecommendRequest(model="meta-llama/Llama-3.1-8B", gpus=("h100_sxm",),
    ...                      workload=Workload.simple(1024, 256, rate=4.0),
    ...                      slo=SLO.parse("ttft_p95<=1s"))
    >>> r.search, r.choose
    ('exhaustive', 'usd_per_mtok')
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from optimizer.domain.enums import Engine
from optimizer.domain.slo import SLO
from optimizer.domain.workload import Workload
from optimizer.search.backends.optuna_backend import SAMPLERS
from optimizer.search.objectives import OBJECTIVES
from optimizer.space.knobs import KNOBS

__all__ = ["SEARCHES", "RecommendRequest"]

SEARCHES: tuple[str, ...] = ("exhaustive", "optuna", "ray")
"""Search backends by name."""


class RecommendRequest(BaseModel):
    """Everything a recommendation depends on.

    Attributes:
        model: Hugging Face id or path to a ``config.json``.
        gpus: GPU catalog ids (or aliases) to choose from.
        workload: arrivals and tenant classes.
        slo: bounds every tenant must meet (tenants may add their own).
        engines: engines to consider.
        objectives: objectives of the Pareto front (default: cost against the latencies
            the SLO bounds).
        choose: the objective that picks the recommended configuration among those
            meeting the SLO (default: the cheapest).
        search, sampler, trials, seed: the search backend and its settings.
        confidence: probability with which each SLO bound must hold.
        max_batch_utilization: planned share of a replica's batch limit in use.
        headroom: share of each replica's SLO capacity kept free at the planned load.
        pins: knob -> values to restrict the space to.
        runners_up: alternatives to list.
        compare_pools: also price two pools by request length and, with several
            tenants, one pool per tenant.
        speculative_model: drafter weights (EAGLE head or draft LLM) for the launch
            command; without it, methods that need them are not searched.
        study_name: optuna study to create or resume (optuna and ray searches).
        ray_address: an existing Ray cluster (ray search).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(min_length=1)
    gpus: tuple[str, ...] = Field(min_length=1)
    workload: Workload
    slo: SLO = Field(default_factory=SLO)
    engines: tuple[Engine, ...] = tuple(Engine)
    objectives: tuple[str, ...] | None = None
    choose: str = "usd_per_mtok"
    search: Literal["exhaustive", "optuna", "ray"] = "exhaustive"
    sampler: str = "tpe"
    trials: int | None = Field(default=None, ge=1)
    seed: int = 0
    confidence: float = Field(default=0.5, gt=0, lt=1)
    max_batch_utilization: float = Field(default=0.9, gt=0, le=1)
    headroom: float = Field(default=0.2, ge=0, lt=1)
    pins: dict[str, tuple[Any, ...]] = Field(default_factory=dict)
    runners_up: int = Field(default=3, ge=0, le=20)
    compare_pools: bool = True
    speculative_model: str | None = None
    study_name: str | None = None
    ray_address: str | None = None

    @field_validator("objectives")
    @classmethod
    def _known_objectives(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None:
            for name in value:
                if name not in OBJECTIVES:
                    raise ValueError(
                        f"unknown objective {name!r} (allowed: {', '.join(OBJECTIVES)})"
                    )
        return value

    @field_validator("choose")
    @classmethod
    def _known_choice(cls, value: str) -> str:
        if value not in OBJECTIVES:
            raise ValueError(f"unknown objective {value!r} (allowed: {', '.join(OBJECTIVES)})")
        return value

    @field_validator("sampler")
    @classmethod
    def _known_sampler(cls, value: str) -> str:
        if value not in SAMPLERS:
            raise ValueError(f"unknown sampler {value!r} (allowed: {', '.join(SAMPLERS)})")
        return value

    @field_validator("pins")
    @classmethod
    def _known_knobs(cls, value: dict[str, tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
        for knob in value:
            if knob not in KNOBS:
                raise ValueError(f"unknown knob {knob!r} (allowed: {', '.join(KNOBS)})")
        return value
