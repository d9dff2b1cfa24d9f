"""Roofline latencies: FLOPs over compute, bytes over bandwidth, plus a fixed overhead.

``time = max(flops / (peak_flops * compute_eff), bytes / (bandwidth * memory_eff)) + overhead``

The GPU enters only through a few peak figures (:class:`GpuFigures`), so this works for
any GPU, measured or not, and never gets slower when a figure grows. Efficiencies say
how much of the peak kernels reach; :func:`fit_efficiency` fits them to measured kernel
times (per operator, and per weight format for GEMM and MoE, whose kernels differ most),
and :data:`DEFAULT_CALIBRATION` holds the values used where nothing was measured.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import least_squares

from optimizer.domain.enums import KVCacheDtype, Quantization
from optimizer.errors import InvalidInputError
from optimizer.perf import work
from optimizer.perf.dtypes import PEAK_FLOPS_FIELD, parse_quantization

__all__ = [
    "DEFAULT_CALIBRATION",
    "IDEAL",
    "OPERATORS",
    "Efficiency",
    "GpuFigures",
    "Roofline",
    "RooflineCalibration",
    "fit_efficiency",
    "roofline_ms",
]


@dataclass(frozen=True)
class GpuFigures:
    """The peak figures of a GPU that a roofline needs.

    Attributes:
        mem_bw_tb_s: peak memory bandwidth, TB/s.
        bf16_tflops: dense BF16 tensor-core TFLOPS.
        fp8_tflops: dense FP8 TFLOPS; ``None`` where FP8 has no tensor-core path.
        fp4_tflops: dense FP4 TFLOPS; ``None`` where FP4 has no tensor-core path.
        interconnect_gb_s: per-GPU, one-direction GPU-to-GPU bandwidth, GB/s.
    """

    mem_bw_tb_s: float
    bf16_tflops: float
    fp8_tflops: float | None = None
    fp4_tflops: float | None = None
    interconnect_gb_s: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in ("mem_bw_tb_s", "bf16_tflops"):
                raise InvalidInputError(f.name, "is required for a roofline")
            if value is not None and not (np.isfinite(value) and value > 0):
                raise InvalidInputError(f.name, f"must be a positive number, got {value!r}")

    @classmethod
    def of(cls, gpu: object) -> GpuFigures:
        """Figures from any object with these attributes (a catalog ``GPUSpec`` ...).

        Example:
            >>> GpuFigures.of(GpuFigures(3.35, 989.0)).bf16_tflops
            989.0
        """
        if isinstance(gpu, GpuFigures):
            return gpu
        values: dict[str, Any] = {f.name: getattr(gpu, f.name, None) for f in fields(cls)}
        return cls(**values)

    @property
    def mem_bw_bytes_s(self) -> float:
        return self.mem_bw_tb_s * 1e12

    @property
    def interconnect_bytes_s(self) -> float | None:
        return None if self.interconnect_gb_s is None else self.interconnect_gb_s * 1e9

    def peak_flops(self, quantization: Quantization | str) -> float:
        """Peak FLOP/s a format computes at: its own tensor-core rate where the GPU has
        one, else the rate it is emulated at (FP8 on Ampere, FP4 on Hopper: BF16)."""
        q = parse_quantization(quantization)
        for name in PEAK_FLOPS_FIELD[q]:
            value = getattr(self, name)
            if value is not None:
                return float(value) * 1e12
        raise AssertionError("bf16_tflops is always set")  # pragma: no cover

    def peak_flops_array(self, quantization: Quantization | str | ArrayLike) -> np.ndarray:
        """:meth:`peak_flops` for a scalar or an array of formats."""
        arr = np.asarray(quantization, dtype=object)
        out = np.empty(arr.shape, dtype=float)
        for name in set(arr.reshape(-1).tolist()):
            out[arr == name] = self.peak_flops(name)
        return out


@dataclass(frozen=True)
class Efficiency:
    """Fractions of peak that kernels of one operator reach, and their fixed cost.

    Attributes:
        compute: achieved / peak tensor-core FLOP/s in the compute-bound limit.
        memory: achieved / peak bandwidth (HBM, or the interconnect for collectives) in
            the bandwidth-bound limit.
        overhead_ms: fixed latency per kernel (launch, synchronisation, tail).
    """

    compute: float = 0.7
    memory: float = 0.8
    overhead_ms: float = 0.005

    def __post_init__(self) -> None:
        for name in ("compute", "memory"):
            value = getattr(self, name)
            if not (np.isfinite(value) and 0 < value <= 2):
                raise InvalidInputError(name, f"efficiency must be in (0, 2], got {value!r}")
        if not (np.isfinite(self.overhead_ms) and self.overhead_ms >= 0):
            raise InvalidInputError("overhead_ms", f"must be >= 0, got {self.overhead_ms!r}")


IDEAL = Efficiency(compute=1.0, memory=1.0, overhead_ms=0.0)
"""Both peaks reached, no overhead: a lower bound no kernel beats."""

OPERATORS: tuple[str, ...] = (
    "gemm",
    "context_attention",
    "generation_attention",
    "moe",
    "all_reduce",
)

# Defaults where nothing was measured: the medians of what fit_efficiency finds on the
# vLLM tables of eight measured NVIDIA GPUs (A100, L40S, RTX PRO 6000, H100, H200, B200,
# GB200, B300; aiconfigurator-core 0.12.0, printed by benchmarks/kernel_accuracy.py),
# rounded, with memory efficiencies capped at 1 (small kernels beat the HBM roofline
# from L2 in those micro-benchmarks). Memory 0.8 would be aiconfigurator's own HBM
# derating; the fits are lower because they also absorb launch and tail effects.
# Prefill attention and MoE reach little of the peak at the small sizes that dominate
# the tables; decode attention and collectives are never compute-bound (efficiency 1).
_DEFAULTS: dict[str, Efficiency] = {
    "gemm": Efficiency(compute=0.5, memory=0.55, overhead_ms=0.013),
    "context_attention": Efficiency(compute=0.43, memory=0.21, overhead_ms=0.013),
    "generation_attention": Efficiency(compute=1.0, memory=0.58, overhead_ms=0.012),
    "moe": Efficiency(compute=0.13, memory=0.77, overhead_ms=0.044),
    "all_reduce": Efficiency(compute=1.0, memory=0.56, overhead_ms=0.015),
}
_DEFAULTS_BY_FORMAT: dict[tuple[str, str], Efficiency] = {
    ("gemm", "bf16"): Efficiency(compute=0.73, memory=0.74, overhead_ms=0.003),
    ("gemm", "fp8"): Efficiency(compute=0.4, memory=0.42, overhead_ms=0.009),
    ("gemm", "fp8_block"): Efficiency(compute=0.73, memory=1.0, overhead_ms=0.2),
    ("gemm", "nvfp4"): Efficiency(compute=0.38, memory=0.5, overhead_ms=0.009),
    ("moe", "bf16"): Efficiency(compute=0.2, memory=0.9, overhead_ms=0.038),
    ("moe", "fp8"): Efficiency(compute=0.13, memory=0.78, overhead_ms=0.035),
    ("moe", "fp8_block"): Efficiency(compute=0.08, memory=0.88, overhead_ms=0.047),
    ("moe", "int4_wo"): Efficiency(compute=0.07, memory=0.48, overhead_ms=0.075),
    ("moe", "mxfp4"): Efficiency(compute=0.06, memory=0.54, overhead_ms=0.035),
    ("moe", "nvfp4"): Efficiency(compute=0.13, memory=0.79, overhead_ms=0.028),
}


@dataclass(frozen=True)
class RooflineCalibration:
    """Efficiencies per operator, optionally refined per quantization.

    ``entries`` holds ``(operator, quantization or None, Efficiency)``; a lookup for a
    quantization without its own entry falls back to the operator's entry, then to the
    built-in default (see :data:`DEFAULT_CALIBRATION`).

    Example:
        >>> cal = DEFAULT_CALIBRATION.with_efficiency("gemm", "fp8", Efficiency(0.6, 0.7, 0.004))
        >>> cal.efficiency("gemm", "fp8").compute, cal.efficiency("gemm", "mxfp4").compute
        (0.6, 0.5)
    """

    entries: tuple[tuple[str, str | None, Efficiency], ...] = (
        *((op, None, eff) for op, eff in _DEFAULTS.items()),
        *((op, q, eff) for (op, q), eff in _DEFAULTS_BY_FORMAT.items()),
    )

    def efficiency(
        self, operator: str, quantization: Quantization | str | None = None
    ) -> Efficiency:
        """The efficiency of an operator (for one weight format, where it has its own)."""
        if operator not in _DEFAULTS:
            raise InvalidInputError(
                "operator", f"unknown roofline operator {operator!r}", OPERATORS
            )
        q = None if quantization is None else parse_quantization(quantization).value
        found = {(op, qq): eff for op, qq, eff in self.entries}
        return found.get((operator, q)) or found.get((operator, None)) or _DEFAULTS[operator]

    def with_efficiency(
        self, operator: str, quantization: Quantization | str | None, efficiency: Efficiency
    ) -> RooflineCalibration:
        """A copy with one entry added or replaced."""
        if operator not in _DEFAULTS:
            raise InvalidInputError(
                "operator", f"unknown roofline operator {operator!r}", OPERATORS
            )
        q = None if quantization is None else parse_quantization(quantization).value
        kept = tuple(e for e in self.entries if (e[0], e[1]) != (operator, q))
        return RooflineCalibration((*kept, (operator, q, efficiency)))

    def without(self, operator: str) -> RooflineCalibration:
        """A copy with every entry of one operator removed (lookups then use the default)."""
        return RooflineCalibration(tuple(e for e in self.entries if e[0] != operator))

    def arrays(
        self, operator: str, quantization: Quantization | str | ArrayLike | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Compute efficiency, memory efficiency and overhead for each query's format."""
        if quantization is None:
            eff = self.efficiency(operator)
            return np.asarray(eff.compute), np.asarray(eff.memory), np.asarray(eff.overhead_ms)
        arr = np.asarray(quantization, dtype=object)
        out = [np.empty(arr.shape) for _ in range(3)]
        for name in set(arr.reshape(-1).tolist()):
            eff = self.efficiency(operator, name)
            mask = arr == name
            out[0][mask], out[1][mask], out[2][mask] = eff.compute, eff.memory, eff.overhead_ms
        return out[0], out[1], out[2]


