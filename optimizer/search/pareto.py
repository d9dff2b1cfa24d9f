"""Pareto fronts and hypervolume, on moocore's implementations.

Non-domination and hypervolume come from ``moocore`` (the C library behind the
EAF/hypervolume tools of López-Ibáñez et al.); this module only orients the objectives
(maximised ones are negated), keeps one representative of points that tie, and
normalises objectives so hypervolumes of different runs compare.

Normalisation for hypervolume: each objective is mapped to ``[0, 1]`` between a
reference ideal and nadir point (the bounds of a reference set, such as the
exhaustive search's feasible candidates), on a log scale when the objective is
positive and spans orders of magnitude (cost, latency), and the reference point is
``1.1`` in every coordinate -- the usual convention for comparing fronts.

Example:
    >>> import numpy as np
    >>> pareto_mask(np.array([[1.0, 2.0], [2.0, 1.0], [2.0, 2.0]])).tolist()
    [True, True, False]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import moocore
import numpy as np
import pandas as pd

from optimizer.search.objectives import Objective, objective_matrix

__all__ = [
    "HV_REFERENCE",
    "SIGNIFICANT_DIGITS",
    "Normalizer",
    "hypervolume",
    "pareto_front",
    "pareto_mask",
    "round_significant",
]

HV_REFERENCE = 1.1
"""Reference point coordinate of normalised hypervolumes."""


SIGNIFICANT_DIGITS = 6
"""Objective values are compared at this precision: values equal to 6 significant
digits tie (the evaluator's bisections leave noise far below that)."""


def round_significant(values: np.ndarray, digits: int = SIGNIFICANT_DIGITS) -> np.ndarray:
    """``values`` rounded to ``digits`` significant digits (0 and non-finite kept)."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values) & (values != 0)
    magnitude = np.floor(np.log10(np.abs(np.where(finite, values, 1.0))))
    scale = 10.0 ** (digits - 1 - magnitude)
    return np.where(finite, np.round(values * scale) / scale, values)


def pareto_mask(points: np.ndarray) -> np.ndarray:
    """Rows of ``points`` (all minimised) that no other row dominates, compared at
    :data:`SIGNIFICANT_DIGITS`; of tying rows only the first is kept."""
    points = round_significant(np.asarray(points, dtype=np.float64))
    if len(points) == 0:
        return np.zeros(0, dtype=bool)
    finite = np.isfinite(points).all(axis=1)
    mask = np.zeros(len(points), dtype=bool)
    if finite.any():
        mask[finite] = moocore.is_nondominated(points[finite], keep_weakly=False)
    return mask


def pareto_front(
    frame: pd.DataFrame, objectives: Sequence[Objective], *, feasible: str | None = "slo_feasible"
) -> pd.DataFrame:
    """The non-dominated rows of ``frame`` (among ``feasible`` ones), sorted by the
    first objective; earlier rows win ties."""
    pool = frame[frame[feasible].astype(bool)] if feasible else frame
    mask = pareto_mask(objective_matrix(pool, objectives))
    front = pool[mask]
    return front.sort_values(objectives[0].column, ascending=objectives[0].sign > 0, kind="stable")


@dataclass(frozen=True)
class Normalizer:
    """Maps minimisation values to ``[0, 1]`` between an ideal and a nadir point.

    Attributes:
        ideal, nadir: per objective, in the (possibly log) scale used.
        log: per objective, whether values are compared on a log scale.
    """

    ideal: np.ndarray
    nadir: np.ndarray
    log: np.ndarray

    @classmethod
    def fit(cls, points: np.ndarray) -> Normalizer:
        """Bounds of a reference set of minimisation values (rows = points)."""
        points = np.asarray(points, dtype=np.float64)
        log = np.asarray((points > 0).all(axis=0))
        scaled = np.where(log, np.log(np.where(log, points, 1.0)), points)
        ideal, nadir = scaled.min(axis=0), scaled.max(axis=0)
        nadir = np.where(nadir > ideal, nadir, ideal + 1.0)
        return cls(ideal=ideal, nadir=nadir, log=log)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64)
        safe = np.where(self.log, np.maximum(points, 1e-300), 1.0)
        scaled = np.where(self.log, np.log(safe), points)
        return (scaled - self.ideal) / (self.nadir - self.ideal)


def hypervolume(points: np.ndarray, normalizer: Normalizer) -> float:
    """Hypervolume of minimisation ``points`` after ``normalizer``, up to the
    reference point :data:`HV_REFERENCE` (points beyond it add nothing)."""
    points = np.asarray(points, dtype=np.float64)
    if len(points) == 0:
        return 0.0
    scaled = normalizer(points)
    inside = (scaled < HV_REFERENCE).all(axis=1)
    if not inside.any():
        return 0.0
    reference = np.full(scaled.shape[1], HV_REFERENCE)
    return float(moocore.hypervolume(scaled[inside], ref=reference))
