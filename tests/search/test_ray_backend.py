"""Ray Tune runs the optuna objective on a local Ray and finds the same front."""

from __future__ import annotations

import pytest
from search_testing import SMALL_PINS

from optimizer.search.backends.optuna_backend import OptunaBackend
from optimizer.search.backends.ray_backend import RayTuneBackend
from optimizer.search.candidates import build_candidates
from optimizer.search.fast_evaluator import FastEvaluator
from optimizer.search.objectives import default_objectives
from optimizer.search.pareto import pareto_front
from optimizer.search.problem import SearchProblem

pytestmark = [pytest.mark.ray, pytest.mark.slow]
pytest.importorskip("ray.tune", reason="Ray Tune is an optional dependency (epopt[ray])")


def test_ray_tune_gives_the_same_front_as_optuna_on_a_small_space(surrogate, scenario):
    candidates = build_candidates(
        scenario,
        engines=["vllm"],
        restrictions=FastEvaluator.restrictions,
        pins={
            **SMALL_PINS,
            "spec_method": ("none",),
            "max_batch_size": (16, 64, 256),
            "kv_cache_dtype": ("bf16",),
        },
    ).frame
    assert 10 <= len(candidates) <= 60
    objectives = default_objectives(scenario)

    def problem() -> SearchProblem:
        return SearchProblem(candidates, FastEvaluator(scenario, surrogate), objectives)

    budget = 16
    by_optuna = problem()
    optuna_result = OptunaBackend("tpe", seed=11).search(by_optuna, budget=budget)
    by_ray = problem()
    ray_result = RayTuneBackend("tpe", seed=11, num_cpus=1).search(by_ray, budget=budget)

    assert ray_result.trials == optuna_result.trials
    assert ray_result.evaluations == len(set(ray_result.trials))
    fronts = []
    for result, searched in ((optuna_result, by_optuna), (ray_result, by_ray)):
        evaluated = list(result.evaluated)
        table = candidates.loc[evaluated].join(searched.evaluate(evaluated))
        fronts.append(pareto_front(table, objectives))
    assert len(fronts[0]) > 0
    assert list(fronts[0].index) == list(fronts[1].index)
    cols = [o.column for o in objectives]
    assert (fronts[0][cols].to_numpy() == fronts[1][cols].to_numpy()).all()
