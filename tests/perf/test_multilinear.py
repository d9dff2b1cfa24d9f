"""Multilinear interpolation: scipy's linear RegularGridInterpolator, corner for corner."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.interpolate import RegularGridInterpolator

from optimizer.perf.multilinear import Multilinear


@pytest.mark.parametrize("ndim", [1, 3, 4, 6])
def test_matches_scipy_exactly_between_and_on_nodes(ndim):
    rng = np.random.default_rng(ndim)
    axes = [np.sort(rng.choice(np.linspace(0.0, 9.0, 40), rng.integers(2, 6), replace=False))]
    axes += [np.cumsum(rng.uniform(0.1, 2.0, rng.integers(2, 6))) for _ in range(ndim - 1)]
    values = rng.normal(size=[len(a) for a in axes])
    n = 500
    points = []
    for i, axis in enumerate(axes):
        inside = rng.uniform(axis[0], axis[-1], n)
        nodes = rng.choice(axis, n)
        # axis 0 lies on nodes only (a grid family's key); the others mix both
        points.append(nodes if i == 0 else np.where(rng.random(n) < 0.5, nodes, inside))
    expected = RegularGridInterpolator(axes, values, method="linear")(np.stack(points, axis=-1))
    np.testing.assert_array_equal(Multilinear(axes, values)(points), expected)


def test_matches_scipy_on_two_axes():
    # scipy has a compiled path for two axes that multiplies the weights in another order
    rng = np.random.default_rng(0)
    axes = [np.array([0.0, 1.0, 3.0]), np.array([-1.0, 0.5, 2.0, 4.0])]
    values = rng.normal(size=(3, 4))
    points = [rng.uniform(0.0, 3.0, 200), rng.uniform(-1.0, 4.0, 200)]
    expected = RegularGridInterpolator(axes, values)(np.stack(points, axis=-1))
    np.testing.assert_allclose(Multilinear(axes, values)(points), expected, rtol=1e-14, atol=1e-15)


def test_grid_ends_are_nodes_and_outside_points_are_rejected():
    f = Multilinear([np.array([1.0, 2.0, 4.0])], np.array([10.0, 20.0, 40.0]))
    assert f([np.array([1.0, 4.0, 3.0])]).tolist() == [10.0, 40.0, 30.0]
    with pytest.raises(ValueError, match="outside"):
        f([np.array([4.5])])
    with pytest.raises(ValueError, match="outside"):
        f([np.array([np.nan])])
    with pytest.raises(ValueError, match="two nodes"):
        Multilinear([np.array([1.0])], np.array([1.0]))
