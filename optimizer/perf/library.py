"""All operator latency models of one GPU and engine, with fallbacks, behind one object.

For every operator :class:`KernelLibrary` answers from, in order:

1. **measured** -- the model fitted on this GPU's kernel tables, where they cover the
   query (its weight format, KV dtype, MoE format, GPU count);
2. **transferred** -- for a GPU without tables, the measured model of a *reference* GPU
   of the same architecture, every grid cell scaled by the ratio of the two GPUs'
   roofline times (bandwidth ratio where memory-bound, FLOPS ratio where
   compute-bound);
3. **roofline** -- FLOPs and bytes over the GPU's peaks with efficiencies fitted on its
   own tables (or the reference's, or the documented defaults).

Models are fitted lazily, on the first query of each operator, so building a library
is cheap and a step that never touches MoE never pays for it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from optimizer.domain.enums import Engine, KVCacheDtype, Quantization
from optimizer.errors import InvalidInputError, NotFoundError
from optimizer.perf.calibration import fit_calibration
from optimizer.perf.dtypes import format_values, parse_kv_dtype
from optimizer.perf.kernel_data import (
    MLA_MEASURED_HEAD_DIM,
    MLA_MEASURED_LATENT_DIM,
    KernelTable,
    available_engines,
    load_kernel_table,
    measured_gpu_figures,
)
from optimizer.perf.operators import (
    AllReduceModel,
    ContextAttentionModel,
    GemmModel,
    GenerationAttentionModel,
    MoEModel,
    OperatorModel,
)
from optimizer.perf.roofline import DEFAULT_CALIBRATION, GpuFigures, Roofline, RooflineCalibration

__all__ = ["LIBRARY_OPERATORS", "REFERENCE_GPU_BY_SM", "KernelLibrary"]

_Model = TypeVar("_Model", bound=OperatorModel)

LIBRARY_OPERATORS: tuple[str, ...] = (
    "gemm",
    "context_attention",
    "generation_attention",
    "moe",
    "all_reduce",
)

REFERENCE_GPU_BY_SM: dict[int, str] = {
    80: "a100_sxm",
    86: "a100_sxm",
    89: "l40s",
    90: "h100_sxm",
    100: "b200_sxm",
    103: "b300_sxm",
    120: "rtx_pro_6000_server",
}
"""Measured GPU whose kernels stand in for an unmeasured GPU of the same SM version."""

_MODEL_CLASSES: dict[str, type[OperatorModel]] = {
    "gemm": GemmModel,
    "context_attention": ContextAttentionModel,
    "generation_attention": GenerationAttentionModel,
    "moe": MoEModel,
    "all_reduce": AllReduceModel,
}


_MLA_TABLES: dict[str, str] = {
    "context_attention": "context_mla",
    "generation_attention": "generation_mla",
}
"""The multi-head latent attention table fitted into each attention operator's model."""


def _with_mla_rows(
    load: Callable[[], KernelTable], gpu_id: str, mla_operator: str, engine: str, root: Path | None
) -> KernelTable:
    """An attention table with the rows of the GPU's MLA table of ``engine`` appended."""
    table = load()
    mla = load_kernel_table(gpu_id, mla_operator, engine, root)
    frame = pd.concat([table.frame, mla.frame], ignore_index=True)
    return KernelTable(gpu_id, table.operator, table.engine, frame, table.sources + mla.sources)


