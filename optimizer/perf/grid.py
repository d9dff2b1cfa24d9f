"""A latency table on a regular grid of sizes, monotone non-decreasing along its size axes.

Measured kernel timings come on grids (GEMM by m x n x k, attention by batch x length x
heads ...) that are nearly, but not quite, complete: long prompts are only measured at
small batches, some head counts only for some KV-head counts. :class:`MonotoneGrid`
turns such scattered measurements into a function of the sizes:

1. **Fill** the missing cells of the product grid by piecewise power laws: linear
   interpolation of log-latency in log-size between the nearest measured neighbours
   along an axis, and at the edges constant below the smallest measured size and
   ``latency ~ size ** exponent`` above the largest (the axis's physical scaling: 1 for
   batch, tokens or bytes, 2 for the prompt length of full attention).
2. **Despike** isolated noisy timings (a cell far above or below both neighbours along
   a size axis), which leaves monotone runs unchanged.
3. **Make it monotone**: along each size axis, the log-latencies are replaced by the mean of
   their running maximum and their reverse running minimum -- both monotone, so the mean
   is too, and it leaves an already monotone line unchanged while splitting a noisy dip
   evenly instead of always rounding up.
4. **Interpolate** multilinearly in log-size / log-latency space (piecewise power laws),
   which keeps the monotonicity of the grid; beyond the grid the latency is held constant
   below and scaled by ``(size / largest) ** exponent`` above.

Everything is vectorised over the query points.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from optimizer.perf.multilinear import Multilinear

__all__ = ["SPIKE_THRESHOLD", "GridFamily", "MonotoneGrid", "despike", "make_monotone"]


SPIKE_THRESHOLD = float(np.log(1.2))
"""A cell more than 20 % above (below) both its neighbours may be a spike (a dip)."""


def despike(
    log_values: np.ndarray, axes: Sequence[int] | None = None, threshold: float = SPIKE_THRESHOLD
) -> np.ndarray:
    """Replace isolated one-cell spikes and dips (single noisy timings) along size axes.

    Meant for axes along which the value should not decrease. An interior cell is a
    spike when it lies above both neighbours (or below both) by more than ``threshold``
    and its distance to their mean is at least its neighbours' own distances to theirs
    (so only the culprit is touched, not the cells beside it); it becomes that mean. An
    end cell is a spike when it breaks the direction: the first above the second, or
    the last below the one before, by more than ``threshold``; it becomes the linear
    extrapolation of the next two (capped at its neighbour). Monotone runs are left
    exactly as they are.

    Args:
        log_values: an n-dimensional array without NaN (log-latencies).
        axes: the axes to despike along (default: all); lines shorter than 3 are kept.
        threshold: log-ratio a spike must exceed.

    Returns:
        A new array of the same shape.
    """
    out = np.array(log_values, dtype=float, copy=True)
    for axis in range(out.ndim) if axes is None else axes:
        if out.shape[axis] < 3:
            continue
        v = np.moveaxis(out, axis, -1)
        prev, nxt = v[..., :-2], v[..., 2:]
        middle = v[..., 1:-1]
        mean = 0.5 * (prev + nxt)
        deviation = np.abs(middle - mean)
        padded = np.pad(deviation, [(0, 0)] * (v.ndim - 1) + [(1, 1)])
        local_max = (deviation >= padded[..., :-2]) & (deviation >= padded[..., 2:])
        outside = (middle > np.maximum(prev, nxt) + threshold) | (
            middle < np.minimum(prev, nxt) - threshold
        )
        fixed = v.copy()
        fixed[..., 1:-1] = np.where(outside & local_max, mean, middle)
        head = np.minimum(2 * v[..., 1] - v[..., 2], v[..., 1])
        fixed[..., 0] = np.where(v[..., 0] > v[..., 1] + threshold, head, v[..., 0])
        tail = np.maximum(2 * v[..., -2] - v[..., -3], v[..., -2])
        fixed[..., -1] = np.where(v[..., -1] < v[..., -2] - threshold, tail, v[..., -1])
        out = np.moveaxis(fixed, -1, axis)
    return out


def make_monotone(log_values: np.ndarray, axes: Sequence[int] | None = None) -> np.ndarray:
    """Smallest-change monotone version of a grid: non-decreasing along the given axes.

    Along each axis in turn, values become the mean of the running maximum and the
    reverse running minimum. Each pass keeps the monotonicity earlier passes created,
    because both operations preserve it along the other axes.

    Args:
        log_values: an n-dimensional array without NaN.
        axes: the axes to make monotone (default: all).

    Returns:
        A new array of the same shape, non-decreasing along those axes.
    """
    out = np.array(log_values, dtype=float, copy=True)
    for axis in range(out.ndim) if axes is None else axes:
        running_max = np.maximum.accumulate(out, axis=axis)
        flipped = np.flip(out, axis=axis)
        reverse_min = np.flip(np.minimum.accumulate(flipped, axis=axis), axis=axis)
        out = 0.5 * (running_max + reverse_min)
    return out


def _fill_along(
    values: np.ndarray, log_axis: np.ndarray, axis: int, exponent: float, edges: bool
) -> bool:
    """Fill NaN cells along one axis from the nearest known cells of the same line.

    Interior cells (known cells on both sides) are interpolated linearly in log space;
    with ``edges``, cells above the last known one follow ``exponent`` and cells below
    the first known one copy it. Works in place on the lines that need it only; returns
    whether anything was filled.
    """
    n = values.shape[axis]
    if n < 2:
        return False
    nan = np.isnan(values)
    known_count = n - nan.sum(axis=axis)
    if edges:
        lines = (known_count >= 1) & (known_count < n)
    else:  # only lines with a gap between their first and last known cells
        first = np.argmin(nan, axis=axis)
        last = n - 1 - np.argmin(np.flip(nan, axis=axis), axis=axis)
        lines = (known_count >= 2) & (last - first + 1 > known_count)
    if not lines.any():
        return False
    view = np.moveaxis(values, axis, -1)
    sub = view[lines]
    known = ~np.isnan(sub)
    positions = np.arange(n)
    prev = np.maximum.accumulate(np.where(known, positions, -1), axis=1)
    nxt = np.flip(
        np.minimum.accumulate(np.flip(np.where(known, positions, n), axis=1), axis=1), axis=1
    )
    missing = ~known
    interior = missing & (prev >= 0) & (nxt < n)
    above = missing & (prev >= 0) & (nxt >= n) if edges else np.zeros_like(missing)
    below = missing & (prev < 0) & (nxt < n) if edges else np.zeros_like(missing)
    if not (interior.any() or above.any() or below.any()):
        return False
    safe_prev = np.clip(prev, 0, n - 1)
    safe_next = np.clip(nxt, 0, n - 1)
    v_prev = np.take_along_axis(sub, safe_prev, axis=1)
    v_next = np.take_along_axis(sub, safe_next, axis=1)
    x = np.broadcast_to(log_axis, sub.shape)
    x_prev = log_axis[safe_prev]
    x_next = log_axis[safe_next]
    span = np.where(x_next > x_prev, x_next - x_prev, 1.0)
    weight = (x - x_prev) / span
    sub[interior] = (v_prev + weight * (v_next - v_prev))[interior]
    sub[above] = (v_prev + exponent * (x - x_prev))[above]
    sub[below] = v_next[below]
    view[lines] = sub  # view shares memory with values
    return True


def _fill_grid(
    values: np.ndarray,
    log_axes: Sequence[np.ndarray],
    exponents: Sequence[float],
    order: Sequence[int],
) -> None:
    """Fill every NaN of ``values`` in place: interpolation first, then one edge pass at a time."""
    while np.isnan(values).any():
        progressed = True
        while progressed:
            progressed = False
            for axis in order:
                progressed |= _fill_along(
                    values, log_axes[axis], axis, exponents[axis], edges=False
                )
        if not np.isnan(values).any():
            return
        for axis in order:
            if _fill_along(values, log_axes[axis], axis, exponents[axis], edges=True):
                break
        else:
            raise ValueError("some grid lines have no measured cell along the fill axes")


class MonotoneGrid:
    """Positive values on a regular grid of positive sizes, monotone along chosen axes.

    Build one with :meth:`from_points`; call it with one array per axis. Axes that are
    workload sizes (tokens, batch, context, bytes) are made monotone; axes that describe
    the model (head counts, head size) need not be, because kernels really do switch
    paths between them (a multi-head decode kernel is slower than a grouped one).

    Example:
        >>> grid = MonotoneGrid.from_points([[1, 2, 4], [1, 1, 1]], [1.0, 2.0, 4.0], [1, 1])
        >>> round(float(grid([8], [1])[0]), 6)  # beyond the largest size: scales with exponent 1
        8.0
    """

    def __init__(
        self,
        axes: Sequence[np.ndarray],
        log_values: np.ndarray,
        exponents: Sequence[float],
        monotone: Sequence[bool] | None = None,
    ):
        """Wrap an already filled grid (use :meth:`from_points` to build one).

        Args:
            axes: the sorted, distinct, positive sizes of each axis.
            log_values: natural log of the values, shape ``[len(a) for a in axes]``.
            exponents: per axis, the power of the size that the value follows beyond
                the largest grid size.
            monotone: per axis, whether values must not decrease along it (default: all);
                the grid is made so here.
        """
        self.axes = tuple(np.asarray(a, dtype=float) for a in axes)
        self.exponents = tuple(float(e) for e in exponents)
        self.monotone = tuple(
            bool(m) for m in (monotone if monotone is not None else [True] * len(self.axes))
        )
        if len(self.exponents) != len(self.axes) or len(self.monotone) != len(self.axes):
            raise ValueError("one exponent and one monotone flag per axis are required")
        if any(e < 0 for e in self.exponents):
            raise ValueError("exponents must be >= 0")
        log_values = np.asarray(log_values, dtype=float)
        if log_values.shape != tuple(len(a) for a in self.axes):
            raise ValueError("log_values shape does not match the axes")
        if not np.isfinite(log_values).all():
            raise ValueError("log_values must be finite")
        self.log_values = make_monotone(log_values, self.monotone_axes)
        self._log_axes = tuple(np.log(a) for a in self.axes)
        live = [i for i, a in enumerate(self.axes) if len(a) > 1]
        self._live = tuple(live)
        self._interpolator = (
            Multilinear(
                [self._log_axes[i] for i in live],
                self.log_values.reshape([len(self.axes[i]) for i in live]),
            )
            if live
            else None
        )

    @classmethod
    def from_points(
        cls,
        coords: Sequence[ArrayLike],
        values: ArrayLike,
        exponents: Sequence[float],
        monotone: Sequence[bool] | None = None,
        fill_order: Sequence[int] | None = None,
    ) -> MonotoneGrid:
        """Build the grid from scattered measurements on (a subset of) a product grid.

        Args:
            coords: one array per axis with the size of each measurement (all > 0).
            values: the measured values (all > 0); duplicates of a grid cell keep the
                smallest (the fastest kernel the engine can dispatch to).
            exponents: per axis, how the value scales above the largest measured size
                (``value ~ size ** exponent``); below the smallest it is held constant.
            monotone: per axis, whether it is a size the value must not decrease
                along (default: all). Only those axes are despiked and made monotone.
            fill_order: axes in the order missing cells are filled along (default: all);
                the first should be the one whose scaling is best known (batch,
                tokens). An axis left out is never filled along: use that for a
                categorical axis (see :class:`GridFamily`).

        Returns:
            The filled grid, monotone along the chosen axes.
        """
        values = np.asarray(values, dtype=float)
        columns = [np.asarray(c, dtype=float) for c in coords]
        if any(c.shape != values.shape for c in columns):
            raise ValueError("every coordinate array must have one entry per value")
        if values.size == 0:
            raise ValueError("no measurements to build a grid from")
        if not (values > 0).all() or any(not (c > 0).all() for c in columns):
            raise ValueError("sizes and values must be positive")
        axes = []
        indices = []
        for column in columns:
            axis, index = np.unique(column, return_inverse=True)
            axes.append(axis)
            indices.append(index.reshape(-1))
        shape = tuple(len(a) for a in axes)
        flat = np.ravel_multi_index(indices, shape)
        grid = np.full(int(np.prod(shape)), np.inf)
        np.minimum.at(grid, flat, np.log(values))
        grid[np.isinf(grid)] = np.nan
        grid = grid.reshape(shape)
        order = list(fill_order) if fill_order is not None else list(range(len(axes)))
        _fill_grid(grid, [np.log(a) for a in axes], exponents, order)
        flags = tuple(monotone) if monotone is not None else (True,) * len(axes)
        grid = despike(grid, [i for i, flag in enumerate(flags) if flag])
        return cls(axes, grid, exponents, flags)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.log_values.shape

    @property
    def monotone_axes(self) -> tuple[int, ...]:
        return tuple(i for i, flag in enumerate(self.monotone) if flag)

    def mesh(self) -> tuple[np.ndarray, ...]:
        """The sizes at every grid cell, one array per axis (``indexing="ij"``)."""
        return tuple(np.meshgrid(*self.axes, indexing="ij"))

    def scaled(self, factor: ArrayLike) -> MonotoneGrid:
        """A grid whose values are multiplied cell by cell, then made monotone again.

        Used to transfer measurements to another GPU by the ratio of roofline times.
        """
        factor = np.broadcast_to(np.asarray(factor, dtype=float), self.shape)
        if not (factor > 0).all() or not np.isfinite(factor).all():
            raise ValueError("scale factors must be positive and finite")
        return MonotoneGrid(
            self.axes, self.log_values + np.log(factor), self.exponents, self.monotone
        )

    def __call__(self, *coords: ArrayLike) -> np.ndarray:
        """Values at the given sizes (broadcast together), interpolated as piecewise power laws."""
        if len(coords) != len(self.axes):
            raise ValueError(f"expected {len(self.axes)} coordinate arrays, got {len(coords)}")
        arrays = np.broadcast_arrays(*[np.asarray(c, dtype=float) for c in coords])
        shape = arrays[0].shape
        log_sizes = [np.log(np.maximum(a.reshape(-1), 1e-300)) for a in arrays]
        extra = np.zeros(log_sizes[0].shape)
        clipped = []
        for i, log_x in enumerate(log_sizes):
            lo, hi = self._log_axes[i][0], self._log_axes[i][-1]
            extra += self.exponents[i] * np.maximum(log_x - hi, 0.0)
            clipped.append(np.clip(log_x, lo, hi))
        if self._interpolator is None:
            base = np.full(extra.shape, float(self.log_values.reshape(-1)[0]))
        else:
            base = self._interpolator([clipped[i] for i in self._live])
        return np.exp(base + extra).reshape(shape)


class GridFamily:
    """One :class:`MonotoneGrid` per categorical key (a dtype, a MoE shape ...), built at once.

    All keys share the union of the measured sizes; each key's missing cells are filled
    from its own measurements only (never from another key's), and the whole family is
    filled, despiked and made monotone in one vectorised pass, which keeps thousands of
    small tables (one per MoE configuration) cheap to fit.

    Example:
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"dtype": ["a", "a", "b"], "n": [1, 2, 1], "ms": [1.0, 2.0, 5.0]})
        >>> family = GridFamily.from_frame(frame, ["dtype"], ["n"], "ms", exponents=[1])
        >>> family(family.codes(["b"]), [2]).round(6).tolist()  # "b" extrapolated from its n=1
        [10.0]
    """

    def __init__(
        self,
        keys: Sequence[tuple],
        key_names: Sequence[str],
        size_names: Sequence[str],
        grid: MonotoneGrid,
    ):
        """Wrap a grid whose first axis is the key code plus one (use :meth:`from_frame`)."""
        self.keys = tuple(tuple(k) for k in keys)
        self.key_names = tuple(key_names)
        self.size_names = tuple(size_names)
        self.grid = grid
        if grid.shape[0] != len(self.keys):
            raise ValueError("the grid's first axis must have one entry per key")
        self._positions = {key: i for i, key in enumerate(self.keys)}

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        key_columns: Sequence[str],
        size_columns: Sequence[str],
        value_column: str,
        exponents: Sequence[float],
        monotone: Sequence[bool] | None = None,
        fill_order: Sequence[int] | None = None,
    ) -> GridFamily:
        """Build the family from a tidy table, one row per measurement.

        Args:
            frame: the measurements.
            key_columns: columns whose distinct combinations each get their own grid.
            size_columns: the grid axes (positive sizes).
            value_column: the measured value (positive).
            exponents, monotone: per size column, as in :meth:`MonotoneGrid.from_points`.
            fill_order: size-column positions in the order missing cells are filled
                along (default: all, in order).
        """
        if frame.empty:
            raise ValueError("no measurements to build a grid family from")
        # ids in order of first appearance, as factorize gives them; through groupby, as a
        # MultiIndex's factorize builds a tuple per row first (11 % of a cold prior's time)
        key_frame = frame[list(key_columns)]
        codes = key_frame.groupby(list(key_columns), sort=False, dropna=False).ngroup()
        codes = codes.to_numpy(dtype=np.int64)
        _, first = np.unique(codes, return_index=True)
        keys = list(key_frame.iloc[first].itertuples(index=False, name=None))
        n_sizes = len(size_columns)
        order = list(range(n_sizes)) if fill_order is None else list(fill_order)
        flags = [True] * n_sizes if monotone is None else list(monotone)
        grid = MonotoneGrid.from_points(
            [codes + 1.0, *(frame[c].to_numpy(dtype=float) for c in size_columns)],
            frame[value_column].to_numpy(dtype=float),
            exponents=[0.0, *exponents],
            monotone=[False, *flags],
            fill_order=[axis + 1 for axis in order],
        )
        return cls(keys, key_columns, size_columns, grid)

    def codes(self, *key_arrays: ArrayLike) -> np.ndarray:
        """Position of each query's key in :attr:`keys`, ``-1`` where the key is unknown.

        Queries are factorised column by column and only their distinct combinations are
        looked up (a dictionary probe each): a query batch usually holds a handful of
        distinct keys, so this costs O(rows) numpy work plus O(distinct) Python work
        (no sort of the rows unless the columns' combinations outnumber them).
        """
        shape = np.broadcast_shapes(*(np.shape(a) for a in key_arrays))
        constant: dict[int, object] = {}
        varying: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for i, array in enumerate(key_arrays):
            values = np.asarray(array)
            if values.size == 1:
                constant[i] = values.reshape(-1)[0]
                continue
            flat = np.broadcast_to(values, shape).reshape(-1)
            if flat.size and (flat == flat[0]).all():  # the usual case; 5x cheaper than factorize
                constant[i] = flat[0]
                continue
            codes, uniques = pd.factorize(flat, use_na_sentinel=False)
            if len(uniques) == 1:
                constant[i] = uniques[0]
            else:
                varying[i] = (codes, np.asarray(uniques, dtype=object))
        n_keys = len(key_arrays)

        def position(digits: tuple[int, ...]) -> int:
            it = iter(digits)
            key = tuple(
                constant[i] if i in constant else varying[i][1][next(it)] for i in range(n_keys)
            )
            return self._positions.get(key, -1)

        if not varying:
            return np.full(shape, position(()), dtype=np.int64)
        # one integer per combination of the varying columns' codes
        radices = tuple(len(uniques) for _, uniques in varying.values())
        combined = np.ravel_multi_index([codes for codes, _ in varying.values()], radices)
        total = int(np.prod(radices))
        if total <= combined.size:  # a table of every combination: no sort of the queries
            distinct = np.flatnonzero(np.bincount(combined, minlength=total))
            inverse = combined
        else:
            distinct, inverse = np.unique(combined, return_inverse=True)
        positions = np.array(
            [position(digits) for digits in zip(*np.unravel_index(distinct, radices), strict=True)],
            dtype=np.int64,
        )
        if total <= combined.size:
            table = np.full(total, -1, dtype=np.int64)
            table[distinct] = positions
            positions = table
        return positions[inverse.reshape(-1)].reshape(shape)

    def __contains__(self, key: object) -> bool:
        return (key if isinstance(key, tuple) else (key,)) in set(self.keys)

    def __call__(self, codes: ArrayLike, *sizes: ArrayLike) -> np.ndarray:
        """Values for keys given by :meth:`codes` (all must be known) at the given sizes."""
        codes = np.asarray(codes)
        if (codes < 0).any():
            raise ValueError("unknown key: check codes() >= 0 before evaluating")
        return self.grid(codes + 1.0, *sizes)

    def mesh(self) -> tuple[np.ndarray, ...]:
        """Key codes and sizes at every cell of the family, one array each (``indexing="ij"``)."""
        key_mesh, *size_mesh = self.grid.mesh()
        return (key_mesh.astype(int) - 1, *size_mesh)

    def scaled(self, factor: ArrayLike) -> GridFamily:
        """The family with values multiplied cell by cell (shape of :meth:`mesh`), made monotone."""
        return GridFamily(self.keys, self.key_names, self.size_names, self.grid.scaled(factor))
