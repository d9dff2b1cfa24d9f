"""Evaluator factories: one per evaluator kind, holding what evaluators share.

The recommender builds a new evaluator for every scenario it prices (the main request,
each pool of a split deployment); a factory keeps the surrogate and the caches those
evaluators share, and tells the candidate builder which knob values its evaluators can
model (``restrictions``) before the candidates exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from optimizer.search.curves import CurveStore
from optimizer.search.fast_evaluator import FastEvaluator
from optimizer.search.simulated_evaluator import SimulatorEvaluator

if TYPE_CHECKING:
    import pandas as pd

    from optimizer.search.scenario import Scenario
    from optimizer.surrogate import Surrogate

__all__ = ["FastEvaluatorFactory", "SimulatorEvaluatorFactory"]


class FastEvaluatorFactory:
    """Fast evaluators on one surrogate, sharing their latency curves.

    Each evaluator's curves reach the largest load its candidates can run
    (``dp x max_batch_size x (1 + draft length)``, rounded up to a power of two).

    Args:
        surrogate: a fitted surrogate.
        surrogate_version: recorded in every evaluator's provenance.
    """

    restrictions: ClassVar[dict[str, tuple[Any, ...]]] = FastEvaluator.restrictions

    def __init__(self, surrogate: Surrogate, *, surrogate_version: str | None = None):
        self.surrogate = surrogate
        self.surrogate_version = surrogate_version
        self._curves: dict[Any, CurveStore] = {}

    def __call__(self, scenario: Scenario, candidates: pd.DataFrame) -> FastEvaluator:
        needed = 1.0
        if not candidates.empty:
            load = candidates["dp"] * candidates["max_batch_size"]
            needed = float((load * (1 + candidates["spec_draft_len"])).max())
        return FastEvaluator(
            scenario,
            self.surrogate,
            surrogate_version=self.surrogate_version,
            max_concurrency=float(2.0 ** np.ceil(np.log2(max(needed, 1.0)))),
            curve_cache=self._curves,
        )


class SimulatorEvaluatorFactory:
    """Simulator evaluators on one (optional) calibrating surrogate."""

    restrictions: ClassVar[dict[str, tuple[Any, ...]]] = {}

    def __init__(
        self,
        surrogate: Surrogate | None = None,
        *,
        surrogate_version: str | None = None,
        n_requests: int = 1000,
        seed: int = 0,
    ):
        self.surrogate = surrogate
        self.surrogate_version = surrogate_version
        self.n_requests = n_requests
        self.seed = seed

    def __call__(self, scenario: Scenario, candidates: pd.DataFrame) -> SimulatorEvaluator:
        return SimulatorEvaluator(
            scenario,
            self.surrogate,
            surrogate_version=self.surrogate_version,
            n_requests=self.n_requests,
            seed=self.seed,
        )
