"""Leaning on the prior outside the training domain: closed-form checks of the blend
and of the weight chosen on held-out groups."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import optimizer.surrogate.shift as shift_module
from optimizer.surrogate.shift import SHIFT_WEIGHTS, blend, fit_shift_correction


def test_docstring_examples():
    result = doctest.testmod(shift_module)
    assert result.failed == 0 and result.attempted > 0


def test_blend_is_the_weighted_geometric_mean():
    learned, prior = np.array([100.0, 8.0]), np.array([1.0, 2.0])
    out = blend(np.log(learned), np.log(prior), np.array([0.5, 0.25]))
    assert out == pytest.approx([10.0, 8.0**0.75 * 2.0**0.25])
    assert blend(np.log(learned), np.log(prior), 0.0) == pytest.approx(learned)
    assert blend(np.log(learned), np.log(prior), 1.0) == pytest.approx(prior)


def test_exact_learned_model_keeps_weight_zero():
    rng = np.random.default_rng(1)
    truth = rng.normal(2.0, 0.5, 300)
    fit = fit_shift_correction(truth, truth - 0.7, truth, np.repeat([0, 1, 2], 100), 0.9)
    assert fit.weight == 0.0
    assert fit.mape == pytest.approx(0.0)
    assert fit.groups == 3


def test_weight_balances_opposite_biases():
    # learned is e^+0.2 too high, prior e^-0.2 too low: the geometric middle is exact
    truth = np.linspace(1.0, 3.0, 200)
    fit = fit_shift_correction(truth + 0.2, truth - 0.2, truth, np.arange(200) % 4, 0.9)
    assert fit.weight == 0.5
    assert fit.mape == pytest.approx(0.0, abs=1e-12)


def test_mape_is_averaged_per_group_not_per_row():
    # a big group with a small error and a small group with a large one: the row-wise
    # mean would follow the big group, the per-group mean weighs both alike
    truth = np.zeros(1010)
    groups = np.r_[np.zeros(1000), np.ones(10)]
    learned = np.r_[np.full(1000, 0.05), np.full(10, 1.0)]
    fit = fit_shift_correction(learned, truth, truth, groups, 0.9)
    assert fit.weight == 1.0
    assert fit.mape == pytest.approx(0.0)


def test_band_covers_the_held_out_residuals():
    rng = np.random.default_rng(2)
    truth = rng.normal(3.0, 1.0, 2000)
    noisy = truth + rng.normal(0.0, 0.3, 2000)
    fit = fit_shift_correction(noisy, noisy, truth, np.arange(2000) % 5, 0.9)
    lo, hi = fit.band.apply(np.exp(noisy))
    inside = (np.exp(truth) >= lo) & (np.exp(truth) <= hi)
    assert 0.88 <= inside.mean() <= 0.92
    assert fit.weight in SHIFT_WEIGHTS


def test_one_broken_group_does_not_outvote_the_others():
    # two groups where the prior is exact and the learned model 65 % high, and one
    # broken group where the prior is 7x high: the mean of the groups' MAPEs would keep
    # the learned model (weight 0), their trimmed mean follows the majority (weight 1)
    truth = np.zeros(300)
    groups = np.repeat([0, 1, 2], 100)
    learned = np.where(groups < 2, 0.5, 0.0)
    prior = np.where(groups < 2, 0.0, 2.0)
    fit = fit_shift_correction(learned, prior, truth, groups, 0.9)
    assert fit.weight == 1.0
    assert fit.mape == pytest.approx(0.0)


def test_the_weight_minimises_the_trimmed_mean_of_the_group_mapes():
    rng = np.random.default_rng(7)
    truth = rng.normal(3.0, 1.0, 600)
    groups = np.repeat(np.arange(6), 100)
    learned = truth + rng.normal(0.3, 0.2, 600) * (groups + 1) / 3
    prior = truth + rng.normal(-0.2, 0.4, 600)
    fit = fit_shift_correction(learned, prior, truth, groups, 0.9)

    def by_hand(weight: float) -> float:
        ape = np.abs(np.exp((1 - weight) * learned + weight * prior - truth) - 1)
        per_group = np.sort([ape[groups == g].mean() for g in range(6)])
        return float(per_group[1:-1].mean())  # best and worst group left out

    scores = {w: by_hand(w) for w in SHIFT_WEIGHTS}
    assert fit.weight == min(scores, key=scores.get)
    assert fit.mape == pytest.approx(scores[fit.weight])


def test_a_clip_range_is_chosen_where_the_learned_model_runs_off():
    rng = np.random.default_rng(1)
    truth = rng.normal(3.0, 1.0, 1000)
    prior = truth + rng.normal(0.0, 0.3, 1000)
    learned = truth + rng.normal(0.0, 0.05, 1000)  # better than the prior ...
    off = rng.random(1000) < 0.05
    learned[off] += 1.5  # ... but for extrapolation gone wrong on a twentieth of the rows
    groups = np.arange(1000) % 5
    ratio = truth - prior
    bounds = {0.1: (np.full(1000, -0.5), np.full(1000, 0.5))}
    fit = fit_shift_correction(
        learned,
        prior,
        truth,
        groups,
        0.9,
        log_anchor=prior,
        held_out_bounds=bounds,
        train_log_ratio=ratio,
    )
    unclipped = fit_shift_correction(learned, prior, truth, groups, 0.9)
    assert unclipped.clip is None
    assert fit.weight == unclipped.weight < 1.0  # the weight is chosen before the clip
    assert fit.clip_level == 0.1
    assert fit.clip == pytest.approx(tuple(np.quantile(ratio, [0.1, 0.9])))
    assert fit.mape < unclipped.mape
    held = fit.clipped(learned, prior)
    assert np.all(held <= prior + fit.clip[1] + 1e-12)
    assert np.all(held >= prior + fit.clip[0] - 1e-12)


def test_no_clip_when_it_changes_nothing():
    rng = np.random.default_rng(2)
    truth = rng.normal(3.0, 1.0, 500)
    prior = truth + 0.1
    learned = truth - 0.05
    bounds = {0.2: (np.full(500, -1.0), np.full(500, 1.0))}  # never binds
    fit = fit_shift_correction(
        learned,
        prior,
        truth,
        np.arange(500) % 4,
        0.9,
        log_anchor=prior,
        held_out_bounds=bounds,
        train_log_ratio=truth - prior,
    )
    assert fit.clip_level is None and fit.clip is None
    np.testing.assert_array_equal(fit.clipped(learned, prior), learned)
