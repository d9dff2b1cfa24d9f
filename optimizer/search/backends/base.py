"""The interface every search backend implements, in the style of optuna's samplers.

A backend receives a :class:`~optimizer.search.problem.SearchProblem` and a budget,
proposes candidates, has the problem evaluate them, and returns a
:class:`SearchResult`: which candidates it evaluated, in what order. Choosing a
backend by name happens once, at the edge (:func:`optimizer.search.backends.get_backend`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from optimizer.search.problem import SearchProblem

__all__ = ["Progress", "SearchBackend", "SearchResult"]

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` while a search runs."""


@dataclass(frozen=True)
class SearchResult:
    """What a search evaluated.

    Attributes:
        backend: the backend's name (and sampler).
        trials: candidate index of every trial, in order (repeats when two proposals
            repair to the same candidate).
        evaluations: distinct candidates the evaluator scored during this search.
        study_name: the optuna study, when the backend keeps one.
        study_storage: where the study is stored (URL with the password masked), if
            not in memory.
        resumed_trials: trials found in the stored study before this run.
    """

    backend: str
    trials: tuple[int, ...]
    evaluations: int
    study_name: str | None = None
    study_storage: str | None = None
    resumed_trials: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def evaluated(self) -> tuple[int, ...]:
        """Distinct candidate indices, in the order first proposed."""
        return tuple(dict.fromkeys(self.trials))


class SearchBackend(ABC):
    """Searches a problem's candidates for its Pareto front."""

    name: ClassVar[str]

    @abstractmethod
    def search(
        self,
        problem: SearchProblem,
        *,
        budget: int | None = None,
        progress: Progress | None = None,
    ) -> SearchResult:
        """Evaluate candidates of ``problem``, at most ``budget`` trials.

        Args:
            problem: candidates, evaluator and objectives.
            budget: trials to run (``None``: the backend's default).
            progress: called as trials complete.
        """