DEFAULT_CALIBRATION = RooflineCalibration()
"""Efficiencies used for GPUs without measured kernels."""


def roofline_ms(
    flops: ArrayLike,
    bytes_moved: ArrayLike,
    peak_flops: ArrayLike,
    bandwidth: ArrayLike,
    efficiency: Efficiency | tuple[ArrayLike, ArrayLike, ArrayLike] | None = None,
) -> np.ndarray:
    """Roofline latency in milliseconds.

    Args:
        flops: floating-point operations.
        bytes_moved: bytes through the bottleneck memory (or link).
        peak_flops: peak FLOP/s.
        bandwidth: peak bytes/s.
        efficiency: fractions of those peaks reached, and the fixed overhead; or a
            ``(compute, memory, overhead_ms)`` tuple of arrays, one value per query;
            ``None`` is the ideal roofline (both peaks reached, no overhead).

    Example:
        >>> # 4096^3 BF16 GEMM on a 1000-TFLOPS GPU at efficiency 1: 2 * 4096^3 / 1e15 s
        >>> t = roofline_ms(2 * 4096**3, 0, 1e15, 1e12)
        >>> round(float(t), 6)
        0.137439
    """
    if efficiency is None:
        efficiency = IDEAL
    if isinstance(efficiency, Efficiency):
        compute, memory, overhead = (
            np.asarray(efficiency.compute),
            np.asarray(efficiency.memory),
            np.asarray(efficiency.overhead_ms),
        )
    else:
        compute, memory, overhead = (np.asarray(a, dtype=float) for a in efficiency)
    compute_s = np.asarray(flops, dtype=float) / (np.asarray(peak_flops, dtype=float) * compute)
    memory_s = np.asarray(bytes_moved, dtype=float) / (np.asarray(bandwidth, dtype=float) * memory)
    return 1e3 * np.maximum(compute_s, memory_s) + overhead


