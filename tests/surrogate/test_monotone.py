"""Monotone repair of absolute-error gradient-boosted trees, against hand-built trees
and scikit-learn's own fits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor

from optimizer.surrogate.monotone import _repair, monotone_line_search, monotone_violations


def _stump(left_value: float, right_value: float, sign: int) -> tuple[np.ndarray, ...]:
    value = np.array([np.nan, left_value, right_value])
    left, right = np.array([1, 0, 0]), np.array([2, 0, 0])
    return value, left, right, np.array([False, True, True]), np.array([sign, 0, 0])


def test_ordered_leaves_do_not_move():
    value, *rest = _stump(0.2, 0.5, +1)
    assert _repair(value, *rest) == 0
    np.testing.assert_array_equal(value[1:], [0.2, 0.5])


@pytest.mark.parametrize("sign", [+1, -1])
def test_leaves_out_of_order_meet_at_their_midpoint(sign):
    # +1: the left (smaller-feature) leaf must not exceed the right one; -1: the reverse
    low, high = (0.5, 0.2) if sign > 0 else (0.2, 0.5)
    value, *rest = _stump(low, high, sign)
    assert _repair(value, *rest) == 2
    np.testing.assert_allclose(value[1:], [0.35, 0.35])


def test_unconstrained_split_is_left_alone():
    value, *rest = _stump(0.5, 0.2, 0)
    assert _repair(value, *rest) == 0


def test_nested_splits_respect_every_ancestor():
    # root splits on x (+1): left subtree {0.1, 0.9}, right leaf 0.4; the left subtree
    # splits on an unconstrained feature, so both its leaves must stay <= the right leaf
    value = np.array([np.nan, np.nan, 0.4, 0.1, 0.9])
    left, right = np.array([1, 3, 0, 0, 0]), np.array([2, 4, 0, 0, 0])
    is_leaf = np.array([False, False, True, True, True])
    sign = np.array([+1, 0, 0, 0, 0])
    assert _repair(value, left, right, is_leaf, sign) == 2
    np.testing.assert_allclose(value[2:], [0.65, 0.1, 0.65])


def _heavy_tailed(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = 2000
    X = pd.DataFrame({"x": rng.uniform(0, 1, n), "z": rng.uniform(0, 1, n)})
    noise = rng.standard_t(1.5, n) * 0.3
    y = 0.3 * X["x"] + np.sin(6 * X["z"]) * 0.5 + noise
    return X, y.to_numpy()


def _fit(X: pd.DataFrame, y: np.ndarray) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(
        loss="absolute_error", monotonic_cst={"x": 1, "z": 0}, max_iter=100, random_state=0
    ).fit(X, y)


def test_scikit_learn_absolute_error_breaks_its_constraints_and_the_repair_keeps_them():
    X, y = _heavy_tailed()
    plain = _fit(X, y)
    assert monotone_violations(plain) > 0  # the median line search ignores the bounds
    with monotone_line_search():
        repaired = _fit(X, y)
    assert monotone_violations(repaired) == 0
    grid = np.linspace(0, 1, 201)
    for z in np.linspace(0, 1, 11):
        pred = repaired.predict(pd.DataFrame({"x": grid, "z": z}))
        assert np.all(np.diff(pred) >= -1e-12)


def test_the_block_restores_scikit_learn_afterwards():
    from sklearn.ensemble._hist_gradient_boosting import gradient_boosting

    before = gradient_boosting._update_leaves_values
    with monotone_line_search():
        assert gradient_boosting._update_leaves_values is not before
    assert gradient_boosting._update_leaves_values is before


def test_squared_error_trees_need_no_repair():
    X, y = _heavy_tailed(1)
    fitted = HistGradientBoostingRegressor(
        monotonic_cst={"x": 1, "z": 0}, max_iter=50, random_state=0
    ).fit(X, y)
    assert monotone_violations(fitted) == 0
