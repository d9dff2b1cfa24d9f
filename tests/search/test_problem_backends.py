"""Search problems (repair, caching) and the exhaustive and optuna backends, including
constraints on trials and resuming a stored study."""

from __future__ import annotations

import numpy as np
import pytest
from search_testing import SMALL_PINS

from optimizer.errors import InvalidInputError
from optimizer.search.backends.exhaustive import ExhaustiveBackend
from optimizer.search.backends.optuna_backend import OptunaBackend, make_sampler
from optimizer.search.candidates import build_candidates
from optimizer.search.fast_evaluator import FastEvaluator
from optimizer.search.objectives import default_objectives
from optimizer.search.problem import SearchProblem
from optimizer.search.study_storage import open_study_storage, study_storage_url
from optimizer.storage import count_profile_runs, current_revision, head_revision, open_database


@pytest.fixture(scope="module")
def candidates(scenario):
    return build_candidates(
        scenario,
        engines=["vllm", "sglang"],
        restrictions=FastEvaluator.restrictions,
        pins={**SMALL_PINS, "spec_method": ("none", "ngram"), "max_batch_size": (16, 64, 256)},
    ).frame


@pytest.fixture(scope="module")
def metrics(surrogate, scenario, candidates):
    return FastEvaluator(scenario, surrogate).evaluate(candidates)


def _problem(surrogate, scenario, candidates, metrics=None):
    evaluator = FastEvaluator(scenario, surrogate)
    return SearchProblem(candidates, evaluator, default_objectives(scenario), precomputed=metrics)


