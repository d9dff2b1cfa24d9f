"""The evaluator interface: candidate configurations in, predicted metrics out.

Every search backend talks to an :class:`Evaluator`: it hands over candidate rows
(the columns of :data:`CANDIDATE_COLUMNS`, as ``optimizer.space.enumerate_candidates``
makes them, plus ``gpu``) and gets one row of :data:`METRIC_COLUMNS` per candidate,
same index. Implementations:

* :class:`optimizer.search.fast_evaluator.FastEvaluator` -- the surrogate's latency
  curves and analytical queueing, vectorised over thousands of candidates;
* :class:`optimizer.search.simulated_evaluator.SimulatorEvaluator` -- the serving
  simulator in the loop, one costly evaluation per candidate.

Metric columns (all per the planned load of the scenario):

* ``slo_feasible`` -- every SLO bound holds at the required confidence; ``binding`` --
  what limits the load one replica may carry (an SLO bound such as ``tpot_p95``,
  ``batch_limit`` or ``throughput_peak``) or, for an infeasible candidate, the bound it misses most;
  ``p_slo`` -- probability that all bounds hold given the prediction intervals;
* capacity: ``replicas``, ``gpus_total``, ``rate_per_replica`` (req/s at the planned
  load), ``max_rate_per_replica`` (the most a replica carries within the SLO) and
  ``max_concurrency_per_replica`` (its mean running requests there), ``concurrency``
  (mean running requests per replica at the planned load), ``batch_limit``,
  ``utilization``;
* cost: ``usd_per_hour_replica``, ``usd_per_hour``, ``usd_per_mtok`` ($ per million
  output tokens at the planned load);
* latency (ms; the worst tenant's): ``ttft_mean_ms``, ``tpot_mean_ms``,
  ``e2e_mean_ms`` and ``{ttft,tpot,e2e}_{p50,p95,p99}_ms`` each with ``_lo``/``_hi``
  90 % bounds from the surrogate's intervals;
* throughput: ``tok_s_per_user``, ``tok_s_per_replica``, ``tok_s_per_gpu``;
* per SLO bound ``b``: ``violation_b`` (``ln(value / bound)`` at the required
  confidence; <= 0 holds) and ``best_b`` (the value at the lightest load, what the
  configuration achieves at best).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from optimizer.space.knobs import KNOBS

if TYPE_CHECKING:
    import pandas as pd

    from optimizer.search.scenario import Scenario

__all__ = [
    "CANDIDATE_COLUMNS",
    "LATENCY_COLUMNS",
    "METRIC_COLUMNS",
    "Evaluator",
    "EvaluatorFactory",
]

CANDIDATE_COLUMNS: tuple[str, ...] = ("gpu", "engine", *KNOBS)
"""The columns that identify one configuration."""

LATENCY_COLUMNS: tuple[str, ...] = tuple(
    f"{metric}_{p}_ms" for metric in ("ttft", "tpot", "e2e") for p in ("p50", "p95", "p99")
)

METRIC_COLUMNS: tuple[str, ...] = (
    "slo_feasible",
    "binding",
    "p_slo",
    "replicas",
    "gpus_total",
    "rate_per_replica",
    "max_rate_per_replica",
    "max_concurrency_per_replica",
    "concurrency",
    "batch_limit",
    "utilization",
    "usd_per_hour_replica",
    "usd_per_hour",
    "usd_per_mtok",
    "ttft_mean_ms",
    "tpot_mean_ms",
    "e2e_mean_ms",
    *(f"{c}{s}" for c in LATENCY_COLUMNS for s in ("", "_lo", "_hi")),
    "tok_s_per_user",
    "tok_s_per_replica",
    "tok_s_per_gpu",
)
"""Columns every evaluator returns (plus ``violation_*`` / ``best_*`` per SLO bound)."""


class Evaluator(ABC):
    """Predicts how candidate configurations serve one :class:`Scenario`.

    Subclasses set :attr:`name`, say whether one evaluation is costly, and may
    restrict knobs they cannot model (:attr:`restrictions`).
    """

    name: ClassVar[str]
    costly: ClassVar[bool] = False

    def __init__(self, scenario: Scenario):
        self.scenario = scenario

    restrictions: ClassVar[dict[str, tuple[Any, ...]]] = {}
    """Knob values this evaluator can model, e.g. ``{"pp": (1,)}`` (others: all)."""

    def provenance(self) -> dict[str, Any]:
        """What the predictions rest on (surrogate version, assumptions), as JSON values."""
        return {"evaluator": self.name}

    @abstractmethod
    def evaluate(self, candidates: pd.DataFrame) -> pd.DataFrame:
        """Metrics of each candidate (same index): :data:`METRIC_COLUMNS` and the
        ``violation_*`` / ``best_*`` columns of the scenario's SLO bounds."""


class EvaluatorFactory(Protocol):
    """Builds the evaluator of a scenario once its candidates are known (the search
    needs the knob restrictions before it enumerates them)."""

    @property
    def restrictions(self) -> dict[str, tuple[Any, ...]]:
        """Knob values the evaluators can model (see :attr:`Evaluator.restrictions`)."""

    def __call__(self, scenario: Scenario, candidates: pd.DataFrame) -> Evaluator: ...
