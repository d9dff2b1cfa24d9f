"""Kernel-library lookups planned first and timed later, many plans at once.

A step (or a closed-loop estimate built from steps) is a handful of calls to a
:class:`~optimizer.perf.KernelLibrary` followed by arithmetic on their answers. A
:class:`Plan` holds the two apart: the calls as :class:`OperatorQuery` values, and a
function finishing the arithmetic once they are timed. :func:`evaluate` then times the
queries of many plans sharing a library -- the (model, format, KV dtype) groups of one
GPU and engine in a batch of configurations -- with one library call per operator.

Why: every library call pays a fixed cost (argument checks, key lookups, interpolator
set-up) of about a millisecond on top of its per-point cost, and a 10,000-row batch of
68 groups made 440 such calls, most of the surrogate's predict time. Each operator
answers every point independently of the others in its call, so the batched answers
equal the one-by-one ones exactly.

Points whose answer is multiplied by zero (the context attention of a step without
prefills, an all-reduce that is not taken) are marked as not needed and not looked up
at all: they are answered with 0. Attention points repeated within a batch are looked
up once (:data:`REPEATING_OPERATORS`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

if TYPE_CHECKING:  # pragma: no cover - the library imports operators, not queries
    from optimizer.perf.library import KernelLibrary

__all__ = [
    "REPEATING_OPERATORS",
    "OperatorQuery",
    "Plan",
    "distinct_rows",
    "evaluate",
    "time_queries",
]

T = TypeVar("T")

REPEATING_OPERATORS: frozenset[str] = frozenset(
    {"context_attention", "generation_attention", "context_mla", "generation_mla"}
)
"""Operators whose repeated points are looked up once. Attention points repeat (the two
decode steps of a closed-loop estimate run the same decode attention; prefills of a few
requests of one prompt length recur across concurrencies: about half of them in a
10,000-row batch) and cost ~3 us each (six-axis interpolation); GEMM, MoE and
all-reduce points are nearly all distinct, and hashing them would cost more than it saves."""


@dataclass(frozen=True)
class OperatorQuery:
    """One vectorised call of a :class:`~optimizer.perf.KernelLibrary` operator.

    Attributes:
        operator: the library method, e.g. ``"gemm"`` or ``"generation_attention"``.
        args: its positional arguments (numpy-broadcastable arrays or scalars).
        needed: where the answer is used (broadcastable to the arguments' shape);
            ``None`` for everywhere. Elsewhere the answer is 0 without a lookup.
    """

    operator: str
    args: tuple[ArrayLike, ...]
    needed: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        """The broadcast shape of the arguments: the shape of the answer."""
        return np.broadcast(*self.args).shape  # 7x cheaper than np.broadcast_shapes


@dataclass(frozen=True)
class Plan(Generic[T]):
    """Library queries and the function turning their answers into a result.

    Attributes:
        queries: the lookups the result needs.
        finish: maps their answers (one array per query, in order) to the result.
    """

    queries: tuple[OperatorQuery, ...]
    finish: Callable[[Sequence[np.ndarray]], T]


def _column(
    values: list[ArrayLike], shapes: list[tuple[int, ...]], masks: list[np.ndarray | None]
) -> ArrayLike:
    """One argument of several queries as one flat array of their needed points (or the
    shared scalar when every query passes the same one)."""
    if all(np.ndim(v) == 0 for v in values) and all(v == values[0] for v in values[1:]):
        return values[0]
    parts = []
    for value, shape, mask in zip(values, shapes, masks, strict=True):
        array = np.asarray(value)
        if array.dtype.kind in "US":  # strings join as objects, as the library wants them
            array = array.astype(object)
        flat = array.reshape(-1) if array.shape == shape else np.broadcast_to(array, shape).ravel()
        parts.append(flat if mask is None else flat[mask])
    return np.concatenate(parts)


_MAX_RADIX = 2**62
"""Largest number of code combinations :func:`distinct_rows` folds into one int64."""


def distinct_rows(columns: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of equal-length columns, by hashing (no sort).

    Columns are factorised one by one, their codes folded into one integer per row
    (renumbered only when the combinations could overflow it), and those integers
    factorised once: O(rows) where ``np.unique(axis=0)`` sorts the rows as raw bytes.

    Args:
        columns: at least one 1-D array, all of one length.

    Returns:
        For each distinct row, the index of a row holding it (distinct rows in order of
        first appearance); for each row, the position of its distinct row.

    Example:
        >>> rows, inverse = distinct_rows([np.array([1, 2, 1]), np.array([5.0, 6.0, 5.0])])
        >>> len(rows), inverse.tolist()
        (2, [0, 1, 0])
    """
    n = len(columns[0])
    combined = np.zeros(n, dtype=np.int64)
    radix = 1  # combined < radix
    for column in columns:
        codes, uniques = pd.factorize(column, use_na_sentinel=False)
        if radix * len(uniques) > _MAX_RADIX:  # renumber before the codes could overflow
            combined, distinct = pd.factorize(combined)
            radix = len(distinct)
        combined = combined * len(uniques) + codes
        radix *= len(uniques)
    combined, _ = pd.factorize(combined)
    # any row of a code stands for all of them: they are equal
    representative = np.empty(int(combined.max(initial=-1)) + 1, dtype=np.int64)
    representative[combined] = np.arange(n)
    return representative, combined


def _distinct_points(columns: list[ArrayLike], n: int) -> tuple[list[ArrayLike], np.ndarray]:
    """The distinct points of ``n`` points' argument columns (flat arrays, or scalars
    shared by all points), and each point's position among them (see
    :data:`REPEATING_OPERATORS` for why)."""
    arrays = [np.asarray(c) for c in columns if np.ndim(c) > 0]
    if not arrays:  # every point is the same
        return columns, np.zeros(n, dtype=np.int64)
    representative, inverse = distinct_rows(arrays)
    if len(representative) == n:
        return columns, np.arange(n)
    return [np.asarray(c)[representative] if np.ndim(c) > 0 else c for c in columns], inverse


def time_queries(library: KernelLibrary, queries: Sequence[OperatorQuery]) -> list[np.ndarray]:
    """Answer every query, with one library call per operator.

    Args:
        library: the kernel library to time the queries on.
        queries: the lookups; queries of one operator must pass the same number of
            arguments.

    Returns:
        One float array per query, of its :attr:`~OperatorQuery.shape`, 0 where not needed.
    """
    shapes = [q.shape for q in queries]
    masks = [
        None if q.needed is None else np.broadcast_to(q.needed, shape).reshape(-1)
        for q, shape in zip(queries, shapes, strict=True)
    ]
    answers: list[np.ndarray] = [np.empty(0)] * len(queries)
    arity: dict[str, int] = {}
    # one call per operator and string arguments (a weight format, a KV dtype): the
    # library then parses one string, not an object array of one per point
    by_call: dict[tuple[str, tuple[str | None, ...]], list[int]] = {}
    for i, query in enumerate(queries):
        if arity.setdefault(query.operator, len(query.args)) != len(query.args):
            raise ValueError(f"{query.operator} queries pass different numbers of arguments")
        strings = tuple(a if isinstance(a, str) else None for a in query.args)
        by_call.setdefault((query.operator, strings), []).append(i)
    for (operator, _), members in by_call.items():
        sizes = [
            int(np.prod(shape)) if mask is None else int(np.count_nonzero(mask))
            for shape, mask in ((shapes[i], masks[i]) for i in members)
        ]
        columns = [
            _column(
                [queries[i].args[j] for i in members],
                [shapes[i] for i in members],
                [masks[i] for i in members],
            )
            for j in range(arity[operator])
        ]
        if operator in REPEATING_OPERATORS:
            distinct, inverse = _distinct_points(columns, sum(sizes))
            answer = getattr(library, operator)(*distinct)
            flat = np.broadcast_to(answer, (int(inverse.max(initial=-1)) + 1,))[inverse]
        else:
            flat = np.broadcast_to(getattr(library, operator)(*columns), (sum(sizes),))
        for i, piece in zip(members, np.split(flat, np.cumsum(sizes)[:-1]), strict=True):
            mask = masks[i]
            if mask is None:
                answers[i] = np.array(piece, dtype=np.float64).reshape(shapes[i])
            else:
                full = np.zeros(mask.shape)
                full[mask] = piece
                answers[i] = full.reshape(shapes[i])
    return answers


def evaluate(library: KernelLibrary, plans: Sequence[Plan[T]]) -> list[T]:
    """Finish several plans, timing all their queries together (:func:`time_queries`)."""
    answers = time_queries(library, [q for plan in plans for q in plan.queries])
    results = []
    start = 0
    for plan in plans:
        stop = start + len(plan.queries)
        results.append(plan.finish(answers[start:stop]))
        start = stop
    return results
