"""Latency curves: the surrogate's TTFT and TPOT of each layout over a concurrency grid.

The surrogate reads only the layout of a candidate (GPU, engine, weight format, KV
dtype, tp, dp, ep) and the load (concurrency, prompt and output length); the other
knobs (batch limit, speculative decoding, KV block size, prefill chunk) act through
the evaluator's analytical model. So the evaluator predicts each distinct layout once
on a geometric grid of concurrencies, for each length profile it needs, and
interpolates between grid points in log-log space: a few hundred surrogate rows serve
tens of thousands of candidates, at any fractional concurrency.

Curves are made non-decreasing along the grid (a running maximum), which the surrogate
guarantees by construction up to numerical noise; below concurrency 1 they are flat.
The model uncertainty is carried as ``sigma``, the log-space standard deviation that
makes the surrogate's interval a central interval of a log-normal.

Example:
    >>> concurrency_grid(64).tolist()[:8]
    [1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 11.0, 16.0]
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.special import ndtri

from optimizer.domain.gpu import GPUSpec
from optimizer.domain.model_spec import ModelSpec

if TYPE_CHECKING:
    from optimizer.surrogate import Surrogate

__all__ = ["LAYOUT_COLUMNS", "CurveStore", "concurrency_grid"]

LAYOUT_COLUMNS: tuple[str, ...] = (
    "gpu",
    "engine",
    "quantization",
    "kv_cache_dtype",
    "tp",
    "dp",
    "ep",
)
"""The candidate columns the surrogate's prediction depends on."""

_METRICS = ("ttft_ms", "tpot_ms")


def concurrency_grid(max_concurrency: float, points_per_octave: int = 2) -> np.ndarray:
    """Distinct integer concurrencies ``round(2^(i / points_per_octave))`` up to and
    including the first one at or above ``max_concurrency``."""
    top = max(1.0, float(max_concurrency))
    steps = math.ceil(points_per_octave * math.log2(top)) + 1
    raw = np.rint(2.0 ** (np.arange(steps) / points_per_octave))
    return np.unique(raw).astype(np.float64)


