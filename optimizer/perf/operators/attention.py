"""Attention latency from the measured prefill (context) and decode (generation) grids.

Each KV-cache dtype gets a grid over (head_dim, heads, KV heads, length, batch). Length
and batch are workload sizes: latency is monotone in both, and beyond the grid it
scales with batch, with the prompt length squared (prefill, full attention) or with
the cached length (decode). Head counts and head size describe the model, and kernels
switch paths along them (a multi-head decode kernel is slower than a grouped-query one
with more query heads), so those axes are interpolated but not forced monotone.

Sliding windows: windows that were measured use their own grids; any other window
uses the full-attention grid at the equivalent length -- the prompt length whose full
causal attention has as many query-key pairs (prefill), or the cache capped at the
window (decode).

Multi-head latent attention (rows of layout ``mla``, from the ``context_mla`` and
``generation_mla`` tables) gets a grid of its own over (heads, length, batch): its
kernels are not grouped-query kernels of any head size (the absorbed decode kernel
reads one 576-wide latent entry per token for all heads at once), and timing them as
such was off by up to 40x. :meth:`~_AttentionModel.predict_mla` answers from it.
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from optimizer.domain.enums import KVCacheDtype
from optimizer.errors import InvalidInputError
from optimizer.perf import work
from optimizer.perf.dtypes import format_values, parse_kv_dtype
from optimizer.perf.grid import GridFamily
from optimizer.perf.kernel_data import MLA_MEASURED_HEAD_DIM, MLA_MEASURED_LATENT_DIM
from optimizer.perf.operators._base import FamilySpec, OperatorModel, check_positive
from optimizer.perf.roofline import GpuFigures, RooflineCalibration, roofline_ms

__all__ = ["ContextAttentionModel", "GenerationAttentionModel", "equivalent_prompt_length"]

_MODEL_AXES = (False, False, False, True, True)
_FILL_ORDER = (4, 3, 1, 2, 0)  # batch first (time ~ batch), then length, heads, KV heads, head size
_MLA_SIZES_MONOTONE = (True, True, True)  # heads, length, batch: measured MLA time grows in all
_MLA_FILL_ORDER = (2, 1, 0)  # batch, length, heads


def equivalent_prompt_length(isl: ArrayLike, window: ArrayLike) -> np.ndarray:
    """Length of a full-attention prompt with as many query-key pairs as a windowed one.

    Solves ``s (s + 1) / 2 = pairs(isl, window)``; equals ``isl`` when the window is off
    (``<= 0``) or covers the prompt, and is non-decreasing in ``isl``.

    Example:
        >>> equivalent_prompt_length([100, 100], [0, 10]).round(1).tolist()
        [100.0, 43.2]
    """
    pairs = work.attended_pairs(isl, window)
    return (np.sqrt(8.0 * pairs + 1.0) - 1.0) / 2.0


def _check_heads(num_heads: np.ndarray, num_kv_heads: np.ndarray) -> None:
    if (num_kv_heads > num_heads).any():
        raise InvalidInputError("num_kv_heads", "must not exceed num_heads")


def _check_window(window: ArrayLike) -> np.ndarray:
    arr = np.asarray(window, dtype=float)
    if (~np.isfinite(arr) | (arr < 0)).any():
        raise InvalidInputError("window", "must be >= 0 (0: no sliding window)")
    return arr


class _AttentionModel(OperatorModel):
    """Shared layout of the two attention models (``length`` is ``isl`` or ``kv_len``)."""

    length_column: str
    length_exponent: float  # full attention, above the grid
    windowed_length_exponent: float  # measured windowed kernels, above the grid
    head_exponents: tuple[float, float, float]  # head_dim, num_heads, num_kv_heads
    mla_head_dim: int  # head size the MLA rows carry (see kernel_data)
    mla_shares_kv: bool  # MLA rows: one latent KV entry for all heads (decode)

    def _family_specs(self) -> dict[str, FamilySpec]:
        sizes = ("head_dim", "num_heads", "num_kv_heads", self.length_column, "batch")
        head_dim, heads, kv_heads = self.head_exponents
        full = (head_dim, heads, kv_heads, self.length_exponent, 1.0)
        windowed = (head_dim, heads, kv_heads, self.windowed_length_exponent, 1.0)
        mla = (1.0, self.length_exponent, 1.0)  # time ~ heads above the grid (compute)
        return {
            "full": FamilySpec(("kv_dtype",), sizes, full, _MODEL_AXES, _FILL_ORDER),
            "windowed": FamilySpec(
                ("kv_dtype", "window"), sizes, windowed, _MODEL_AXES, _FILL_ORDER
            ),
            "mla": FamilySpec(
                ("kv_dtype",),
                ("num_heads", self.length_column, "batch"),
                mla,
                _MLA_SIZES_MONOTONE,
                _MLA_FILL_ORDER,
            ),
        }

    def _family_rows(self, name: str, frame: pd.DataFrame) -> pd.DataFrame:
        mla = (frame["layout"] == "mla") if "layout" in frame else np.zeros(len(frame), bool)
        if name == "mla":
            return frame[mla]
        windowed = frame["window"] > 0
        return frame[windowed & ~mla] if name == "windowed" else frame[~windowed & ~mla]

    def _mesh(self, name: str, family: GridFamily) -> tuple[np.ndarray, ...]:
        if name == "mla":
            codes, heads, length, batch = family.mesh()
            kv_dtype = np.array([key[0] for key in family.keys], dtype=object)[codes]
            kv_heads = np.ones_like(heads) if self.mla_shares_kv else heads
            head_dim = np.full_like(heads, float(self.mla_head_dim))
            return kv_dtype, np.zeros_like(heads), head_dim, heads, kv_heads, length, batch
        codes, head_dim, heads, kv_heads, length, batch = family.mesh()
        kv_dtype = np.array([key[0] for key in family.keys], dtype=object)[codes]
        window = np.array(
            [key[1] if name == "windowed" else 0 for key in family.keys], dtype=float
        )[codes]
        return kv_dtype, window, head_dim, heads, kv_heads, length, batch

    @property
    def kv_dtypes(self) -> tuple[KVCacheDtype, ...]:
        """KV-cache dtypes with full-attention measurements."""
        self._check_fitted()
        family = self.families_.get("full")
        return tuple(KVCacheDtype(key[0]) for key in family.keys) if family else ()

    @property
    def windows(self) -> tuple[tuple[KVCacheDtype, int], ...]:
        """(KV dtype, window) pairs with their own sliding-window measurements."""
        self._check_fitted()
        family = self.families_.get("windowed")
        return tuple((KVCacheDtype(k[0]), int(k[1])) for k in family.keys) if family else ()

    def covers_kv_dtype(self, kv_dtype: KVCacheDtype | str | ArrayLike) -> np.ndarray:
        """Whether each query's KV dtype has full-attention measurements."""
        return self.covers("full", format_values(kv_dtype, parse_kv_dtype, "kv_dtype"))

    def covers_mla(self, kv_dtype: KVCacheDtype | str | ArrayLike) -> np.ndarray:
        """Whether each query's KV dtype has multi-head latent attention measurements."""
        return self.covers("mla", format_values(kv_dtype, parse_kv_dtype, "kv_dtype"))

    def predict_mla(
        self,
        batch: ArrayLike,
        length: ArrayLike,
        num_heads: ArrayLike,
        kv_dtype: KVCacheDtype | str | ArrayLike = KVCacheDtype.BF16,
        window: ArrayLike = 0,
        strict: bool = True,
    ) -> np.ndarray:
        """Latency in milliseconds of the measured multi-head latent attention kernels
        (DeepSeek-V3's head sizes) on one GPU.

        Args:
            batch: prompts (prefill) or sequences decoding one token each.
            length: tokens per prompt, or tokens each new token attends to.
            num_heads: query heads on this GPU (after tensor parallelism).
            kv_dtype: KV-cache dtype.
            window: tokens a query may attend to, 0 for all (no windowed MLA kernels
                were measured: a window stands in as the equivalent full length).
            strict: raise for a KV dtype without MLA measurements; else return NaN there.

        Returns:
            Float array of the broadcast shape of the arguments.
        """
        batch = check_positive("batch", batch)
        length = check_positive(self.length_column, length)
        heads = check_positive("num_heads", num_heads)
        window = _check_window(window)
        kv = format_values(kv_dtype, parse_kv_dtype, "kv_dtype")
        shape = np.broadcast_shapes(*(np.shape(a) for a in (batch, length, heads, kv, window)))
        length = self._equivalent_length(
            np.broadcast_to(length, shape), np.broadcast_to(window, shape)
        )
        return self._lookup("mla", [kv], [heads, length, batch], strict)

    def _predict(
        self,
        batch: ArrayLike,
        length: ArrayLike,
        num_heads: ArrayLike,
        num_kv_heads: ArrayLike,
        head_dim: ArrayLike,
        kv_dtype: KVCacheDtype | str | ArrayLike,
        window: ArrayLike,
        strict: bool,
    ) -> np.ndarray:
        batch = check_positive("batch", batch)
        length = check_positive(self.length_column, length)
        heads = check_positive("num_heads", num_heads)
        kv_heads = check_positive("num_kv_heads", num_kv_heads)
        head_dim = check_positive("head_dim", head_dim)
        _check_heads(*np.broadcast_arrays(heads, kv_heads))
        window = _check_window(window)
        kv = format_values(kv_dtype, parse_kv_dtype, "kv_dtype")
        shape = np.broadcast_shapes(
            *(np.shape(a) for a in (batch, length, heads, kv_heads, head_dim, kv, window))
        )
        kv, window = np.broadcast_to(kv, shape), np.broadcast_to(window, shape)
        sizes = [np.broadcast_to(a, shape) for a in (head_dim, heads, kv_heads, length, batch)]
        out = np.full(shape, np.nan)
        measured = (window > 0) & self.covers("windowed", kv, window.astype(int))
        if measured.any():
            out[measured] = self._lookup(
                "windowed",
                [kv[measured], window[measured].astype(int)],
                [s[measured] for s in sizes],
                strict=True,
            )
        rest = ~measured
        if rest.any():
            sizes[3] = np.where(rest, self._equivalent_length(sizes[3], window), sizes[3])
            out[rest] = self._lookup("full", [kv[rest]], [s[rest] for s in sizes], strict)
        return out

    @abstractmethod
    def _equivalent_length(self, length: np.ndarray, window: np.ndarray) -> np.ndarray:
        """The full-attention length standing in for a window without measurements."""