def _gqa_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of grouped-query attention kernels (what the roofline is calibrated on)."""
    return frame[frame["layout"] != "mla"] if "layout" in frame else frame


def _engine_name(engine: Engine | str) -> str:
    try:
        return Engine(engine).value
    except ValueError:
        raise InvalidInputError(
            "engine", f"unknown engine {engine!r}", [e.value for e in Engine]
        ) from None


def _measured_tables(
    gpu_id: str, engine: str, root: Path | None
) -> dict[str, Callable[[], KernelTable]]:
    """Loaders of the measured tables that exist for a GPU and engine, by library operator.

    ``all_reduce`` combines the engine's custom all-reduce with NCCL's all-reduce rows
    for the GPU counts the custom table lacks.
    """
    loaders: dict[str, Callable[[], KernelTable]] = {}
    for operator in ("gemm", "context_attention", "generation_attention", "moe"):
        if engine in available_engines(gpu_id, operator, root):
            loaders[operator] = partial(load_kernel_table, gpu_id, operator, engine, root)
    for operator, mla_operator in _MLA_TABLES.items():
        mla_engines = available_engines(gpu_id, mla_operator, root)
        if operator in loaders and mla_engines:
            # an engine without its own MLA tables (vLLM) borrows another's on this GPU
            mla_engine = engine if engine in mla_engines else mla_engines[0]
            loaders[operator] = partial(
                _with_mla_rows, loaders[operator], gpu_id, mla_operator, mla_engine, root
            )
    has_custom = engine in available_engines(gpu_id, "custom_all_reduce", root)
    has_nccl = "nccl" in available_engines(gpu_id, "nccl", root)
    if has_custom or has_nccl:

        def all_reduce() -> KernelTable:
            tables = []
            if has_custom:
                tables.append(load_kernel_table(gpu_id, "custom_all_reduce", engine, root))
            if has_nccl:
                nccl = load_kernel_table(gpu_id, "nccl", "nccl", root)
                covered = set(tables[0].frame["num_gpus"]) if tables else set()
                rows = nccl.frame[
                    (nccl.frame["collective"] == "all_reduce")
                    & ~nccl.frame["num_gpus"].isin(covered)
                ]
                tables.append(
                    KernelTable(
                        gpu_id, "nccl", "nccl", rows.drop(columns="collective"), nccl.sources
                    )
                )
            frame = pd.concat([t.frame for t in tables if not t.frame.empty], ignore_index=True)
            sources = tuple(src for t in tables if not t.frame.empty for src in t.sources)
            return KernelTable(gpu_id, "all_reduce", engine, frame, sources)

        loaders["all_reduce"] = all_reduce
    return loaders


class KernelLibrary:
    """Operator latencies (ms) for one GPU and engine: measured, transferred or roofline.

    Build one with :meth:`for_gpu`. Every method is vectorised over numpy-broadcastable
    arguments and monotone non-decreasing in the workload sizes.

    Example:
        >>> from optimizer.perf.kernel_data import measured_gpu_figures
        >>> lib = KernelLibrary.for_gpu("h100_sxm", measured_gpu_figures("h100_sxm"), engine="vllm")
        >>> lib.source("gemm")
        'measured: h100_sxm gemm vllm 0.24.0 (100972 rows)'
        >>> float(lib.gemm(4096, 4096, 4096, "bf16")) > 0
        True
    """

    def __init__(
        self,
        gpu: object,
        name: str,
        engine: str,
        loaders: dict[str, Callable[[], OperatorModel]],
        calibration: Callable[[str], RooflineCalibration],
        kinds: dict[str, str],
        reference: KernelLibrary | None = None,
    ):
        """Use :meth:`for_gpu` or :meth:`roofline_only` instead.

        Args:
            gpu: the GPU's peak figures.
            name: GPU id (for messages).
            engine: engine whose kernels the models describe.
            loaders: per operator, a function fitting its model.
            calibration: a function giving the roofline efficiencies of one operator.
            kinds: per operator, ``measured`` or ``transferred`` (others use the roofline).
            reference: the library transferred from, if any.
        """
        self.figures = GpuFigures.of(gpu)
        self.name = name
        self.engine = engine
        self._loaders = loaders
        self._calibration_loader = calibration
        self._kinds = kinds
        self.reference = reference
        self._models: dict[str, OperatorModel] = {}
        self._calibrations: dict[str, RooflineCalibration] = {}
        self._rooflines: dict[str, Roofline] = {}

    # --- construction -------------------------------------------------------------------

    @classmethod
    def for_gpu(
        cls,
        gpu_id: str,
        gpu: object,
        engine: Engine | str = Engine.VLLM,
        reference: KernelLibrary | str | None = "auto",
        root: Path | None = None,
    ) -> KernelLibrary:
        """The library of a GPU: its own measured kernels, else a reference's, else roofline.

        Args:
            gpu_id: GPU id as the kernel data names it (``h100_sxm``, ``l4`` ...).
            gpu: its peak figures: :class:`~optimizer.perf.roofline.GpuFigures` or an
                object with the same attributes (a catalog ``GPUSpec``).
            engine: ``vllm``, ``sglang`` or ``trtllm``.
            reference: for operators this GPU has no tables for: a library of a measured
                GPU to transfer from, a measured GPU id, ``"auto"`` (the measured GPU of
                the same SM version, from ``gpu.sm``, see :data:`REFERENCE_GPU_BY_SM`),
                or ``None`` for the roofline alone.
            root: kernel data folder (default: the installed aiconfigurator-core's).

        Returns:
            The library (models fitted lazily).
        """
        engine_name = _engine_name(engine)
        figures = GpuFigures.of(gpu)
        frames = _measured_tables(gpu_id, engine_name, root)
        loaders: dict[str, Callable[[], OperatorModel]] = {
            op: partial(_fit_model, op, load) for op, load in frames.items()
        }
        kinds = dict.fromkeys(frames, "measured")

        ref = cls._resolve_reference(
            gpu_id, gpu, engine_name, reference, root, needed=set(LIBRARY_OPERATORS) - set(frames)
        )
        if ref is not None:
            for op in LIBRARY_OPERATORS:
                if op in frames or not ref.has_measured(op):
                    continue
                if op == "all_reduce" and (
                    figures.interconnect_gb_s is None or ref.figures.interconnect_gb_s is None
                ):
                    continue
                loaders[op] = partial(_transfer_model, ref, op, figures)
                kinds[op] = "transferred"

        def calibration(op: str) -> RooflineCalibration:
            if op in frames:
                return fit_calibration({op: _gqa_rows(frames[op]().frame)}, figures)
            return ref.calibration_for(op) if ref is not None else DEFAULT_CALIBRATION

        return cls(figures, gpu_id, engine_name, loaders, calibration, kinds, ref)

    @staticmethod
    def _resolve_reference(
        gpu_id: str,
        gpu: object,
        engine: str,
        reference: KernelLibrary | str | None,
        root: Path | None,
        needed: set[str],
    ) -> KernelLibrary | None:
        if isinstance(reference, KernelLibrary):
            return reference
        if reference is None or not needed:
            return None
        if reference == "auto":
            sm = getattr(gpu, "sm", None)
            reference = REFERENCE_GPU_BY_SM.get(int(sm)) if sm is not None else None
            if reference is None or reference == gpu_id:
                return None
        return _reference_library(reference, engine, root)

    @classmethod
    def roofline_only(
        cls, gpu: object, calibration: RooflineCalibration = DEFAULT_CALIBRATION, name: str = ""
    ) -> KernelLibrary:
        """A library that times every operator by the roofline alone."""
        return cls(gpu, name, "", {}, lambda op: calibration, {})

    # --- introspection ------------------------------------------------------------------

    def has_measured(self, operator: str) -> bool:
        """Whether the operator has a model fitted on this GPU's own kernel tables."""
        self._check_operator(operator)
        return self._kinds.get(operator) == "measured"

    def model(self, operator: str) -> OperatorModel:
        """The fitted model of an operator (fitted now if it was not yet).

        Raises:
            NotFoundError: the operator has no measured or transferred model here.
        """
        self._check_operator(operator)
        if operator not in self._models:
            if operator not in self._loaders:
                raise NotFoundError(
                    "kernel model", f"{self.name}/{self.engine}/{operator}", self._loaders
                )
            self._models[operator] = self._loaders[operator]()
        return self._models[operator]

    def calibration_for(self, operator: str) -> RooflineCalibration:
        """Roofline efficiencies valid for one operator: fitted on this GPU's table of it,
        else the reference's, else the defaults (fitted on first use)."""
        self._check_operator(operator)
        if operator not in self._calibrations:
            self._calibrations[operator] = self._calibration_loader(operator)
        return self._calibrations[operator]

    @property
    def calibration(self) -> RooflineCalibration:
        """Roofline efficiencies of every operator (see :meth:`calibration_for`)."""
        entries = tuple(
            entry
            for op in LIBRARY_OPERATORS
            for entry in self.calibration_for(op).entries
            if entry[0] == op
        )
        return RooflineCalibration(entries)

    def roofline_for(self, operator: str) -> Roofline:
        """The roofline of this GPU under the operator's efficiencies."""
        if operator not in self._rooflines:
            self._rooflines[operator] = Roofline(self.figures, self.calibration_for(operator))
        return self._rooflines[operator]

    def source(self, operator: str) -> str:
        """Where the operator's latencies come from, in words."""
        self._check_operator(operator)
        kind = self._kinds.get(operator)
        if kind is None:
            return "roofline"
        return f"{kind}: {self.model(operator).source_}"

    @staticmethod
    def _check_operator(operator: str) -> None:
        if operator not in LIBRARY_OPERATORS:
            raise InvalidInputError("operator", f"unknown operator {operator!r}", LIBRARY_OPERATORS)

    def _fitted(self, operator: str, kind: type[_Model]) -> _Model | None:
        """The operator's model when it has one (fitting it now if needed), else None."""
        if operator not in self._loaders:
            return None
        model = self.model(operator)
        if not isinstance(model, kind):  # pragma: no cover - the loaders build these classes
            raise TypeError(f"{operator} model is a {type(model).__name__}, not a {kind.__name__}")
        return model

    # --- operators ----------------------------------------------------------------------

    def gemm(
        self, m: ArrayLike, n: ArrayLike, k: ArrayLike, quantization: Quantization | str | ArrayLike
    ) -> np.ndarray:
        """Latency (ms) of ``(m x k) @ (k x n)`` GEMMs with weights in ``quantization``."""
        q = format_values(quantization)
        model = self._fitted("gemm", GemmModel)
        out = model.predict(m, n, k, q, strict=False) if model is not None else None
        return self._fill(
            out, lambda rows: self.roofline_for("gemm").gemm(*_take(rows, m, n, k, q)), m, n, k, q
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
        """Latency (ms) of causal prefill attention (per-GPU head counts); see
        :meth:`~optimizer.perf.operators.ContextAttentionModel.predict`."""
        return self._attention(
            "context_attention",
            ContextAttentionModel,
            (batch, isl, num_heads, num_kv_heads, head_dim, kv_dtype, window),
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
        """Latency (ms) of one decode step's attention (per-GPU head counts); see
        :meth:`~optimizer.perf.operators.GenerationAttentionModel.predict`."""
        return self._attention(
            "generation_attention",
            GenerationAttentionModel,
            (batch, kv_len, num_heads, num_kv_heads, head_dim, kv_dtype, window),
        )

    def _attention(
        self,
        op: str,
        model_type: type[ContextAttentionModel] | type[GenerationAttentionModel],
        args: tuple[Any, ...],
    ) -> np.ndarray:
        """Measured model of ``op`` where it covers the shapes, roofline elsewhere; ``args``
        end with ``kv_dtype, window``."""
        *shapes, kv_dtype, window = args
        args = (*shapes, format_values(kv_dtype, parse_kv_dtype, "kv_dtype"), window)
        model = self._fitted(op, model_type)
        out = model.predict(*args, strict=False) if model is not None else None
        return self._fill(
            out, lambda rows: getattr(self.roofline_for(op), op)(*_take(rows, *args)), *args
        )

    def context_mla(
        self,
        batch: ArrayLike,
        isl: ArrayLike,
        num_heads: ArrayLike,
        head_dim: ArrayLike,
        kv_dtype: KVCacheDtype | str | ArrayLike = KVCacheDtype.BF16,
        window: ArrayLike = 0,
    ) -> np.ndarray:
        """Latency (ms) of multi-head latent attention's prefill (per-GPU heads).

        From the measured MLA kernels where this GPU has them for the KV dtype, scaled
        by ``head_dim`` over the measured :data:`MLA_MEASURED_HEAD_DIM` (``head_dim``: the
        mean of the query/key and value head sizes); elsewhere multi-head attention of
        that head size (:meth:`context_attention`).
        """
        return self._mla(
            "context_attention",
            batch,
            isl,
            num_heads,
            head_dim,
            MLA_MEASURED_HEAD_DIM,
            kv_dtype,
            window,
        )

    def generation_mla(
        self,
        batch: ArrayLike,
        kv_len: ArrayLike,
        num_heads: ArrayLike,
        latent_dim: ArrayLike,
        kv_dtype: KVCacheDtype | str | ArrayLike = KVCacheDtype.BF16,
        window: ArrayLike = 0,
    ) -> np.ndarray:
        """Latency (ms) of one decode step of multi-head latent attention (absorbed form:
        every head attends over one shared ``latent_dim``-wide cache entry per token).

        From the measured MLA kernels where this GPU has them for the KV dtype, scaled
        by ``latent_dim`` over the measured :data:`MLA_MEASURED_LATENT_DIM`; elsewhere
        grouped-query attention with one KV head of that size (:meth:`generation_attention`).
        """
        return self._mla(
            "generation_attention",
            batch,
            kv_len,
            num_heads,
            latent_dim,
            MLA_MEASURED_LATENT_DIM,
            kv_dtype,
            window,
        )

    def _mla(
        self,
        op: str,
        batch: ArrayLike,
        length: ArrayLike,
        num_heads: ArrayLike,
        head_dim: ArrayLike,
        measured_head_dim: int,
        kv_dtype: KVCacheDtype | str | ArrayLike,
        window: ArrayLike,
    ) -> np.ndarray:
        """The measured MLA kernels of ``op``'s model scaled by head size where they cover
        the KV dtype; elsewhere ``op`` itself (one latent KV head when decoding)."""
        kv = format_values(kv_dtype, parse_kv_dtype, "kv_dtype")
        context = op == "context_attention"
        model = self._fitted(op, ContextAttentionModel if context else GenerationAttentionModel)
        out = None
        if model is not None:  # NaN where no MLA kernels were measured for the KV dtype
            measured = model.predict_mla(batch, length, num_heads, kv, window, strict=False)
            out = measured * (np.asarray(head_dim, dtype=float) / measured_head_dim)
        kv_heads = num_heads if context else 1.0
        args = (batch, length, num_heads, kv_heads, head_dim, kv, window)
        return self._fill(out, lambda rows: getattr(self, op)(*_take(rows, *args)), *args)

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
        distribution: str | ArrayLike = "balanced",
        gated: ArrayLike = True,
    ) -> np.ndarray:
        """Latency (ms) of the routed experts of one MoE layer on one rank; see
        :meth:`~optimizer.perf.operators.MoEModel.predict`."""
        q = format_values(quantization)
        args = (num_tokens, hidden, inter, topk, num_experts, q, tp, ep, distribution, gated)
        shape = np.broadcast_shapes(*(np.shape(a) for a in args))
        out = np.full(shape, np.nan)
        model = self._fitted("moe", MoEModel)
        if model is not None and model.regression_ is not None:
            known = np.broadcast_to(np.isin(q, list(model.regression_.coefficients)), shape)
            if known.all():  # the usual case: no rows to select
                out[...] = model.predict(*args[:8], distribution=distribution, gated=gated)
            elif known.any():
                t, h, i, k, e, qq, tp_, ep_, dist, gate = _take(known, *args)
                out[known] = model.predict(
                    t, h, i, k, e, qq, tp_, ep_, distribution=dist, gated=gate
                )
        balanced = np.asarray(distribution, dtype=object) == "balanced"
        roof_args = (num_tokens, hidden, inter, topk, num_experts, q, tp, ep, gated, balanced)
        return self._fill(
            out, lambda rows: self.roofline_for("moe").moe(*_take(rows, *roof_args)), *roof_args
        )

    def all_reduce(self, message_bytes: ArrayLike, num_gpus: ArrayLike) -> np.ndarray:
        """Latency (ms) of an all-reduce of ``message_bytes`` over ``num_gpus`` GPUs (0 for one)."""
        model = self._fitted("all_reduce", AllReduceModel)
        out = model.predict(message_bytes, num_gpus, strict=False) if model is not None else None
        return self._fill(
            out,
            lambda rows: self.roofline_for("all_reduce").all_reduce(
                *_take(rows, message_bytes, num_gpus)
            ),
            message_bytes,
            num_gpus,
        )

    def _fill(
        self, out: np.ndarray | None, fallback: Callable[[np.ndarray], np.ndarray], *args: ArrayLike
    ) -> np.ndarray:
        """Replace NaN (uncovered) entries of a model's answer by ``fallback``'s answers
        for those entries (the roofline's, or for MLA the attention operator's)."""
        shape = np.broadcast_shapes(*(np.shape(a) for a in args))
        if out is None:
            out = np.full(shape, np.nan)
        out = np.array(np.broadcast_to(out, shape), dtype=float)
        missing = np.isnan(out)
        if missing.any():
            out[missing] = fallback(missing)
        return out


def _fit_model(operator: str, load: Callable[[], KernelTable]) -> OperatorModel:
    return _MODEL_CLASSES[operator]().fit(load())


def _transfer_model(reference: KernelLibrary, operator: str, target: GpuFigures) -> OperatorModel:
    return reference.model(operator).transferred(
        reference.figures, target, reference.calibration_for(operator)
    )


@lru_cache(maxsize=8)
def _reference_library(gpu_id: str, engine: str, root: Path | None) -> KernelLibrary:
    """A measured GPU's library, shared by every unmeasured GPU that borrows from it."""
    return KernelLibrary.for_gpu(
        gpu_id, measured_gpu_figures(gpu_id), engine, reference=None, root=root
    )


def _take(rows: np.ndarray, *args: ArrayLike) -> list[np.ndarray]:
    """Each argument broadcast to ``rows``' shape, then restricted to its True entries."""
    return [np.broadcast_to(np.asarray(a), rows.shape)[rows] for a in args]
