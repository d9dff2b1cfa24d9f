"""Rows of the native profile schema -> validated configurations -> physics features.

The learned surrogate never sees a model or GPU id: it sees what the operator prior
(:mod:`optimizer.perf.closed_loop`) makes of the configuration -- estimated step times by
operator family, bytes and FLOPs -- plus the GPU's peak figures and the model's
shapes. That is what lets it transfer to models and GPUs it was not trained on.

Monotonicity (:data:`MONOTONE`): every feature that grows with concurrency or input
length is constrained to act non-decreasingly on the learned factor, every hardware
peak non-increasingly; the prior's terms grow with the workload and shrink on faster
hardware, so the surrogate's predictions do too, by construction (see
:mod:`optimizer.surrogate.model`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from optimizer.catalog import get_gpu, load_model_spec
from optimizer.domain.enums import Engine, KVCacheDtype, Quantization
from optimizer.domain.gpu import GPUSpec
from optimizer.domain.model_spec import ModelSpec
from optimizer.errors import EpoptError, InvalidInputError
from optimizer.perf.closed_loop import closed_loop_plan
from optimizer.perf.library import KernelLibrary
from optimizer.perf.queries import Plan, distinct_rows, evaluate
from optimizer.perf.roofline import GpuFigures
from optimizer.perf.step import kernel_library

__all__ = [
    "CATEGORICAL",
    "FEATURES",
    "MONOTONE",
    "MONOTONE_BY_TARGET",
    "REQUIRED_COLUMNS",
    "TARGETS",
    "Resolved",
    "architecture_key",
    "build_features",
    "impossible_layouts",
    "prior_frame",
    "resolve_rows",
    "row_field",
]

REQUIRED_COLUMNS: tuple[str, ...] = (
    "model",
    "gpu",
    "engine",
    "quantization",
    "tp",
    "dp",
    "ep",
    "concurrency",
    "isl",
    "osl",
)
"""Columns a row must have; ``kv_cache_dtype`` (null = bf16), ``pp`` and ``mode`` are
optional (``pp`` must be 1 and ``mode`` ``agg``: the prior models one aggregated pool)."""

TARGETS: tuple[str, ...] = ("ttft_ms", "tpot_ms")

_EPS_MS = 1e-3

# feature -> monotone constraint of the correction (+1 non-decreasing, -1 non-increasing)
_WORKLOAD = {
    "log_prior_ttft": 1,
    "log_prior_tpot": 1,
    "log_decode_gemm": 1,
    "log_decode_attention": 1,
    "log_decode_moe": 1,
    "log_decode_comm": 1,
    "log_prefill_total": 1,
    "log_prefill_attention": 1,
    "log_burst_prefill": 1,
    "log_queue": 1,
    "log_kv_read": 1,
    "log_compute": 1,
    "log_weight_read": 1,
    "log_kv_pressure": 1,
    "log_concurrency": 1,
    "log_batch": 1,
    "log_isl": 1,
}
_HARDWARE = {"log_mem_bw": -1, "log_peak_tflops": -1, "log_interconnect": -1}
_FREE = (
    "log_osl",
    "log_tp",
    "log_dp",
    "log_ep",
    "log_hidden",
    "num_layers",
    "log_active_params",
    "log_weight_bytes_per_gpu",
    "log_kv_bytes_per_token",
    "num_experts",
    "experts_per_token",
    "is_mla",
    "linear_layer_share",
)
CATEGORICAL: tuple[str, ...] = ("engine", "quantization")
MONOTONE: dict[str, int] = {**_WORKLOAD, **_HARDWARE, **dict.fromkeys(_FREE, 0)}
MONOTONE.update(dict.fromkeys(CATEGORICAL, 0))
MONOTONE["log_interarrival"] = 1
FEATURES: tuple[str, ...] = tuple(MONOTONE)

# TTFT needs to be monotone in input length and hardware only (measured closed-loop
# TTFT falls with concurrency at first on some engines, as the first wave's burst is
# amortised over more requests). Features that only concurrency moves are free for it;
# ``log_kv_pressure`` is not one of them: the KV cache holds fewer sequences of a longer
# input, so it grows with input length too (left free, it let a fitted TTFT fall from
# 116.9 to 116.7 ms as Llama-3.1-8B's input grew from 16 to 257 tokens).
# ``log_interarrival`` (the prior's end-to-end latency over the clients: the mean gap
# between arrivals) helps TTFT but falls with concurrency, so TPOT -- which must not
# fall with concurrency -- does not see it.
_TTFT_FREE = ("log_concurrency", "log_batch")
MONOTONE_BY_TARGET: dict[str, dict[str, int]] = {
    "ttft_ms": {**MONOTONE, **dict.fromkeys(_TTFT_FREE, 0)},
    "tpot_ms": {k: v for k, v in MONOTONE.items() if k != "log_interarrival"},
}
"""Per target: its features and their monotone constraints (a subset of :data:`FEATURES`)."""


@dataclass(frozen=True)
class Resolved:
    """Validated rows: their catalog objects and normalised knob values.

    Attributes:
        frame: the knob columns, normalised (enum values as strings, ints as int64).
        models: spec of every model id in the rows.
        gpus: spec of every GPU id in the rows.
    """

    frame: pd.DataFrame
    models: dict[str, ModelSpec]
    gpus: dict[str, GPUSpec]


def architecture_key(spec: ModelSpec) -> str:
    """A model's shapes as text: checkpoints of one architecture (a base model and its
    fine-tunes or re-quantized exports) share it, whatever their id or native format."""
    shape = spec.model_dump(exclude={"model_id", "native_quantization"})
    return repr(sorted(shape.items()))


def row_field(label: Hashable, field: str) -> str:
    """``row <label>: <field>``, with numpy scalars shown as plain Python values."""
    plain = label.item() if isinstance(label, np.generic) else label
    return f"row {plain!r}: {field}"


def _row_error(label: Hashable, field: str, message: str, allowed: object = None) -> EpoptError:
    return InvalidInputError(row_field(label, field), message, allowed)  # type: ignore[arg-type]


def resolve_rows(
    rows: pd.DataFrame,
    gpus: Mapping[str, GPUSpec] | None = None,
    models: Mapping[str, ModelSpec] | None = None,
) -> Resolved:
    """Check that every row can be predicted and look up its model and GPU.

    Args:
        rows: runs in the native profile schema (targets, if present, are ignored).
        gpus: GPU specs by id that override or extend the catalog.
        models: model specs by id that override or extend the catalog.

    Returns:
        The normalised knobs and the catalog objects.

    Raises:
        InvalidInputError: a missing column, or a row with an unknown GPU or model,
            an unsupported mode or pipeline degree, a ``tp`` that does not divide the
            model's attention heads, or a bad value -- the message names the row's
            index label and the reason.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in rows.columns]
    if missing:
        raise InvalidInputError("rows", f"missing column(s) {missing}", REQUIRED_COLUMNS)
    gpus = dict(gpus or {})
    models = dict(models or {})
    frame = pd.DataFrame(index=rows.index)
    for col in ("model", "gpu", "engine", "quantization"):
        frame[col] = rows[col].astype(object)
    kv = rows["kv_cache_dtype"] if "kv_cache_dtype" in rows.columns else None
    frame["kv_cache_dtype"] = (
        KVCacheDtype.BF16.value if kv is None else kv.astype(object).where(kv.notna(), "bf16")
    )
    for col in ("tp", "dp", "ep", "concurrency", "isl", "osl"):
        frame[col] = pd.to_numeric(rows[col], errors="coerce")

    enums = {
        "engine": [e.value for e in Engine],
        "quantization": [q.value for q in Quantization],
        "kv_cache_dtype": [d.value for d in KVCacheDtype],
    }
    for col, allowed in enums.items():
        bad = ~frame[col].astype(str).isin(allowed) | frame[col].isna()
        if bad.any():
            label = frame.index[bad.to_numpy()][0]
            raise _row_error(label, col, f"unknown value {frame.at[label, col]!r}", allowed)
    for col in ("tp", "dp", "ep", "concurrency", "isl", "osl"):
        values = frame[col]
        bad = values.isna() | (values < 1) | (values != np.floor(values))
        if bad.any():
            label = frame.index[bad.to_numpy()][0]
            raise _row_error(
                label, col, f"must be a whole number >= 1, got {rows.at[label, col]!r}"
            )
        frame[col] = values.astype(np.int64)
    if "pp" in rows.columns:
        bad = pd.to_numeric(rows["pp"], errors="coerce").fillna(1) != 1
        if bad.any():
            label = rows.index[bad.to_numpy()][0]
            raise _row_error(label, "pp", "pipeline parallelism (pp > 1) is not modelled", [1])
    if "mode" in rows.columns:
        bad = rows["mode"].notna() & (rows["mode"] != "agg")
        if bad.any():
            label = rows.index[bad.to_numpy()][0]
            raise _row_error(
                label, "mode", f"{rows.at[label, 'mode']!r} runs are not modelled", ["agg"]
            )

    for gpu_id in frame["gpu"].unique():
        if gpu_id in gpus:
            continue
        try:
            gpus[gpu_id] = get_gpu(str(gpu_id))
        except EpoptError as exc:
            label = frame.index[(frame["gpu"] == gpu_id).to_numpy()][0]
            raise _row_error(label, "gpu", f"unknown GPU {gpu_id!r} ({exc})") from exc
        if gpus[gpu_id].bf16_tflops is None:
            label = frame.index[(frame["gpu"] == gpu_id).to_numpy()][0]
            raise _row_error(label, "gpu", f"GPU {gpu_id!r} has no BF16 peak to model it by")
    for model_id in frame["model"].unique():
        if model_id in models:
            continue
        try:
            models[model_id] = load_model_spec(str(model_id))
        except EpoptError as exc:
            label = frame.index[(frame["model"] == model_id).to_numpy()][0]
            raise _row_error(label, "model", f"cannot model {model_id!r}: {exc}") from exc
    reasons = impossible_layouts(frame, models).to_numpy()
    if (reasons != "").any():
        first = int(np.flatnonzero(reasons != "")[0])
        heads = models[frame["model"].iloc[first]].num_attention_heads
        divisors = [d for d in range(1, heads + 1) if heads % d == 0]
        raise _row_error(frame.index[first], "tp", reasons[first], divisors)
    return Resolved(frame, models, gpus)


