"""Does a configuration fit in GPU memory? Per-GPU bytes of one replica, vectorised.

Pure numpy: every knob argument may be a scalar or an array, and arrays broadcast, so
one call sizes a whole grid of candidates. All figures are bytes on the busiest GPU of
a replica (the pipeline stage with the most layers plus the embedding or output head).

Terms:

* **weights** — block linear layers (attention, dense MLP, shared experts) split over
  ``tp`` and the stage's share of layers, stored in the quantized format
  (``optimizer.domain.model_spec.BYTES_PER_PARAM``, scales included); routed experts split
  over all ``tp * dp`` GPUs of the replica (expert parallelism changes how they are cut —
  whole experts per GPU instead of slices — not how many bytes each GPU holds; vLLM and
  SGLang form a ``tp * dp`` expert group either way); embedding, output head and vision
  tower in 16 bits, vocabulary-parallel over ``tp``, the embedding on the first pipeline
  stage and the head on the last (a tied head is copied to the last stage when
  ``pp > 1``); router, norms and biases replicated. Speculative decoding adds its
  drafter: an EAGLE/EAGLE-3 head is estimated as one 16-bit decoder layer of the target's
  shape (plus EAGLE-3's 3*hidden->hidden fusion layer), MTP as ``num_mtp_layers`` layers
  of the target; n-gram needs none, and a separate draft model's weights are not counted
  (its size is not known from the target).
* **activations** — the transient workspace of the largest step, ``T = max(
  max_num_batched_tokens, max_batch_size * (1 + draft_len))`` tokens: per token the
  residual and normalised hidden states (2 x hidden) plus the larger of the attention
  projections (q, k, v and output heads on this GPU) and the MLP buffers (gate/up output
  2*F plus activation output F, with F the dense or routed-and-shared FFN width over
  ``tp``), in 16 bits; plus fp32 logits over the full vocabulary for every sequence and
  draft position. An estimate of what the engines' profiling runs reserve (vLLM profiles
  ``max_num_batched_tokens`` tokens), not a kernel-exact count.
* **kv** — ``max_batch_size`` sequences of ``seq_len`` tokens plus ``draft_len``
  lookahead slots, rounded up to whole KV blocks (``ModelSpec.kv_bytes_per_sequence``).
  GQA heads are split over ``tp``, but when ``tp`` exceeds the KV heads each GPU keeps
  one (replicated) head, so the per-GPU share is ``1 / min(tp, num_kv_heads)``; MLA's
  latent (and the DSA indexer key) is replicated on every ``tp`` rank; linear-attention
  states split over their value heads. ``max_batch_size`` counts sequences per scheduler
  (per attention data-parallel rank), as vLLM's ``max_num_seqs`` does.
* **overhead** — fixed runtime memory outside the engine's tensors: CUDA context,
  cuBLAS workspaces and the allocator, 551 MiB, plus NCCL communicator buffers for the
  replica's largest collective group (342 MiB for 2 GPUs, 392 MiB for 4 or more).
  Source: aiconfigurator-core 0.12.0 ``systems/*.yaml`` ``misc.nccl_mem`` and the
  measured 551 MB that ``misc.other_mem`` records before its own safety margin ("increase
  from 551MB to 3.5GB for safer deployment, this will cover part of the inaccurate mem
  calc"). That 3.5 GiB margin is not added here: each engine's memory fraction
  (vLLM's 0.9 leaves 10 % of the GPU untouched) already is the safety margin, and this
  module counts activations explicitly instead of covering them with a margin.

The budget depends on how the engine caps memory (``MemoryFractionMode``), with ``M``
the GPU's usable memory and ``f`` the engine's fraction:

* ``total`` (vLLM ``gpu_memory_utilization``): everything <= f*M, so
  ``kv_budget = f*M - weights - activations - overhead``.
* ``static`` (SGLang ``mem_fraction_static``): weights + KV pool <= f*M, activations and
  CUDA graphs use the rest: ``kv_budget = min(f*M - weights - overhead,
  M - weights - activations - overhead)``.
* ``free`` (TensorRT-LLM ``free_gpu_memory_fraction``): the KV cache takes f of what is
  free after weights, activations and overhead: ``kv_budget = f*(M - weights -
  activations - overhead)``.

A candidate fits when ``kv_budget >= kv``; ``max_sequences`` is how many sequences of
that length the KV budget holds.

Example:
    >>> from optimizer.catalog.gpus import get_gpu
    >>> from optimizer.catalog.models import load_model_spec
    >>> m = estimate_memory(load_model_spec("meta-llama/Llama-3.1-70B"), get_gpu("h100_sxm"),
    ...                     tp=[1, 2], max_batch_size=8, seq_len=2048)
    >>> m.fits.tolist()
    [False, True]
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np

from optimizer.domain.enums import KVCacheDtype, Quantization, SpecMethod
from optimizer.domain.gpu import GPUSpec
from optimizer.domain.model_spec import BYTES_PER_PARAM, ModelSpec
from optimizer.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ACTIVATION_BYTES",
    "LOGIT_BYTES",
    "NCCL_BUFFER_BYTES",
    "RUNTIME_OVERHEAD_BYTES",
    "MemoryBreakdown",
    "MemoryFractionMode",
    "estimate_memory",
]

RUNTIME_OVERHEAD_BYTES = 551 * 2**20
"""CUDA context, cuBLAS workspaces, allocator: aiconfigurator's measured 551 MB (MiB)."""

