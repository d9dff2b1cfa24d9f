"""The measured kernel timings that aiconfigurator-core ships, found, chosen and tidied.

``aiconfigurator_core/systems/data/<gpu>/<family>/<engine>/<version>/<table>.parquet``
holds per-kernel latencies (milliseconds) measured on one GPU with one engine build.
This module answers which GPUs and engines have which tables, picks one version per
(gpu, operator, engine) and returns a tidy table in epopt's vocabulary:

=======================  ==============================================================
operator                 tidy columns (besides ``latency_ms``, ``kernel_source``, ``version``)
=======================  ==============================================================
``gemm``                 quantization, m, n, k
``context_attention``    kv_dtype, window, head_dim, num_heads, num_kv_heads, batch, isl,
                         layout (``gqa``)
``generation_attention`` kv_dtype, window, head_dim, num_heads, num_kv_heads, batch, kv_len,
                         layout (``gqa``)
``context_mla``          the ``context_attention`` columns, layout ``mla``
``generation_mla``       the ``generation_attention`` columns, layout ``mla``
``moe``                  quantization, hidden, inter, topk, num_experts, tp, ep,
                         distribution, gated, num_tokens
``custom_all_reduce``    num_gpus, message_bytes
``nccl``                 collective, num_gpus, message_bytes
=======================  ==============================================================

The multi-head latent attention (MLA) tables time DeepSeek-V3's attention kernels
alone (no projections): prefill with multi-head attention (head size
:data:`MLA_MEASURED_HEAD_DIM`), decode in the absorbed form over one shared latent
cache entry of :data:`MLA_MEASURED_LATENT_DIM` per token. Their rows carry those shapes
as ``head_dim`` and ``num_kv_heads`` (all heads for prefill, one latent "head" for
decode), so they read as attention rows of another layout.

Version choice: the newest version directory holding the table (``packaging.version``
order; strings it cannot parse sort below every parseable one, by their numbers). A
newer version often re-measures only part of a table (aiconfigurator's "next" slot, e.g.
TensorRT-LLM 1.3.0rc23 MoE for a few shapes), so slices (a dtype, a MoE shape, a GPU
count ...) the newest version lacks are filled from the next older one that has them,
as aiconfigurator's own backward fill does. Every row keeps its ``version`` and
``kernel_source``; :attr:`KernelTable.sources` lists the files used.

Data credit: NVIDIA aiconfigurator (Apache-2.0), PyPI ``aiconfigurator-core==0.12.0``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from packaging.version import InvalidVersion, Version

from optimizer.domain.enums import Engine
from optimizer.errors import InvalidInputError, NotFoundError
from optimizer.perf.dtypes import KERNEL_KV_DTYPE, KERNEL_QUANTIZATION, collective_element_bytes
from optimizer.perf.roofline import GpuFigures
from optimizer.resources import aiconfigurator_dir

__all__ = [
    "MLA_MEASURED_HEAD_DIM",
    "MLA_MEASURED_LATENT_DIM",
    "MOE_SHAPE_COLUMNS",
    "OPERATORS",
    "KernelTable",
    "TableSource",
    "available_engines",
    "gpus_with_kernel_data",
    "kernel_data_dir",
    "load_kernel_table",
    "measured_gpu_figures",
    "table_versions",
    "version_sort_key",
]


def kernel_data_dir() -> Path:
    """``systems/data`` inside the installed aiconfigurator-core package."""
    return aiconfigurator_dir() / "systems" / "data"


def version_sort_key(version: str) -> tuple:
    """Sort key for engine version directories: PEP 440 order, unparseable ones first.

    Example:
        >>> sorted(["1.3.0rc20", "1.3.0rc23", "1.0.0", "weird-2"], key=version_sort_key)
        ['weird-2', '1.0.0', '1.3.0rc20', '1.3.0rc23']
    """
    try:
        return (1, Version(version), ())
    except InvalidVersion:
        return (0, Version("0"), tuple(int(x) for x in re.findall(r"\d+", version)))


# --- tidying: raw aiconfigurator columns -> epopt vocabulary ---------------------------


_QUANT_VALUES = {name: q.value for name, q in KERNEL_QUANTIZATION.items()}
_KV_VALUES = {name: kv.value for name, kv in KERNEL_KV_DTYPE.items()}


def _positive_latency(raw: pd.DataFrame) -> pd.Series:
    latency = pd.to_numeric(raw["latency"], errors="coerce")
    return latency.where(np.isfinite(latency) & (latency > 0))


def _common(raw: pd.DataFrame, tidy: dict[str, object]) -> pd.DataFrame:
    frame = pd.DataFrame(tidy, index=raw.index)
    frame["latency_ms"] = _positive_latency(raw)
    frame["kernel_source"] = raw["kernel_source"].astype(str)
    frame["version"] = raw["version"].astype(str) if "version" in raw else ""
    return frame.dropna().reset_index(drop=True)


def _tidy_gemm(raw: pd.DataFrame) -> pd.DataFrame:
    quant = raw["gemm_dtype"].map(_QUANT_VALUES)
    # Block-scaled FP8 works on 128x128 weight blocks; the tables' fallback kernels for
    # smaller n or k are orders of magnitude slower and never run for a real layer.
    blocked = (raw["gemm_dtype"] == "fp8_block") & ((raw["n"] % 128 != 0) | (raw["k"] % 128 != 0))
    raw = raw[quant.notna() & ~blocked]
    return _common(
        raw, {"quantization": quant[raw.index], "m": raw["m"], "n": raw["n"], "k": raw["k"]}
    )


def _tidy_attention(raw: pd.DataFrame, generation: bool) -> pd.DataFrame:
    keep = raw["attn_dtype"] == "bfloat16"  # FP8 FMHA variants (TensorRT-LLM only) left out
    if "beam_width" in raw:
        keep &= raw["beam_width"] == 1
    raw = raw[keep]
    kv = raw["kv_cache_dtype"].map(_KV_VALUES)
    window = raw["window_size"] if "window_size" in raw else pd.Series(0, index=raw.index)
    tidy: dict[str, object] = {
        "kv_dtype": kv,
        "window": window,
        "head_dim": raw["head_dim"],
        "num_heads": raw["num_heads"],
        "num_kv_heads": raw["num_key_value_heads"],
        "batch": raw["batch_size"],
    }
    return _common(raw, _with_length(raw, tidy, generation, "gqa"))


def _with_length(
    raw: pd.DataFrame, tidy: dict[str, object], generation: bool, layout: str
) -> dict[str, object]:
    if generation:
        # one new token per sequence attends to `step` cached tokens plus itself
        tidy["kv_len"] = raw["isl"] + raw["step"]
    else:
        tidy["isl"] = raw["isl"]
    tidy["layout"] = layout
    return tidy


MLA_MEASURED_HEAD_DIM = 160
"""Head size standing for the measured MLA prefill kernels: the mean of DeepSeek-V3's
query/key (128 + 64 RoPE) and value (128) head sizes, as attention FLOPs are
``2 (d_qk + d_v)`` per attended pair and head."""
MLA_MEASURED_LATENT_DIM = 576
"""Per-token latent cache entry of the measured MLA decode kernels (DeepSeek-V3: 512 + 64)."""


def _tidy_mla(raw: pd.DataFrame, generation: bool) -> pd.DataFrame:
    raw = raw[raw["mla_dtype"] == "bfloat16"]
    heads = raw["num_heads"]  # query heads on the GPU (the tables' tp_size only labels them)
    tidy: dict[str, object] = {
        "kv_dtype": raw["kv_cache_dtype"].map(_KV_VALUES),
        "window": pd.Series(0, index=raw.index),
        "head_dim": MLA_MEASURED_LATENT_DIM if generation else MLA_MEASURED_HEAD_DIM,
        "num_heads": heads,
        "num_kv_heads": 1 if generation else heads,
        "batch": raw["batch_size"],
    }
    return _common(raw, _with_length(raw, tidy, generation, "mla"))


def _tidy_moe(raw: pd.DataFrame) -> pd.DataFrame:
    quant = raw["moe_dtype"].map(_QUANT_VALUES)
    raw = raw[quant.notna()]
    return _common(
        raw,
        {
            "quantization": quant[raw.index],
            "hidden": raw["hidden_size"],
            "inter": raw["inter_size"],
            "topk": raw["topk"],
            "num_experts": raw["num_experts"],
            "tp": raw["moe_tp_size"],
            "ep": raw["moe_ep_size"],
            "distribution": raw["distribution"].astype(str),
            # non-gated experts (relu^2, two matrices) are tagged by their kernel name
            "gated": ~raw["kernel_source"].astype(str).str.contains("nongated"),
            "num_tokens": raw["num_tokens"],
        },
    )


def _tidy_custom_all_reduce(raw: pd.DataFrame) -> pd.DataFrame:
    element = raw["allreduce_dtype"].astype(str).map(collective_element_bytes)
    return _common(
        raw, {"num_gpus": raw["num_gpus"], "message_bytes": raw["message_size"] * element}
    )


def _tidy_nccl(raw: pd.DataFrame) -> pd.DataFrame:
    # message_size counts elements: int8 and half rows of equal size differ ~2x in time
    element = raw["nccl_dtype"].map(collective_element_bytes)
    return _common(
        raw,
        {
            "collective": raw["op_name"].astype(str),
            "num_gpus": raw["num_gpus"],
            "message_bytes": raw["message_size"] * element,
        },
    )


MOE_SHAPE_COLUMNS: tuple[str, ...] = (
    "quantization",
    "hidden",
    "inter",
    "topk",
    "num_experts",
    "tp",
    "ep",
    "distribution",
    "gated",
)
"""Tidy MoE columns that name one token sweep (everything but ``num_tokens``)."""


@dataclass(frozen=True)
class _TableKind:
    family: str
    filename: str
    slice_columns: tuple[str, ...]  # tidy columns naming one slice, for backfill across versions
    tidy: Callable[[pd.DataFrame], pd.DataFrame]
    engines: tuple[str, ...] | None = None  # None: the serving engines


_KINDS: dict[str, _TableKind] = {
    "gemm": _TableKind("gemm", "gemm_perf.parquet", ("quantization",), _tidy_gemm),
    "context_attention": _TableKind(
        "attention",
        "context_attention_perf.parquet",
        ("kv_dtype", "window", "head_dim"),
        lambda raw: _tidy_attention(raw, generation=False),
    ),
    "generation_attention": _TableKind(
        "attention",
        "generation_attention_perf.parquet",
        ("kv_dtype", "window", "head_dim"),
        lambda raw: _tidy_attention(raw, generation=True),
    ),
    "context_mla": _TableKind(
        "mla",
        "context_mla_perf.parquet",
        ("kv_dtype",),
        lambda raw: _tidy_mla(raw, generation=False),
    ),
    "generation_mla": _TableKind(
        "mla",
        "generation_mla_perf.parquet",
        ("kv_dtype",),
        lambda raw: _tidy_mla(raw, generation=True),
    ),
    "moe": _TableKind(
        "moe",
        "moe_perf.parquet",
        MOE_SHAPE_COLUMNS,
        _tidy_moe,
    ),
    "custom_all_reduce": _TableKind(
        "comm", "custom_allreduce_perf.parquet", ("num_gpus",), _tidy_custom_all_reduce
    ),
    "nccl": _TableKind(
        "comm", "nccl_perf.parquet", ("collective", "num_gpus"), _tidy_nccl, engines=("nccl",)
    ),
}
OPERATORS: tuple[str, ...] = tuple(_KINDS)
_SERVING_ENGINES = tuple(e.value for e in Engine)


@dataclass(frozen=True)
class TableSource:
    """One parquet file that contributed rows to a :class:`KernelTable`."""

    path: Path
    engine: str
    version: str
    rows: int
    kernel_sources: tuple[str, ...]


@dataclass(frozen=True)
class KernelTable:
    """A tidy measured table for one (gpu, operator, engine), with its provenance.

    Attributes:
        gpu: aiconfigurator system id (``h100_sxm``).
        operator: one of :data:`OPERATORS`.
        engine: ``vllm`` / ``sglang`` / ``trtllm``, or ``nccl``.
        frame: the tidy rows (see the module docstring for the columns).
        sources: the files used, newest version first.
    """

    gpu: str
    operator: str
    engine: str
    frame: pd.DataFrame = field(repr=False, compare=False)
    sources: tuple[TableSource, ...]

    @property
    def version(self) -> str:
        """The newest version used (the primary one)."""
        return self.sources[0].version

    def describe(self) -> str:
        """One line of provenance, e.g. ``h100_sxm gemm vllm 0.24.0 (107188 rows)``."""
        first = self.sources[0].path.name
        older = [
            f"{s.engine} {s.version}" + ("" if s.path.name == first else f" {s.path.stem}")
            for s in self.sources[1:]
        ]
        extra = f" + {', '.join(older)}" if older else ""
        rows = len(self.frame)
        return f"{self.gpu} {self.operator} {self.engine} {self.version}{extra} ({rows} rows)"


def _check_operator(operator: str) -> _TableKind:
    if operator not in _KINDS:
        raise InvalidInputError("operator", f"unknown kernel operator {operator!r}", OPERATORS)
    return _KINDS[operator]


def _engine_dirs(root: Path, gpu: str, kind: _TableKind) -> list[Path]:
    family_dir = root / gpu / kind.family
    if not family_dir.is_dir():
        return []
    allowed = kind.engines or _SERVING_ENGINES
    return sorted(p for p in family_dir.iterdir() if p.is_dir() and p.name in allowed)


def table_versions(
    gpu: str, operator: str, engine: str, root: Path | None = None
) -> tuple[str, ...]:
    """Versions of one engine that hold the operator's table for a GPU, newest first.

    Directories that only declare reuse of another version (``reuse.yaml``) are skipped.
    """
    kind = _check_operator(operator)
    engine_dir = (root or kernel_data_dir()) / gpu / kind.family / str(engine)
    if not engine_dir.is_dir():
        return ()
    versions = [p.name for p in engine_dir.iterdir() if (p / kind.filename).is_file()]
    return tuple(sorted(versions, key=version_sort_key, reverse=True))


def available_engines(gpu: str, operator: str, root: Path | None = None) -> tuple[str, ...]:
    """Engines with at least one version of the operator's table for a GPU."""
    kind = _check_operator(operator)
    root = root or kernel_data_dir()
    return tuple(
        d.name for d in _engine_dirs(root, gpu, kind) if table_versions(gpu, operator, d.name, root)
    )