def fit_efficiency(
    flops: ArrayLike,
    bytes_moved: ArrayLike,
    measured_ms: ArrayLike,
    peak_flops: ArrayLike,
    bandwidth: ArrayLike,
    max_rows: int = 5000,
    random_state: int = 0,
) -> Efficiency:
    """Efficiencies that make :func:`roofline_ms` fit measured times best (log error).

    Minimises the squared log ratio of roofline to measured time over (a random sample
    of at most ``max_rows``) rows, with the efficiencies bounded to (0.01, 2] and the
    overhead to [1e-5, 1] ms. When no row is compute-bound (collectives, decode
    attention), the data says nothing about the compute efficiency and it is set to 1.

    Args:
        flops, bytes_moved: work of each measured kernel call.
        measured_ms: their measured latencies.
        peak_flops, bandwidth: the GPU's peaks for each row (FLOP/s, bytes/s).
        max_rows: rows used at most (the fit is a 3-parameter problem).
        random_state: seed of the row sample.

    Returns:
        The fitted :class:`Efficiency`.
    """
    arrays = np.broadcast_arrays(
        *(
            np.asarray(a, dtype=float)
            for a in (flops, bytes_moved, measured_ms, peak_flops, bandwidth)
        )
    )
    flops_, bytes_, measured, peak, bw = (a.reshape(-1) for a in arrays)
    ok = np.isfinite(measured) & (measured > 0)
    flops_, bytes_, measured, peak, bw = flops_[ok], bytes_[ok], measured[ok], peak[ok], bw[ok]
    if measured.size == 0:
        raise InvalidInputError("measured_ms", "no positive measurements to fit efficiencies to")
    if measured.size > max_rows:
        pick = np.random.default_rng(random_state).choice(measured.size, max_rows, replace=False)
        flops_, bytes_, measured, peak, bw = (
            flops_[pick],
            bytes_[pick],
            measured[pick],
            peak[pick],
            bw[pick],
        )
    compute_ms = 1e3 * flops_ / peak
    memory_ms = 1e3 * bytes_ / bw
    log_measured = np.log(measured)
    has_compute = bool((compute_ms > 0).any())  # collectives move bytes only

    def residual(params: np.ndarray) -> np.ndarray:
        log_c, log_m, log_o = params if has_compute else (0.0, *params)
        t = np.maximum(compute_ms / np.exp(log_c), memory_ms / np.exp(log_m)) + np.exp(log_o)
        return np.log(t) - log_measured

    overhead_start = max(float(np.min(measured)) * 0.5, 1e-4)
    start = np.log([0.6, 0.7, overhead_start] if has_compute else [0.7, overhead_start])
    low = np.log([0.01, 0.01, 1e-5] if has_compute else [0.01, 1e-5])
    high = np.log([2.0, 2.0, 1.0] if has_compute else [2.0, 1.0])
    result = least_squares(residual, np.clip(start, low + 1e-9, high - 1e-9), bounds=(low, high))
    log_c, log_m, log_o = result.x if has_compute else (0.0, *result.x)
    if not (compute_ms / np.exp(log_c) >= memory_ms / np.exp(log_m)).any():
        log_c = 0.0  # no row is compute-bound: the data cannot tell, so assume the peak
    return Efficiency(
        compute=float(np.exp(log_c)), memory=float(np.exp(log_m)), overhead_ms=float(np.exp(log_o))
    )