def _layout_problem(spec: ModelSpec, tp: int) -> str:
    """Why ``tp`` cannot shard the model, or ``""``: every engine gives each GPU whole
    attention heads (vLLM, SGLang and TensorRT-LLM refuse to start otherwise)."""
    heads = spec.num_attention_heads
    if heads % tp == 0:
        return ""
    return f"tp {tp} does not divide {spec.model_id}'s {heads} attention heads"


def impossible_layouts(
    rows: pd.DataFrame, models: Mapping[str, ModelSpec] | None = None
) -> pd.Series:
    """Why each row's parallel layout cannot be served, ``""`` where it can.

    Measured runs can carry one: aiconfigurator's sample records wide expert-parallel
    DeepSeek-R1 deployments on GB200 as ``tp`` 12 to 72 with no attention data-parallel
    size, a layout no engine can run with 128 heads. Rows of a model the catalog does
    not know get ``""`` here (:func:`resolve_rows` names them).

    Args:
        rows: runs with ``model`` and ``tp``.
        models: model specs by id overriding or extending the catalog.
    """
    reasons = np.full(len(rows), "", dtype=object)
    tp = pd.to_numeric(rows["tp"], errors="coerce").to_numpy()
    by_model_tp = pd.DataFrame({"model": rows["model"].to_numpy(), "tp": tp})
    for (model_id, value), members in by_model_tp.groupby(
        ["model", "tp"], sort=False
    ).indices.items():
        if value < 1 or value != np.floor(value):
            continue  # resolve_rows reports it
        try:
            spec = (models or {}).get(model_id) or load_model_spec(str(model_id))
        except EpoptError:
            continue
        reasons[members] = _layout_problem(spec, int(value))
    return pd.Series(reasons, index=rows.index, dtype=object)