def test_repair_returns_exact_matches_and_nearest_candidates(surrogate, scenario, candidates):
    problem = _problem(surrogate, scenario, candidates)
    for index in (0, len(candidates) // 2, len(candidates) - 1):
        assert problem.repair(problem.params_of(index)) == index
    # TP8 with bf16 and sglang may not exist; whatever comes back is a candidate nearest
    # in the knobs that were given.
    params = {"engine": "sglang", "tp": max(problem.domains["tp"]), "max_batch_size": 16}
    chosen = problem.repair(params)
    row = candidates.iloc[chosen]
    assert str(row["engine"]) == "sglang" and row["max_batch_size"] == 16
    with pytest.raises(InvalidInputError, match="tp"):
        problem.repair({"tp": 3})


def test_evaluations_are_cached_and_counted(surrogate, scenario, candidates, metrics):
    problem = _problem(surrogate, scenario, candidates)
    first = problem.evaluate([3, 5, 3])
    assert problem.evaluations == 2
    assert list(first.index) == [3, 5, 3]
    problem.evaluate([5])
    assert problem.evaluations == 2
    assert first.loc[5, "usd_per_mtok"] == pytest.approx(metrics.loc[5, "usd_per_mtok"])
    precomputed = _problem(surrogate, scenario, candidates, metrics)
    precomputed.evaluate(range(10))
    assert precomputed.evaluations == 0


def test_exhaustive_evaluates_everything_once(surrogate, scenario, candidates):
    problem = _problem(surrogate, scenario, candidates)
    done = []
    result = ExhaustiveBackend(chunk=100).search(problem, progress=lambda d, t: done.append((d, t)))
    assert result.evaluated == tuple(range(len(candidates)))
    assert result.evaluations == len(candidates)
    assert done[-1] == (len(candidates), len(candidates))
    with pytest.raises(InvalidInputError, match="exhaustive"):
        ExhaustiveBackend().search(problem, budget=5)


@pytest.mark.parametrize("sampler", ["tpe", "nsga2", "random"])
def test_optuna_trials_stay_in_the_space_and_record_constraints(
    surrogate, scenario, candidates, metrics, sampler
):
    import optuna

    problem = _problem(surrogate, scenario, candidates, metrics)
    backend = OptunaBackend(sampler, seed=1)
    result = backend.search(problem, budget=25)
    assert len(result.trials) == 25
    assert all(0 <= i < len(candidates) for i in result.trials)
    storage = optuna.storages.InMemoryStorage()
    problem = _problem(surrogate, scenario, candidates, metrics)
    OptunaBackend(sampler, seed=1, storage=storage, study_name="s").search(problem, budget=8)
    study = optuna.load_study(study_name="s", storage=storage)
    trial = study.trials[0]
    index = trial.user_attrs["candidate"]
    assert set(trial.constraints) == {"ttft_p95", "tpot_p95"}
    assert trial.constraints["ttft_p95"] == pytest.approx(metrics.loc[index, "violation_ttft_p95"])
    assert trial.values[0] == pytest.approx(metrics.loc[index, "usd_per_mtok"])


def test_same_seed_same_trials(surrogate, scenario, candidates, metrics):
    runs = [
        OptunaBackend("tpe", seed=7).search(
            _problem(surrogate, scenario, candidates, metrics), budget=30
        )
        for _ in range(2)
    ]
    assert runs[0].trials == runs[1].trials


def test_a_stored_study_resumes_without_re_evaluating(tmp_path, surrogate, scenario, candidates):
    url = f"sqlite:///{tmp_path / 'epopt.sqlite3'}"
    open_database(url, auto_upgrade=True)
    storage = open_study_storage(url)
    first = OptunaBackend("tpe", seed=3, storage=storage, study_name="resume")
    problem = _problem(surrogate, scenario, candidates)
    head = first.search(problem, budget=10)
    assert head.resumed_trials == 0
    again = _problem(surrogate, scenario, candidates)
    rest = OptunaBackend("tpe", seed=3, storage=open_study_storage(url), study_name="resume")
    result = rest.search(again, budget=15)
    assert result.resumed_trials == 10
    assert len(result.trials) == 15
    assert result.trials[:10] == head.trials
    # The first ten came back from the trials' stored metrics, not the evaluator.
    new = len(set(result.trials) - set(head.trials))
    assert result.evaluations == new
    assert again.evaluations == len(set(head.trials)) + new
    # optuna's tables live beside epopt's in the same database, each with its own
    # schema revision
    assert study_storage_url(url) == url
    assert count_profile_runs(open_database(url)) == 0
    assert current_revision(url) == head_revision()


def test_a_study_of_another_problem_is_refused(tmp_path, surrogate, scenario, candidates):
    import dataclasses

    from optimizer.domain import SLO

    url = f"sqlite:///{tmp_path / 'e.sqlite3'}"
    problem = _problem(surrogate, scenario, candidates)
    OptunaBackend("random", storage=open_study_storage(url), study_name="x").search(
        problem, budget=3
    )
    other = dataclasses.replace(scenario, slo=SLO.parse("ttft_p95<=3s"))
    with pytest.raises(InvalidInputError, match="another problem"):
        OptunaBackend("random", storage=open_study_storage(url), study_name="x").search(
            _problem(surrogate, other, candidates), budget=3
        )


def test_sampler_names_are_checked():
    with pytest.raises(InvalidInputError, match="allowed: tpe"):
        OptunaBackend("cmaes")
    try:
        import torch  # noqa: F401
    except ImportError:
        with pytest.raises(InvalidInputError, match="PyTorch"):
            make_sampler("gp", seed=0, budget=10)
    else:
        assert make_sampler("gp", seed=0, budget=10) is not None


def test_hypervolume_of_an_optuna_search_approaches_the_exhaustive_front(
    surrogate, scenario, candidates, metrics
):
    from optimizer.search.objectives import objective_matrix
    from optimizer.search.pareto import Normalizer, hypervolume, pareto_mask

    objectives = default_objectives(scenario)
    feasible = metrics[metrics["slo_feasible"]]
    points = objective_matrix(feasible, objectives)
    front = points[pareto_mask(points)]
    normalizer = Normalizer.fit(front)
    reference = hypervolume(front, normalizer)
    problem = _problem(surrogate, scenario, candidates, metrics)
    result = OptunaBackend("tpe", seed=0).search(problem, budget=len(candidates) // 3)
    found = metrics.loc[list(result.evaluated)]
    found = found[found["slo_feasible"]]
    assert hypervolume(objective_matrix(found, objectives), normalizer) >= 0.8 * reference
    assert np.isfinite(reference) and reference > 0