def gpus_with_kernel_data(root: Path | None = None) -> tuple[str, ...]:
    """GPU ids with at least one measured table of any operator (empty folders excluded)."""
    root = root or kernel_data_dir()
    if not root.is_dir():
        return ()
    return tuple(
        sorted(
            gpu.name
            for gpu in root.iterdir()
            if gpu.is_dir() and any(available_engines(gpu.name, op, root) for op in OPERATORS)
        )
    )


@lru_cache(maxsize=64)
def _load(gpu: str, operator: str, engine: str, root: Path) -> KernelTable:
    kind = _KINDS[operator]
    versions = table_versions(gpu, operator, engine, root)
    if not versions:
        known = [f"{gpu}/{op}/{e}" for op in OPERATORS for e in available_engines(gpu, op, root)]
        raise NotFoundError("kernel table", f"{gpu}/{operator}/{engine}", known)
    parts: list[pd.DataFrame] = []
    sources: list[TableSource] = []
    seen = np.empty(0, dtype=np.uint64)  # hashes of the slices a newer version measured
    for version in versions:
        path = root / gpu / kind.family / engine / version / kind.filename
        tidy = kind.tidy(pd.read_parquet(path))
        tidy["version"] = version
        # one 64-bit hash per row's slice (a MultiIndex builds a tuple per row)
        slices = pd.util.hash_pandas_object(tidy[list(kind.slice_columns)], index=False)
        hashes = slices.to_numpy(dtype=np.uint64)
        new = ~np.isin(hashes, seen)
        tidy = tidy[new]
        if tidy.empty:
            continue
        seen = np.union1d(seen, hashes[new])
        parts.append(tidy)
        kernels = tuple(sorted(tidy["kernel_source"].unique()))
        sources.append(TableSource(path, engine, version, len(tidy), kernels))
    if not parts:
        raise NotFoundError("kernel table rows", f"{gpu}/{operator}/{engine}")
    frame = pd.concat(parts, ignore_index=True)
    return KernelTable(gpu, operator, engine, frame, tuple(sources))


