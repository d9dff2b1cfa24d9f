"""One engine step composed from its operators.

A step of a transformer on one attention data-parallel rank is the sum, over its
layers, of a known list of operators, each timed by a
:class:`~optimizer.perf.KernelLibrary` (measured kernels, transferred or roofline):

* **attention projections** -- one GEMM per layer of ``m = tokens`` rows with the
  layer's attention weights split over ``tp`` (``n = attention_params / layers /
  hidden / tp``, ``k = hidden``): the same weight bytes and FLOPs as the separate
  QKV / O (or MLA down/up) projections;
* **attention kernel** -- context (prefill) attention over ``prefill_len`` tokens for
  new requests, generation (decode) attention over ``kv_len`` cached tokens for running
  ones; heads split over ``tp`` (KV heads replicated when ``tp`` exceeds them). MLA
  decodes in the absorbed form (one 576-wide latent "head" shared by all query heads)
  and prefills in the multi-head form, both timed from the measured latent-attention
  kernels where the GPU has them (:meth:`~optimizer.perf.KernelLibrary.generation_mla`);
  sliding-window layers cap the context at the
  window, DeepSeek sparse attention at ``index_topk``. Linear-attention layers read and
  write their recurrent state once per token (roofline);
* **dense MLP** -- gate/up and down GEMMs of the layer's dense FFN split over ``tp``;
  block-scaled FP8 weights (``fp8_block``, or ``fp8`` served from a block-scaled
  checkpoint) run the faster of the GPU's measured per-tensor and block-scaled FP8
  kernels, GEMMs and experts alike (:func:`kernel_formats`);
* **MoE** -- the routed experts a batch touches (the library counts the experts
  ``tokens x top-k`` pairs reach on each expert-parallel rank), expert tensor
  parallelism ``tp * dp / ep``; shared experts as a dense MLP;
* **communication** -- two all-reduces per layer of ``tokens x hidden x 2`` bytes over
  the ``tp`` GPUs; with attention data parallelism, one more per MoE layer over all
  ``tp * dp`` GPUs of ``dp`` times those bytes (dispatch and combine);
* **lm_head** -- a 16-bit GEMM of the sampled tokens by the vocabulary split over ``tp``;
* **overhead** -- a fixed per-step cost (scheduler, sampling, launch gaps):
  :data:`STEP_OVERHEAD_MS` plus :data:`LAYER_OVERHEAD_MS` per layer.

The closed-loop TTFT/TPOT estimates built from these steps live in
:mod:`optimizer.perf.closed_loop`.

Every term is non-decreasing in the number of sequences and their lengths, and
non-increasing in GPU bandwidth and FLOPS (the library's operators are).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike

from optimizer.domain.enums import Engine, KVCacheDtype, Quantization
from optimizer.domain.gpu import GPUSpec
from optimizer.domain.model_spec import ModelSpec
from optimizer.perf.kernel_data import available_engines, gpus_with_kernel_data
from optimizer.perf.library import KernelLibrary
from optimizer.perf.queries import OperatorQuery, Plan, evaluate

__all__ = [
    "ACTIVATION_WIRE_BYTES",
    "LAYER_OVERHEAD_MS",
    "STEP_OVERHEAD_MS",
    "StepTerms",
    "decode_step_ms",
    "kernel_formats",
    "kernel_library",
    "prefill_ms",
    "step_plan",
    "step_terms",
]

STEP_OVERHEAD_MS = 0.5
"""Fixed cost of one engine step outside the layers (scheduling, sampling, launch)."""

LAYER_OVERHEAD_MS = 0.005
"""Launch gaps per layer and step (a few kernels of ~1 us each)."""

ACTIVATION_WIRE_BYTES = 2.0
"""Bytes per activation element on the wire (16-bit all-reduces)."""


@dataclass(frozen=True)
class StepTerms:
    """Milliseconds of one step on one rank, by operator family (broadcast arrays).

    Attributes:
        gemm_ms: attention projections, dense MLPs and shared experts.
        attention_ms: attention kernels (context and generation) and linear-attention
            state updates.
        moe_ms: routed experts.
        comm_ms: all-reduces (and MoE dispatch with attention data parallelism).
        lm_head_ms: output projection of the sampled tokens.
        overhead_ms: fixed per-step and per-layer overhead.
    """

    gemm_ms: np.ndarray
    attention_ms: np.ndarray
    moe_ms: np.ndarray
    comm_ms: np.ndarray
    lm_head_ms: np.ndarray
    overhead_ms: np.ndarray

    @property
    def total_ms(self) -> np.ndarray:
        """Sum of all terms."""
        return sum((getattr(self, f.name) for f in fields(self)), np.zeros(()))


def kernel_library(gpu: GPUSpec, engine: Engine | str = Engine.VLLM) -> KernelLibrary:
    """The (cached) kernel library of a GPU.

    One kernel engine per GPU: ``engine`` where the GPU has its tables, else the first
    engine it has tables for; GPUs without tables use the measured GPU of the same
    architecture (transferred) or the roofline. Engine differences are left to the
    learned correction.

    Args:
        gpu: the catalog GPU (its figures are part of the cache key, so a hypothetical
            GPU with changed figures gets its own library).
        engine: preferred kernel engine.
    """
    return _library(gpu.id, gpu.model_dump_json(), Engine(engine).value)


@lru_cache(maxsize=64)
def _library(gpu_id: str, spec_json: str, engine: str) -> KernelLibrary:
    gpu = GPUSpec.model_validate_json(spec_json)
    if gpu_id in gpus_with_kernel_data():
        engines = available_engines(gpu_id, "gemm")
        if engines and engine not in engines:
            engine = engines[0]
    if gpu.bf16_tflops is None:
        return KernelLibrary.roofline_only(gpu, name=gpu_id)
    return KernelLibrary.for_gpu(gpu_id, gpu, engine=engine)


def _f(value: ArrayLike) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


def _dense_quantization(model: ModelSpec, quantization: str) -> str:
    """Format of the non-expert GEMMs: MXFP4 checkpoints quantize the experts only."""
    if Quantization(quantization) is Quantization.MXFP4:
        return Quantization.BF16.value
    return Quantization(quantization).value


_FP8_FAMILY = (Quantization.FP8.value, Quantization.FP8_BLOCK.value)


def kernel_formats(model: ModelSpec, quantization: str) -> tuple[str, ...]:
    """The measured kernel formats a step's GEMMs and experts may run in; each is
    timed by the fastest of them.

    Block-scaled FP8 weights -- ``fp8_block``, or ``fp8`` served from a checkpoint
    stored block-scaled (the engine loads its scales as they are) -- do per-tensor
    FP8's math plus one scale per 128x128 tile, and engines pick among several FP8
    kernels per platform (Triton, CUTLASS, DeepGEMM, FlashInfer). The measured tables
    hold some of them in each format: on Hopper vLLM's per-tensor FP8 experts are
    FlashInfer's, 5x slower than its block-scaled Triton ones, while on Blackwell the
    block-scaled table is the slow path. Every other format runs its own kernels.
    """
    q = Quantization(quantization).value
    native = model.native_quantization
    block_scaled = q == Quantization.FP8_BLOCK.value or (
        q == Quantization.FP8.value and native is Quantization.FP8_BLOCK
    )
    return _FP8_FAMILY if block_scaled else (q,)


def _stacked(values: Sequence[ArrayLike], shape: tuple[int, ...]) -> np.ndarray:
    """The values broadcast to ``shape`` and stacked on a new leading axis (one copy)."""
    out = np.empty((len(values), *shape))
    for i, value in enumerate(values):
        out[i] = value
    return out


def _attention_shapes(model: ModelSpec, tp: np.ndarray) -> dict[str, np.ndarray]:
    """Per-GPU heads and head sizes of the prefill (multi-head) and decode forms."""
    heads = np.maximum(model.num_attention_heads / tp, 1.0)
    if model.attention == "mla":
        assert model.kv_lora_rank is not None and model.qk_rope_head_dim is not None
        latent = float(model.kv_lora_rank + model.qk_rope_head_dim)
        # prefill FLOPs are 2 (d_qk + d_v) per attended pair and head
        prefill_dim = (model.head_dim + (model.v_head_dim or model.head_dim)) / 2.0
        return {
            "heads": heads,
            "prefill_kv_heads": heads,
            "prefill_head_dim": np.full_like(heads, prefill_dim),
            "decode_kv_heads": np.ones_like(heads),
            "decode_head_dim": np.full_like(heads, latent),
        }
    kv_heads = np.maximum(model.num_kv_heads / tp, 1.0)
    dim = np.full_like(heads, float(model.head_dim))
    return {
        "heads": heads,
        "prefill_kv_heads": kv_heads,
        "prefill_head_dim": dim,
        "decode_kv_heads": kv_heads,
        "decode_head_dim": dim,
    }


def _linear_state_ms(
    model: ModelSpec, gpu: GPUSpec, tp: np.ndarray, seqs: np.ndarray, tokens: np.ndarray
) -> np.ndarray:
    """Linear-attention layers: each sequence's state read and written once per step,
    plus the per-token state FLOPs (roofline at the BF16 peak)."""
    if not model.num_linear_attention_layers:
        return np.zeros(np.broadcast_shapes(tp.shape, seqs.shape, tokens.shape))
    split = np.minimum(tp, float(model.linear_num_value_heads or 1))
    state = model.recurrent_state_bytes_per_sequence / split
    bytes_ = 2.0 * seqs * state
    flops_per_token = model.flops_per_token(0) - 2.0 * model.active_params
    flops = tokens * flops_per_token / tp
    return 1e3 * (bytes_ / (gpu.mem_bw_tb_s * 1e12) + flops / (float(gpu.bf16_tflops) * 1e12))


def step_terms(
    model: ModelSpec,
    gpu: GPUSpec,
    library: KernelLibrary,
    *,
    quantization: str,
    kv_dtype: str,
    tp: ArrayLike,
    dp: ArrayLike,
    ep: ArrayLike,
    decode_seqs: ArrayLike = 0.0,
    kv_len: ArrayLike = 1.0,
    prefill_seqs: ArrayLike = 0.0,
    prefill_len: ArrayLike = 1.0,
) -> StepTerms:
    """Time one step on one attention-DP rank, by operator family.

    The step runs ``decode_seqs`` sequences one token each over ``kv_len`` cached
    tokens, and prefills ``prefill_seqs`` requests of ``prefill_len`` tokens (both may be
    fractional: averages over steps). All array arguments broadcast.

    Args:
        model: the model's shapes.
        gpu: the GPU.
        library: its kernel library (:func:`kernel_library`).
        quantization: weight format of the linear layers.
        kv_dtype: KV-cache element type.
        tp, dp, ep: tensor, attention data and expert parallel degrees.
        decode_seqs: running sequences decoding one token.
        kv_len: their cached context.
        prefill_seqs: requests being prefilled.
        prefill_len: their prompt length.

    Returns:
        The step's :class:`StepTerms`.
    """
    plan = step_plan(
        model,
        gpu,
        quantization=quantization,
        kv_dtype=kv_dtype,
        tp=tp,
        dp=dp,
        ep=ep,
        decode_seqs=decode_seqs,
        kv_len=kv_len,
        prefill_seqs=prefill_seqs,
        prefill_len=prefill_len,
    )
    return evaluate(library, [plan])[0]


def step_plan(
    model: ModelSpec,
    gpu: GPUSpec,
    *,
    quantization: str,
    kv_dtype: str,
    tp: ArrayLike,
    dp: ArrayLike,
    ep: ArrayLike,
    decode_seqs: ArrayLike = 0.0,
    kv_len: ArrayLike = 1.0,
    prefill_seqs: ArrayLike = 0.0,
    prefill_len: ArrayLike = 1.0,
) -> Plan[StepTerms]:
    """:func:`step_terms` as a :class:`~optimizer.perf.queries.Plan`: its kernel lookups,
    to be timed together with other plans' on the same library, and their sum.

    Arguments as for :func:`step_terms`. Attention kernels of a step that holds no
    prefill (no decode) are not looked up: they are multiplied by zero.
    """
    tp_, dp_, ep_ = _f(tp), _f(dp), _f(ep)
    b_d, b_p = _f(decode_seqs), _f(prefill_seqs)
    kv_len_, isl = _f(kv_len), _f(prefill_len)
    formats = kernel_formats(model, quantization)
    kv = KVCacheDtype(kv_dtype).value
    hidden = float(model.hidden_size)
    tokens = b_d + b_p * isl
    m = np.maximum(tokens, 1.0)
    active = tokens > 0
    queries: list[OperatorQuery] = []

    # --- GEMMs: attention projections, dense MLPs, shared experts ----------------------
    # (layers, n, k) of every GEMM of the step, timed in one stacked lookup
    attn_layers = max(model.num_layers, 1)
    shapes_nk = [
        (attn_layers, np.maximum(model.attention_params / attn_layers / hidden / tp_, 1.0), hidden)
    ]
    for layers, params in (
        (model.num_dense_layers, model.dense_mlp_params),
        (model.num_moe_layers, model.shared_expert_params),
    ):
        if layers and params:
            inter = params / layers / (3.0 * hidden)
            shapes_nk.append((layers, np.maximum(2.0 * inter / tp_, 1.0), hidden))  # up
            shapes_nk.append((layers, hidden, np.maximum(inter / tp_, 1.0)))  # down
    gemm_shape = np.broadcast_shapes(m.shape, tp_.shape)
    stacked_mnk = tuple(
        _stacked(column, gemm_shape)
        for column in zip(*((m, n, k) for _, n, k in shapes_nk), strict=True)
    )
    for q in formats:
        queries.append(OperatorQuery("gemm", (*stacked_mnk, _dense_quantization(model, q))))

    # --- attention kernels ----------------------------------------------------------
    shapes = _attention_shapes(model, tp_)
    layer_kinds = [(model.num_full_attention_layers, model.index_topk or 0)]
    if model.num_sliding_layers:
        layer_kinds.append((model.num_sliding_layers, model.sliding_window or 0))
    layer_kinds = [(count, window) for count, window in layer_kinds if count]
    prefills, decodes = np.minimum(b_p, 1.0), np.minimum(b_d, 1.0)
    mla = model.attention == "mla"
    for _, window in layer_kinds:
        context_args: tuple[ArrayLike, ...] = (
            np.maximum(b_p, 1.0),
            np.maximum(isl, 1.0),
            shapes["heads"],
        )
        generation_args: tuple[ArrayLike, ...] = (
            np.maximum(b_d, 1.0),
            np.maximum(kv_len_, 1.0),
            shapes["heads"],
        )
        if mla:  # the measured latent-attention kernels, by per-GPU heads
            context_op, generation_op = "context_mla", "generation_mla"
            context_args += (shapes["prefill_head_dim"], kv, window)
            generation_args += (shapes["decode_head_dim"], kv, window)
        else:
            context_op, generation_op = "context_attention", "generation_attention"
            context_args += (shapes["prefill_kv_heads"], shapes["prefill_head_dim"], kv, window)
            generation_args += (shapes["decode_kv_heads"], shapes["decode_head_dim"], kv, window)
        queries.append(OperatorQuery(context_op, context_args, prefills != 0))
        queries.append(OperatorQuery(generation_op, generation_args, decodes != 0))

    # --- routed experts ----------------------------------------------------------------
    if model.num_moe_layers:
        assert model.moe_intermediate_size is not None
        moe_tp = np.maximum(np.floor(tp_ * dp_ / ep_), 1.0)
        routed_tokens = np.maximum(tokens * dp_, 1.0)
        shape_args = (
            hidden,
            float(model.moe_intermediate_size),
            float(model.experts_per_token),
            float(model.num_experts),
        )
        for q in formats:
            queries.append(OperatorQuery("moe", (routed_tokens, *shape_args, q, moe_tp, ep_)))

    # --- communication ---------------------------------------------------------------
    message = m * hidden * ACTIVATION_WIRE_BYTES
    queries.append(OperatorQuery("all_reduce", (message, tp_)))
    if model.num_moe_layers:
        queries.append(OperatorQuery("all_reduce", (message * dp_, tp_ * dp_), dp_ > 1))

    # --- output head ------------------------------------------------------------------
    sampled = np.maximum(b_d + b_p, 1.0)
    vocab = np.maximum(model.vocab_size / tp_, 1.0)
    queries.append(OperatorQuery("gemm", (sampled, vocab, hidden, Quantization.BF16.value)))

    def fastest(answers: Sequence[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """The elementwise fastest of the next ``len(formats)`` answers, and the rest."""
        candidates, rest = answers[: len(formats)], list(answers[len(formats) :])
        return np.minimum.reduce([np.asarray(c) for c in candidates]), rest

    def finish(answers: Sequence[np.ndarray]) -> StepTerms:
        times, rest = fastest(answers)
        gemm = sum(layers * t for (layers, _, _), t in zip(shapes_nk, times, strict=True))

        attention = np.zeros(np.broadcast_shapes(tokens.shape, tp_.shape, kv_len_.shape))
        for count, _ in layer_kinds:
            context, gen, *rest = rest
            attention = attention + count * (context * prefills + gen * decodes)
        attention = attention + _linear_state_ms(model, gpu, tp_, b_d + b_p, tokens)

        moe = np.zeros_like(attention)
        if model.num_moe_layers:
            routed, rest = fastest(rest)
            moe = model.num_moe_layers * routed

        reduce, *rest = rest
        comm = 2.0 * model.num_layers * reduce
        if model.num_moe_layers:
            dispatch, *rest = rest
            comm = comm + model.num_moe_layers * np.where(dp_ > 1, dispatch, 0.0)

        (lm_head,) = rest
        overhead = np.full_like(attention, STEP_OVERHEAD_MS + LAYER_OVERHEAD_MS * model.num_layers)

        def gate(x: np.ndarray) -> np.ndarray:
            return np.broadcast_to(np.where(active, x, 0.0), attention.shape).astype(np.float64)

        return StepTerms(
            gemm_ms=gate(gemm),
            attention_ms=gate(attention),
            moe_ms=gate(moe),
            comm_ms=gate(comm),
            lm_head_ms=gate(lm_head),
            overhead_ms=np.broadcast_to(overhead, attention.shape).astype(np.float64),
        )

    return Plan(tuple(queries), finish)


def prefill_ms(
    model: ModelSpec,
    gpu: GPUSpec,
    library: KernelLibrary,
    *,
    isl: ArrayLike,
    batch: ArrayLike = 1.0,
    quantization: str,
    kv_dtype: str = "bf16",
    tp: ArrayLike = 1,
    dp: ArrayLike = 1,
    ep: ArrayLike = 1,
) -> np.ndarray:
    """Milliseconds of a step that prefills ``batch`` new requests of ``isl`` tokens."""
    terms = step_terms(
        model,
        gpu,
        library,
        quantization=quantization,
        kv_dtype=kv_dtype,
        tp=tp,
        dp=dp,
        ep=ep,
        prefill_seqs=batch,
        prefill_len=isl,
    )
    return terms.total_ms


def decode_step_ms(
    model: ModelSpec,
    gpu: GPUSpec,
    library: KernelLibrary,
    *,
    batch: ArrayLike,
    kv_len: ArrayLike,
    quantization: str,
    kv_dtype: str = "bf16",
    tp: ArrayLike = 1,
    dp: ArrayLike = 1,
    ep: ArrayLike = 1,
) -> np.ndarray:
    """Milliseconds of a decode step of ``batch`` sequences over ``kv_len`` cached tokens."""
    terms = step_terms(
        model,
        gpu,
        library,
        quantization=quantization,
        kv_dtype=kv_dtype,
        tp=tp,
        dp=dp,
        ep=ep,
        decode_seqs=batch,
        kv_len=kv_len,
    )
    return terms.total_ms
