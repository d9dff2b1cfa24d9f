"""A transformer described by its shapes, and the sizes that follow from them.

Parameter counts are stored broken down by role, because each role is stored and
computed differently: embeddings and norms stay in 16-bit whatever the quantization,
routed experts are only partly active per token, sliding-window layers cap their KV
cache at the window, linear-attention layers keep a fixed-size state instead of a KV
cache. ``optimizer.catalog.models`` builds a spec from a Hugging Face ``config.json``.

Conventions (every figure below follows them):

* **Total parameters** count the input embedding, the output head (unless tied to the
  embedding), every norm and bias, and the vision tower of a vision-language model.
  Multi-token-prediction (MTP / "nextn") layers are *not* part of the main model and are
  excluded; their number is recorded in ``num_mtp_layers``.
* **Active parameters** are those one text token passes through: the embedding lookup
  (a gather, no FLOPs) is excluded, the output head is included, routed experts count
  in the proportion ``experts_per_token / num_experts``, the vision tower is excluded.
  These match published figures (Mixtral-8x7B 12.9 B, gpt-oss-120b 5.1 B,
  DeepSeek-V3 37 B, Qwen3-235B-A22B 22 B).
* **KV cache** elements are K and V heads for GQA/MHA, and the shared latent plus the
  rope key for MLA (one vector per token, so ``num_kv_heads`` is 1 for MLA: the cache is
  replicated, not split, across tensor-parallel ranks).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from optimizer.domain.enums import KVCacheDtype, Quantization
from optimizer.errors import InvalidInputError

__all__ = [
    "BYTES_PER_PARAM",
    "INDEXER_KV_BYTES_PER_ELEMENT",
    "KV_BYTES_PER_ELEMENT",
    "LINEAR_ATTENTION_FLOPS_PER_STATE_ELEMENT",
    "ModelSpec",
]

# Storage bytes per weight, scales included: fp8_block carries one fp32 scale per
# 128x128 block; int4_wo (AWQ/GPTQ) one fp16 scale + zero per group of 128; nvfp4 one
# fp8 scale per 16 values; mxfp4 one e8m0 scale per 32 values.
BYTES_PER_PARAM: dict[Quantization, float] = {
    Quantization.BF16: 2.0,
    Quantization.FP8: 1.0,
    Quantization.FP8_BLOCK: 1.0 + 4.0 / (128 * 128),
    Quantization.INT4_WO: 0.5 + 4.0 / 128,
    Quantization.NVFP4: 0.5 + 1.0 / 16,
    Quantization.MXFP4: 0.5 + 1.0 / 32,
}
KV_BYTES_PER_ELEMENT: dict[KVCacheDtype, int] = {KVCacheDtype.BF16: 2, KVCacheDtype.FP8: 1}

# DeepSeek sparse attention (DSA) keeps one indexer key per token and layer; vLLM and
# SGLang store it as fp8 plus one fp32 scale per 128 values whatever the KV dtype
# (vLLM ``DeepseekV32IndexerCache``: head_dim + head_dim // 128 * 4 bytes).
INDEXER_KV_BYTES_PER_ELEMENT = 1.0 + 4.0 / 128

# Gated delta rule, one decode step per head on a (dk x dv) state: decay (1), read-out
# with the key (2), rank-1 update (2), read-out with the query (2).
LINEAR_ATTENTION_FLOPS_PER_STATE_ELEMENT = 7


def _quantization(value: Quantization | str, field: str) -> Quantization:
    try:
        return Quantization(value)
    except ValueError:
        raise InvalidInputError(
            field, f"unknown quantization {value!r}", allowed=[q.value for q in Quantization]
        ) from None


def _kv_dtype(value: KVCacheDtype | str) -> KVCacheDtype:
    try:
        return KVCacheDtype(value)
    except ValueError:
        raise InvalidInputError(
            "kv_dtype", f"unknown KV-cache dtype {value!r}", allowed=[d.value for d in KVCacheDtype]
        ) from None


def _non_negative(value: int, field: str) -> int:
    if value < 0:
        raise InvalidInputError(field, f"must be >= 0, got {value}")
    return value


class ModelSpec(BaseModel):
    """Shapes and parameter counts of one decoder-only transformer.

    Layers are of three kinds: full attention, sliding-window attention
    (``num_sliding_layers``) and linear attention with a recurrent state
    (``num_linear_attention_layers``, e.g. Gated DeltaNet in Qwen3.5). Attention is GQA
    (MHA and MQA included) or MLA; MLA models may add DeepSeek sparse attention (DSA:
    an indexer picks ``index_topk`` past tokens per query).

    Example:
        >>> from optimizer.catalog import load_model_spec
        >>> spec = load_model_spec("meta-llama/Llama-3.1-70B")
        >>> spec.kv_bytes_per_token("bf16")
        327680
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_id: str
    architecture: str
    num_layers: int = Field(ge=1, description="decoder layers of the main model (MTP excluded)")
    hidden_size: int = Field(ge=1)
    num_attention_heads: int = Field(ge=1)
    num_kv_heads: int = Field(ge=1, description="KV heads; 1 for MLA (one shared latent)")
    head_dim: int = Field(ge=1, description="query/key head dim (qk_nope + qk_rope for MLA)")
    v_head_dim: int = Field(ge=1)
    vocab_size: int = Field(ge=1)
    intermediate_size: int = Field(ge=0, description="dense FFN width (0 if every layer is MoE)")
    tie_word_embeddings: bool = False

    attention: Literal["gqa", "mla"] = "gqa"
    kv_lora_rank: int | None = Field(default=None, ge=1, description="MLA latent width")
    q_lora_rank: int | None = Field(default=None, ge=1, description="MLA query low-rank width")
    qk_rope_head_dim: int | None = Field(default=None, ge=0)

    # DeepSeek sparse attention (DeepSeek-V3.2, GLM-5): the indexer's shapes.
    index_n_heads: int | None = Field(default=None, ge=1)
    index_head_dim: int | None = Field(default=None, ge=1)
    index_topk: int | None = Field(default=None, ge=1, description="past tokens each query reads")

    num_experts: int = Field(default=0, ge=0, description="routed experts per MoE layer")
    experts_per_token: int = Field(default=0, ge=0)
    num_shared_experts: int = Field(default=0, ge=0)
    moe_intermediate_size: int | None = Field(default=None, ge=1)
    shared_expert_intermediate_size: int | None = Field(
        default=None, ge=1, description="width of all shared experts of a layer together"
    )
    num_moe_layers: int = Field(default=0, ge=0)

    sliding_window: int | None = Field(default=None, ge=1)
    num_sliding_layers: int = Field(default=0, ge=0)

    # Linear attention (Gated DeltaNet): fixed-size state per sequence, no KV cache.
    num_linear_attention_layers: int = Field(default=0, ge=0)
    linear_num_key_heads: int | None = Field(default=None, ge=1)
    linear_num_value_heads: int | None = Field(default=None, ge=1)
    linear_key_head_dim: int | None = Field(default=None, ge=1)
    linear_value_head_dim: int | None = Field(default=None, ge=1)
    linear_conv_kernel: int | None = Field(default=None, ge=1)
    recurrent_state_bytes_per_element: int = Field(
        default=2, ge=1, description="delta-rule state dtype (4 when the config asks fp32)"
    )

    num_mtp_layers: int = Field(
        default=0, ge=0, description="multi-token-prediction layers, not counted in parameters"
    )

    # Parameter breakdown (counts, summed over all layers).
    embedding_params: int = Field(ge=0, description="input token embedding")
    lm_head_params: int = Field(ge=0, description="output projection; 0 when tied")
    attention_params: int = Field(
        ge=0, description="q/k/v/o, MLA, DSA-indexer and linear-attention projections"
    )
    dense_mlp_params: int = Field(ge=0, description="FFNs of dense layers")
    routed_expert_params: int = Field(
        ge=0, description="all routed experts (with their biases), all layers"
    )
    shared_expert_params: int = Field(default=0, ge=0)
    router_params: int = Field(default=0, ge=0, description="router / gate weights and biases")
    other_params: int = Field(
        default=0, ge=0, description="norms, non-expert biases, sinks, convolutions"
    )
    vision_params: int = Field(default=0, ge=0, description="vision tower and projector")

    native_quantization: Quantization | None = Field(
        default=None,
        description="format of the quantized linear layers of the published checkpoint "
        "(None: 16-bit); per-module exclusions of the checkpoint are not modelled",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        if self.attention == "mla" and (self.kv_lora_rank is None or self.qk_rope_head_dim is None):
            raise ValueError("kv_lora_rank and qk_rope_head_dim are required for MLA attention")
        if self.num_experts:
            if not 0 < self.experts_per_token <= self.num_experts:
                raise ValueError("experts_per_token must be in 1..num_experts for an MoE model")
            if not 0 < self.num_moe_layers <= self.num_layers:
                raise ValueError("an MoE model needs 1..num_layers MoE layers")
            if self.moe_intermediate_size is None:
                raise ValueError("moe_intermediate_size is required for an MoE model")
        elif self.num_moe_layers or self.routed_expert_params:
            raise ValueError("num_moe_layers and routed_expert_params need num_experts > 0")
        if self.num_sliding_layers + self.num_linear_attention_layers > self.num_layers:
            raise ValueError("sliding plus linear-attention layers exceed num_layers")
        if self.num_sliding_layers and self.sliding_window is None:
            raise ValueError("sliding_window is required when num_sliding_layers > 0")
        linear = (
            self.linear_num_key_heads,
            self.linear_num_value_heads,
            self.linear_key_head_dim,
            self.linear_value_head_dim,
            self.linear_conv_kernel,
        )
        if self.num_linear_attention_layers and None in linear:
            raise ValueError("linear-attention layers need all linear_* shape fields")
        if not self.num_linear_attention_layers and any(v is not None for v in linear):
            raise ValueError("linear_* shape fields need num_linear_attention_layers > 0")
        dsa = (self.index_n_heads, self.index_head_dim, self.index_topk)
        if any(v is not None for v in dsa) and None in dsa:
            raise ValueError("index_n_heads, index_head_dim and index_topk go together")
        if self.tie_word_embeddings and self.lm_head_params:
            raise ValueError("lm_head_params must be 0 when the output head is tied")
        return self

    # --- layer kinds --------------------------------------------------------------------
    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def num_dense_layers(self) -> int:
        """Layers whose FFN is a dense MLP."""
        return self.num_layers - self.num_moe_layers

    @property
    def num_attention_layers(self) -> int:
        """Layers with a KV cache (full or sliding-window attention)."""
        return self.num_layers - self.num_linear_attention_layers

    @property
    def num_full_attention_layers(self) -> int:
        """Attention layers that see the whole context."""
        return self.num_attention_layers - self.num_sliding_layers

    @property
    def has_sparse_attention(self) -> bool:
        """DeepSeek sparse attention: each query reads at most ``index_topk`` past tokens."""
        return self.index_topk is not None

    # --- parameters ---------------------------------------------------------------------
    @property
    def linear_params(self) -> int:
        """Weights of the transformer blocks' linear layers: what quantization applies to."""
        return (
            self.attention_params
            + self.dense_mlp_params
            + self.routed_expert_params
            + self.shared_expert_params
        )

    @property
    def total_params(self) -> int:
        """All parameters of the checkpoint's main model (MTP layers excluded)."""
        return (
            self.embedding_params
            + self.lm_head_params
            + self.linear_params
            + self.router_params
            + self.other_params
            + self.vision_params
        )

    @property
    def active_params(self) -> int:
        """Parameters that take part in the computation of one text token.

        The embedding lookup is a gather, not a matmul, so it is excluded unless the
        embedding doubles as the (tied) output projection; routed experts count in the
        proportion ``experts_per_token / num_experts``; the vision tower is excluded.
        """
        routed = (
            self.routed_expert_params * self.experts_per_token // self.num_experts
            if self.num_experts
            else 0
        )
        output = self.lm_head_params if not self.tie_word_embeddings else self.embedding_params
        return (
            output
            + self.attention_params
            + self.dense_mlp_params
            + routed
            + self.shared_expert_params
            + self.router_params
            + self.other_params
        )

    def weight_bytes(
        self,
        quantization: Quantization | str,
        moe_quantization: Quantization | str | None = None,
    ) -> int:
        """Bytes of all weights when the block linear layers use ``quantization``.

        Args:
            quantization: format of the attention, dense-MLP and shared-expert weights
                (and of the routed experts unless ``moe_quantization`` is given).
            moe_quantization: format of the routed experts, when it differs (the
                measured runs record ``gemm_quant_mode`` and ``moe_quant_mode`` apart).

        Embeddings, output head, router, norms, biases and the vision tower stay 16-bit.
        Scale overheads are included (see ``BYTES_PER_PARAM``).
        """
        q = _quantization(quantization, "quantization")
        mq = q if moe_quantization is None else _quantization(moe_quantization, "moe_quantization")
        block_linear = self.attention_params + self.dense_mlp_params + self.shared_expert_params
        sixteen_bit = (
            self.embedding_params
            + self.lm_head_params
            + self.router_params
            + self.other_params
            + self.vision_params
        )
        return round(
            block_linear * BYTES_PER_PARAM[q]
            + self.routed_expert_params * BYTES_PER_PARAM[mq]
            + sixteen_bit * 2
        )

    # --- KV cache -----------------------------------------------------------------------
    @property
    def kv_elements_per_token_per_layer(self) -> int:
        """Cached elements per token and attention layer: K and V heads, or MLA's latent
        plus rope key (the DSA indexer key is counted apart, it is always fp8)."""
        if self.attention == "mla":
            assert self.kv_lora_rank is not None and self.qk_rope_head_dim is not None
            return self.kv_lora_rank + self.qk_rope_head_dim
        return self.num_kv_heads * (self.head_dim + self.v_head_dim)

    @property
    def indexer_kv_bytes_per_token_per_layer(self) -> int:
        """DSA indexer key bytes per token and layer (0 without sparse attention)."""
        if self.index_head_dim is None:
            return 0
        return self.index_head_dim + 4 * math.ceil(self.index_head_dim / 128)

    def kv_bytes_per_token(self, kv_dtype: KVCacheDtype | str = KVCacheDtype.BF16) -> int:
        """KV-cache bytes one token adds while the context is within every window.

        Summed over the attention layers (linear-attention layers add nothing per
        token); includes the DSA indexer key where present. Engine-specific packing
        (e.g. vLLM's fp8 MLA format with inline scales) is not modelled.
        """
        per_layer = (
            self.kv_elements_per_token_per_layer * KV_BYTES_PER_ELEMENT[_kv_dtype(kv_dtype)]
            + self.indexer_kv_bytes_per_token_per_layer
        )
        return per_layer * self.num_attention_layers

    @property
    def recurrent_state_bytes_per_sequence(self) -> int:
        """Fixed-size state of the linear-attention layers of one sequence: the short
        convolution's last ``kernel - 1`` inputs (16-bit) and the delta-rule state
        (``recurrent_state_bytes_per_element`` bytes per element)."""
        if not self.num_linear_attention_layers:
            return 0
        assert self.linear_num_key_heads is not None and self.linear_num_value_heads is not None
        assert self.linear_key_head_dim is not None and self.linear_value_head_dim is not None
        assert self.linear_conv_kernel is not None
        key_dim = self.linear_num_key_heads * self.linear_key_head_dim
        value_dim = self.linear_num_value_heads * self.linear_value_head_dim
        conv = (2 * key_dim + value_dim) * (self.linear_conv_kernel - 1) * 2
        state = (
            self.linear_num_value_heads
            * self.linear_key_head_dim
            * self.linear_value_head_dim
            * self.recurrent_state_bytes_per_element
        )
        return self.num_linear_attention_layers * (conv + state)

    def kv_bytes_per_sequence(
        self, seq_len: int, kv_dtype: KVCacheDtype | str = KVCacheDtype.BF16
    ) -> int:
        """Cache bytes of one sequence of ``seq_len`` tokens.

        Sliding-window layers hold at most ``sliding_window`` tokens; linear-attention
        layers add their fixed-size recurrent state whatever the length.
        """
        _non_negative(seq_len, "seq_len")
        per_layer = self.kv_elements_per_token_per_layer * KV_BYTES_PER_ELEMENT[_kv_dtype(kv_dtype)]
        windowed = min(seq_len, self.sliding_window or seq_len)
        kv = per_layer * (
            self.num_full_attention_layers * seq_len + self.num_sliding_layers * windowed
        )
        indexer = self.indexer_kv_bytes_per_token_per_layer * self.num_attention_layers * seq_len
        return kv + indexer + self.recurrent_state_bytes_per_sequence

    # --- compute ------------------------------------------------------------------------
    def flops_per_token(self, context_len: int = 0) -> float:
        """Forward FLOPs to process one token that attends to ``context_len`` earlier tokens.

        2 per active weight; plus QK^T and AV over the context, capped at the window for
        sliding layers and at ``index_topk`` for DSA layers (in the unabsorbed
        multi-head form for MLA); plus the DSA indexer's scores over the whole context;
        plus ``LINEAR_ATTENTION_FLOPS_PER_STATE_ELEMENT`` per recurrent-state element of
        each linear-attention layer.
        """
        _non_negative(context_len, "context_len")
        full = min(context_len, self.index_topk) if self.index_topk else context_len
        windowed = min(context_len, self.sliding_window or context_len)
        attended = self.num_full_attention_layers * full + self.num_sliding_layers * windowed
        attn = 2.0 * self.num_attention_heads * (self.head_dim + self.v_head_dim) * attended
        indexer = 0.0
        if self.index_n_heads is not None and self.index_head_dim is not None:
            indexer = (
                2.0
                * self.index_n_heads
                * self.index_head_dim
                * context_len
                * self.num_attention_layers
            )
        linear = 0.0
        if self.num_linear_attention_layers:
            assert self.linear_num_value_heads is not None
            assert self.linear_key_head_dim is not None and self.linear_value_head_dim is not None
            linear = float(
                LINEAR_ATTENTION_FLOPS_PER_STATE_ELEMENT
                * self.num_linear_attention_layers
                * self.linear_num_value_heads
                * self.linear_key_head_dim
                * self.linear_value_head_dim
            )
        return 2.0 * self.active_params + attn + indexer + linear
