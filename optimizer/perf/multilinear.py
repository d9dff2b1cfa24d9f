"""Multilinear interpolation on a rectilinear grid, lean enough for many small calls.

:class:`~optimizer.perf.grid.MonotoneGrid` interpolates its log-latencies at points it
has already clipped into the grid. scipy's ``RegularGridInterpolator`` does the same
arithmetic, but sums all ``2**d`` corners of each point's cell: 64 fancy-indexed
gathers for a six-axis attention grid, although most query axes (the key of a grid
family, head counts, head size) sit exactly on a grid node, where one of the two
corners weighs exactly 0. :class:`Multilinear` leaves those corners out and gathers
from the flattened values, which makes the prior's kernel lookups several times
cheaper.

The sum is the one scipy computes: each corner's weight is the product of its per-axis
weights (``1 - t`` below, ``t`` above, in axis order), and corners are added in
scipy's order. A dropped corner would have added an exact 0, and the kept corner's
factor of exactly 1 changes no product, so the result is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["Multilinear"]


class Multilinear:
    """Multilinear interpolation of values on a rectilinear grid, at points inside it.

    Args:
        axes: per axis, its strictly increasing coordinates (at least two each).
        values: the values at the grid nodes, shape ``[len(a) for a in axes]``.

    Example:
        >>> axes = [np.array([0.0, 1.0]), np.array([0.0, 2.0])]
        >>> f = Multilinear(axes, np.array([[0.0, 2.0], [1.0, 3.0]]))  # x + y
        >>> f([np.array([0.5, 1.0]), np.array([1.0, 2.0])]).tolist()
        [1.5, 3.0]
    """

    def __init__(self, axes: Sequence[np.ndarray], values: np.ndarray):
        self.axes = tuple(np.asarray(a, dtype=np.float64) for a in axes)
        values = np.asarray(values, dtype=np.float64)
        if values.shape != tuple(len(a) for a in self.axes):
            raise ValueError("values shape does not match the axes")
        if any(len(a) < 2 for a in self.axes):
            raise ValueError("every axis needs at least two nodes")
        self._flat = np.ascontiguousarray(values).reshape(-1)
        # elements to step over for one node along each axis
        self._strides = tuple(int(np.prod(values.shape[i + 1 :])) for i in range(values.ndim))

    def __call__(self, points: Sequence[np.ndarray]) -> np.ndarray:
        """Interpolated values at points given as one flat coordinate array per axis.

        Every coordinate must lie within its axis (clip first); a NaN raises ValueError.
        """
        if len(points) != len(self.axes):
            raise ValueError(f"expected {len(self.axes)} coordinate arrays, got {len(points)}")
        n = len(points[0])
        node = np.zeros(n, dtype=np.intp)  # flat offset of the lower corner
        spans: list[tuple[int, np.ndarray]] = []  # (stride, position in the cell) per axis
        for axis, stride, x in zip(self.axes, self._strides, points, strict=True):
            if not ((x >= axis[0]) & (x <= axis[-1])).all():
                raise ValueError("a coordinate lies outside the grid (or is NaN)")
            lower = np.minimum(np.searchsorted(axis, x, side="right") - 1, len(axis) - 2)
            t = (x - axis[lower]) / (axis[lower + 1] - axis[lower])
            upper = t == 1.0
            if (upper | (t == 0.0)).all():  # every point on a node: a single corner
                node += (lower + upper) * stride
            else:
                node += lower * stride
                spans.append((stride, t))
        # corners in scipy's order (last axis fastest), weights multiplied in axis order
        corners: list[tuple[np.ndarray, np.ndarray | None]] = [(node, None)]
        for stride, t in spans:
            below = 1.0 - t
            corners = [
                (offset + shift, w if weight is None else weight * w)
                for offset, weight in corners
                for shift, w in ((0, below), (stride, t))
            ]
        value = np.zeros(n)
        for offset, weight in corners:
            gathered = self._flat[offset]
            value = value + (gathered if weight is None else gathered * weight)
        return value
