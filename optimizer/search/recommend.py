"""The recommender: a request in, a :class:`~optimizer.search.result.Recommendation` out.

Steps: resolve the model and GPUs into a :class:`Scenario`; enumerate the feasible
candidates of every engine on every GPU; search them with the chosen backend and
evaluator; keep the verified Pareto front of the SLO-feasible ones; choose (by default
the cheapest meeting the SLO; ties go to lower latency, then engine defaults); list
runners-up and the best per GPU; price the alternatives to one shared pool (two pools
by prompt length, one pool per tenant) and keep the cheapest; plan capacity and write
the launch command for each pool; explain an SLO nothing meets.

A :class:`Recommender` holds the surrogate and the caches that make a second
recommendation in the same process fast (latency curves per model, GPU and lengths).
Nothing here reads or writes files or the database: loading the surrogate and
storing the audit record happen at the edges (:mod:`optimizer.search.audit`).

Example:
    >>> recommender = Recommender(surrogate, surrogate_version="v1")   # doctest: +SKIP
    >>> rec = recommender.recommend(RecommendRequest(model=..., gpus=("h100_sxm",),
    ...     workload=Workload.simple(2048, 256, rate=5.0),
    ...     slo=SLO.parse("ttft_p95<=2s,tpot_p95<=50ms")))               # doctest: +SKIP
    >>> rec.chosen[["engine", "tp", "quantization", "usd_per_mtok"]]    # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from optimizer.catalog import get_gpu, load_model_spec
from optimizer.domain.gpu import GPUSpec
from optimizer.errors import EpoptError, InvalidInputError
from optimizer.launch import DRAFT_MODEL_METHODS
from optimizer.search.backends.base import Progress, SearchBackend, SearchResult
from optimizer.search.backends.exhaustive import ExhaustiveBackend
from optimizer.search.candidates import CandidateSet, build_candidates
from optimizer.search.deployment import PoolDeployment, deploy
from optimizer.search.evaluator import Evaluator, EvaluatorFactory
from optimizer.search.explain import (
    LAYOUT,
    explain_infeasible,
    memory_note,
    reason_paragraph,
)
from optimizer.search.factories import FastEvaluatorFactory
from optimizer.search.objectives import (
    OBJECTIVES,
    Objective,
    default_objectives,
    parse_objectives,
    slo_bounds,
)
from optimizer.search.pareto import pareto_front, round_significant
from optimizer.search.pools import PoolSpec, split_by_length, split_by_tenant
from optimizer.search.problem import SearchProblem
from optimizer.search.request import RecommendRequest
from optimizer.search.result import DeploymentOption, Pool, Recommendation
from optimizer.search.scenario import Scenario

if TYPE_CHECKING:
    import optuna

    from optimizer.capacity import ColdStartAssumptions
    from optimizer.settings import Settings
    from optimizer.surrogate import Surrogate

__all__ = ["Recommender", "choose_best", "make_backend"]


def make_backend(
    request: RecommendRequest,
    *,
    storage: optuna.storages.BaseStorage | None = None,
    storage_label: str | None = None,
) -> SearchBackend:
    """The backend a request names (the only place names become backend objects)."""
    if request.search == "exhaustive":
        return ExhaustiveBackend()
    if request.search == "optuna":
        from optimizer.search.backends.optuna_backend import OptunaBackend

        return OptunaBackend(
            request.sampler,
            seed=request.seed,
            storage=storage,
            study_name=request.study_name,
            storage_label=storage_label,
        )
    from optimizer.search.backends.ray_backend import RayTuneBackend

    return RayTuneBackend(
        request.sampler,
        seed=request.seed,
        address=request.ray_address,
        storage=storage,
        study_name=request.study_name,
        storage_label=storage_label,
    )


def choose_best(
    frame: pd.DataFrame, choose: Objective, objectives: tuple[Objective, ...]
) -> pd.DataFrame:
    """SLO-feasible rows ordered best first by ``choose``, then the other objectives,
    then the candidate order (engine defaults first); values compared as the Pareto
    front compares them (:data:`~optimizer.search.pareto.SIGNIFICANT_DIGITS`)."""
    feasible = frame[frame["slo_feasible"].astype(bool)]
    keys = [choose, *[o for o in objectives if o.name != choose.name]]
    if all(o.name != "tpot_p95" for o in keys):
        keys.append(OBJECTIVES["tpot_p95"])
    ordered = feasible.assign(
        **{
            f"_key{i}": round_significant(feasible[o.column].to_numpy(np.float64) * o.sign)
            for i, o in enumerate(keys)
        },
        _index=feasible.index,
    )
    ordered = ordered.sort_values(
        [f"_key{i}" for i in range(len(keys))] + ["_index"], kind="stable"
    )
    return ordered.drop(columns=[f"_key{i}" for i in range(len(keys))] + ["_index"])


def _excluded(request: RecommendRequest) -> dict[str, tuple[str, ...]]:
    """Speculative methods that need drafter weights, unless the request names them."""
    if request.speculative_model is not None or "spec_method" in request.pins:
        return {}
    return {"spec_method": tuple(sorted(m.value for m in DRAFT_MODEL_METHODS))}


def _planned(scenario: Scenario) -> str:
    if scenario.closed_loop:
        return f"{scenario.concurrency} concurrent clients"
    return f"{scenario.planning_rate:g} req/s"


class Recommender:
    """Makes recommendations with one surrogate (module docstring).

    Args:
        surrogate: a fitted surrogate (``None`` only with a custom ``evaluator_factory``).
        surrogate_version: the stored version it came from, recorded with every result.
        settings: price overrides for the GPU catalog.
        evaluator_factory: builds the evaluator per scenario (default: the fast
            evaluator on ``surrogate``).
        study_storage: optuna storage for optuna and Ray searches (``None``: memory).
        study_storage_label: how to show the storage (URL with the password masked).
        cold_start: cold-start assumptions for capacity plans.
        gpus: GPU specs by id that extend or override the catalog (hypothetical GPUs).
    """

    def __init__(
        self,
        surrogate: Surrogate | None,
        *,
        surrogate_version: str | None = None,
        settings: Settings | None = None,
        evaluator_factory: EvaluatorFactory | None = None,
        study_storage: optuna.storages.BaseStorage | None = None,
        study_storage_label: str | None = None,
        cold_start: ColdStartAssumptions | None = None,
        gpus: Mapping[str, GPUSpec] | None = None,
    ):
        if surrogate is None and evaluator_factory is None:
            raise InvalidInputError("surrogate", "give a surrogate or an evaluator_factory")
        self.surrogate = surrogate
        self.surrogate_version = surrogate_version
        self.settings = settings
        self.study_storage = study_storage
        self.study_storage_label = study_storage_label
        self.cold_start = cold_start
        self.gpus = dict(gpus or {})
        if evaluator_factory is None:
            assert surrogate is not None
            evaluator_factory = FastEvaluatorFactory(surrogate, surrogate_version=surrogate_version)
        self._evaluators: EvaluatorFactory = evaluator_factory

    # --- one scenario -----------------------------------------------------------------
    def _search(
        self,
        scenario: Scenario,
        request: RecommendRequest,
        objectives: tuple[Objective, ...],
        backend: SearchBackend,
        progress: Progress | None,
    ) -> tuple[CandidateSet, pd.DataFrame, SearchResult, Evaluator | None]:
        candidates = build_candidates(
            scenario,
            engines=[e.value for e in request.engines],
            restrictions=self._evaluators.restrictions,
            pins=request.pins,
            exclude=_excluded(request),
        )
        if candidates.frame.empty:
            empty = SearchResult(backend=backend.name, trials=(), evaluations=0)
            return candidates, candidates.frame, empty, None
        evaluator = self._evaluators(scenario, candidates.frame)
        problem = SearchProblem(candidates.frame, evaluator, objectives)
        budget = None if isinstance(backend, ExhaustiveBackend) else request.trials
        result = backend.search(problem, budget=budget, progress=progress)
        evaluated = list(result.evaluated)
        metrics = problem.evaluate(evaluated)
        table = candidates.frame.loc[evaluated].join(metrics)
        return candidates, table, result, evaluator

    def _cheapest_pool(
        self,
        scenario: Scenario,
        request: RecommendRequest,
        objectives: tuple[Objective, ...],
        choose: Objective,
        spec: PoolSpec,
        notes: list[str],
    ) -> Pool:
        pool_scenario = dataclasses.replace(scenario, workload=spec.workload)
        _, table, _, _ = self._search(pool_scenario, request, objectives, ExhaustiveBackend(), None)
        ranked = choose_best(table, choose, objectives) if not table.empty else table
        if ranked.empty:
            return Pool(spec, None)
        best = ranked.iloc[0]
        return Pool(spec, best, self._deploy(best, pool_scenario, request, notes))

    def _deploy(
        self, row: pd.Series, scenario: Scenario, request: RecommendRequest, notes: list[str]
    ) -> PoolDeployment | None:
        """Capacity plan and launch command; a configuration the launch builders refuse
        is still recommended, with the reason in ``notes``."""
        try:
            return deploy(
                row,
                scenario,
                cold_start=self.cold_start,
                speculative_model=request.speculative_model,
            )
        except EpoptError as exc:
            notes.append(f"no launch command for {row['engine']} TP{row['tp']}: {exc}")
            return None

    # --- the request ------------------------------------------------------------------
    def scenario(self, request: RecommendRequest) -> Scenario:
        """Resolve the request's model and GPUs (prices overridden) into a scenario."""
        model = load_model_spec(request.model)
        gpus = tuple(
            dict.fromkeys(self.gpus.get(g) or get_gpu(g, self.settings) for g in request.gpus)
        )
        return Scenario(
            model,
            gpus,
            request.workload,
            request.slo,
            confidence=request.confidence,
            max_batch_utilization=request.max_batch_utilization,
            headroom=request.headroom,
        )

    def recommend(
        self, request: RecommendRequest, *, progress: Progress | None = None
    ) -> Recommendation:
        """Search, choose, compare deployments, plan capacity (module docstring).

        Raises:
            EpoptError: an unknown model or GPU, a GPU without a price, bad pins, or a
                stored study of another problem.
        """
        started = time.perf_counter()
        scenario = self.scenario(request)
        objectives = (
            parse_objectives(request.objectives)
            if request.objectives
            else default_objectives(scenario)
        )
        choose = OBJECTIVES[request.choose]
        bounds = tuple(slo_bounds(scenario))
        backend = make_backend(
            request, storage=self.study_storage, storage_label=self.study_storage_label
        )
        candidates, table, result, evaluator = self._search(
            scenario, request, objectives, backend, progress
        )
        notes = []
        if "pp" in self._evaluators.restrictions:
            notes.append(
                "pipeline parallelism is not modelled by the evaluator: searched only pp = "
                + ", ".join(map(str, self._evaluators.restrictions["pp"]))
            )
        if _excluded(request):
            notes.append(
                "EAGLE, EAGLE-3 and draft-model speculative decoding need drafter weights and "
                "are not searched; name them with --speculative-model to include them"
            )
        front = pareto_front(table, objectives) if not table.empty else table
        ranked = choose_best(table, choose, objectives) if not table.empty else table
        chosen = ranked.iloc[0] if not ranked.empty else None
        runners_up = ranked.drop_duplicates(list(LAYOUT)).iloc[1 : 1 + request.runners_up]
        by_gpu = ranked.drop_duplicates(["gpu"]) if not ranked.empty else ranked
        options: list[DeploymentOption] = []
        deployment: DeploymentOption | None = None
        if chosen is not None:
            shared = Pool(
                PoolSpec("shared", 1.0, scenario.workload, "all requests"),
                chosen,
                self._deploy(chosen, scenario, request, notes),
            )
            options.append(DeploymentOption("shared", "one pool serves all requests", (shared,)))
        if request.compare_pools:
            options += self._pool_options(scenario, request, objectives, choose, notes)
        feasible_options = [o for o in options if o.feasible]
        if feasible_options:
            deployment = min(feasible_options, key=lambda o: o.usd_per_hour)
        explanation = None
        if chosen is None:
            explanation = explain_infeasible(table, bounds, candidates.summaries)
            reason = explanation.text
            if deployment is not None:
                reason += (
                    f" Separate pools do meet it: {deployment.description}, "
                    f"${deployment.usd_per_hour:.2f}/hour."
                )
        else:
            cheaper = table[
                ~table["slo_feasible"].astype(bool)
                & (table["usd_per_mtok"] < chosen["usd_per_mtok"])
            ].sort_values("usd_per_mtok", ascending=False)
            reason = reason_paragraph(
                chosen,
                table[table["slo_feasible"].astype(bool)],
                bounds=bounds,
                choose=choose,
                total_candidates=len(candidates.frame),
                planned=_planned(scenario),
                cheaper_misses=cheaper,
            )
            note = memory_note(candidates.summaries)
            if note:
                reason += f" Memory: {note}."
            if deployment is not None and deployment.kind != "shared":
                saving = 1.0 - deployment.usd_per_hour / options[0].usd_per_hour
                reason += (
                    f" Cheaper still: {deployment.description}, "
                    f"${deployment.usd_per_hour:.2f}/hour ({saving:.0%} less than one pool)."
                )
        provenance = evaluator.provenance() if evaluator is not None else {}
        provenance.setdefault("surrogate_version", self.surrogate_version)
        return Recommendation(
            request=request,
            scenario=scenario,
            objectives=objectives,
            choose=choose,
            bounds=bounds,
            candidates=table,
            front=front,
            chosen=chosen,
            reason=reason,
            runners_up=runners_up,
            by_gpu=by_gpu,
            options=tuple(options),
            deployment=deployment,
            explanation=explanation,
            search=result,
            space=candidates.summaries,
            provenance=provenance,
            seconds=time.perf_counter() - started,
            notes=tuple(notes),
        )

    def _pool_options(
        self,
        scenario: Scenario,
        request: RecommendRequest,
        objectives: tuple[Objective, ...],
        choose: Objective,
        notes: list[str],
    ) -> list[DeploymentOption]:
        options = []
        workload = scenario.workload
        try:
            if len(workload.tenants) > 1:
                pools = tuple(
                    self._cheapest_pool(scenario, request, objectives, choose, spec, notes)
                    for spec in split_by_tenant(workload)
                )
                options.append(DeploymentOption("by_tenant", "one pool per tenant class", pools))
            for threshold, specs in split_by_length(workload):
                pools = tuple(
                    self._cheapest_pool(scenario, request, objectives, choose, spec, notes)
                    for spec in specs
                )
                options.append(
                    DeploymentOption(
                        "by_length",
                        f"two pools split at {threshold:.0f} prompt tokens",
                        pools,
                    )
                )
        except EpoptError as exc:
            notes.append(f"pools not compared: {exc}")
        return options
