"""A transformer described by its shapes, and the sizes that follow from them.

Parameter counts are stored broken down by role, because each role is stored and
computed differently: embeddings and norms stay in 16-bit whatever the quantization,
routed experts are only partly active per token, sliding-window layers cap their KV
cache at the window. ``optimizer.catalog.models`` builds a spec from a Hugging Face
``config.json``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from optimizer.domain.enums import KVCacheDtype, Quantization

__all__ = ["BYTES_PER_PARAM", "KV_BYTES_PER_ELEMENT", "ModelSpec"]

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


class ModelSpec(BaseModel):
    """Shapes and parameter counts of one decoder-only transformer.

    Example:
        >>> from optimizer.catalog import load_model_spec
        >>> spec = load_model_spec("meta-llama/Llama-3.1-70B")
        >>> spec.kv_bytes_per_token("bf16")
        327680
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_id: str
    architecture: str
    num_layers: int = Field(ge=1)
    hidden_size: int = Field(ge=1)
    num_attention_heads: int = Field(ge=1)
    num_kv_heads: int = Field(ge=1)
    head_dim: int = Field(ge=1, description="query/key head dim (qk_nope + qk_rope for MLA)")
    v_head_dim: int = Field(ge=1)
    vocab_size: int = Field(ge=1)
    intermediate_size: int = Field(ge=0, description="dense FFN width (0 if every layer is MoE)")
    tie_word_embeddings: bool = False

    attention: Literal["gqa", "mla"] = "gqa"
    kv_lora_rank: int | None = Field(default=None, ge=1, description="MLA latent width")
    qk_rope_head_dim: int | None = Field(default=None, ge=0)

    num_experts: int = Field(default=0, ge=0, description="routed experts per MoE layer")
    experts_per_token: int = Field(default=0, ge=0)
    num_shared_experts: int = Field(default=0, ge=0)
    moe_intermediate_size: int | None = Field(default=None, ge=1)
    num_moe_layers: int = Field(default=0, ge=0)

    sliding_window: int | None = Field(default=None, ge=1)
    num_sliding_layers: int = Field(default=0, ge=0)

    # Parameter breakdown (counts, summed over all layers).
    embedding_params: int = Field(ge=0, description="input token embedding")
    lm_head_params: int = Field(ge=0, description="output projection; 0 when tied")
    attention_params: int = Field(ge=0, description="q/k/v/o (or MLA) projections")
    dense_mlp_params: int = Field(ge=0, description="FFNs of dense layers")
    routed_expert_params: int = Field(ge=0, description="all routed experts, all layers")
    shared_expert_params: int = Field(default=0, ge=0)
    router_params: int = Field(default=0, ge=0)
    other_params: int = Field(default=0, ge=0, description="norms, biases, sinks")

    native_quantization: Quantization | None = Field(
        default=None, description="format the published checkpoint ships in, when not 16-bit"
    )

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        if self.attention == "mla" and (self.kv_lora_rank is None or self.qk_rope_head_dim is None):
            raise ValueError("kv_lora_rank and qk_rope_head_dim are required for MLA attention")
        if self.num_experts and not 0 < self.experts_per_token <= self.num_experts:
            raise ValueError("experts_per_token must be in 1..num_experts for an MoE model")
        if self.num_sliding_layers > self.num_layers:
            raise ValueError("num_sliding_layers exceeds num_layers")
        if self.num_sliding_layers and self.sliding_window is None:
            raise ValueError("sliding_window is required when num_sliding_layers > 0")
        return self

    # --- parameters ---------------------------------------------------------------------
    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

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
        return (
            self.embedding_params
            + self.lm_head_params
            + self.linear_params
            + self.router_params
            + self.other_params
        )

    @property
    def active_params(self) -> int:
        """Parameters that take part in the computation of one token.

        The embedding lookup is a gather, not a matmul, so it is excluded unless the
        embedding doubles as the (tied) output projection; routed experts count in the
        proportion ``experts_per_token / num_experts``.
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

    def weight_bytes(self, quantization: Quantization | str) -> int:
        """Bytes of all weights when the block linear layers use ``quantization``;
        embeddings, output head, router and norms stay 16-bit."""
        q = Quantization(quantization)
        sixteen_bit = self.embedding_params + self.lm_head_params + self.router_params
        sixteen_bit += self.other_params
        return int(round(self.linear_params * BYTES_PER_PARAM[q] + sixteen_bit * 2))

    # --- KV cache -----------------------------------------------------------------------
    @property
    def kv_elements_per_token_per_layer(self) -> int:
        """Cached elements per token and layer: K and V heads, or MLA's latent + rope key."""
        if self.attention == "mla":
            assert self.kv_lora_rank is not None and self.qk_rope_head_dim is not None
            return self.kv_lora_rank + self.qk_rope_head_dim
        return self.num_kv_heads * (self.head_dim + self.v_head_dim)

    def kv_bytes_per_token(self, kv_dtype: KVCacheDtype | str = KVCacheDtype.BF16) -> int:
        """KV-cache bytes one token adds while the context is within every window."""
        per_layer = self.kv_elements_per_token_per_layer * KV_BYTES_PER_ELEMENT[KVCacheDtype(kv_dtype)]
        return per_layer * self.num_layers

    def kv_bytes_per_sequence(
        self, seq_len: int, kv_dtype: KVCacheDtype | str = KVCacheDtype.BF16
    ) -> int:
        """KV-cache bytes of one sequence of ``seq_len`` tokens; sliding-window layers hold at
        most ``sliding_window`` tokens."""
        per_layer = self.kv_elements_per_token_per_layer * KV_BYTES_PER_ELEMENT[KVCacheDtype(kv_dtype)]
        full_layers = self.num_layers - self.num_sliding_layers
        windowed = min(seq_len, self.sliding_window or seq_len)
        return per_layer * (full_layers * seq_len + self.num_sliding_layers * windowed)

    # --- compute ------------------------------------------------------------------------
    def flops_per_token(self, context_len: int = 0) -> float:
        """Forward FLOPs to process one token that attends to ``context_len`` earlier tokens:
        2 per active weight, plus QK^T and AV over the (window-capped) context."""
        full_layers = self.num_layers - self.num_sliding_layers
        windowed = min(context_len, self.sliding_window or context_len)
        attended = full_layers * context_len + self.num_sliding_layers * windowed
        attn = 2.0 * self.num_attention_heads * (self.head_dim + self.v_head_dim) * attended
        return 2.0 * self.active_params + attn