_PRIOR_KEYS = ("model", "gpu", "engine", "quantization", "kv_cache_dtype")


def prior_frame(resolved: Resolved) -> pd.DataFrame:
    """The operator prior of every row (columns of
    :meth:`~optimizer.perf.closed_loop.ClosedLoopPrior.to_frame`), same index.

    Rows are evaluated per (model, GPU, engine, format, KV dtype) at once, vectorised
    over their parallel degrees, concurrencies and lengths, and only on distinct knob
    combinations. Operators are timed from the kernel tables measured with the row's
    own engine (each engine ships its own GEMM, attention and MoE kernels: vLLM's FP8
    MoE on Hopper measures up to 8x slower than SGLang's for some expert shapes). The
    groups sharing a kernel library (a GPU and engine) have their kernel lookups timed
    together, one library call per operator (:func:`~optimizer.perf.queries.evaluate`).
    """
    frame = resolved.frame
    knobs = ["tp", "dp", "ep", "concurrency", "isl", "osl"]
    values = frame[knobs].to_numpy(np.int64)
    keys = frame[list(_PRIOR_KEYS)].to_numpy(object)
    groups = frame.groupby(list(_PRIOR_KEYS), sort=False)
    group_of_row = groups.ngroup().to_numpy()
    # distinct (group, knobs) rows of the whole batch at once: hashing, no per-group sort
    first, inverse = distinct_rows([group_of_row, *values.T])
    distinct, group_of_distinct = values[first], group_of_row[first]
    by_library: dict[KernelLibrary, list[tuple[np.ndarray, Plan]]] = {}
    for group in range(groups.ngroups):
        members = np.flatnonzero(group_of_distinct == group)
        model_id, gpu_id, engine, quantization, kv = keys[first[members[0]]]
        gpu = resolved.gpus[gpu_id]
        plan = closed_loop_plan(
            resolved.models[model_id],
            gpu,
            quantization=quantization,
            kv_dtype=kv,
            **{k: distinct[members, i] for i, k in enumerate(knobs)},
        )
        by_library.setdefault(kernel_library(gpu, engine), []).append((members, plan))
    pieces: dict[str, list[np.ndarray]] = {}
    order: list[np.ndarray] = []  # the distinct rows, in the order of the pieces
    for library, planned in by_library.items():
        priors = evaluate(library, [plan for _, plan in planned])
        for (members, _), prior in zip(planned, priors, strict=True):
            order.append(members)
            for name, value in prior.columns().items():
                pieces.setdefault(name, []).append(value)
    # each row's position in the concatenated pieces: one gather per column, no scatter
    # per group and column
    position = np.empty(len(distinct), dtype=np.intp)
    position[np.concatenate(order)] = np.arange(len(distinct))
    rows = position[inverse]
    return pd.DataFrame(
        {k: np.concatenate(v, dtype=np.float64)[rows] for k, v in pieces.items()},
        index=frame.index,
    )


