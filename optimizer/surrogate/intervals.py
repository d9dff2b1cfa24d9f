"""Split-conformal prediction intervals on log-space residuals.

The surrogate predicts ``log(y)``; its out-of-fold residuals ``r = log(y) - log(p)``
(each from a model that did not see the residual's concurrency sweep) calibrate a band
``[p * exp(q_lo), p * exp(q_hi)]`` with ``q_lo``/``q_hi`` the finite-sample-corrected
``alpha / 2`` and ``1 - alpha / 2`` empirical quantiles (split conformal, Lei et al. 2018; the
two-sided signed version keeps skewed errors from widening both sides). The band is
a constant factor, so it keeps the point prediction's monotonicity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from optimizer.errors import InvalidInputError

__all__ = ["LogBand", "fit_log_band"]


@dataclass(frozen=True)
class LogBand:
    """Multiplicative interval ``[pred·exp(lo), pred·exp(hi)]``.

    Attributes:
        lo: lower log offset (<= 0 in practice).
        hi: upper log offset.
        coverage: the nominal coverage it was calibrated for.
    """

    lo: float
    hi: float
    coverage: float

    @property
    def width(self) -> float:
        """Width of the band in log space (``hi - lo``)."""
        return self.hi - self.lo

    def apply(self, prediction: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds around positive predictions."""
        pred = np.asarray(prediction, dtype=np.float64)
        return pred * np.exp(self.lo), pred * np.exp(self.hi)


def fit_log_band(residuals: ArrayLike, coverage: float = 0.9) -> LogBand:
    """Calibrate a :class:`LogBand` on out-of-fold log residuals.

    Args:
        residuals: ``log(measured) - log(predicted)`` of held-out rows.
        coverage: nominal coverage in (0, 1).

    Raises:
        InvalidInputError: coverage outside (0, 1) or fewer than 2 finite residuals.

    Example:
        >>> band = fit_log_band(np.linspace(-0.5, 0.5, 101), coverage=0.8)
        >>> round(band.lo, 2), round(band.hi, 2)
        (-0.42, 0.42)
    """
    if not 0.0 < coverage < 1.0:
        raise InvalidInputError("coverage", f"must be in (0, 1), got {coverage}")
    r = np.asarray(residuals, dtype=np.float64)
    r = r[np.isfinite(r)]
    n = r.size
    if n < 2:
        raise InvalidInputError("residuals", f"need at least 2 finite residuals, got {n}")
    alpha = 1.0 - coverage
    upper = min(1.0, np.ceil((n + 1) * (1.0 - alpha / 2.0)) / n)
    lower = max(0.0, np.floor((n + 1) * (alpha / 2.0)) / n - 1.0 / n)
    return LogBand(
        lo=float(np.quantile(r, lower, method="lower")),
        hi=float(np.quantile(r, upper, method="higher")),
        coverage=coverage,
    )