NCCL_BUFFER_BYTES: dict[int, int] = {1: 0, 2: 358_612_992, 4: 411_041_792, 8: 411_041_792}
"""NCCL buffers by collective group size (aiconfigurator ``misc.nccl_mem``; larger groups
use the 8-GPU figure)."""

ACTIVATION_BYTES = 2
"""Activations are 16-bit whatever the weight format."""

LOGIT_BYTES = 4
"""Logits are gathered and sampled in fp32."""

_GIB = float(2**30)
_DRAFT_HEADS = (SpecMethod.EAGLE.value, SpecMethod.EAGLE3.value)


class MemoryFractionMode(StrEnum):
    """What an engine's memory fraction caps (see the module docstring)."""

    TOTAL = "total"
    STATIC = "static"
    FREE = "free"


@dataclass(frozen=True)
class MemoryBreakdown:
    """Per-GPU bytes of one replica; every field has the broadcast shape of the inputs.

    Attributes:
        weights: model (and drafter) weights on the busiest GPU.
        activations: transient workspace of the largest step.
        kv: KV cache for ``max_batch_size`` sequences.
        overhead: CUDA context and NCCL buffers.
        kv_per_sequence: KV bytes of one sequence on this GPU (drafter included).
        kv_budget: bytes the engine's memory cap leaves for the KV cache (negative when
            even weights, activations and overhead do not fit).
        budget: what the engine would hold: weights + activations + overhead + kv_budget.
        usable: the GPU's usable memory.
        fits: ``kv_budget >= kv``.
        max_sequences: sequences of this length the KV budget holds.
    """

    weights: np.ndarray
    activations: np.ndarray
    kv: np.ndarray
    overhead: np.ndarray
    kv_per_sequence: np.ndarray
    kv_budget: np.ndarray
    budget: np.ndarray
    usable: np.ndarray
    fits: np.ndarray
    max_sequences: np.ndarray

    def to_frame(self) -> pd.DataFrame:
        """One row per candidate, byte figures in GiB."""
        import pandas as pd

        columns: dict[str, np.ndarray] = {}
        for f in fields(self):
            value = np.ravel(getattr(self, f.name))
            columns[f.name if f.name in ("fits", "max_sequences") else f"{f.name}_gib"] = (
                value if f.name in ("fits", "max_sequences") else value / _GIB
            )
        return pd.DataFrame(columns)

    def item(self, index: int = 0) -> dict[str, float | int | bool]:
        """The figures of one candidate (flat index), bytes as floats."""
        out: dict[str, float | int | bool] = {}
        for f in fields(self):
            value = np.ravel(getattr(self, f.name))[index]
            out[f.name] = value.item()
        return out


def _as_values(values: Any, enum: type[StrEnum], field: str) -> np.ndarray:
    """Validate an enum-valued argument (scalar or array) into a str array."""
    allowed = {member.value for member in enum}
    if isinstance(values, str):  # one value (enum members are str too): no array scan
        text = np.asarray(str(values))
        bad = [] if str(values) in allowed else [str(values)]
    else:
        text = np.asarray(values, dtype=object).astype(str)
        bad = sorted(set(np.unique(text).tolist()) - allowed)
    if bad:
        raise InvalidInputError(field, f"unknown value(s) {bad}", allowed=sorted(allowed))
    return text


def _lookup(text: np.ndarray, table: dict[str, float]) -> np.ndarray:
    if text.ndim == 0:
        return np.asarray(table[str(text)], dtype=np.float64)
    unique, inverse = np.unique(text, return_inverse=True)
    return np.array([table[u] for u in unique], dtype=np.float64)[inverse].reshape(text.shape)


def _kv_bytes_by_length(model: ModelSpec, tokens: np.ndarray, kv_dtype: str) -> np.ndarray:
    """``model.kv_bytes_per_sequence`` of one KV dtype, evaluated once per distinct length."""
    unique, inverse = np.unique(tokens, return_inverse=True)
    values = [model.kv_bytes_per_sequence(int(t), kv_dtype) for t in unique]
    return np.asarray(values, dtype=np.float64)[inverse].reshape(np.shape(tokens))