class ContextAttentionModel(_AttentionModel):
    """Latency of causal prefill attention for ``batch`` prompts of ``isl`` tokens each.

    Example:
        >>> from optimizer.perf.kernel_data import load_kernel_table
        >>> table = load_kernel_table("h100_sxm", "context_attention", "vllm")
        >>> model = ContextAttentionModel().fit(table)
        >>> t = model.predict(batch=1, isl=[1024, 8192], num_heads=32, num_kv_heads=8, head_dim=128)
        >>> bool(t[0] < t[1])
        True
    """

    operator = "context_attention"
    required_columns = (
        "kv_dtype",
        "window",
        "head_dim",
        "num_heads",
        "num_kv_heads",
        "batch",
        "isl",
    )
    length_column = "isl"
    length_exponent = 2.0
    windowed_length_exponent = 1.0
    head_exponents = (1.0, 1.0, 0.0)  # compute grows with query heads and head size
    mla_head_dim = MLA_MEASURED_HEAD_DIM
    mla_shares_kv = False

    def _family_work(
        self, name: str, family: GridFamily, figures: GpuFigures, calibration: RooflineCalibration
    ) -> np.ndarray:
        kv_dtype, window, head_dim, heads, kv_heads, isl, batch = self._mesh(name, family)
        return roofline_ms(
            work.context_attention_flops(batch, isl, heads, head_dim, window),
            work.context_attention_bytes(batch, isl, heads, kv_heads, head_dim, kv_dtype),
            figures.peak_flops("bf16"),
            figures.mem_bw_bytes_s,
            calibration.arrays("context_attention"),
        )

    def _equivalent_length(self, length: np.ndarray, window: np.ndarray) -> np.ndarray:
        return equivalent_prompt_length(length, window)

    def predict(
        self,
        batch: ArrayLike,
        isl: ArrayLike,
        num_heads: ArrayLike,
        num_kv_heads: ArrayLike,
        head_dim: ArrayLike,
        kv_dtype: KVCacheDtype | str | ArrayLike = KVCacheDtype.BF16,
        window: ArrayLike = 0,
        strict: bool = True,
    ) -> np.ndarray:
        """Latency in milliseconds of prefill attention on one GPU.

        Args:
            batch: prompts in the batch.
            isl: tokens per prompt.
            num_heads: query heads on this GPU (after tensor parallelism).
            num_kv_heads: KV heads on this GPU.
            head_dim: size of one head.
            kv_dtype: KV-cache dtype.
            window: sliding window in tokens, 0 for none.
            strict: raise for a KV dtype without measurements; else return NaN there.

        Returns:
            Float array of the broadcast shape of the arguments.
        """
        return self._predict(
            batch, isl, num_heads, num_kv_heads, head_dim, kv_dtype, window, strict
        )


