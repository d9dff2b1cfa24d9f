"""All-reduce latency from the measured message-size sweeps, per GPU count.

Each GPU count gets a curve over message bytes, monotone, and linear in bytes above the
largest measured message. Alongside, an alpha-beta model ``latency = alpha + bytes /
bandwidth`` is fitted per GPU count (least relative squared error, both terms >= 0): a
two-number summary per GPU count that the surrogate can use as features and that
shows how far the bandwidth term alone explains the curve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.optimize import nnls

from optimizer.errors import NotFoundError
from optimizer.perf import work
from optimizer.perf.grid import GridFamily
from optimizer.perf.operators._base import FamilySpec, OperatorModel, check_positive
from optimizer.perf.roofline import GpuFigures, RooflineCalibration, roofline_ms

__all__ = ["AllReduceModel", "AlphaBeta"]

_SPEC = FamilySpec(
    keys=("num_gpus",),
    sizes=("message_bytes",),
    exponents=(1.0,),
    monotone=(True,),
    fill_order=(0,),
)


@dataclass(frozen=True)
class AlphaBeta:
    """``latency_ms = alpha_ms + message_bytes / (bandwidth_gb_s * 1e6)``.

    Attributes:
        alpha_ms: fixed latency.
        bandwidth_gb_s: algorithm bandwidth (message bytes per second / 1e9).
    """

    alpha_ms: float
    bandwidth_gb_s: float

    @classmethod
    def fit(cls, message_bytes: ArrayLike, latency_ms: ArrayLike) -> AlphaBeta:
        """Least relative squared error fit with both terms non-negative.

        Example:
            >>> sizes = [1e6, 2e6, 4e6]
            >>> ab = AlphaBeta.fit(sizes, [0.01 + s / 1e8 for s in sizes])
            >>> round(ab.alpha_ms, 6), round(ab.bandwidth_gb_s, 3)
            (0.01, 100.0)
        """
        x = np.asarray(message_bytes, dtype=float)
        y = np.asarray(latency_ms, dtype=float)
        scale = max(float(x.max()), 1.0)
        design = np.stack([np.ones_like(x), x / scale], axis=1) / y[:, None]
        (alpha, slope), _ = nnls(design, np.ones_like(y))
        slope /= scale
        bandwidth = 1e-6 / slope if slope > 0 else float("inf")
        return cls(float(alpha), float(bandwidth))

    def predict(self, message_bytes: ArrayLike) -> np.ndarray:
        return self.alpha_ms + np.asarray(message_bytes, dtype=float) / (self.bandwidth_gb_s * 1e6)


class AllReduceModel(OperatorModel):
    """Latency of an all-reduce of ``message_bytes`` across ``num_gpus`` GPUs.

    Fit it on a ``custom_all_reduce`` table (the engine's own kernel; the faster of its
    CUDA-graph and eager variants is kept) or on NCCL rows (``collective ==
    "all_reduce"`` is selected when the column is there), or both concatenated.

    Example:
        >>> from optimizer.perf.kernel_data import load_kernel_table
        >>> model = AllReduceModel().fit(load_kernel_table("h100_sxm", "custom_all_reduce", "vllm"))
        >>> t = model.predict(message_bytes=[8192, 64 * 2**20], num_gpus=8)
        >>> bool(t[0] < t[1])
        True

    Attributes:
        alpha_beta_: per GPU count, the fitted :class:`AlphaBeta`.
    """

    operator = "custom_all_reduce"
    required_columns = ("num_gpus", "message_bytes")

    def __init__(self) -> None:
        super().__init__()
        self.alpha_beta_: dict[int, AlphaBeta] = {}

    def _family_specs(self) -> dict[str, FamilySpec]:
        return {"all_reduce": _SPEC}

    def _family_rows(self, name: str, frame: pd.DataFrame) -> pd.DataFrame:
        if "collective" in frame:
            frame = frame[frame["collective"] == "all_reduce"]
        return frame[frame["num_gpus"] > 1]

    def _fit_extra(self, frame: pd.DataFrame) -> None:
        rows = self._family_rows("all_reduce", frame)
        best = rows.groupby(["num_gpus", "message_bytes"], as_index=False)["latency_ms"].min()
        self.alpha_beta_ = {
            int(n): AlphaBeta.fit(g["message_bytes"], g["latency_ms"])
            for n, g in best.groupby("num_gpus")
        }

    def _family_work(
        self, name: str, family: GridFamily, figures: GpuFigures, calibration: RooflineCalibration
    ) -> np.ndarray:
        link = figures.interconnect_bytes_s
        if link is None:
            raise NotFoundError("GPU figure", "interconnect_gb_s")
        codes, message_bytes = family.mesh()
        num_gpus = np.array([key[0] for key in family.keys], dtype=float)[codes]
        wire = work.all_reduce_wire_bytes(message_bytes, num_gpus)
        return roofline_ms(0.0, wire, 1.0, link, calibration.arrays("all_reduce"))

    def _transfer_extra(
        self,
        original: OperatorModel,
        source: GpuFigures,
        target: GpuFigures,
        calibration: RooflineCalibration,
    ) -> None:
        assert isinstance(original, AllReduceModel)
        ratio = (target.interconnect_gb_s or 0.0) / (source.interconnect_gb_s or 1.0)
        self.alpha_beta_ = {
            n: AlphaBeta(ab.alpha_ms, ab.bandwidth_gb_s * ratio)
            for n, ab in original.alpha_beta_.items()
        }

    @property
    def gpu_counts(self) -> tuple[int, ...]:
        """GPU counts with measurements."""
        self._check_fitted()
        return tuple(int(key[0]) for key in self.families_["all_reduce"].keys)

    def covers_gpu_count(self, num_gpus: ArrayLike) -> np.ndarray:
        """Whether each query's GPU count was measured (one GPU always is: it costs 0)."""
        n = np.asarray(num_gpus).astype(np.int64)
        return (n == 1) | self.covers("all_reduce", n)

    def predict(
        self, message_bytes: ArrayLike, num_gpus: ArrayLike, strict: bool = True
    ) -> np.ndarray:
        """Latency in milliseconds; 0 for a single GPU.

        Args:
            message_bytes: bytes each GPU contributes (the tensor size).
            num_gpus: GPUs taking part.
            strict: raise for a GPU count without measurements; else return NaN there.

        Returns:
            Float array of the broadcast shape of the arguments.
        """
        size = check_positive("message_bytes", message_bytes)
        n = check_positive("num_gpus", num_gpus)
        shape = np.broadcast_shapes(size.shape, n.shape)
        size, n = np.broadcast_to(size, shape), np.broadcast_to(n, shape)
        out = np.zeros(shape)
        many = n > 1
        if many.any():
            out[many] = self._lookup("all_reduce", [n[many].astype(np.int64)], [size[many]], strict)
        return out