def _kv_sequence_bytes(model: ModelSpec, tokens: np.ndarray, kv_dtype: np.ndarray) -> np.ndarray:
    """``model.kv_bytes_per_sequence`` over broadcast arrays (evaluated once per distinct pair)."""
    if kv_dtype.ndim == 0:  # one dtype (the usual case): no mask per dtype
        return _kv_bytes_by_length(model, tokens, str(kv_dtype))
    tokens, kv_dtype = np.broadcast_arrays(tokens, kv_dtype)
    out = np.empty(tokens.shape, dtype=np.float64)
    for dtype in np.unique(kv_dtype):
        where = kv_dtype == dtype
        out[where] = _kv_bytes_by_length(model, tokens[where], str(dtype))
    return out


_NCCL_GROUPS = np.array(sorted(NCCL_BUFFER_BYTES))
_NCCL_BYTES = np.array([NCCL_BUFFER_BYTES[k] for k in _NCCL_GROUPS], dtype=np.float64)


def _nccl_bytes(group: np.ndarray) -> np.ndarray:
    return _NCCL_BYTES[np.searchsorted(_NCCL_GROUPS, group, side="right") - 1]


def _ints(values: Any, field: str, minimum: int = 1) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind not in "iu":
        raise InvalidInputError(field, f"must be integer(s), got {values!r}")
    if array.size and array.min() < minimum:
        raise InvalidInputError(field, f"must be >= {minimum}, got {values!r}")
    return array.astype(np.int64)


def _drafter_layer_params(model: ModelSpec) -> float:
    """Parameters of one dense decoder layer shaped like the target's."""
    ffn = model.intermediate_size or (model.moe_intermediate_size or 0)
    return model.attention_params / model.num_layers + 3.0 * model.hidden_size * ffn


