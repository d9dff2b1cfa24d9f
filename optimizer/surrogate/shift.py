"""Leaning on the operator prior for models and GPUs the surrogate never saw.

A learned correction is only as good as its training rows are like the row asked
about. For a configuration of a known model on a known GPU it is far better than the
prior (it has seen the engine's real overheads), but for a model or a GPU outside the
training set its trees extrapolate, and measured on held-out models they can do worse
than the physics alone (the operator prior's median TPOT error on dense models it
never saw is ~20 %, a correction learned on MoE-heavy runs can double it).

So the surrogate blends, in log space, the learned prediction with the prior for rows
whose model architecture or GPU is not in its training set::

    log(pred) = (1 - w) * log(learned) + w * log(prior)

where TTFT's prior is first calibrated on the training runs as a per-engine mix of its
prefill, burst and decode-step times (:mod:`optimizer.surrogate.prior_calibration`).
The prior times a prefill next to the running decodes, 3-12x below a closed-loop
benchmark's TTFT; blended uncalibrated, it biased every new model's TTFT low (81 % of
the held-out models' runs under-predicted, by 1.6x at the median), which lowered their
TTFT MAPE from 54 to 41 % -- a percentage error rewards predicting low -- and made
every SLO check on them optimistic.

There is one weight ``w`` per target, chosen at fit time on grouped out-of-fold
predictions -- each model architecture held out in turn, and each GPU, pooled: exactly
the situations the weight is for -- as the weight in ``0, 0.1, ..., 1`` with the lowest
trimmed mean, over the held-out groups, of each group's mean absolute percentage error
(the best and the worst group left out, :func:`trimmed_mean`).
Pooled, the ~14 groups of the reference runs give the same weight whichever model or
GPU is left out of them; fitted per kind of shift and per dense/MoE model, on 2 to 9
groups each, the weights moved by 0.2-0.5 from one fit to the next, and the held-out
errors with them (TTFT on new GPUs 44.0 % against 39.6 % pooled).
Trimmed, not the plain mean: a percentage error is unbounded above, so one held-out
group whose runs are broken would outvote all the others. On the reference runs the
GB200 runs, many with mislabelled parallel degrees, are 250-650 % off under the prior's
TPOT and alone pinned the new-GPU TPOT weight at 0, while held-out H100 runs wanted it
near 1 (prior 20 % TPOT MAPE against the learned model's 60 %). Not the median either:
it rests on one or two groups and jumped between fits (TTFT weights 0.8-1.0 across the
leave-one-model-out fits, 0.4-1.0 across the leave-one-GPU-out ones). Against the
median, on the same held-out fits of the reference runs: new models TTFT 52.0 -> 51.8 %,
TPOT 22.3 -> 21.9 %; new GPUs 50.6 -> 48.6 %, 21.9 -> 21.3 %; the aiconfigurator rows'
TPOT 17.3 -> 16.1 %. (The mean of each group's median error instead: TPOT 23.2 % on new
models, 20.4 % on the aiconfigurator rows.) The same held-out residuals calibrate the
interval band used for such rows (wider than the one
for known models and GPUs, as it should be). A convex combination of two predictions
that are each monotone in concurrency, input length and hardware speed is monotone too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from optimizer.surrogate.intervals import LogBand, fit_log_band

__all__ = ["SHIFT_WEIGHTS", "ShiftCorrection", "blend", "fit_shift_correction", "trimmed_mean"]

SHIFT_WEIGHTS: tuple[float, ...] = tuple(np.round(np.linspace(0.0, 1.0, 11), 2))
"""Weights on the prior tried at fit time."""


@dataclass(frozen=True)
class ShiftCorrection:
    """How far to lean on the prior for rows outside the training domain.

    Attributes:
        weight: weight of the prior's log prediction (0 = learned only, 1 = prior only).
        band: interval band calibrated on held-out groups with that weight.
        groups: how many held-out groups the weight was chosen on.
        mape: the trimmed mean of their mean absolute percentage errors at ``weight``.
    """

    weight: float
    band: LogBand
    groups: int
    mape: float


def blend(log_learned: ArrayLike, log_prior: ArrayLike, weight: ArrayLike) -> np.ndarray:
    """``exp((1 - w) * log_learned + w * log_prior)``, element-wise.

    Example:
        >>> round(float(blend(np.log(100.0), np.log(25.0), 0.5)), 6)
        50.0
    """
    w = np.asarray(weight, dtype=np.float64)
    return np.exp((1.0 - w) * np.asarray(log_learned) + w * np.asarray(log_prior))


def trimmed_mean(values: ArrayLike) -> float:
    """Mean without the lowest and the highest value (of three or more; else the mean).

    Example:
        >>> trimmed_mean([1.0, 2.0, 3.0, 10.0, 100.0])
        5.0
        >>> trimmed_mean([1.0, 3.0])
        2.0
    """
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    return float(ordered[1:-1].mean() if len(ordered) >= 3 else ordered.mean())


def fit_shift_correction(
    log_learned: ArrayLike,
    log_prior: ArrayLike,
    log_measured: ArrayLike,
    groups: ArrayLike,
    coverage: float,
) -> ShiftCorrection:
    """Choose the prior's weight and calibrate the band on held-out-group predictions.

    Args:
        log_learned: out-of-fold log predictions of the learned model, each from a fit
            that did not see the row's group.
        log_prior: the prior's log predictions of the same rows.
        log_measured: the measured log values.
        groups: the held-out group of every row (model architecture or GPU).
        coverage: nominal coverage of the band.

    Returns:
        The weight with the lowest trimmed mean of the groups' MAPEs, and its band.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> truth = rng.normal(3.0, 1.0, 400)
        >>> groups = np.repeat(np.arange(4), 100)
        >>> fit = fit_shift_correction(truth + 1.0, truth, truth, groups, 0.9)
        >>> fit.weight   # the learned model is 2.7x off, the prior exact
        1.0
    """
    learned = np.asarray(log_learned, dtype=np.float64)
    prior = np.asarray(log_prior, dtype=np.float64)
    measured = np.asarray(log_measured, dtype=np.float64)
    labels = np.asarray(groups)
    _, codes = np.unique(labels, return_inverse=True)
    codes = codes.reshape(-1)
    counts = np.bincount(codes)

    def grouped_mape(weight: float) -> float:
        ape = np.abs(np.expm1((1.0 - weight) * learned + weight * prior - measured))
        return trimmed_mean(np.bincount(codes, weights=ape) / counts)

    scores = [grouped_mape(w) for w in SHIFT_WEIGHTS]
    best = int(np.argmin(scores))
    weight = float(SHIFT_WEIGHTS[best])
    residuals = measured - ((1.0 - weight) * learned + weight * prior)
    return ShiftCorrection(
        weight=weight,
        band=fit_log_band(residuals, coverage),
        groups=len(counts),
        mape=scores[best],
    )
