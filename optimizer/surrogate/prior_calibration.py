"""The prior's TTFT as a closed-loop benchmark measures it: a per-engine mix of its terms.

The operator prior's ``ttft_ms`` is the prefill of a request next to the running
decodes. A closed-loop benchmark's mean TTFT is several times that (3x on vLLM, 12x on
SGLang at the median of the reference runs), and by a factor that moves with the load:
a new request also waits behind the prefills of the requests that arrived with it (the
first wave behind all of them, the prior's ``burst_prefill_ms``) and behind decode
steps the scheduler runs before admitting it (the prior's ``tpot_ms``). How much of each
shows is the engine's scheduling policy, not the model's or the GPU's, so it transfers
to models and GPUs without measured runs::

    ttft = c_prefill * prior.ttft_ms + c_burst * prior.burst_prefill_ms + c_step * prior.tpot_ms

with one set of non-negative coefficients per engine, fitted on the training runs in
log space (median-unbiased: no systematic under-prediction, which a percentage error
would reward), with a Huber loss (scale 0.5 in log) so that a few broken sweeps do not
set them. Every term is non-decreasing in input length and non-increasing in GPU speed,
and so is a non-negative mix of them; each term is in milliseconds, so a GPU twice as
slow on every operator predicts twice the TTFT (no compression across GPUs, which a
fit of log TTFT on log terms would bring).

Measured as the partner the surrogate blends in for new models and GPUs, in place of
one per-engine factor on ``ttft_ms`` (the previous partner), with everything else equal
(3,198 reference runs, held-out fits of ``Surrogate``): TTFT MAPE on held-out models
54.0 -> 52.0 %, on held-out GPUs 53.7 -> 50.6 %; on the aiconfigurator comparison rows
(three dense models, held out) 36.2 -> 43.9 %. The gains are on the MoE models
(Kimi-K2.5 44.8 -> 27.6 %, gpt-oss-120b 76.2 -> 53.5 %), the losses on the dense Llamas
(Llama-3.1-70B 47.4 -> 60.4 %): the engines' mixes are set mostly by MoE runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.optimize import least_squares, nnls

__all__ = ["POOLED", "TERMS_BY_TARGET", "PriorCalibration", "fit_prior_calibration"]

TERMS_BY_TARGET: dict[str, tuple[str, ...]] = {
    "ttft_ms": ("ttft_ms", "burst_prefill_ms", "tpot_ms"),
    "tpot_ms": ("tpot_ms",),
}
"""Per target, the prior-frame columns whose mix estimates it (TPOT: a per-engine factor)."""

POOLED = "*"
"""Key of the coefficients fitted on all engines together (for an engine without runs)."""

HUBER_SCALE = 0.5
"""Log residual beyond which a run's pull on the coefficients stops growing."""

MIN_ROWS_PER_TERM = 5
"""An engine needs this many runs per coefficient for its own fit, else it is pooled."""


@dataclass(frozen=True)
class PriorCalibration:
    """Non-negative coefficients on prior terms, per engine.

    Attributes:
        terms: prior-frame columns, in coefficient order.
        coefficients: per engine (and :data:`POOLED`), one coefficient per term.
    """

    terms: tuple[str, ...]
    coefficients: Mapping[str, tuple[float, ...]]

    def predict(self, prior: pd.DataFrame, engines: ArrayLike) -> np.ndarray:
        """The calibrated prior (ms) of every row; an engine without its own
        coefficients gets the pooled ones.

        Example:
            >>> cal = PriorCalibration(("a", "b"), {"*": (1.0, 0.0), "vllm": (2.0, 0.5)})
            >>> frame = pd.DataFrame({"a": [10.0, 10.0], "b": [4.0, 4.0]})
            >>> cal.predict(frame, ["vllm", "sglang"]).tolist()
            [22.0, 10.0]
        """
        values = prior[list(self.terms)].to_numpy(np.float64)
        engines = np.asarray(engines).astype(str)
        out = values @ np.asarray(self.coefficients[POOLED], dtype=np.float64)
        for engine, coefficients in self.coefficients.items():
            rows = engines == engine
            if engine != POOLED and rows.any():
                out[rows] = values[rows] @ np.asarray(coefficients, dtype=np.float64)
        return out


def _fit_coefficients(values: np.ndarray, measured: np.ndarray) -> tuple[float, ...]:
    """Non-negative ``c`` minimising the Huber loss of ``log(values @ c) - log(measured)``.

    The first term's coefficient is kept positive (it is the only term that is never
    zero), so the mix is positive wherever the prior is.
    """
    # start from the non-negative least squares in relative terms (a convex problem)
    start, _ = nnls(values / measured[:, None], np.ones(len(measured)))
    lower = np.zeros(values.shape[1])
    lower[0] = 1e-6
    start = np.maximum(start, lower + 1e-3)
    log_measured = np.log(measured)
    fit = least_squares(
        lambda c: np.log(values @ c) - log_measured,
        start,
        bounds=(lower, np.inf),
        loss="huber",
        f_scale=HUBER_SCALE,
    )
    return tuple(round(float(c), 9) for c in fit.x)


def fit_prior_calibration(
    prior: pd.DataFrame,
    measured: ArrayLike,
    engines: ArrayLike,
    terms: Sequence[str] = TERMS_BY_TARGET["ttft_ms"],
) -> PriorCalibration:
    """Fit the per-engine coefficients on measured runs.

    Args:
        prior: the prior frame of the runs (:func:`~optimizer.surrogate.features.prior_frame`).
        measured: the measured target (ms), aligned with ``prior``.
        engines: every run's engine.
        terms: the prior columns to mix.

    Returns:
        The calibration, with pooled coefficients and one set per engine that has at
        least :data:`MIN_ROWS_PER_TERM` runs per term.

    Example:
        >>> prior = pd.DataFrame({"ttft_ms": [10.0, 20.0, 30.0], "tpot_ms": [1.0, 1.0, 2.0]})
        >>> truth = 2 * prior["ttft_ms"] + 10 * prior["tpot_ms"]
        >>> fit = fit_prior_calibration(prior, truth, ["vllm"] * 3, ("ttft_ms", "tpot_ms"))
        >>> [round(c, 3) for c in fit.coefficients["*"]]
        [2.0, 10.0]
    """
    values = prior[list(terms)].to_numpy(np.float64)
    y = np.asarray(measured, dtype=np.float64)
    labels = np.asarray(engines).astype(str)
    coefficients = {POOLED: _fit_coefficients(values, y)}
    for engine in np.unique(labels):
        rows = labels == engine
        if rows.sum() >= MIN_ROWS_PER_TERM * len(terms):
            coefficients[str(engine)] = _fit_coefficients(values[rows], y[rows])
    return PriorCalibration(tuple(terms), coefficients)