class Roofline:
    """Operator latencies (ms) for one GPU from FLOPs, bytes and efficiencies alone.

    Every method is vectorised over numpy-broadcastable arguments and monotone
    non-decreasing in every size; more bandwidth or FLOPS never makes it slower.

    Example:
        >>> roof = Roofline(GpuFigures(mem_bw_tb_s=3.35, bf16_tflops=989.0, fp8_tflops=1979.0))
        >>> roof.gemm(4096, 4096, 4096, "bf16").shape
        ()
    """

    def __init__(self, gpu: object, calibration: RooflineCalibration = DEFAULT_CALIBRATION):
        """Args:
        gpu: :class:`GpuFigures` or any object with the same attributes.
        calibration: efficiencies per operator.
        """
        self.figures = GpuFigures.of(gpu)
        self.calibration = calibration

    def gemm(
        self, m: ArrayLike, n: ArrayLike, k: ArrayLike, quantization: Quantization | str | ArrayLike
    ) -> np.ndarray:
        """An ``(m x k) @ (k x n)`` GEMM with weights in ``quantization``."""
        return roofline_ms(
            work.gemm_flops(m, n, k),
            work.gemm_bytes(m, n, k, quantization),
            self.figures.peak_flops_array(quantization),
            self.figures.mem_bw_bytes_s,
            self.calibration.arrays("gemm", quantization),
        )

    def context_attention(
        self,
        batch: ArrayLike,
        isl: ArrayLike,
        num_heads: ArrayLike,
        num_kv_heads: ArrayLike,
        head_dim: ArrayLike,
        kv_dtype: KVCacheDtype | str | ArrayLike = KVCacheDtype.BF16,
        window: ArrayLike = 0,
    ) -> np.ndarray:
        """Causal prefill attention of ``batch`` prompts of ``isl`` tokens (16-bit math)."""
        return roofline_ms(
            work.context_attention_flops(batch, isl, num_heads, head_dim, window),
            work.context_attention_bytes(batch, isl, num_heads, num_kv_heads, head_dim, kv_dtype),
            self.figures.peak_flops(Quantization.BF16),
            self.figures.mem_bw_bytes_s,
            self.calibration.arrays("context_attention"),
        )

    def generation_attention(
        self,
        batch: ArrayLike,
        kv_len: ArrayLike,
        num_heads: ArrayLike,
        num_kv_heads: ArrayLike,
        head_dim: ArrayLike,
        kv_dtype: KVCacheDtype | str | ArrayLike = KVCacheDtype.BF16,
        window: ArrayLike = 0,
    ) -> np.ndarray:
        """One decode step's attention for ``batch`` sequences with ``kv_len`` cached tokens."""
        return roofline_ms(
            work.generation_attention_flops(batch, kv_len, num_heads, head_dim, window),
            work.generation_attention_bytes(
                batch, kv_len, num_heads, num_kv_heads, head_dim, kv_dtype, window
            ),
            self.figures.peak_flops(Quantization.BF16),
            self.figures.mem_bw_bytes_s,
            self.calibration.arrays("generation_attention"),
        )

    def moe(
        self,
        num_tokens: ArrayLike,
        hidden: ArrayLike,
        inter: ArrayLike,
        topk: ArrayLike,
        num_experts: ArrayLike,
        quantization: Quantization | str | ArrayLike,
        tp: ArrayLike = 1,
        ep: ArrayLike = 1,
        gated: ArrayLike = True,
        balanced: ArrayLike = True,
    ) -> np.ndarray:
        """The routed experts of one MoE layer on one rank (``inter`` before TP sharding)."""
        return roofline_ms(
            work.moe_flops(num_tokens, hidden, inter, topk, tp, ep, gated),
            work.moe_bytes(
                num_tokens, hidden, inter, topk, num_experts, quantization, tp, ep, gated, balanced
            ),
            self.figures.peak_flops_array(quantization),
            self.figures.mem_bw_bytes_s,
            self.calibration.arrays("moe", quantization),
        )

    def all_reduce(self, message_bytes: ArrayLike, num_gpus: ArrayLike) -> np.ndarray:
        """A ring all-reduce of ``message_bytes`` over ``num_gpus`` GPUs (0 for one GPU).

        Raises:
            InvalidInputError: the GPU figures have no ``interconnect_gb_s``.
        """
        link = self.figures.interconnect_bytes_s
        if link is None:
            raise InvalidInputError("interconnect_gb_s", "is required to time collectives")
        n = np.asarray(num_gpus, dtype=float)
        t = roofline_ms(
            0.0,
            work.all_reduce_wire_bytes(message_bytes, n),
            1.0,
            link,
            self.calibration.arrays("all_reduce"),
        )
        return np.where(n > 1, t, 0.0)
