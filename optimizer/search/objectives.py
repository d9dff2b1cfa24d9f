"""Objectives a search optimises and the SLO bounds it must respect.

Objectives (the user picks any; the default is cost against the latencies the SLO
bounds):

=================  =========  ======================================================
name               direction  metric column
=================  =========  ======================================================
``usd_per_mtok``   minimise   $ per million output tokens at the planned load
``gpus``           minimise   GPUs of all replicas at the planned load
``ttft_p95``, ...  minimise   ``{ttft,tpot,e2e}_{p50,p95,p99}_ms``
``tok_s_per_user`` maximise   output tokens/s one request sees
``tok_s_per_gpu``  maximise   output tokens/s per GPU at the planned load
=================  =========  ======================================================

SLO bounds become constraints: :func:`slo_bounds` lists one :class:`Bound` per bound
and tenant, and the evaluator reports ``violation_<bound>`` = ``ln(value / limit)`` (for
a floor, ``ln(limit / value)``) at the required confidence -- scale-free, <= 0 when the
bound holds -- which is what optuna's constraint interface expects.

Example:
    >>> [o.name for o in parse_objectives("usd_per_mtok, ttft_p95")]
    ['usd_per_mtok', 'ttft_p95']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from optimizer.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

    from optimizer.search.scenario import Scenario

__all__ = [
    "OBJECTIVES",
    "Bound",
    "Objective",
    "default_objectives",
    "objective_matrix",
    "parse_objectives",
    "slo_bounds",
]


@dataclass(frozen=True)
class Objective:
    """One objective: its name, the metric column it reads and its direction."""

    name: str
    column: str
    direction: Literal["minimize", "maximize"]
    label: str

    @property
    def sign(self) -> float:
        """+1 to minimise, -1 to maximise (multiply to get a minimisation value)."""
        return 1.0 if self.direction == "minimize" else -1.0


def _latency_objectives() -> dict[str, Objective]:
    names = {"ttft": "TTFT", "tpot": "TPOT", "e2e": "end-to-end latency"}
    return {
        f"{m}_{p}": Objective(f"{m}_{p}", f"{m}_{p}_ms", "minimize", f"{names[m]} {p} (ms)")
        for m in names
        for p in ("p50", "p95", "p99")
    }


OBJECTIVES: dict[str, Objective] = {
    "usd_per_mtok": Objective("usd_per_mtok", "usd_per_mtok", "minimize", "$ per million tokens"),
    "gpus": Objective("gpus", "gpus_total", "minimize", "GPUs"),
    **_latency_objectives(),
    "tok_s_per_user": Objective(
        "tok_s_per_user", "tok_s_per_user", "maximize", "output tokens/s per user"
    ),
    "tok_s_per_gpu": Objective(
        "tok_s_per_gpu", "tok_s_per_gpu", "maximize", "output tokens/s per GPU"
    ),
}
"""Every objective by name."""


def parse_objectives(text: str | Sequence[str]) -> tuple[Objective, ...]:
    """Objectives from ``"usd_per_mtok,ttft_p95"`` or a list of names.

    Raises:
        InvalidInputError: an unknown or repeated name, or none at all.
    """
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text)]
    names = [n.removesuffix("_ms") for n in names if n]
    if not names:
        raise InvalidInputError("objectives", "name at least one", list(OBJECTIVES))
    for name in names:
        if name not in OBJECTIVES:
            raise InvalidInputError("objectives", f"unknown objective {name!r}", list(OBJECTIVES))
    if len(set(names)) != len(names):
        raise InvalidInputError("objectives", "an objective is named twice")
    return tuple(OBJECTIVES[n] for n in names)


def default_objectives(scenario: Scenario) -> tuple[Objective, ...]:
    """Cost, plus each latency metric some SLO bound limits (TPOT p95 if none)."""
    latencies = [b.metric for b in slo_bounds(scenario) if b.metric in OBJECTIVES]
    latencies = [m for m in dict.fromkeys(latencies) if m != "usd_per_mtok"]
    return parse_objectives(["usd_per_mtok", *(latencies or ["tpot_p95"])])


@dataclass(frozen=True)
class Bound:
    """One SLO bound of one tenant.

    Attributes:
        name: ``ttft_p95`` (or ``<tenant>:ttft_p95`` when there are several tenants).
        tenant: the tenant's name.
        metric: ``ttft_p95``, ``tok_s_per_user`` or ``usd_per_mtok``.
        limit: the bound (ms, tokens/s or $).
        upper: the value must stay at or below ``limit`` (else at or above).
    """

    name: str
    tenant: str
    metric: str
    limit: float
    upper: bool = True

    def violation(self, value: np.ndarray) -> np.ndarray:
        """``ln(value / limit)`` for an upper bound, ``ln(limit / value)`` for a floor."""
        v = np.maximum(np.asarray(value, dtype=np.float64), 1e-300)
        ratio = v / self.limit if self.upper else self.limit / v
        return np.log(ratio)


def slo_bounds(scenario: Scenario) -> list[Bound]:
    """Every bound of every tenant (the workload-wide SLO merged with the tenant's)."""
    tenants = scenario.workload.tenants
    several = len(tenants) > 1
    bounds: list[Bound] = []
    for tenant in tenants:
        slo = scenario.tenant_slo(tenant)
        prefix = f"{tenant.name}:" if several else ""
        for field, limit in slo.latency_bounds().items():
            metric = field.removesuffix("_ms")
            bounds.append(Bound(prefix + metric, tenant.name, metric, limit))
        if slo.min_output_tok_s_per_user is not None:
            bounds.append(
                Bound(
                    prefix + "tok_s_per_user",
                    tenant.name,
                    "tok_s_per_user",
                    slo.min_output_tok_s_per_user,
                    upper=False,
                )
            )
        if slo.max_usd_per_mtok is not None:
            bounds.append(
                Bound(prefix + "usd_per_mtok", tenant.name, "usd_per_mtok", slo.max_usd_per_mtok)
            )
    return bounds


def objective_matrix(frame: pd.DataFrame, objectives: Sequence[Objective]) -> np.ndarray:
    """``(rows, objectives)`` array to minimise: maximised objectives are negated."""
    return np.column_stack([frame[o.column].to_numpy(np.float64) * o.sign for o in objectives])
