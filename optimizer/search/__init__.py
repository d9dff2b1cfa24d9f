"""Multi-objective search and recommendations: evaluate candidates, search the space,
keep the Pareto front, choose, explain, plan and launch.

Layers (pure computation first, I/O at the edges):

* what is served -- :class:`Scenario`, :class:`RecommendRequest`;
* candidates -- :func:`build_candidates` (every engine's space on every GPU, checked);
* evaluators -- :class:`FastEvaluator` (surrogate latency curves plus analytical
  queueing, vectorised), :class:`SimulatorEvaluator` (the serving simulator in the loop);
* goals -- :data:`OBJECTIVES`, :func:`slo_bounds`, :func:`pareto_front`, :func:`hypervolume`;
* search -- :class:`SearchProblem` and the backends (:class:`ExhaustiveBackend`,
  :class:`~optimizer.search.backends.OptunaBackend`,
  :class:`~optimizer.search.backends.RayTuneBackend`);
* the answer -- :class:`Recommender` -> :class:`Recommendation`;
* I/O -- :func:`load_or_train_surrogate`, :func:`record`, :func:`open_study_storage`.

Example:
    >>> from optimizer.search import Recommender, RecommendRequest      # doctest: +SKIP
    >>> rec = Recommender(surrogate).recommend(RecommendRequest(
    ...     model="meta-llama/Llama-3.1-70B", gpus=("h100_sxm",),
    ...     workload=Workload.simple(2048, 256, rate=5.0),
    ...     slo=SLO.parse("ttft_p95<=2s,tpot_p95<=50ms")))               # doctest: +SKIP
    >>> print(rec.reason)                                               # doctest: +SKIP
"""

from __future__ import annotations

from optimizer.search.audit import LoadedSurrogate, load_or_train_surrogate, record
from optimizer.search.backends import ExhaustiveBackend, SearchBackend, SearchResult
from optimizer.search.candidates import CandidateSet, build_candidates
from optimizer.search.evaluator import (
    CANDIDATE_COLUMNS,
    METRIC_COLUMNS,
    Evaluator,
    EvaluatorFactory,
)
from optimizer.search.explain import Explanation
from optimizer.search.factories import FastEvaluatorFactory, SimulatorEvaluatorFactory
from optimizer.search.fast_evaluator import FastEvaluator
from optimizer.search.objectives import (
    OBJECTIVES,
    Bound,
    Objective,
    default_objectives,
    parse_objectives,
    slo_bounds,
)
from optimizer.search.pareto import Normalizer, hypervolume, pareto_front, pareto_mask
from optimizer.search.problem import SearchProblem
from optimizer.search.recommend import Recommender, choose_best, make_backend
from optimizer.search.request import SEARCHES, RecommendRequest
from optimizer.search.result import DeploymentOption, Pool, Recommendation
from optimizer.search.scenario import Scenario
from optimizer.search.simulated_evaluator import SimulatorEvaluator
from optimizer.search.speculative import SpecDecodingAssumptions
from optimizer.search.study_storage import open_study_storage, study_storage_url

__all__ = [
    "CANDIDATE_COLUMNS",
    "METRIC_COLUMNS",
    "OBJECTIVES",
    "SEARCHES",
    "Bound",
    "CandidateSet",
    "DeploymentOption",
    "Evaluator",
    "EvaluatorFactory",
    "ExhaustiveBackend",
    "Explanation",
    "FastEvaluator",
    "FastEvaluatorFactory",
    "LoadedSurrogate",
    "Normalizer",
    "Objective",
    "Pool",
    "RecommendRequest",
    "Recommendation",
    "Recommender",
    "Scenario",
    "SearchBackend",
    "SearchProblem",
    "SearchResult",
    "SimulatorEvaluator",
    "SimulatorEvaluatorFactory",
    "SpecDecodingAssumptions",
    "build_candidates",
    "choose_best",
    "default_objectives",
    "hypervolume",
    "load_or_train_surrogate",
    "make_backend",
    "open_study_storage",
    "pareto_front",
    "pareto_mask",
    "parse_objectives",
    "record",
    "slo_bounds",
    "study_storage_url",
]