class CurveStore:
    """Latency curves of every layout seen so far, predicted on demand in batches.

    Args:
        surrogate: a fitted surrogate.
        model: the served model.
        gpus: spec of every GPU id a candidate may name (hypothetical ones included).
        profiles: ``(isl, osl)`` pairs (mean tokens) to predict at.
        max_concurrency: the largest concurrency any lookup needs.
    """

    def __init__(
        self,
        surrogate: Surrogate,
        model: ModelSpec,
        gpus: Mapping[str, GPUSpec],
        profiles: Sequence[tuple[int, int]],
        max_concurrency: float,
    ):
        self._surrogate = copy.copy(surrogate).set_params(
            gpus=dict(gpus), models={model.model_id: model}
        )
        self._model_id = model.model_id
        self.profiles = tuple((int(i), int(o)) for i, o in profiles)
        self.grid = concurrency_grid(max_concurrency)
        self._log_grid = np.log(self.grid)
        self._index: dict[tuple, int] = {}
        shape = (0, len(self.profiles), len(self.grid))
        self._log: dict[str, np.ndarray] = {m: np.empty(shape) for m in _METRICS}
        self._sigma: dict[str, np.ndarray] = {m: np.empty(shape) for m in _METRICS}
        self.predicted_rows = 0

    @classmethod
    def shared(
        cls,
        cache: dict[Any, CurveStore] | None,
        surrogate: Surrogate,
        model: ModelSpec,
        gpus: Mapping[str, GPUSpec],
        profiles: Sequence[tuple[int, int]],
        max_concurrency: float,
    ) -> CurveStore:
        """The store for these inputs from ``cache`` (created and kept there if new).

        Prices are not part of the key: curves do not depend on them.
        """
        key = (
            id(surrogate),
            model.model_dump_json(),
            tuple(
                (
                    gpu_id,
                    g.model_dump_json(exclude={"price_usd_per_hour", "price_source", "price_date"}),
                )
                for gpu_id, g in sorted(gpus.items())
            ),
            tuple(profiles),
            float(max_concurrency),
        )
        store = cache.get(key) if cache is not None else None
        if store is None:
            store = cls(surrogate, model, gpus, profiles, max_concurrency)
            if cache is not None:
                cache[key] = store
        return store

    def __len__(self) -> int:
        return len(self._index)

    def layout_index(self, candidates: pd.DataFrame) -> np.ndarray:
        """Row of each candidate's layout in the curve arrays (predicting new ones)."""
        keys = list(
            zip(*(candidates[c].astype(str).to_numpy() for c in LAYOUT_COLUMNS), strict=True)
        )
        missing = list(dict.fromkeys(k for k in keys if k not in self._index))
        if missing:
            self._predict(missing)
        return np.fromiter((self._index[k] for k in keys), dtype=np.int64, count=len(keys))

    def _predict(self, layouts: list[tuple]) -> None:
        n_l, n_p, n_g = len(layouts), len(self.profiles), len(self.grid)
        layout = pd.DataFrame(layouts, columns=list(LAYOUT_COLUMNS))
        for col in ("tp", "dp", "ep"):
            layout[col] = layout[col].astype(np.int64)
        rows = layout.loc[np.repeat(np.arange(n_l), n_p * n_g)].reset_index(drop=True)
        rows["model"] = self._model_id
        rows["pp"] = 1
        rows["mode"] = "agg"
        profile = np.tile(np.repeat(np.arange(n_p), n_g), n_l)
        rows["isl"] = np.array([p[0] for p in self.profiles], dtype=np.int64)[profile]
        rows["osl"] = np.array([p[1] for p in self.profiles], dtype=np.int64)[profile]
        rows["concurrency"] = np.tile(self.grid, n_l * n_p).astype(np.int64)
        pred = self._surrogate.predict(rows)
        self.predicted_rows += len(rows)
        z90 = float(ndtri(0.95))
        for metric in _METRICS:
            mean = pred[metric].to_numpy(np.float64).reshape(n_l, n_p, n_g)
            lo = pred[f"{metric}_lo"].to_numpy(np.float64).reshape(n_l, n_p, n_g)
            hi = pred[f"{metric}_hi"].to_numpy(np.float64).reshape(n_l, n_p, n_g)
            log_mean = np.maximum.accumulate(np.log(mean), axis=2)
            sigma = np.log(hi / lo) / (2.0 * z90)
            sigma = np.where(np.isfinite(sigma), np.maximum(sigma, 0.0), 0.0)
            self._log[metric] = np.concatenate([self._log[metric], log_mean])
            self._sigma[metric] = np.concatenate([self._sigma[metric], sigma])
        start = len(self._index)
        self._index.update({k: start + i for i, k in enumerate(layouts)})

    def position(self, concurrency: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grid cell and weight of each concurrency (log-log interpolation); below 1
        reads the value at 1, beyond the grid the last point."""
        x = np.clip(np.log(np.maximum(concurrency, 1.0)), 0.0, self._log_grid[-1])
        if len(self.grid) == 1:
            return np.zeros(np.shape(x), dtype=np.int64), np.zeros(np.shape(x))
        j = np.clip(np.searchsorted(self._log_grid, x, side="right") - 1, 0, len(self.grid) - 2)
        return j, (x - self._log_grid[j]) / (self._log_grid[j + 1] - self._log_grid[j])

    def at(
        self,
        metric: str,
        layout: np.ndarray,
        profile: int,
        position: tuple[np.ndarray, np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(value, sigma)`` of ``metric`` for layouts ``layout`` at a
        :meth:`position`; ``layout`` broadcasts against it (e.g. ``(n, 1)`` against
        ``(n, J)``)."""
        j, w = position
        nxt = np.minimum(j + 1, len(self.grid) - 1)
        log_values = self._log[metric][:, profile, :]
        sigmas = self._sigma[metric][:, profile, :]
        value = np.exp(log_values[layout, j] * (1.0 - w) + log_values[layout, nxt] * w)
        sigma = sigmas[layout, j] * (1.0 - w) + sigmas[layout, nxt] * w
        return value, sigma
