"""Parameter counts of the building blocks of a decoder layer.

Each function returns ``(linear, other)``: weights of the linear projections (what a
quantization applies to) and everything else of the block (norms, biases, sinks,
convolution taps, gate scalars), which stays 16-bit. Formulas follow the Hugging Face
(or, where noted, vLLM) modules of the families that use them.
"""

from __future__ import annotations

__all__ = [
    "dsa_indexer",
    "gated_deltanet",
    "gated_mlp",
    "gqa_attention",
    "mla_attention",
]


def gqa_attention(
    hidden: int,
    heads: int,
    kv_heads: int,
    head_dim: int,
    *,
    qkv_bias: bool = False,
    o_bias: bool = False,
    qk_norm: str | None = None,
    output_gate: bool = False,
    sinks: bool = False,
) -> tuple[int, int]:
    """Grouped-query attention (MHA and MQA included).

    Args:
        qk_norm: ``"head"`` -- RMSNorm over one head (Qwen3); ``"layer"`` -- RMSNorm
            over all heads (MiniMax-M2 ``per_layer``); None -- none.
        output_gate: the query projection also produces a sigmoid gate per head
            element (Qwen3-Next / Qwen3.5 ``attn_output_gate``).
        sinks: one learned attention-sink logit per head (gpt-oss).
    """
    q_width = heads * head_dim
    kv_width = kv_heads * head_dim
    q_out = q_width * (2 if output_gate else 1)
    linear = hidden * q_out + 2 * hidden * kv_width + q_width * hidden
    other = 0
    if qkv_bias:
        other += q_out + 2 * kv_width
    if o_bias:
        other += hidden
    if qk_norm == "head":
        other += 2 * head_dim
    elif qk_norm == "layer":
        other += q_width + kv_width
    elif qk_norm is not None:
        raise ValueError(f"unknown qk_norm {qk_norm!r}")
    if sinks:
        other += heads
    return linear, other


def mla_attention(
    hidden: int,
    heads: int,
    *,
    q_lora_rank: int | None,
    kv_lora_rank: int,
    qk_nope_head_dim: int,
    qk_rope_head_dim: int,
    v_head_dim: int,
    bias: bool = False,
) -> tuple[int, int]:
    """Multi-head latent attention (DeepSeek-V2/V3): low-rank query and key/value paths.

    ``q_a_proj`` (or ``q_proj`` without a query rank), ``kv_a_proj_with_mqa``,
    ``kv_b_proj``, ``o_proj``; RMSNorms on the query and KV latents. With
    ``attention_bias`` the ``q_a``, ``kv_a`` and ``o`` projections carry biases.
    """
    qk_head_dim = qk_nope_head_dim + qk_rope_head_dim
    linear = 0
    other = 0
    if q_lora_rank:
        linear += hidden * q_lora_rank + q_lora_rank * heads * qk_head_dim
        other += q_lora_rank + (q_lora_rank if bias else 0)
    else:
        linear += hidden * heads * qk_head_dim
    linear += hidden * (kv_lora_rank + qk_rope_head_dim)
    linear += kv_lora_rank * heads * (qk_nope_head_dim + v_head_dim)
    linear += heads * v_head_dim * hidden
    other += kv_lora_rank
    if bias:
        other += kv_lora_rank + qk_rope_head_dim + hidden
    return linear, other


def dsa_indexer(hidden: int, q_lora_rank: int, n_heads: int, head_dim: int) -> tuple[int, int]:
    """DeepSeek sparse-attention indexer (vLLM ``Indexer``): ``wq_b`` from the query
    latent, ``wk`` and ``weights_proj`` from the hidden state, LayerNorm on the key."""
    linear = q_lora_rank * n_heads * head_dim + hidden * head_dim + hidden * n_heads
    return linear, 2 * head_dim


def gated_deltanet(
    hidden: int,
    *,
    key_heads: int,
    value_heads: int,
    key_head_dim: int,
    value_head_dim: int,
    conv_kernel: int,
) -> tuple[int, int]:
    """Gated DeltaNet linear attention (Qwen3-Next / Qwen3.5 ``linear_attn``).

    Projections to q, k, v and the output gate z, to the per-head beta and decay
    inputs, and back to the hidden size; a depthwise causal convolution over q, k, v
    (no bias), per-head ``A_log`` and ``dt_bias``, and a gated RMSNorm over one value head.
    """
    key_dim = key_heads * key_head_dim
    value_dim = value_heads * value_head_dim
    linear = hidden * (2 * key_dim + 2 * value_dim) + hidden * 2 * value_heads + value_dim * hidden
    conv_dim = 2 * key_dim + value_dim
    other = conv_dim * conv_kernel + 2 * value_heads + value_head_dim
    return linear, other


def gated_mlp(hidden: int, intermediate: int, *, bias: bool = False) -> tuple[int, int]:
    """SwiGLU-style MLP: gate, up and down projections."""
    linear = 3 * hidden * intermediate
    other = 2 * intermediate + hidden if bias else 0
    return linear, other