def estimate_memory(
    model: ModelSpec,
    gpu: GPUSpec,
    *,
    seq_len: Any,
    tp: Any = 1,
    pp: Any = 1,
    dp: Any = 1,
    quantization: Any = Quantization.BF16,
    kv_cache_dtype: Any = KVCacheDtype.BF16,
    max_batch_size: Any = 1,
    max_num_batched_tokens: Any = 8192,
    spec_method: Any = SpecMethod.NONE,
    spec_draft_len: Any = 0,
    kv_block_size: Any = None,
    memory_fraction: Any = 0.9,
    fraction_mode: MemoryFractionMode | str = MemoryFractionMode.TOTAL,
) -> MemoryBreakdown:
    """Per-GPU memory of one replica for each (broadcast) combination of the arguments.

    Args:
        model: the model's shapes.
        gpu: the GPU (its ``usable_memory_bytes`` is the ceiling).
        seq_len: tokens per sequence (prompt plus output).
        tp, pp, dp: tensor, pipeline and attention data-parallel degrees.
        quantization: weight format of the linear layers.
        kv_cache_dtype: KV-cache element type.
        max_batch_size: sequences per scheduler.
        max_num_batched_tokens: chunked-prefill token budget per step.
        spec_method, spec_draft_len: speculative decoding (``none`` and 0 when off).
        kv_block_size: KV block (page) size in tokens; ``None``: no rounding.
        memory_fraction: the engine's memory fraction ``f``.
        fraction_mode: what ``f`` caps (``total``, ``static`` or ``free``).

    Returns:
        A ``MemoryBreakdown`` whose arrays have the inputs' broadcast shape.

    Raises:
        InvalidInputError: a value outside its domain (names the argument).
    """
    mode = MemoryFractionMode(fraction_mode)
    tp_ = _ints(tp, "tp")
    pp_ = _ints(pp, "pp")
    dp_ = _ints(dp, "dp")
    batch = _ints(max_batch_size, "max_batch_size")
    seq = _ints(seq_len, "seq_len", minimum=0)
    chunk = _ints(max_num_batched_tokens, "max_num_batched_tokens")
    draft_len = _ints(spec_draft_len, "spec_draft_len", minimum=0)
    quant = _as_values(quantization, Quantization, "quantization")
    kv_dtype = _as_values(kv_cache_dtype, KVCacheDtype, "kv_cache_dtype")
    method = _as_values(spec_method, SpecMethod, "spec_method")
    fraction = np.asarray(memory_fraction, dtype=np.float64)
    if fraction.size and (fraction.min() <= 0 or fraction.max() > 1):
        raise InvalidInputError("memory_fraction", f"must be in (0, 1], got {memory_fraction!r}")

    layers = model.num_layers
    stage = np.ceil(layers / pp_) / layers  # share of layers on the busiest stage
    param_bytes = _lookup(quant, {q.value: b for q, b in BYTES_PER_PARAM.items()})

    # --- weights ----------------------------------------------------------------------
    block = model.attention_params + model.dense_mlp_params + model.shared_expert_params
    weights = block * param_bytes / tp_ * stage
    weights = weights + model.routed_expert_params * param_bytes / (tp_ * dp_) * stage
    weights = weights + (model.router_params + model.other_params) * 2.0 * stage
    embedding = (model.embedding_params + model.vision_params) * 2.0 / tp_
    head_params = model.embedding_params if model.tie_word_embeddings else model.lm_head_params
    untied_head = model.lm_head_params * 2.0 / tp_
    last_stage_head = head_params * 2.0 / tp_
    weights = weights + np.where(
        pp_ == 1, embedding + untied_head, np.maximum(embedding, last_stage_head)
    )
    eagle = np.logical_or.reduce([method == head for head in _DRAFT_HEADS])  # no np.isin scan
    eagle_params = _drafter_layer_params(model) + np.where(
        method == SpecMethod.EAGLE3.value, 3.0 * model.hidden_size**2, 0.0
    )
    mtp_layers = max(model.num_mtp_layers, 1)
    mtp_bytes = (
        mtp_layers
        * (block * param_bytes / tp_ + model.routed_expert_params * param_bytes / (tp_ * dp_))
        / layers
    )
    weights = weights + np.where(eagle, eagle_params * 2.0 / tp_, 0.0)
    weights = weights + np.where(method == SpecMethod.MTP.value, mtp_bytes, 0.0)

    # --- KV cache ---------------------------------------------------------------------
    tokens = seq + draft_len
    if kv_block_size is not None:
        block_size = _ints(kv_block_size, "kv_block_size")
        tokens = -(-tokens // block_size) * block_size
    total = _kv_sequence_bytes(model, tokens, kv_dtype)
    indexer = float(model.indexer_kv_bytes_per_token_per_layer * model.num_attention_layers)
    indexer = indexer * tokens
    state = float(model.recurrent_state_bytes_per_sequence)
    attention_kv = total - indexer - state
    kv_split = 1 if model.attention == "mla" else np.minimum(tp_, model.num_kv_heads)
    state_split = np.minimum(tp_, model.linear_num_value_heads or 1)
    kv_per_sequence = (attention_kv / kv_split + indexer + state / state_split) * stage
    draft_layers = np.where(eagle, 1, np.where(method == SpecMethod.MTP.value, mtp_layers, 0))
    per_layer = attention_kv / max(model.num_attention_layers, 1) / kv_split
    kv_per_sequence = kv_per_sequence + draft_layers * per_layer
    kv = batch * kv_per_sequence

    # --- activations ------------------------------------------------------------------
    step_tokens = np.maximum(chunk, batch * (1 + draft_len))
    attention_width = (
        model.num_attention_heads * (model.head_dim + model.v_head_dim) / tp_
        + model.kv_elements_per_token_per_layer / kv_split
    )
    ffn = model.intermediate_size if model.num_dense_layers else 0
    if model.is_moe:
        moe = model.experts_per_token * (model.moe_intermediate_size or 0)
        ffn = max(ffn, moe + (model.shared_expert_intermediate_size or 0))
    per_token = 2.0 * model.hidden_size + np.maximum(attention_width, 3.0 * ffn / tp_)
    logits = batch * (1 + draft_len) * float(model.vocab_size) * LOGIT_BYTES
    activations = step_tokens * per_token * ACTIVATION_BYTES + logits

    # --- overhead and budget ----------------------------------------------------------
    group = tp_ * dp_
    group = np.where(pp_ > 1, np.maximum(group, 2), group)
    overhead = RUNTIME_OVERHEAD_BYTES + _nccl_bytes(group)
    usable = float(gpu.usable_memory_bytes)
    fixed = weights + activations + overhead
    if mode is MemoryFractionMode.TOTAL:
        kv_budget = fraction * usable - fixed
    elif mode is MemoryFractionMode.STATIC:
        kv_budget = np.minimum(fraction * usable - weights - overhead, usable - fixed)
    else:
        kv_budget = fraction * (usable - fixed)

    max_sequences = np.floor(np.maximum(kv_budget, 0.0) / kv_per_sequence).astype(np.int64)
    arrays = np.broadcast_arrays(
        np.asarray(weights, dtype=np.float64),
        np.asarray(activations, dtype=np.float64),
        np.asarray(kv, dtype=np.float64),
        np.asarray(overhead, dtype=np.float64),
        np.asarray(kv_per_sequence, dtype=np.float64),
        np.asarray(kv_budget, dtype=np.float64),
        np.asarray(fixed + kv_budget, dtype=np.float64),
        np.full((), usable),
        kv_budget >= kv,
        max_sequences,
    )
    return MemoryBreakdown(*arrays)
