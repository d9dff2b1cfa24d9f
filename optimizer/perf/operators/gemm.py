"""GEMM latency from the measured m x n x k grids, per weight format."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from optimizer.domain.enums import Quantization
from optimizer.perf import work
from optimizer.perf.dtypes import format_values
from optimizer.perf.grid import GridFamily
from optimizer.perf.operators._base import FamilySpec, OperatorModel, check_positive
from optimizer.perf.roofline import GpuFigures, RooflineCalibration, roofline_ms

__all__ = ["GemmModel"]

_SPEC = FamilySpec(
    keys=("quantization",),
    sizes=("m", "n", "k"),
    exponents=(1.0, 1.0, 1.0),  # beyond the grid, time grows with the work: m n k
    monotone=(True, True, True),
    fill_order=(0, 1, 2),
)


class GemmModel(OperatorModel):
    """Latency of ``(m x k) @ (k x n)`` GEMMs with weights in a given format.

    One grid per format over (m, n, k), interpolated as piecewise power laws in
    log-size space, monotone non-decreasing in m, n and k; above the largest measured
    size the time scales linearly with that size, below the smallest it is constant.

    Example:
        >>> from optimizer.perf.kernel_data import load_kernel_table
        >>> model = GemmModel().fit(load_kernel_table("h100_sxm", "gemm", "vllm"))
        >>> t = model.predict(m=[1, 4096], n=4096, k=4096, quantization="bf16")
        >>> bool(t[0] < t[1])
        True
    """

    operator = "gemm"
    required_columns = ("quantization", "m", "n", "k")

    def _family_specs(self) -> dict[str, FamilySpec]:
        return {"gemm": _SPEC}

    def _family_rows(self, name: str, frame: pd.DataFrame) -> pd.DataFrame:
        return frame

    def _family_work(
        self, name: str, family: GridFamily, figures: GpuFigures, calibration: RooflineCalibration
    ) -> np.ndarray:
        codes, m, n, k = family.mesh()
        formats = np.array([key[0] for key in family.keys], dtype=object)[codes]
        return roofline_ms(
            work.gemm_flops(m, n, k),
            work.gemm_bytes(m, n, k, formats),
            figures.peak_flops_array(formats),
            figures.mem_bw_bytes_s,
            calibration.arrays("gemm", formats),
        )

    @property
    def quantizations(self) -> tuple[Quantization, ...]:
        """Weight formats with measurements."""
        self._check_fitted()
        return tuple(Quantization(key[0]) for key in self.families_["gemm"].keys)

    def covers_quantization(self, quantization: Quantization | str | ArrayLike) -> np.ndarray:
        """Whether each query's format has measurements."""
        return self.covers("gemm", format_values(quantization))

    def predict(
        self,
        m: ArrayLike,
        n: ArrayLike,
        k: ArrayLike,
        quantization: Quantization | str | ArrayLike,
        strict: bool = True,
    ) -> np.ndarray:
        """Latency in milliseconds of each GEMM.

        Args:
            m: rows of the activations (tokens), >= 1.
            n: output features, >= 1.
            k: input features, >= 1.
            quantization: weight format (scalar or one per query).
            strict: raise for a format without measurements; else return NaN there.

        Returns:
            Float array of the broadcast shape of the arguments.

        Raises:
            InvalidInputError: a size below 1 or an unknown format name.
            NotFoundError: with ``strict``, a format without measurements.
        """
        sizes = [check_positive("m", m), check_positive("n", n), check_positive("k", k)]
        return self._lookup("gemm", [format_values(quantization)], sizes, strict)
