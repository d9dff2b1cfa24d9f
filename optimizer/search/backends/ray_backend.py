"""Ray Tune search: the optuna objective run as Ray Tune trials, locally or on a cluster.

The driver keeps the optuna study (same samplers, constraints, storage and resume as
:mod:`optimizer.search.backends.optuna_backend`) behind a Ray Tune ``Searcher``: each
``suggest`` asks the study for a point and repairs it to a candidate; a Ray worker
evaluates the candidate (the problem, with its evaluator, travels through Ray's object
store); ``on_trial_complete`` records the metrics and tells the study. With one trial
at a time the sequence of trials is exactly the optuna backend's; more concurrent
trials trade that for throughput on a cluster.

Ray starts locally (``ray.init(num_cpus=...)``, no dashboard) unless an address of an
existing cluster is given (``--ray-address``); a Ray runtime this backend started is
shut down when the search ends, one that was already running is left alone.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import TYPE_CHECKING, Any, ClassVar

from optimizer.errors import InvalidInputError
from optimizer.search.backends.base import Progress, SearchBackend, SearchResult
from optimizer.search.backends.optuna_backend import (
    SAMPLERS,
    _distributions,
    make_sampler,
    prepare_study,
    quiet_optuna,
    tell_trial,
    trial_budget,
)

if TYPE_CHECKING:
    import optuna

    from optimizer.search.problem import SearchProblem

__all__ = ["RayTuneBackend"]


def _evaluate_trial(config: dict[str, Any], problem: SearchProblem) -> dict[str, Any]:
    """Ray Tune trainable: evaluate one candidate, return its metrics as JSON.

    The problem arrives read-only from the object store, so the worker calls the
    evaluator directly; the driver caches the result.
    """
    index = int(config["candidate"])
    metrics = problem.evaluator.evaluate(problem.candidates.loc[[index]]).iloc[0]
    return {
        "candidate": index,
        "objective": problem.objective_values(metrics)[0],
        "metrics_json": json.dumps(problem.metrics_record(metrics)),
    }


def _searcher_class() -> type:
    from ray.tune.search import Searcher

    class StudySearcher(Searcher):  # type: ignore[misc]
        """A Ray Tune searcher that asks and tells an optuna study."""

        def __init__(
            self,
            study: optuna.Study,
            problem: SearchProblem,
            trials: int,
            progress: Progress | None,
            done: list[int],
        ):
            first = problem.objectives[0]
            super().__init__(
                metric="objective", mode="min" if first.direction == "minimize" else "max"
            )
            self._study = study
            self._problem = problem
            self._distributions = _distributions(problem)
            self._remaining = trials
            self._total = trials + len(done)
            self._pending: dict[str, tuple[Any, int]] = {}
            self._progress = progress
            self.trials = done

        # Ray's annotation omits the FINISHED marker its docstring allows.
        def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]
            if self._remaining <= 0:
                return Searcher.FINISHED
            self._remaining -= 1
            trial = self._study.ask(self._distributions)
            index = self._problem.repair(trial.params)
            self._pending[trial_id] = (trial, index)
            return {"candidate": index}

        def on_trial_complete(
            self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
        ) -> None:
            import optuna

            trial, index = self._pending.pop(trial_id)
            if error or not result or "metrics_json" not in result:
                self._study.tell(trial, state=optuna.trial.TrialState.FAIL)
                return
            metrics = json.loads(result["metrics_json"])
            self._problem.record(index, metrics)
            tell_trial(
                self._study, trial, self._problem, index, self._problem.evaluate([index]).iloc[0]
            )
            self.trials.append(index)
            if self._progress is not None:
                self._progress(len(self.trials), self._total)

    return StudySearcher


class RayTuneBackend(SearchBackend):
    """Ray Tune trials driven by an optuna study (module docstring).

    Args:
        sampler: ``tpe``, ``nsga2``, ``gp`` or ``random``.
        seed: sampler seed.
        address: an existing Ray cluster (``ray://host:10001`` or ``auto``); ``None``
            starts a local Ray.
        num_cpus: CPUs of a local Ray (``None``: Ray's default, all cores).
        max_concurrent: trials in flight at once (default 1: the optuna sequence).
        storage, study_name, storage_label: as for the optuna backend.
    """

    name: ClassVar[str] = "ray"

    def __init__(
        self,
        sampler: str = "tpe",
        *,
        seed: int | None = 0,
        address: str | None = None,
        num_cpus: int | None = None,
        max_concurrent: int = 1,
        storage: optuna.storages.BaseStorage | None = None,
        study_name: str | None = None,
        storage_label: str | None = None,
    ):
        if sampler not in SAMPLERS:
            raise InvalidInputError("sampler", f"unknown sampler {sampler!r}", SAMPLERS)
        if max_concurrent < 1:
            raise InvalidInputError("max_concurrent", "must be >= 1")
        self.sampler = sampler
        self.seed = seed
        self.address = address
        self.num_cpus = num_cpus
        self.max_concurrent = max_concurrent
        self.storage = storage
        self.study_name = study_name
        self.storage_label = storage_label

    def _init_ray(self) -> bool:
        """Start or join Ray; ``True`` when this call started it."""
        import ray

        if ray.is_initialized():
            return False
        kwargs: dict[str, Any] = {
            "include_dashboard": False,
            "logging_level": "ERROR",
            "log_to_driver": False,
        }
        if self.address is not None:
            kwargs["address"] = self.address
        elif self.num_cpus is not None:
            kwargs["num_cpus"] = self.num_cpus
        try:
            ray.init(**kwargs)
        except ConnectionError as exc:
            raise InvalidInputError("ray_address", f"cannot connect to Ray: {exc}") from exc
        return True

    def search(
        self,
        problem: SearchProblem,
        *,
        budget: int | None = None,
        progress: Progress | None = None,
    ) -> SearchResult:
        budget = trial_budget(problem, budget)
        # Ray Tune's rich console report would interleave with epopt's output.
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        from ray import tune
        from ray.tune.search import ConcurrencyLimiter

        started = self._init_ray()
        try:
            with quiet_optuna(), tempfile.TemporaryDirectory(prefix="epopt-ray-") as scratch:
                sampler = make_sampler(self.sampler, seed=self.seed, budget=budget)
                name = self.study_name
                if name is None and self.storage is not None:
                    name = f"epopt-{self.sampler}-{problem.fingerprint()[:12]}"
                study, done = prepare_study(problem, sampler, storage=self.storage, study_name=name)
                previous = [
                    int(t.user_attrs["candidate"])
                    for t in study.get_trials(deepcopy=False)
                    if "candidate" in t.user_attrs and t.values
                ]
                remaining = max(0, budget - done)
                before = problem.evaluations
                searcher = _searcher_class()(study, problem, remaining, progress, previous)
                if remaining:
                    tuner = tune.Tuner(
                        tune.with_parameters(_evaluate_trial, problem=problem),
                        tune_config=tune.TuneConfig(
                            search_alg=ConcurrencyLimiter(searcher, self.max_concurrent),
                            num_samples=remaining,
                            reuse_actors=True,
                        ),
                        run_config=tune.RunConfig(storage_path=scratch, verbose=0),
                    )
                    tuner.fit()
        finally:
            if started:
                import ray

                ray.shutdown()
        return SearchResult(
            backend=f"{self.name}:{self.sampler}",
            trials=tuple(searcher.trials),
            evaluations=problem.evaluations - before,
            study_name=study.study_name if self.storage is not None else None,
            study_storage=self.storage_label,
            resumed_trials=done,
            details={"ray_address": self.address or "local"},
        )
