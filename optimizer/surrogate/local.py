"""What the measurements of one deployment family say that the features do not.

A *family* is one model on one GPU with one engine, weight format and KV dtype: the
rows that share everything but the parallel degrees, the lengths and the concurrency.
The learned correction sees a family only through physics features, so an offset that
belongs to the family itself (an engine build's fixed cost on that GPU, a kernel the
tables time badly for that model) shows up as a residual shared by the family's
sweeps. Measured with every sweep held out in turn (the out-of-fold residuals the
intervals are calibrated on), it is what the model will get wrong on the family's next
unseen sweep too -- so the surrogate adds it back, shrunk towards zero by how many rows
support it (a pseudo-count ``shrink``)::

    offset(family) = median(residuals) * count / (count + shrink)

Families without measured rows (a new model, a new GPU, a hypothetical GPU) get no
offset. The offset is a constant per family, so it keeps every monotonicity of the
prediction in concurrency, lengths and hardware figures within the family.

Measured on the unseen-configuration split of the reference runs
(``benchmarks/surrogate_accuracy.py``), the offsets cut TPOT MAPE by about 2 points.

One engine build is not another: the reference runs hold some families measured with
two or three engine versions (DeepSeek-R1 on B200 with TensorRT-LLM 1.1.0rc2 and
1.2.0rc6; gpt-oss-120b on H100 with vLLM 0.11.2 and 0.18.0), and what the family
offset leaves differs by version mostly by 0.1-0.4 in log TPOT (by 1.7 for the vLLM 0.11.2
runs of gpt-oss-120b on H100, whose TPOT falls 2-3x from 64 to 512 clients). A second level,
:func:`fit_version_offsets`, fits the same shrunk median per family *and* engine version
on what the family offset leaves, for rows that record their version; a row without
one (or with a version nobody measured) gets the family offset alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

__all__ = [
    "FAMILY_COLUMNS",
    "LocalOffsets",
    "family_keys",
    "fit_local_offsets",
    "fit_version_offsets",
    "version_keys",
]

FAMILY_COLUMNS: tuple[str, ...] = ("model", "gpu", "engine", "quantization", "kv_cache_dtype")
"""The knobs a family shares."""

DEFAULT_SHRINK = 5.0
"""Pseudo-count of the shrinkage (rows' worth of evidence for a zero offset)."""


def family_keys(frame: pd.DataFrame) -> np.ndarray:
    """One text key per row from :data:`FAMILY_COLUMNS` (a null KV dtype reads ``bf16``)."""
    parts = []
    for column in FAMILY_COLUMNS:
        values = frame[column] if column in frame.columns else pd.Series(None, index=frame.index)
        if column == "kv_cache_dtype":
            values = values.astype(object).where(values.notna(), "bf16")
        parts.append(values.astype(str).to_numpy(dtype=object))
    return np.array(["|".join(row) for row in zip(*parts, strict=True)], dtype=object)


def version_keys(frame: pd.DataFrame, families: np.ndarray | None = None) -> np.ndarray:
    """Family key and engine version of every row (``None`` where the row records no
    ``engine_version``).

    Args:
        frame: rows in the native schema.
        families: the rows' :func:`family_keys`, when already computed.
    """
    families = family_keys(frame) if families is None else families
    if "engine_version" not in frame.columns:
        return np.full(len(frame), None, dtype=object)
    versions = frame["engine_version"].astype(object)
    present = versions.notna().to_numpy() & (versions.astype(str).str.strip() != "").to_numpy()
    keys = np.full(len(frame), None, dtype=object)
    keys[present] = [
        f"{family}|{version}"
        for family, version in zip(families[present], versions[present].astype(str), strict=True)
    ]
    return keys


@dataclass(frozen=True)
class LocalOffsets:
    """Log-space offset of every family with measured rows.

    Attributes:
        offsets: family key -> its shrunk median held-out log residual.
        counts: family key -> number of residuals behind it.
        shrink: pseudo-count of the shrinkage towards zero.
    """

    offsets: dict[str, float]
    counts: dict[str, int]
    shrink: float

    def offset(self, keys: ArrayLike) -> np.ndarray:
        """Each key's family offset (0 for families without measured rows)."""
        labels = np.asarray(keys, dtype=object).reshape(-1)
        codes, distinct = pd.factorize(labels)  # no key (None, NaN): code -1, no offset
        table = np.array([self.offsets.get(k, 0.0) for k in distinct] + [0.0], dtype=np.float64)
        return table[codes]


def _shrunk_median(values: np.ndarray, shrink: float) -> float:
    n = values.size
    return float(np.median(values)) * n / (n + shrink) if n else 0.0


def fit_local_offsets(
    residuals: ArrayLike, keys: ArrayLike, sweeps: ArrayLike, shrink: float = DEFAULT_SHRINK
) -> tuple[LocalOffsets, np.ndarray]:
    """Offsets per family, and the residuals left after them with each row's own sweep
    left out of its family's offset (what calibrates the intervals).

    The offset is the family's median residual (robust to the odd run measured far
    off its neighbours, which TTFT has many of) times ``n / (n + shrink)``.

    Args:
        residuals: held-out log residuals ``log(measured) - log(predicted)``, one per row,
            each from a fit that did not see the row's sweep.
        keys: family key of every row (:func:`family_keys`).
        sweeps: sweep label of every row (rows held out together).
        shrink: pseudo-count of the shrinkage.

    Returns:
        The offsets, and ``residuals - offset`` where each offset leaves out the row's
        sweep (as it would be for a sweep never measured).

    Example:
        >>> offsets, rest = fit_local_offsets([0.2, 0.2, 0.2, 0.2], ["a"] * 4, [0, 0, 1, 1], 0.0)
        >>> round(float(offsets.offset(["a", "b"])[0]), 6), float(offsets.offset(["b"])[0])
        (0.2, 0.0)
        >>> [round(float(r), 6) for r in rest]
        [0.0, 0.0, 0.0, 0.0]
    """
    r = np.asarray(residuals, dtype=np.float64)
    labels = np.asarray(keys, dtype=object)
    sweep_labels = np.asarray(sweeps)
    rest = r.copy()
    offsets: dict[str, float] = {}
    counts: dict[str, int] = {}
    for key, rows in pd.Series(np.arange(r.size)).groupby(labels).indices.items():
        family = r[rows]
        offsets[str(key)] = _shrunk_median(family, shrink)
        counts[str(key)] = int(family.size)
        own = sweep_labels[rows]
        for sweep in np.unique(own):
            mine = own == sweep
            rest[rows[mine]] -= _shrunk_median(family[~mine], shrink)
    return LocalOffsets(offsets, counts, float(shrink)), rest


def fit_version_offsets(
    residuals: ArrayLike,
    rest: ArrayLike,
    keys: ArrayLike,
    sweeps: ArrayLike,
    shrink: float = DEFAULT_SHRINK,
) -> tuple[LocalOffsets, np.ndarray]:
    """Offsets per family and engine version, on what the family offsets leave.

    Args:
        residuals: held-out log residuals less their family's offset (fitted on all of
            the family's rows), one per row.
        rest: the calibration residuals :func:`fit_local_offsets` returned (each row's
            family offset fitted without its sweep).
        keys: :func:`version_keys` of every row; rows whose key is ``None`` take no part.
        sweeps: sweep label of every row.
        shrink: pseudo-count of the shrinkage.

    Returns:
        The offsets, and ``rest`` less each versioned row's offset fitted without its
        sweep.

    Example:
        >>> offsets, rest = fit_version_offsets(
        ...     [0.2, 0.2, -0.2, -0.2, 0.5], [0.2, 0.2, -0.2, -0.2, 0.5],
        ...     ["f|1", "f|1", "f|2", "f|2", None], [0, 1, 2, 3, 4], shrink=0.0)
        >>> [round(float(x), 6) for x in offsets.offset(["f|1", "f|2", None, "f|3"])]
        [0.2, -0.2, 0.0, 0.0]
        >>> [round(float(r), 6) for r in rest]
        [0.0, 0.0, 0.0, 0.0, 0.5]
    """
    r = np.asarray(residuals, dtype=np.float64)
    out = np.asarray(rest, dtype=np.float64).copy()
    labels = np.asarray(keys, dtype=object)
    versioned = ~pd.isna(labels)
    offsets, left = fit_local_offsets(
        r[versioned], labels[versioned], np.asarray(sweeps)[versioned], shrink
    )
    out[versioned] -= r[versioned] - left  # each row's offset without its own sweep
    return offsets, out
