"""optuna multi-objective search: NSGA-II, TPE, GP or random sampling, with constraints.

Each trial asks optuna for a point of the knob domains, repairs it to the nearest
feasible candidate (:meth:`SearchProblem.repair`), evaluates that candidate, records
every SLO bound as a constraint (``trial.set_constraint``: <= 0 holds, optuna 5's
interface; all four samplers rank infeasible trials behind feasible ones) and tells
optuna the objective values. The trial keeps the candidate it scored and its metrics
as user attributes, so ``optuna-dashboard`` shows what was evaluated and an
interrupted study resumes without re-evaluating (:func:`prepare_study`).

A stored study remembers the problem it searches (a fingerprint of the scenario,
objectives and space); resuming it with another problem is refused.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from optimizer.errors import InvalidInputError
from optimizer.search.backends.base import Progress, SearchBackend, SearchResult

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from optimizer.search.problem import SearchProblem

__all__ = [
    "SAMPLERS",
    "OptunaBackend",
    "default_budget",
    "make_sampler",
    "prepare_study",
    "quiet_optuna",
    "tell_trial",
    "trial_budget",
]

SAMPLERS: tuple[str, ...] = ("tpe", "nsga2", "gp", "random")
"""Sampler names: multi-objective TPE (MOTPE), NSGA-II, Gaussian process (needs
PyTorch), uniform random (the baseline)."""

_FINGERPRINT = "epopt_problem"


def default_budget(problem: SearchProblem) -> int:
    """Trials when none are given: 10 % of the candidates, at least 50 (at most all)."""
    return min(problem.size, max(50, math.ceil(0.1 * problem.size)))


def trial_budget(problem: SearchProblem, budget: int | None) -> int:
    """``budget``, or :func:`default_budget` when it is ``None``.

    Raises:
        InvalidInputError: a budget below one trial.
    """
    budget = default_budget(problem) if budget is None else budget
    if budget < 1:
        raise InvalidInputError("trials", f"must be >= 1, got {budget}")
    return budget


def make_sampler(name: str, *, seed: int | None, budget: int) -> optuna.samplers.BaseSampler:
    """The optuna sampler called ``name``, seeded.

    Raises:
        InvalidInputError: an unknown name, or ``gp`` without PyTorch installed.
    """
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=max(10, budget // 10), multivariate=True
        )
    if name == "nsga2":
        population = max(10, min(50, budget // 8))
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=population)
    if name == "gp":
        try:
            import torch  # noqa: F401
        except ImportError as exc:
            raise InvalidInputError(
                "sampler", "the GP sampler needs PyTorch (pip install torch)", SAMPLERS
            ) from exc
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=max(10, budget // 10))
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise InvalidInputError("sampler", f"unknown sampler {name!r}", SAMPLERS)


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Silence optuna's per-trial INFO log for the duration (restored after)."""
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def _distributions(problem: SearchProblem) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution

    return {k: CategoricalDistribution(list(v)) for k, v in problem.domains.items()}


def prepare_study(
    problem: SearchProblem,
    sampler: optuna.samplers.BaseSampler,
    *,
    storage: optuna.storages.BaseStorage | None,
    study_name: str | None,
) -> tuple[optuna.Study, int]:
    """Create or resume a study for ``problem``; restore what its trials evaluated.

    Trials a crashed run left running are marked failed; completed trials' metrics are
    recorded in ``problem`` (not re-evaluated).

    Returns:
        The study and the number of completed trials it already holds.

    Raises:
        InvalidInputError: the stored study searches another problem.
    """
    import optuna

    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        sampler=sampler,
        directions=[o.direction for o in problem.objectives],
        load_if_exists=True,
    )
    fingerprint = problem.fingerprint()
    stored = study.user_attrs.get(_FINGERPRINT)
    if stored is None:
        study.set_user_attr(_FINGERPRINT, fingerprint)
        study.set_user_attr("objectives", [o.name for o in problem.objectives])
    elif stored != fingerprint:
        raise InvalidInputError(
            "study",
            f"study {study.study_name!r} searches another problem "
            "(model, GPUs, workload, SLO, objectives or space differ); choose another name",
        )
    done = 0
    for trial in study.get_trials(deepcopy=False):
        if trial.state == optuna.trial.TrialState.RUNNING:
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        elif trial.state == optuna.trial.TrialState.COMPLETE:
            done += 1
            index = trial.user_attrs.get("candidate")
            metrics = trial.user_attrs.get("metrics")
            if index is not None and metrics is not None:
                problem.record(int(index), metrics)
    return study, done


def tell_trial(
    study: optuna.Study, trial: optuna.Trial, problem: SearchProblem, index: int, metrics: pd.Series
) -> None:
    """Record the candidate, its metrics and constraints on ``trial`` and complete it."""
    for name, value in problem.constraint_values(metrics).items():
        trial.set_constraint(name, value)
    trial.set_user_attr("candidate", int(index))
    trial.set_user_attr("config", problem.params_of(index))
    trial.set_user_attr("metrics", problem.metrics_record(metrics))
    study.tell(trial, problem.objective_values(metrics))


class OptunaBackend(SearchBackend):
    """Multi-objective optuna search with SLO constraints (module docstring).

    Args:
        sampler: ``tpe``, ``nsga2``, ``gp`` or ``random``.
        seed: sampler seed.
        storage: optuna storage (``None``: in memory); see
            :func:`optimizer.search.study_storage.open_study_storage`.
        study_name: name to create or resume (``None``: derived from the problem).
        storage_label: how to show the storage in results (URL, password masked).
    """

    name: ClassVar[str] = "optuna"

    def __init__(
        self,
        sampler: str = "tpe",
        *,
        seed: int | None = 0,
        storage: optuna.storages.BaseStorage | None = None,
        study_name: str | None = None,
        storage_label: str | None = None,
    ):
        if sampler not in SAMPLERS:
            raise InvalidInputError("sampler", f"unknown sampler {sampler!r}", SAMPLERS)
        self.sampler = sampler
        self.seed = seed
        self.storage = storage
        self.study_name = study_name
        self.storage_label = storage_label

    def study_name_for(self, problem: SearchProblem) -> str | None:
        """The given name, or ``epopt-<sampler>-<fingerprint>`` when stored."""
        if self.study_name or self.storage is None:
            return self.study_name
        return f"epopt-{self.sampler}-{problem.fingerprint()[:12]}"

    def search(
        self,
        problem: SearchProblem,
        *,
        budget: int | None = None,
        progress: Progress | None = None,
    ) -> SearchResult:
        budget = trial_budget(problem, budget)
        with quiet_optuna():
            sampler = make_sampler(self.sampler, seed=self.seed, budget=budget)
            study, done = prepare_study(
                problem, sampler, storage=self.storage, study_name=self.study_name_for(problem)
            )
            distributions = _distributions(problem)
            before = problem.evaluations
            trials = [
                int(t.user_attrs["candidate"])
                for t in study.get_trials(deepcopy=False)
                if "candidate" in t.user_attrs and t.state.is_finished() and t.values
            ]
            for _ in range(max(0, budget - done)):
                trial = study.ask(distributions)
                index = problem.repair(trial.params)
                metrics = problem.evaluate([index]).iloc[0]
                tell_trial(study, trial, problem, index, metrics)
                trials.append(index)
                if progress is not None:
                    progress(len(trials), budget)
        return SearchResult(
            backend=f"{self.name}:{self.sampler}",
            trials=tuple(trials),
            evaluations=problem.evaluations - before,
            study_name=study.study_name if self.storage is not None else None,
            study_storage=self.storage_label,
            resumed_trials=done,
        )