def load_kernel_table(
    gpu: str, operator: str, engine: Engine | str, root: Path | None = None
) -> KernelTable:
    """The tidy measured table of one operator for a GPU and engine (cached).

    Args:
        gpu: aiconfigurator system id, e.g. ``h100_sxm`` (see :func:`gpus_with_kernel_data`).
        operator: one of :data:`OPERATORS`.
        engine: ``vllm``, ``sglang`` or ``trtllm``; ``nccl`` for the ``nccl`` operator.
        root: the ``systems/data`` folder (default: the installed package's).

    Returns:
        The table; its ``frame`` is a shallow copy, so changing it leaves the cache alone.

    Raises:
        InvalidInputError: unknown operator.
        NotFoundError: no table for that GPU, operator and engine (the error lists
            what exists for the GPU).

    Example:
        >>> table = load_kernel_table("h100_sxm", "gemm", "vllm")
        >>> sorted(table.frame["quantization"].unique())
        ['bf16', 'fp8', 'fp8_block']
    """
    _check_operator(operator)
    engine_name = engine.value if isinstance(engine, Engine) else str(engine)
    table = _load(str(gpu), operator, engine_name, Path(root) if root else kernel_data_dir())
    return KernelTable(
        table.gpu, table.operator, table.engine, table.frame.copy(deep=False), table.sources
    )


