"""Operator-level performance prior: measured kernels, per-operator models, roofline.

A transformer step is a list of operators (GEMMs of known shapes, attention over known
lengths, MoE experts, all-reduces of known bytes). This package times each of them on
a given GPU and engine:

* :mod:`~optimizer.perf.kernel_data` finds and tidies the kernel timings that
  aiconfigurator-core ships (per GPU, operator, engine, version);
* :mod:`~optimizer.perf.operators` fits per-operator models on them (monotone grids in
  log-size space, plus a roofline-feature regression for unmeasured MoE shapes);
* :mod:`~optimizer.perf.roofline` and :mod:`~optimizer.perf.work` time any operator on
  any GPU from FLOPs, bytes and peak figures, with efficiencies fitted by
  :mod:`~optimizer.perf.calibration`;
* :class:`KernelLibrary` puts them together for one GPU: measured where possible,
  transferred from a measured GPU of the same architecture, roofline otherwise;
* :mod:`~optimizer.perf.accuracy` measures all of this on held-out kernel timings.

Example:
    >>> from optimizer.perf import KernelLibrary, measured_gpu_figures
    >>> lib = KernelLibrary.for_gpu("h200_sxm", measured_gpu_figures("h200_sxm"), engine="vllm")
    >>> t = lib.generation_attention(
    ...     batch=64, kv_len=[1024, 8192], num_heads=8, num_kv_heads=1, head_dim=128
    ... )
    >>> bool(t[0] < t[1])
    True
"""

from __future__ import annotations

from optimizer.perf.calibration import fit_calibration
from optimizer.perf.kernel_data import (
    OPERATORS,
    KernelTable,
    available_engines,
    gpus_with_kernel_data,
    load_kernel_table,
    measured_gpu_figures,
)
from optimizer.perf.library import KernelLibrary
from optimizer.perf.operators import (
    AllReduceModel,
    ContextAttentionModel,
    GemmModel,
    GenerationAttentionModel,
    MoEModel,
)
from optimizer.perf.roofline import (
    DEFAULT_CALIBRATION,
    Efficiency,
    GpuFigures,
    Roofline,
    RooflineCalibration,
)

__all__ = [
    "DEFAULT_CALIBRATION",
    "OPERATORS",
    "AllReduceModel",
    "ContextAttentionModel",
    "Efficiency",
    "GemmModel",
    "GenerationAttentionModel",
    "GpuFigures",
    "KernelLibrary",
    "KernelTable",
    "MoEModel",
    "Roofline",
    "RooflineCalibration",
    "available_engines",
    "fit_calibration",
    "gpus_with_kernel_data",
    "load_kernel_table",
    "measured_gpu_figures",
]
