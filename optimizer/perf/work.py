"""FLOPs and bytes moved by each operator of a transformer step, vectorised.

These are the counts a roofline divides by a GPU's compute and bandwidth; they are
also the physics-informed features the learned surrogate sees. Every function takes
numpy-broadcastable arrays and returns float arrays; every count is non-decreasing in
every size argument (tokens, batch, lengths, m/n/k, bytes, heads).

Conventions: a multiply-add is 2 FLOPs; byte counts assume each operand crosses HBM
once (perfect on-chip reuse), so they are lower bounds on traffic; weights use the
storage size of their format including scales
(:data:`~optimizer.domain.model_spec.BYTES_PER_PARAM`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from optimizer.domain.enums import KVCacheDtype, Quantization
from optimizer.domain.model_spec import BYTES_PER_PARAM, KV_BYTES_PER_ELEMENT
from optimizer.perf.dtypes import ACTIVATION_BYTES, parse_kv_dtype, parse_quantization

__all__ = [
    "OUTPUT_BYTES",
    "all_reduce_wire_bytes",
    "attended_pairs",
    "context_attention_bytes",
    "context_attention_flops",
    "experts_touched",
    "gemm_bytes",
    "gemm_flops",
    "generation_attention_bytes",
    "generation_attention_flops",
    "moe_bytes",
    "moe_flops",
]

OUTPUT_BYTES = 2.0
"""Bytes per output element: GEMM and attention outputs are 16-bit."""


def _f(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _per_element(table: dict, values: ArrayLike, parse) -> np.ndarray:
    """Look a per-format constant up for a scalar or an array of formats."""
    arr = np.asarray(values, dtype=object)
    out = np.empty(arr.shape, dtype=float)
    for name in set(arr.reshape(-1).tolist()):
        out[arr == name] = table[parse(name)]
    return out


def gemm_flops(m: ArrayLike, n: ArrayLike, k: ArrayLike) -> np.ndarray:
    """FLOPs of an ``(m x k) @ (k x n)`` product: ``2 m n k``.

    Example:
        >>> float(gemm_flops(4096, 4096, 4096))
        137438953472.0
    """
    return 2.0 * _f(m) * _f(n) * _f(k)


def gemm_bytes(
    m: ArrayLike, n: ArrayLike, k: ArrayLike, quantization: Quantization | str | ArrayLike
) -> np.ndarray:
    """Bytes a GEMM moves: activations ``m x k``, weights ``k x n``, 16-bit output ``m x n``."""
    weight = _per_element(BYTES_PER_PARAM, quantization, parse_quantization)
    act = _per_element(ACTIVATION_BYTES, quantization, parse_quantization)
    m, n, k = _f(m), _f(n), _f(k)
    return m * k * act + k * n * weight + m * n * OUTPUT_BYTES


def attended_pairs(length: ArrayLike, window: ArrayLike = 0) -> np.ndarray:
    """Query-key pairs of causal attention over a prompt of ``length`` tokens.

    Token ``p`` (1-based) attends to ``min(p, window)`` tokens; ``window <= 0`` means
    no window, giving ``length (length + 1) / 2``.

    Example:
        >>> attended_pairs([4, 4], [0, 2]).tolist()
        [10.0, 7.0]
    """
    length = _f(length)
    window = _f(window)
    w = np.where(window > 0, np.minimum(window, length), length)
    return w * (w + 1) / 2 + (length - w) * w


def context_attention_flops(
    batch: ArrayLike,
    isl: ArrayLike,
    num_heads: ArrayLike,
    head_dim: ArrayLike,
    window: ArrayLike = 0,
) -> np.ndarray:
    """FLOPs of causal prefill attention: ``QK^T`` and ``PV`` over the attended pairs."""
    return 4.0 * _f(batch) * _f(num_heads) * _f(head_dim) * attended_pairs(isl, window)


def context_attention_bytes(
    batch: ArrayLike,
    isl: ArrayLike,
    num_heads: ArrayLike,
    num_kv_heads: ArrayLike,
    head_dim: ArrayLike,
    kv_dtype: KVCacheDtype | str | ArrayLike = KVCacheDtype.BF16,
) -> np.ndarray:
    """Bytes of prefill attention: read Q and K/V (at the cache dtype), write O."""
    kv_bytes = _per_element(KV_BYTES_PER_ELEMENT, kv_dtype, parse_kv_dtype)
    tokens = _f(batch) * _f(isl) * _f(head_dim)
    return tokens * (2.0 * _f(num_heads) * OUTPUT_BYTES + 2.0 * _f(num_kv_heads) * kv_bytes)


def generation_attention_flops(
    batch: ArrayLike,
    kv_len: ArrayLike,
    num_heads: ArrayLike,
    head_dim: ArrayLike,
    window: ArrayLike = 0,
) -> np.ndarray:
    """FLOPs of one decode step's attention: each new token against its (windowed) cache."""
    window = _f(window)
    attended = np.where(
        window > 0, np.minimum(_f(kv_len), np.where(window > 0, window, 1.0)), _f(kv_len)
    )
    return 4.0 * _f(batch) * _f(num_heads) * _f(head_dim) * attended