@lru_cache(maxsize=32)
def measured_gpu_figures(gpu: str) -> GpuFigures:
    """Peak figures of a GPU the kernels were measured on, from aiconfigurator's system file.

    ``systems/<gpu>.yaml`` describes the hardware the tables were collected on (memory
    bandwidth, dense tensor-core FLOPS per format, intra-node bandwidth per GPU), which
    is what a transfer from these measurements to another GPU must divide by.

    Raises:
        NotFoundError: no system file for that id.

    Example:
        >>> measured_gpu_figures("h100_sxm").mem_bw_tb_s
        3.35
    """
    path = aiconfigurator_dir() / "systems" / f"{gpu}.yaml"
    if not path.is_file():
        known = [
            p.stem for p in path.parent.glob("*.yaml") if (path.parent / "data" / p.stem).is_dir()
        ]
        raise NotFoundError("aiconfigurator system", gpu, known)
    spec = yaml.safe_load(path.read_text())
    chip, node = spec["gpu"], spec.get("node", {})

    def tera(value: float | None) -> float | None:
        return None if value is None else float(value) / 1e12

    return GpuFigures(
        mem_bw_tb_s=float(chip["mem_bw"]) / 1e12,
        bf16_tflops=float(chip["bfloat16_tc_flops"]) / 1e12,
        fp8_tflops=tera(chip.get("fp8_tc_flops")),
        fp4_tflops=tera(chip.get("fp4_tc_flops")),
        interconnect_gb_s=None
        if node.get("intra_node_bw") is None
        else float(node["intra_node_bw"]) / 1e9,
    )
