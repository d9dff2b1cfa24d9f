"""Fit roofline efficiencies per GPU from its measured kernel tables.

A GPU with kernel measurements gets its own :class:`~optimizer.perf.roofline.RooflineCalibration`
(used where its tables have no row for a query, and as a feature for the surrogate); a
GPU without measurements can borrow one from a similar GPU, which is how the H100 ->
H200 transfer figures in ``benchmarks/kernel_accuracy.py`` are made.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from optimizer.domain.enums import Quantization
from optimizer.errors import InvalidInputError
from optimizer.perf import work
from optimizer.perf.roofline import (
    DEFAULT_CALIBRATION,
    GpuFigures,
    RooflineCalibration,
    fit_efficiency,
    roofline_ms,
)

__all__ = ["CALIBRATED_OPERATORS", "fit_calibration", "operator_work", "roofline_for_table"]

CALIBRATED_OPERATORS: tuple[str, ...] = (
    "gemm",
    "context_attention",
    "generation_attention",
    "moe",
    "all_reduce",
)


def operator_work(operator: str, frame: pd.DataFrame, gpu: object) -> tuple[np.ndarray, ...]:
    """FLOPs, bytes, peak FLOP/s and bandwidth (bytes/s) of every row of a tidy table.

    Args:
        operator: ``gemm``, ``context_attention``, ``generation_attention``, ``moe`` or
            ``all_reduce`` (rows of a ``custom_all_reduce`` table or NCCL all-reduce rows).
        frame: tidy rows as :func:`~optimizer.perf.kernel_data.load_kernel_table` returns.
        gpu: :class:`GpuFigures` or an object with the same attributes.

    Returns:
        ``(flops, bytes_moved, peak_flops, bandwidth)``, one array entry per row.
    """
    figures = GpuFigures.of(gpu)
    bf16 = figures.peak_flops(Quantization.BF16)
    hbm = figures.mem_bw_bytes_s
    n = len(frame)
    if operator == "gemm":
        q = frame["quantization"].to_numpy(dtype=object)
        return (
            work.gemm_flops(frame["m"], frame["n"], frame["k"]),
            work.gemm_bytes(frame["m"], frame["n"], frame["k"], q),
            figures.peak_flops_array(q),
            np.full(n, hbm),
        )
    if operator == "context_attention":
        f = frame
        return (
            work.context_attention_flops(
                f["batch"], f["isl"], f["num_heads"], f["head_dim"], f["window"]
            ),
            work.context_attention_bytes(
                f["batch"],
                f["isl"],
                f["num_heads"],
                f["num_kv_heads"],
                f["head_dim"],
                f["kv_dtype"].to_numpy(object),
            ),
            np.full(n, bf16),
            np.full(n, hbm),
        )
    if operator == "generation_attention":
        f = frame
        return (
            work.generation_attention_flops(
                f["batch"], f["kv_len"], f["num_heads"], f["head_dim"], f["window"]
            ),
            work.generation_attention_bytes(
                f["batch"],
                f["kv_len"],
                f["num_heads"],
                f["num_kv_heads"],
                f["head_dim"],
                f["kv_dtype"].to_numpy(object),
                f["window"],
            ),
            np.full(n, bf16),
            np.full(n, hbm),
        )
    if operator == "moe":
        f = frame
        q = f["quantization"].to_numpy(dtype=object)
        balanced = (f["distribution"] == "balanced").to_numpy()
        return (
            work.moe_flops(
                f["num_tokens"], f["hidden"], f["inter"], f["topk"], f["tp"], f["ep"], f["gated"]
            ),
            work.moe_bytes(
                f["num_tokens"],
                f["hidden"],
                f["inter"],
                f["topk"],
                f["num_experts"],
                q,
                f["tp"],
                f["ep"],
                f["gated"],
                balanced,
            ),
            figures.peak_flops_array(q),
            np.full(n, hbm),
        )
    if operator == "all_reduce":
        link = figures.interconnect_bytes_s
        if link is None:
            raise InvalidInputError("interconnect_gb_s", "is required to calibrate collectives")
        return (
            np.zeros(n),
            work.all_reduce_wire_bytes(frame["message_bytes"], frame["num_gpus"]),
            np.ones(n),
            np.full(n, link),
        )
    raise InvalidInputError("operator", f"no roofline for {operator!r}", CALIBRATED_OPERATORS)


def roofline_for_table(
    operator: str,
    frame: pd.DataFrame,
    gpu: object,
    calibration: RooflineCalibration = DEFAULT_CALIBRATION,
) -> np.ndarray:
    """Roofline latency (ms) of every row of a tidy table under a calibration."""
    flops, bytes_moved, peak, bandwidth = operator_work(operator, frame, gpu)
    formats = frame["quantization"].to_numpy(dtype=object) if "quantization" in frame else None
    return roofline_ms(flops, bytes_moved, peak, bandwidth, calibration.arrays(operator, formats))


def fit_calibration(
    tables: Mapping[str, pd.DataFrame], gpu: object, base: RooflineCalibration = DEFAULT_CALIBRATION
) -> RooflineCalibration:
    """Efficiencies fitted to a GPU's measured tables; operators without a table keep ``base``.

    Each operator gets one efficiency fitted on all its rows; GEMM and MoE also get one
    per weight format, since their kernels (and their fixed costs) differ most by format.

    Args:
        tables: tidy frames keyed by operator name (see :data:`CALIBRATED_OPERATORS`);
            for ``all_reduce`` pass custom all-reduce rows or NCCL ``all_reduce`` rows.
        gpu: the GPU's peak figures.
        base: where the efficiencies of operators without a table come from.

    Returns:
        The calibration.

    Example:
        >>> from optimizer.perf.kernel_data import load_kernel_table
        >>> gemm = load_kernel_table("h100_sxm", "gemm", "vllm").frame
        >>> cal = fit_calibration({"gemm": gemm}, GpuFigures(3.35, 989.0, 1979.0))
        >>> 0.3 < cal.efficiency("gemm", "bf16").compute < 1.2
        True
    """
    figures = GpuFigures.of(gpu)
    calibration = base
    for operator, frame in tables.items():
        if operator not in CALIBRATED_OPERATORS:
            raise InvalidInputError(
                "operator", f"cannot calibrate {operator!r}", CALIBRATED_OPERATORS
            )
        if frame.empty or (operator == "all_reduce" and figures.interconnect_gb_s is None):
            continue
        flops, bytes_moved, peak, bandwidth = operator_work(operator, frame, figures)
        measured = frame["latency_ms"].to_numpy(dtype=float)
        efficiency = fit_efficiency(flops, bytes_moved, measured, peak, bandwidth)
        # the GPU's own fit replaces every default of the operator, per-format ones too
        calibration = calibration.without(operator).with_efficiency(operator, None, efficiency)
        if operator in ("gemm", "moe"):
            formats = frame["quantization"].to_numpy(dtype=object)
            for quantization in sorted(set(formats)):
                rows = formats == quantization
                efficiency = fit_efficiency(
                    flops[rows], bytes_moved[rows], measured[rows], peak[rows], bandwidth[rows]
                )
                calibration = calibration.with_efficiency(operator, quantization, efficiency)
    return calibration
