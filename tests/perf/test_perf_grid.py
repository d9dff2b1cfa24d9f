"""Monotone grids: filling, despiking, monotonicity, interpolation and extrapolation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from optimizer.perf.grid import GridFamily, MonotoneGrid, despike, make_monotone

finite = st.floats(min_value=-5, max_value=5, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        float, st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 4)), elements=finite
    )
)
def test_make_monotone_is_non_decreasing_along_every_axis(values):
    out = make_monotone(values)
    for axis in range(out.ndim):
        assert (np.diff(out, axis=axis) >= -1e-12).all()


@settings(max_examples=60, deadline=None)
@given(arrays(float, st.tuples(st.integers(1, 6), st.integers(1, 6)), elements=finite))
def test_make_monotone_leaves_monotone_grids_alone(values):
    monotone = np.cumsum(np.cumsum(np.abs(values), axis=0), axis=1)
    np.testing.assert_allclose(make_monotone(monotone), monotone)


def test_make_monotone_splits_a_dip_evenly_and_respects_the_chosen_axes():
    np.testing.assert_allclose(make_monotone(np.array([1.0, 3.0, 2.0, 4.0])), [1.0, 2.5, 2.5, 4.0])
    values = np.array([[2.0, 1.0], [1.0, 0.0]])  # decreasing along both axes
    only_first = make_monotone(values, axes=[0])
    assert (np.diff(only_first, axis=0) >= 0).all()
    assert (np.diff(only_first, axis=1) < 0).all()


def test_despike_removes_a_lone_outlier_and_keeps_power_laws():
    line = np.log(np.array([1.0, 2.0, 4.0, 40.0, 16.0, 32.0]))  # spike at index 3
    np.testing.assert_allclose(np.exp(despike(line)), [1, 2, 4, 8, 16, 32])
    dip = np.log(np.array([1.0, 2.0, 0.1, 8.0, 16.0]))
    np.testing.assert_allclose(np.exp(despike(dip)), [1, 2, 4, 8, 16])
    power_law = np.log(np.arange(1.0, 9.0) ** 1.5)
    np.testing.assert_allclose(despike(power_law), power_law)
    end_collapse = np.log(np.array([1.0, 2.0, 4.0, 8.0, 1.0]))  # the last timing collapses
    assert np.exp(despike(end_collapse))[-1] == pytest.approx(16.0)
    slow_start = np.log(np.array([9.0, 2.0, 4.0, 8.0]))  # the first timing is an outlier
    assert np.exp(despike(slow_start))[0] == pytest.approx(1.0)
    small_noise = np.log(np.array([1.0, 1.1, 1.0, 1.1]))  # within 20 %: kept
    np.testing.assert_allclose(despike(small_noise), small_noise)


@settings(max_examples=60, deadline=None)
@given(arrays(float, st.integers(3, 12), elements=st.floats(0, 3, allow_nan=False)))
def test_despike_never_changes_a_monotone_line(steps):
    line = np.cumsum(steps)
    np.testing.assert_allclose(despike(line), line)


def test_grid_reproduces_power_laws_between_and_beyond_its_points():
    m = np.array([1, 4, 16, 64], dtype=float)
    n = np.array([8, 32], dtype=float)
    mm, nn = np.meshgrid(m, n, indexing="ij")
    grid = MonotoneGrid.from_points([mm.ravel(), nn.ravel()], (mm * nn**0.5).ravel(), [1.0, 0.5])
    np.testing.assert_allclose(grid([2, 8, 50], [16, 8, 32]), [2 * 4, 8 * 8**0.5, 50 * 32**0.5])
    # above the grid: value ~ size ** exponent; below: held constant
    np.testing.assert_allclose(grid([128], [32]), [128 * 32**0.5])
    np.testing.assert_allclose(grid([0.5], [8]), grid([1], [8]))


def test_missing_cells_are_filled_by_each_axis_physics():
    # a triangle of measurements: large batches only at short lengths, as the tables have
    batch, length, value = [], [], []
    for b in (1, 2, 4, 8):
        for s in (1, 2, 4, 8):
            if b * s <= 8:
                batch.append(b)
                length.append(s)
                value.append(b * s**2 + 1.0)
    grid = MonotoneGrid.from_points([batch, length], value, exponents=[1.0, 2.0], fill_order=[0, 1])
    # (8, 8) is filled along batch from (1, 8): 65 * 8
    assert float(grid([8], [8])[0]) == pytest.approx(65.0 * 8)
    assert grid.shape == (4, 4)


def test_a_fill_axis_left_out_is_never_filled_along():
    coords = [[1, 1], [1, 2], [1, 2]]  # lines along axis 0 at (n, k) = (1, 2) and (2, 1) are empty
    with pytest.raises(ValueError, match="no measured cell"):
        MonotoneGrid.from_points(coords, [1.0, 2.0], exponents=[1, 1, 1], fill_order=[0])
    filled = MonotoneGrid.from_points(coords, [1.0, 2.0], exponents=[1, 1, 1])
    assert filled.shape == (1, 2, 2)


def test_grid_rejects_bad_measurements():
    with pytest.raises(ValueError, match="positive"):
        MonotoneGrid.from_points([[1, 2]], [1.0, 0.0], exponents=[1])
    with pytest.raises(ValueError, match="no measurements"):
        MonotoneGrid.from_points([[]], [], exponents=[1])
    with pytest.raises(ValueError, match="one exponent"):
        MonotoneGrid([np.array([1.0, 2.0])], np.zeros(2), exponents=[1, 1])


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.floats(0.1, 1e4), min_size=2, max_size=2),
    st.floats(0.1, 1e4),
    st.floats(1.0, 1e3),
)
def test_grid_is_monotone_along_monotone_axes_everywhere(xs, y, step):
    rng = np.random.default_rng(0)
    m, n = np.meshgrid([1, 3, 10, 30, 100], [1, 10, 100], indexing="ij")
    noisy = (m * n) ** 0.7 * np.exp(rng.normal(0, 0.3, m.shape))  # noisy, not monotone as measured
    grid = MonotoneGrid.from_points([m.ravel(), n.ravel()], noisy.ravel(), exponents=[1, 1])
    low, high = min(xs), min(xs) + step
    assert grid([low], [y])[0] <= grid([high], [y])[0] * (1 + 1e-12)
    assert grid([y], [low])[0] <= grid([y], [high])[0] * (1 + 1e-12)


def test_family_keys_are_filled_from_their_own_rows_only():
    frame = pd.DataFrame(
        {
            "dtype": ["a", "a", "a", "b"],
            "n": [1, 2, 4, 1],
            "ms": [1.0, 2.0, 4.0, 10.0],
        }
    )
    family = GridFamily.from_frame(frame, ["dtype"], ["n"], "ms", exponents=[1.0])
    codes = family.codes(["a", "b", "zzz"])
    assert codes[-1] == -1
    np.testing.assert_allclose(family(codes[:2], [4, 4]), [4.0, 40.0])
    assert "a" in family and "zzz" not in family
    with pytest.raises(ValueError, match="unknown key"):
        family(codes, [1, 1, 1])


def test_family_codes_of_several_varying_key_columns():
    frame = pd.DataFrame(
        {"q": ["a", "a", "b"], "tp": [1, 2, 1], "n": [1, 1, 1], "ms": [1.0, 2.0, 3.0]}
    )
    family = GridFamily.from_frame(frame, ["q", "tp"], ["n"], "ms", exponents=[1.0])
    q = np.array(["a", "b", "a", "b", "c"], dtype=object)
    tp = np.array([1, 1, 2, 2, 1])
    known = {key: i for i, key in enumerate(family.keys)}
    expected = [known.get(key, -1) for key in zip(q, tp, strict=True)]
    assert expected[3:] == [-1, -1]  # ("b", 2) and ("c", 1) were never measured
    # few rows (more combinations than rows: sorted) and many (a table of combinations)
    assert family.codes(q, tp).tolist() == expected
    assert family.codes(np.tile(q, 50), np.tile(tp, 50)).tolist() == expected * 50


def test_family_scaling_multiplies_cells_and_restores_monotonicity():
    frame = pd.DataFrame({"k": ["a"] * 3, "n": [1, 2, 4], "ms": [1.0, 2.0, 4.0]})
    family = GridFamily.from_frame(frame, ["k"], ["n"], "ms", exponents=[1.0])
    codes, n = family.mesh()
    halved = family.scaled(np.where(n > 1, 0.1, 1.0))  # would make n=2 faster than n=1
    values = halved(codes.ravel(), n.ravel())
    assert (np.diff(values) >= 0).all()
