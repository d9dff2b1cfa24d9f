"""Quantiles, dispersion and splits of the workload's sequence-length distributions.

The fast evaluator sizes a request's tail latency by its length at a quantile (a long
prompt takes longer to prefill, a long answer longer to decode), and the queueing
model needs the variability of service times, which comes from the spread of output
lengths. These are closed forms for the parametric distributions and weighted
quantiles for empirical ones.

Example:
    >>> from optimizer.domain import LogNormalLength
    >>> round(length_quantile(LogNormalLength(median=1000, sigma=0.5), 0.95))
    2276
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.special import ndtri

from optimizer.domain.workload import (
    EmpiricalLength,
    FixedLength,
    LengthDistribution,
    LogNormalLength,
    UniformLength,
)
from optimizer.errors import InvalidInputError

__all__ = [
    "length_cv2",
    "length_quantile",
    "length_second_moment",
    "sample_lengths",
    "split_lengths",
]


def _weighted(dist: EmpiricalLength) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(dist.values, dtype=np.float64)
    weights = np.ones_like(values) if dist.weights is None else np.asarray(dist.weights, np.float64)
    order = np.argsort(values, kind="stable")
    return values[order], weights[order] / weights.sum()


def length_quantile(dist: LengthDistribution, q: float) -> float:
    """Tokens at quantile ``q`` (0 < q < 1) of a length distribution.

    Raises:
        InvalidInputError: ``q`` outside (0, 1).
    """
    if not 0.0 < q < 1.0:
        raise InvalidInputError("quantile", f"must be in (0, 1), got {q!r}")
    if isinstance(dist, FixedLength):
        return float(dist.tokens)
    if isinstance(dist, UniformLength):
        return float(dist.low + q * (dist.high - dist.low))
    if isinstance(dist, LogNormalLength):
        value = dist.median * math.exp(dist.sigma * float(ndtri(q)))
        upper = float(dist.max_tokens) if dist.max_tokens is not None else math.inf
        return float(min(max(value, 1.0), upper))
    values, weights = _weighted(dist)
    cumulative = np.cumsum(weights)
    return float(values[min(int(np.searchsorted(cumulative, q)), len(values) - 1)])


def length_second_moment(dist: LengthDistribution) -> float:
    """``E[tokens^2]`` (of the unclipped distribution for log-normal lengths)."""
    if isinstance(dist, FixedLength):
        return float(dist.tokens) ** 2
    if isinstance(dist, UniformLength):
        n = dist.high - dist.low + 1
        return dist.mean() ** 2 + (n * n - 1) / 12.0
    if isinstance(dist, LogNormalLength):
        return dist.median**2 * math.exp(2.0 * dist.sigma**2)
    values, weights = _weighted(dist)
    return float(np.sum(weights * values**2))


def length_cv2(dists: Sequence[LengthDistribution], shares: Sequence[float]) -> float:
    """Squared coefficient of variation of the mixture ``sum share_i * dist_i``."""
    mean = sum(s * d.mean() for d, s in zip(dists, shares, strict=True))
    second = sum(s * length_second_moment(d) for d, s in zip(dists, shares, strict=True))
    return max(second / (mean * mean) - 1.0, 0.0)


def sample_lengths(dist: LengthDistribution, n: int, seed: int = 0) -> np.ndarray:
    """``n`` integer lengths drawn from ``dist`` with a fixed seed (reproducible)."""
    rng = np.random.default_rng(seed)
    if isinstance(dist, FixedLength):
        return np.full(n, dist.tokens, dtype=np.int64)
    if isinstance(dist, UniformLength):
        return rng.integers(dist.low, dist.high + 1, size=n)
    if isinstance(dist, LogNormalLength):
        raw = dist.median * np.exp(dist.sigma * rng.standard_normal(n))
        upper = dist.max_tokens if dist.max_tokens is not None else np.inf
        return np.clip(np.rint(raw), 1, upper).astype(np.int64)
    values, weights = _weighted(dist)
    return rng.choice(values, size=n, p=weights).astype(np.int64)


def split_lengths(
    dist: LengthDistribution, threshold: float, *, n: int = 4096, seed: int = 0
) -> tuple[tuple[float, EmpiricalLength], tuple[float, EmpiricalLength]] | None:
    """Split a distribution at ``threshold`` tokens into a short and a long class.

    The classes are empirical distributions of a seeded sample (``n`` draws), so any
    parametric form splits the same way.

    Returns:
        ``((share_short, short), (share_long, long))``, or ``None`` when one side is
        empty (the threshold does not split the distribution).
    """
    sample = sample_lengths(dist, n, seed)
    short = sample[sample <= threshold]
    long = sample[sample > threshold]
    if short.size == 0 or long.size == 0:
        return None

    def empirical(values: np.ndarray) -> EmpiricalLength:
        unique, counts = np.unique(values, return_counts=True)
        return EmpiricalLength(
            values=tuple(int(v) for v in unique), weights=tuple(float(c) for c in counts)
        )

    share = short.size / sample.size
    return (share, empirical(short)), (1.0 - share, empirical(long))
