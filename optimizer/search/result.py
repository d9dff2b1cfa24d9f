"""What a recommendation holds, and its JSON form.

A :class:`Recommendation` keeps the full evaluated candidate table (for researchers:
write it with ``optimizer.report.tables.write_candidates``), the verified Pareto front,
the chosen configuration with its reason, runners-up, the cheapest configuration per
GPU, the deployment options compared (one shared pool, pools by request length, pools
by tenant) and, when nothing meets the SLO, an explanation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from optimizer.search.backends.base import SearchResult
from optimizer.search.deployment import PoolDeployment
from optimizer.search.evaluator import CANDIDATE_COLUMNS
from optimizer.search.explain import Explanation
from optimizer.search.objectives import Bound, Objective
from optimizer.search.pools import PoolSpec
from optimizer.search.request import RecommendRequest
from optimizer.search.scenario import Scenario
from optimizer.space import SpaceSummary

__all__ = ["DeploymentOption", "Pool", "Recommendation", "records"]

_SUMMARY_COLUMNS: tuple[str, ...] = (
    *CANDIDATE_COLUMNS,
    "gpus_per_replica",
    "replicas",
    "gpus_total",
    "usd_per_mtok",
    "usd_per_hour",
    "ttft_p95_ms",
    "ttft_p95_ms_lo",
    "ttft_p95_ms_hi",
    "tpot_p95_ms",
    "tpot_p95_ms_lo",
    "tpot_p95_ms_hi",
    "e2e_p95_ms",
    "ttft_p99_ms",
    "tpot_p99_ms",
    "tok_s_per_user",
    "tok_s_per_gpu",
    "max_rate_per_replica",
    "p_slo",
    "slo_feasible",
    "binding",
)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def records(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (numpy scalars unwrapped, non-finite floats as null)."""
    if frame.empty:
        return []
    cols = [c for c in (columns or _SUMMARY_COLUMNS) if c in frame.columns]
    extra = [c for c in frame.columns if c.startswith(("violation_", "best_", "miss_"))]
    cols += [c for c in extra if c not in cols and columns is None]
    return [
        {"candidate": _plain(i), **{c: _plain(v) for c, v in row.items()}}
        for i, row in zip(frame.index, frame[cols].to_dict(orient="records"), strict=True)
    ]


@dataclass(frozen=True)
class Pool:
    """One pool of a deployment option: its traffic and the configuration serving it."""

    spec: PoolSpec
    config: pd.Series | None
    deployment: PoolDeployment | None = None

    @property
    def usd_per_hour(self) -> float:
        """$/hour of the pool's serving replicas (``inf`` when nothing meets its SLO)."""
        return float(self.config["usd_per_hour"]) if self.config is not None else math.inf

    def to_dict(self) -> dict[str, Any]:
        config = None
        if self.config is not None:
            config = records(self.config.to_frame().T)[0]
        return {
            "name": self.spec.name,
            "share": round(self.spec.share, 4),
            "traffic": self.spec.description,
            "config": config,
            "deployment": self.deployment.to_dict() if self.deployment else None,
        }


@dataclass(frozen=True)
class DeploymentOption:
    """One way to deploy: a shared pool, two pools by prompt length, or one per tenant."""

    kind: Literal["shared", "by_length", "by_tenant"]
    description: str
    pools: tuple[Pool, ...]

    @property
    def usd_per_hour(self) -> float:
        return sum(p.usd_per_hour for p in self.pools)

    @property
    def feasible(self) -> bool:
        return all(p.config is not None for p in self.pools)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "description": self.description,
            "usd_per_hour": _plain(self.usd_per_hour),
            "feasible": self.feasible,
            "pools": [p.to_dict() for p in self.pools],
        }


@dataclass(frozen=True)
class Recommendation:
    """The answer to a :class:`RecommendRequest` (see module docstring).

    Attributes:
        request: what was asked.
        scenario: model, GPUs, workload and SLO as resolved.
        objectives: objectives of the Pareto front; ``choose`` picks the chosen one.
        bounds: the SLO bounds (per tenant).
        candidates: every evaluated candidate with its metrics (index = candidate id).
        front: the non-dominated SLO-feasible candidates, verified.
        chosen: the recommended configuration of the shared pool (``None``: nothing
            meets the SLO).
        reason: one paragraph on the choice (or on why there is none).
        runners_up: the next best configurations, one per distinct layout.
        by_gpu: the best SLO-feasible configuration on each GPU.
        options: deployment options compared; ``deployment`` is the cheapest feasible.
        explanation: when nothing meets the SLO, the closest configurations and misses.
        search: what the backend evaluated.
        space: per (GPU, engine), candidates enumerated and rejections.
        provenance: the surrogate version and the evaluator's assumptions.
        seconds: wall time of the recommendation.
        notes: anything the user must know (approximations used, pools not compared).
    """

    request: RecommendRequest
    scenario: Scenario
    objectives: tuple[Objective, ...]
    choose: Objective
    bounds: tuple[Bound, ...]
    candidates: pd.DataFrame
    front: pd.DataFrame
    chosen: pd.Series | None
    reason: str
    runners_up: pd.DataFrame
    by_gpu: pd.DataFrame
    options: tuple[DeploymentOption, ...]
    deployment: DeploymentOption | None
    explanation: Explanation | None
    search: SearchResult
    space: dict[tuple[str, str], SpaceSummary]
    provenance: dict[str, Any]
    seconds: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def found(self) -> bool:
        """Whether some configuration meets the SLO."""
        return self.deployment is not None

    @property
    def surrogate_version(self) -> str | None:
        return self.provenance.get("surrogate_version")

    def to_dict(self, *, candidates: bool = False) -> dict[str, Any]:
        """JSON-ready form; ``candidates`` adds the full evaluated table."""
        search = self.search
        out: dict[str, Any] = {
            "found": self.found,
            "model": self.scenario.model.model_id,
            "gpus": [g.id for g in self.scenario.gpus],
            "objectives": [o.name for o in self.objectives],
            "choose": self.choose.name,
            "slo_bounds": [
                {"name": b.name, "metric": b.metric, "limit": b.limit, "upper": b.upper}
                for b in self.bounds
            ],
            "reason": self.reason,
            "chosen": records(self.chosen.to_frame().T)[0] if self.chosen is not None else None,
            "runners_up": records(self.runners_up),
            "front": records(self.front),
            "by_gpu": records(self.by_gpu),
            "deployment": self.deployment.to_dict() if self.deployment else None,
            "options": [o.to_dict() for o in self.options],
            "explanation": None,
            "search": {
                "backend": search.backend,
                "trials": len(search.trials),
                "evaluated": len(search.evaluated),
                "evaluations": search.evaluations,
                "study_name": search.study_name,
                "study_storage": search.study_storage,
                "resumed_trials": search.resumed_trials,
            },
            "space": [
                {"gpu": gpu, "engine": engine, **summary.to_dict()}
                for (gpu, engine), summary in self.space.items()
            ],
            "provenance": self.provenance,
            "notes": list(self.notes),
            "seconds": round(self.seconds, 3),
        }
        if self.explanation is not None:
            out["explanation"] = {
                "text": self.explanation.text,
                "closest": records(self.explanation.closest),
                "relax": self.explanation.relax,
            }
        if candidates:
            out["candidates"] = records(self.candidates, columns=list(self.candidates.columns))
        return out