def _log(values: pd.Series | np.ndarray) -> np.ndarray:
    return np.log(np.asarray(values, dtype=np.float64) + _EPS_MS)


def build_features(resolved: Resolved, prior: pd.DataFrame) -> pd.DataFrame:
    """The learned model's input: one row per configuration, columns :data:`FEATURES`."""
    frame = resolved.frame
    q = frame["quantization"].astype(str)
    kv = frame["kv_cache_dtype"].astype(str)
    # Catalog figures are computed once per distinct model, GPU or pairing and gathered
    # back to the rows (a per-row Python loop would dominate predict on large batches).
    model_codes, model_ids = pd.factorize(frame["model"])
    gpu_codes, gpu_ids = pd.factorize(frame["gpu"])
    models = [resolved.models[m] for m in model_ids]
    gpus = [resolved.gpus[g] for g in gpu_ids]

    def spec(attr: str) -> np.ndarray:
        return np.array([float(getattr(m, attr)) for m in models])[model_codes]

    def gpu_figure(attr: str) -> np.ndarray:
        return np.array([float(getattr(g, attr)) for g in gpus])[gpu_codes]

    def per_pair(
        codes: np.ndarray, labels: pd.Series, fn: Callable[[int, int], float]
    ) -> np.ndarray:
        label_codes, label_values = pd.factorize(labels)
        pairs, inverse = np.unique(codes * len(label_values) + label_codes, return_inverse=True)
        table = [fn(*divmod(int(p), len(label_values))) for p in pairs]
        return np.array(table, dtype=np.float64)[inverse.reshape(-1)]

    tp, dp = frame["tp"].to_numpy(float), frame["dp"].to_numpy(float)
    q_values, kv_values = pd.unique(q), pd.unique(kv)
    weight_bytes = per_pair(model_codes, q, lambda m, f: models[m].weight_bytes(q_values[f]))
    kv_token = per_pair(model_codes, kv, lambda m, d: models[m].kv_bytes_per_token(kv_values[d]))
    peak_tflops = 1e-12 * per_pair(
        gpu_codes, q, lambda g, f: GpuFigures.of(gpus[g]).peak_flops(q_values[f])
    )
    out = pd.DataFrame(
        {
            "log_prior_ttft": _log(prior["ttft_ms"]),
            "log_prior_tpot": _log(prior["tpot_ms"]),
            "log_decode_gemm": _log(prior["decode_gemm_ms"]),
            "log_decode_attention": _log(prior["decode_attention_ms"]),
            "log_decode_moe": _log(prior["decode_moe_ms"]),
            "log_decode_comm": _log(prior["decode_comm_ms"]),
            "log_prefill_total": _log(prior["prefill_total_ms"]),
            "log_prefill_attention": _log(prior["prefill_attention_ms"]),
            "log_burst_prefill": _log(prior["burst_prefill_ms"]),
            "log_queue": _log(prior["queue_ms"]),
            "log_kv_read": _log(prior["kv_read_ms"]),
            "log_compute": _log(prior["compute_ms"]),
            "log_weight_read": _log(prior["weight_read_ms"]),
            "log_kv_pressure": np.log(prior["batch"].to_numpy() / prior["kv_capacity"].to_numpy()),
            "log_interarrival": _log(
                (prior["ttft_ms"] + frame["osl"].to_numpy(float) * prior["tpot_ms"])
                / frame["concurrency"].to_numpy(float)
            ),
            "log_concurrency": np.log(frame["concurrency"].to_numpy(float)),
            "log_batch": np.log(prior["batch"].to_numpy(float)),
            "log_isl": np.log(frame["isl"].to_numpy(float)),
            "log_mem_bw": np.log(gpu_figure("mem_bw_tb_s")),
            "log_peak_tflops": np.log(peak_tflops),
            "log_interconnect": np.log(gpu_figure("interconnect_gb_s")),
            "log_osl": np.log(frame["osl"].to_numpy(float)),
            "log_tp": np.log(tp),
            "log_dp": np.log(dp),
            "log_ep": np.log(frame["ep"].to_numpy(float)),
            "log_hidden": np.log(spec("hidden_size")),
            "num_layers": spec("num_layers"),
            "log_active_params": np.log(spec("active_params")),
            "log_weight_bytes_per_gpu": np.log(weight_bytes / (tp * dp)),
            "log_kv_bytes_per_token": np.log(np.maximum(kv_token, 1.0)),
            "num_experts": spec("num_experts"),
            "experts_per_token": spec("experts_per_token"),
            "is_mla": np.array([m.attention == "mla" for m in models], dtype=np.float64)[
                model_codes
            ],
            "linear_layer_share": spec("num_linear_attention_layers") / spec("num_layers"),
            "engine": pd.Categorical(frame["engine"], categories=[e.value for e in Engine]),
            "quantization": pd.Categorical(q, categories=[x.value for x in Quantization]),
        },
        index=frame.index,
    )
    return out[list(FEATURES)]