def generation_attention_bytes(
    batch: ArrayLike,
    kv_len: ArrayLike,
    num_heads: ArrayLike,
    num_kv_heads: ArrayLike,
    head_dim: ArrayLike,
    kv_dtype: KVCacheDtype | str | ArrayLike = KVCacheDtype.BF16,
    window: ArrayLike = 0,
) -> np.ndarray:
    """Bytes of one decode step's attention: the whole (windowed) K/V cache, plus Q and O."""
    window = _f(window)
    kv_bytes = _per_element(KV_BYTES_PER_ELEMENT, kv_dtype, parse_kv_dtype)
    cached = np.where(
        window > 0, np.minimum(_f(kv_len), np.where(window > 0, window, 1.0)), _f(kv_len)
    )
    per_seq = cached * 2.0 * _f(num_kv_heads) * kv_bytes + 2.0 * _f(num_heads) * OUTPUT_BYTES
    return _f(batch) * _f(head_dim) * per_seq


def experts_touched(
    num_tokens: ArrayLike,
    topk: ArrayLike,
    num_experts: ArrayLike,
    ep: ArrayLike = 1,
    balanced: ArrayLike = True,
) -> np.ndarray:
    """Experts one expert-parallel rank runs for a batch: the ones whose weights it must read.

    ``num_tokens * topk`` token-expert pairs are spread over ``num_experts``; a rank holds
    ``num_experts / ep`` of them. Balanced routing (round robin) touches
    ``min(local experts, local pairs)``; random routing touches the expected number of
    distinct experts among ``pairs`` uniform draws, ``E (1 - (1 - 1/E)^pairs)``.

    Example:
        >>> experts_touched([1, 16, 1000], 8, 128).tolist()
        [8.0, 128.0, 128.0]
    """
    local = _f(num_experts) / _f(ep)
    pairs = _f(num_tokens) * _f(topk) / _f(ep)
    even = np.minimum(local, np.ceil(pairs))
    spread = local * (1.0 - np.power(1.0 - 1.0 / np.maximum(local, 1.0), pairs))
    return np.where(np.asarray(balanced, dtype=bool), even, np.minimum(spread, local))


def _moe_matrices(gated: ArrayLike) -> np.ndarray:
    # gated (SwiGLU) experts have gate, up and down projections; non-gated ones two
    return np.where(np.asarray(gated, dtype=bool), 3.0, 2.0)


def moe_flops(
    num_tokens: ArrayLike,
    hidden: ArrayLike,
    inter: ArrayLike,
    topk: ArrayLike,
    tp: ArrayLike = 1,
    ep: ArrayLike = 1,
    gated: ArrayLike = True,
) -> np.ndarray:
    """FLOPs one rank spends in the routed experts: its share of the token-expert pairs."""
    pairs = _f(num_tokens) * _f(topk) / _f(ep)
    return 2.0 * pairs * _moe_matrices(gated) * _f(hidden) * _f(inter) / _f(tp)


def moe_bytes(
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
    """Bytes one rank moves in the routed experts: the touched experts' weights, plus
    each routed token's activations in and 16-bit result out."""
    weight = _per_element(BYTES_PER_PARAM, quantization, parse_quantization)
    act = _per_element(ACTIVATION_BYTES, quantization, parse_quantization)
    touched = experts_touched(num_tokens, topk, num_experts, ep, balanced)
    weights = touched * _moe_matrices(gated) * _f(hidden) * _f(inter) / _f(tp) * weight
    pairs = _f(num_tokens) * _f(topk) / _f(ep)
    return weights + pairs * _f(hidden) * (act + OUTPUT_BYTES)


def all_reduce_wire_bytes(message_bytes: ArrayLike, num_gpus: ArrayLike) -> np.ndarray:
    """Bytes each GPU sends in a ring all-reduce: ``2 (n - 1) / n`` times the message.

    Example:
        >>> float(all_reduce_wire_bytes(1000, 4))
        1500.0
    """
    n = _f(num_gpus)
    return 2.0 * (n - 1.0) / n * _f(message_bytes)
