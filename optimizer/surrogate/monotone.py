"""Gradient-boosted trees that stay monotone under a robust (absolute-error) loss.

scikit-learn's ``HistGradientBoostingRegressor`` grows every tree under its
``monotonic_cst``: a split on a constrained feature is kept only when the smaller
side's value lies below the larger side's, and the subtrees below are bounded by the
midpoint. For a loss without a gradient everywhere (``absolute_error``, ``quantile``) it
then replaces each leaf's value by the median (quantile) of the leaf's residuals -- a
line search that ignores those bounds, since the values the splits were checked with
were the mean signs of the residuals, on another scale. The fitted TTFT of
Llama-3.1-70B on H100 vLLM at tp 8 fell from 116.3 to 115.7 ms as the input grew from 16
to 81 tokens, every constrained feature growing; repairing a fitted absolute-error
ensemble afterwards moved a third of its leaves.

:func:`monotone_line_search` repairs each tree as it is grown, after the line search
and before the tree's predictions enter the next tree's residuals, so the later trees
fit what the repaired ones leave. The repair (:func:`_repair`), top down: a split on a
feature constrained upwards (downwards) gets a midpoint between the largest leaf
value of its smaller (larger) side and the smallest of its other side, both within
the bounds inherited from above; the sides are bounded by it and every leaf is clipped
to its bounds. Where the leaves already respect the constraint the midpoint lies
between them and nothing moves; otherwise only the offending leaves move, to the
midpoint. Every leaf then lies within the bounds of each constrained split above it,
which makes the tree -- and the sum of the trees -- monotone: two inputs that differ
only in one constrained feature follow the same path down to the first split on it,
and there the smaller one goes to the side whose every leaf lies below the other's.

:func:`monotone_violations` counts the leaves of a fitted ensemble that the repair would
move (0 for an ensemble that respects its constraints).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.ensemble._hist_gradient_boosting import gradient_boosting as _hgb

__all__ = ["monotone_line_search", "monotone_violations"]

_PATCH_LOCK = threading.RLock()


def _repair(
    value: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    is_leaf: np.ndarray,
    sign: np.ndarray,
) -> int:
    """Clip the leaf values of one tree in place (see the module doc); returns how many
    moved.

    Args:
        value: every node's value (only the leaves' are read and written).
        left, right: children of every node (ignored for leaves); node 0 is the root.
        is_leaf: whether each node is a leaf.
        sign: the constraint of each node's split (+1, -1, or 0; ignored for leaves).
    """
    extremes: dict[int, tuple[float, float]] = {}

    def leaf_range(i: int) -> tuple[float, float]:
        if i not in extremes:
            if is_leaf[i]:
                extremes[i] = (float(value[i]), float(value[i]))
            else:
                a, b = leaf_range(int(left[i])), leaf_range(int(right[i]))
                extremes[i] = (min(a[0], b[0]), max(a[1], b[1]))
        return extremes[i]

    moved = 0
    stack: list[tuple[int, float, float]] = [(0, -np.inf, np.inf)]
    while stack:
        i, lo, hi = stack.pop()
        if is_leaf[i]:
            clipped = min(max(float(value[i]), lo), hi)
            moved += clipped != value[i]
            value[i] = clipped
            continue
        children = (int(left[i]), int(right[i]))
        if sign[i] == 0:
            stack += [(children[0], lo, hi), (children[1], lo, hi)]
            continue
        low_side, high_side = children if sign[i] > 0 else children[::-1]
        top = min(max(leaf_range(low_side)[1], lo), hi)
        bottom = min(max(leaf_range(high_side)[0], lo), hi)
        mid = 0.5 * (top + bottom)
        stack += [(low_side, lo, mid), (high_side, mid, hi)]
    return moved


def _repair_grower(grower: Any) -> int:
    """Repair the leaves of a grown scikit-learn tree (``TreeGrower``) in place."""
    cst = getattr(grower, "monotonic_cst", None)
    if cst is None or not np.any(cst):
        return 0
    nodes = [grower.root]
    index = {id(grower.root): 0}
    for node in nodes:  # breadth first; the list grows as it is walked
        if not node.is_leaf:
            for child in (node.left_child, node.right_child):
                index[id(child)] = len(nodes)
                nodes.append(child)
    n = len(nodes)
    value = np.array([float(node.value) if node.is_leaf else np.nan for node in nodes])
    left, right, sign = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    is_leaf = np.array([node.is_leaf for node in nodes])
    for i, node in enumerate(nodes):
        if not node.is_leaf:
            left[i], right[i] = index[id(node.left_child)], index[id(node.right_child)]
            split = node.split_info
            sign[i] = 0 if split.is_categorical else int(cst[split.feature_idx])
    moved = _repair(value, left, right, is_leaf, sign)
    for i in np.flatnonzero(is_leaf):
        nodes[i].value = value[i]
    return moved


@contextmanager
def monotone_line_search() -> Iterator[None]:
    """Within the block, every ``HistGradientBoosting*`` fit repairs each tree's leaf
    values after the line search of a non-differentiable loss (see the module doc).

    scikit-learn calls its module function ``_update_leaves_values`` for those losses
    only, between growing a tree and adding its predictions to the running ones; the
    block wraps it (one block at a time, process-wide).

    Raises:
        TypeError: this scikit-learn release has no such step to wrap.
    """
    original: Callable[..., None] | None = getattr(_hgb, "_update_leaves_values", None)
    if original is None:
        raise TypeError(
            "this scikit-learn release has no gradient_boosting._update_leaves_values; "
            "the monotone repair of absolute-error trees needs it"
        )

    def update_then_repair(loss: Any, grower: Any, *args: Any, **kwargs: Any) -> None:
        original(loss, grower, *args, **kwargs)
        _repair_grower(grower)

    with _PATCH_LOCK:
        _hgb._update_leaves_values = update_then_repair  # type: ignore[assignment]
        try:
            yield
        finally:
            _hgb._update_leaves_values = original  # type: ignore[assignment]


def _constraints(estimator: HistGradientBoostingRegressor) -> np.ndarray:
    """The constraint of every feature as the trees index them (scikit-learn puts the
    categorical features first)."""
    names = list(estimator.feature_names_in_)
    given = estimator.monotonic_cst
    if isinstance(given, dict):
        cst = np.array([int(given.get(name, 0)) for name in names])
    elif given is None:
        cst = np.zeros(len(names), dtype=np.int64)
    else:
        cst = np.asarray(given, dtype=np.int64)
    categorical = getattr(estimator, "is_categorical_", None)
    if categorical is None:
        return cst
    return np.concatenate([cst[categorical], cst[~categorical]])


def monotone_violations(estimator: HistGradientBoostingRegressor) -> int:
    """How many leaves of a fitted ensemble the repair would move (on a copy): 0 when
    every tree respects the estimator's ``monotonic_cst``."""
    cst = _constraints(estimator)
    moved = 0
    for iteration in estimator._predictors:
        for tree in iteration:
            nodes = tree.nodes
            is_leaf = nodes["is_leaf"].astype(bool)
            sign = np.where(
                is_leaf | nodes["is_categorical"].astype(bool), 0, cst[nodes["feature_idx"]]
            )
            moved += _repair(nodes["value"].copy(), nodes["left"], nodes["right"], is_leaf, sign)
    return moved
