"""Exhaustive search: evaluate every candidate, in vectorised chunks.

What the fast evaluator is for: it scores tens of thousands of candidates a second,
so the whole space is cheaper to sweep than to sample.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from optimizer.errors import InvalidInputError
from optimizer.search.backends.base import Progress, SearchBackend, SearchResult

if TYPE_CHECKING:
    from optimizer.search.problem import SearchProblem

__all__ = ["ExhaustiveBackend"]


class ExhaustiveBackend(SearchBackend):
    """Evaluates all candidates (``budget`` must be ``None`` or cover them).

    Args:
        chunk: candidates per evaluator call (progress is reported per chunk).
    """

    name: ClassVar[str] = "exhaustive"

    def __init__(self, chunk: int = 16384):
        if chunk < 1:
            raise InvalidInputError("chunk", "must be >= 1")
        self.chunk = chunk

    def search(
        self,
        problem: SearchProblem,
        *,
        budget: int | None = None,
        progress: Progress | None = None,
    ) -> SearchResult:
        if budget is not None and budget < problem.size:
            raise InvalidInputError(
                "trials",
                f"exhaustive search evaluates all {problem.size} candidates; "
                f"use --search optuna for a budget of {budget}",
            )
        before = problem.evaluations
        for start in range(0, problem.size, self.chunk):
            stop = min(start + self.chunk, problem.size)
            problem.evaluate(range(start, stop))
            if progress is not None:
                progress(stop, problem.size)
        return SearchResult(
            backend=self.name,
            trials=tuple(range(problem.size)),
            evaluations=problem.evaluations - before,
        )