class GenerationAttentionModel(_AttentionModel):
    """Latency of one decode step's attention for ``batch`` sequences of ``kv_len`` cached tokens.

    Example:
        >>> from optimizer.perf.kernel_data import load_kernel_table
        >>> table = load_kernel_table("h100_sxm", "generation_attention", "vllm")
        >>> model = GenerationAttentionModel().fit(table)
        >>> t = model.predict(batch=[8, 64], kv_len=4096, num_heads=32, num_kv_heads=8, head_dim=64)
        >>> bool(t[0] < t[1])
        True
    """

    operator = "generation_attention"
    required_columns = (
        "kv_dtype",
        "window",
        "head_dim",
        "num_heads",
        "num_kv_heads",
        "batch",
        "kv_len",
    )
    length_column = "kv_len"
    length_exponent = 1.0
    windowed_length_exponent = 0.0  # the cache stops growing at the window
    head_exponents = (1.0, 0.0, 1.0)  # bytes grow with KV heads and head size
    mla_head_dim = MLA_MEASURED_LATENT_DIM
    mla_shares_kv = True

    def _family_work(
        self, name: str, family: GridFamily, figures: GpuFigures, calibration: RooflineCalibration
    ) -> np.ndarray:
        kv_dtype, window, head_dim, heads, kv_heads, kv_len, batch = self._mesh(name, family)
        return roofline_ms(
            work.generation_attention_flops(batch, kv_len, heads, head_dim, window),
            work.generation_attention_bytes(
                batch, kv_len, heads, kv_heads, head_dim, kv_dtype, window
            ),
            figures.peak_flops("bf16"),
            figures.mem_bw_bytes_s,
            calibration.arrays("generation_attention"),
        )

    def _equivalent_length(self, length: np.ndarray, window: np.ndarray) -> np.ndarray:
        return np.where(window > 0, np.minimum(length, np.where(window > 0, window, 1.0)), length)

    def predict(
        self,
        batch: ArrayLike,
        kv_len: ArrayLike,
        num_heads: ArrayLike,
        num_kv_heads: ArrayLike,
        head_dim: ArrayLike,
        kv_dtype: KVCacheDtype | str | ArrayLike = KVCacheDtype.BF16,
        window: ArrayLike = 0,
        strict: bool = True,
    ) -> np.ndarray:
        """Latency in milliseconds of one decode step's attention on one GPU.

        Args:
            batch: sequences decoding one token each.
            kv_len: tokens each new token attends to (cache plus itself).
            num_heads: query heads on this GPU (after tensor parallelism).
            num_kv_heads: KV heads on this GPU.
            head_dim: size of one head.
            kv_dtype: KV-cache dtype.
            window: sliding window in tokens, 0 for none.
            strict: raise for a KV dtype without measurements; else return NaN there.

        Returns:
            Float array of the broadcast shape of the arguments.
        """
        return self._predict(
            batch, kv_len, num_heads, num_kv_heads, head_dim, kv_dtype, window, strict
        )
