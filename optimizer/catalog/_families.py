"""Readers of the decoder stack of each supported model family (see ``hf_config``).

Each reader takes the (text) config and returns a ``Stack``: the per-role parameter
sums and the ``ModelSpec`` shape fields of the language model, embeddings excluded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from optimizer.catalog import _blocks
from optimizer.catalog._config_reader import ConfigReader
from optimizer.errors import UnsupportedModelError

__all__ = ["TEXT_FAMILIES", "Stack"]


@dataclass
class Stack:
    """The decoder stack of one language model: shapes and per-role parameter sums."""

    num_layers: int
    hidden: int
    vocab: int
    attention: int = 0
    dense_mlp: int = 0
    routed: int = 0
    shared: int = 0
    router: int = 0
    other: int = 0
    shape: dict[str, Any] = field(default_factory=dict)

    def add(self, role: str, parts: tuple[int, int], times: int = 1) -> None:
        linear, other = parts
        setattr(self, role, getattr(self, role) + linear * times)
        self.other += other * times


def _stack(r: ConfigReader) -> Stack:
    stack = Stack(
        num_layers=r.integer("num_hidden_layers"),
        hidden=r.integer("hidden_size"),
        vocab=r.integer("vocab_size"),
    )
    stack.other += 2 * stack.hidden * stack.num_layers + stack.hidden  # layer norms + final norm
    return stack


def _gqa_shape(r: ConfigReader, hidden: int) -> tuple[int, int, int]:
    heads = r.integer("num_attention_heads")
    kv_heads = r.integer("num_key_value_heads", heads)
    if heads % kv_heads:
        raise r.error("num_key_value_heads", f"must divide num_attention_heads ({heads})")
    if "head_dim" in r:
        head_dim = r.integer("head_dim")
    elif hidden % heads:
        raise r.error("head_dim", "missing, and hidden_size is not a multiple of the heads")
    else:
        head_dim = hidden // heads
    return heads, kv_heads, head_dim


def _set_gqa_shape(stack: Stack, heads: int, kv_heads: int, head_dim: int) -> None:
    stack.shape.update(
        num_attention_heads=heads, num_kv_heads=kv_heads, head_dim=head_dim, v_head_dim=head_dim
    )


def _top_k(r: ConfigReader, key: str, num_experts: int) -> int:
    k = r.integer(key)
    if k > num_experts:
        raise r.error(key, f"must not exceed the number of experts ({num_experts})")
    return k


def _set_sliding(stack: Stack, window: int | None, layer_kinds: list[bool]) -> None:
    count = sum(layer_kinds)
    if count:
        stack.shape.update(sliding_window=window, num_sliding_layers=count)


def _sliding_from_layer_types(r: ConfigReader, stack: Stack, default: list[str] | None) -> None:
    kinds = r.layer_types("layer_types", stack.num_layers, ("sliding_attention", "full_attention"))
    kinds = kinds or default or []
    sliding = [k == "sliding_attention" for k in kinds]
    if any(sliding):
        _set_sliding(stack, r.integer("sliding_window"), sliding)


def _sliding_qwen(r: ConfigReader, stack: Stack) -> None:
    """Qwen2/Qwen3: with ``use_sliding_window``, layers from ``max_window_layers`` on slide."""
    if not r.flag("use_sliding_window", False) or "sliding_window" not in r:
        return
    first = r.integer("max_window_layers", stack.num_layers, minimum=0)
    default = [
        "sliding_attention" if i >= first else "full_attention" for i in range(stack.num_layers)
    ]
    _sliding_from_layer_types(r, stack, default)


def _sliding_mistral(r: ConfigReader, stack: Stack) -> None:
    """Mistral/Mixtral: a non-null ``sliding_window`` applies to every layer."""
    if "sliding_window" in r:
        _set_sliding(stack, r.integer("sliding_window"), [True] * stack.num_layers)


def _moe_shape(stack: Stack, experts: int, top_k: int, width: int, moe_layers: int) -> None:
    stack.shape.update(
        num_experts=experts,
        experts_per_token=top_k,
        moe_intermediate_size=width,
        num_moe_layers=moe_layers,
    )


# --- families ----------------------------------------------------------------------------


def _dense_gqa(r: ConfigReader, *, style: str) -> Stack:
    """llama / mistral / qwen2 / mimo / qwen3: GQA and a dense SwiGLU MLP in every layer."""
    stack = _stack(r)
    heads, kv_heads, head_dim = _gqa_shape(r, stack.hidden)
    if style == "qwen2":
        attn = _blocks.gqa_attention(
            stack.hidden, heads, kv_heads, head_dim, qkv_bias=r.flag("attention_bias", True)
        )
    else:
        bias = r.flag("attention_bias", False)
        attn = _blocks.gqa_attention(
            stack.hidden,
            heads,
            kv_heads,
            head_dim,
            qkv_bias=bias,
            o_bias=bias,
            qk_norm="head" if style == "qwen3" else None,
        )
    stack.add("attention", attn, stack.num_layers)
    inter = r.integer("intermediate_size")
    stack.add(
        "dense_mlp",
        _blocks.gated_mlp(stack.hidden, inter, bias=r.flag("mlp_bias", False)),
        stack.num_layers,
    )
    _set_gqa_shape(stack, heads, kv_heads, head_dim)
    stack.shape["intermediate_size"] = inter
    if style in ("qwen2", "qwen3"):
        _sliding_qwen(r, stack)
    elif style == "mistral":
        _sliding_mistral(r, stack)
    stack.shape["num_mtp_layers"] = r.integer("num_nextn_predict_layers", 0, minimum=0)
    return stack


def _qwen_moe_flags(r: ConfigReader, num_layers: int, num_experts: int) -> list[bool]:
    step = r.integer("decoder_sparse_step", 1)
    dense_only = set(r.integers("mlp_only_layers"))
    return [
        num_experts > 0 and i not in dense_only and (i + 1) % step == 0 for i in range(num_layers)
    ]


def _add_moe_and_dense(
    r: ConfigReader, stack: Stack, flags: list[bool], experts: int, width: int
) -> None:
    """Routed experts in the flagged layers, the dense MLP (``intermediate_size``) elsewhere."""
    moe_layers = sum(flags)
    stack.add("routed", (experts * 3 * stack.hidden * width, 0), moe_layers)
    dense_layers = stack.num_layers - moe_layers
    inter = r.integer("intermediate_size") if dense_layers else 0
    stack.add("dense_mlp", _blocks.gated_mlp(stack.hidden, inter), dense_layers)
    stack.shape["intermediate_size"] = inter


def _qwen3_moe(r: ConfigReader) -> Stack:
    stack = _stack(r)
    heads, kv_heads, head_dim = _gqa_shape(r, stack.hidden)
    bias = r.flag("attention_bias", False)
    attn = _blocks.gqa_attention(
        stack.hidden, heads, kv_heads, head_dim, qkv_bias=bias, o_bias=bias, qk_norm="head"
    )
    stack.add("attention", attn, stack.num_layers)
    experts = r.integer("num_experts")
    top_k = _top_k(r, "num_experts_per_tok", experts)
    width = r.integer("moe_intermediate_size")
    flags = _qwen_moe_flags(r, stack.num_layers, experts)
    _add_moe_and_dense(r, stack, flags, experts, width)
    stack.add("router", (stack.hidden * experts, 0), sum(flags))
    _set_gqa_shape(stack, heads, kv_heads, head_dim)
    _moe_shape(stack, experts, top_k, width, sum(flags))
    _sliding_qwen(r, stack)
    return stack


def _mixtral(r: ConfigReader) -> Stack:
    stack = _stack(r)
    heads, kv_heads, head_dim = _gqa_shape(r, stack.hidden)
    stack.add(
        "attention",
        _blocks.gqa_attention(stack.hidden, heads, kv_heads, head_dim),
        stack.num_layers,
    )
    experts = r.integer("num_local_experts")
    top_k = _top_k(r, "num_experts_per_tok", experts)
    width = r.integer("intermediate_size")
    stack.add("routed", (experts * 3 * stack.hidden * width, 0), stack.num_layers)
    stack.add("router", (stack.hidden * experts, 0), stack.num_layers)
    _set_gqa_shape(stack, heads, kv_heads, head_dim)
    stack.shape["intermediate_size"] = 0
    _moe_shape(stack, experts, top_k, width, stack.num_layers)
    _sliding_mistral(r, stack)
    return stack


def _gpt_oss(r: ConfigReader) -> Stack:
    """gpt-oss: biased attention with sinks; experts with fused gate/up and biases."""
    stack = _stack(r)
    heads, kv_heads, head_dim = _gqa_shape(r, stack.hidden)
    bias = r.flag("attention_bias", True)
    attn = _blocks.gqa_attention(
        stack.hidden, heads, kv_heads, head_dim, qkv_bias=bias, o_bias=bias, sinks=True
    )
    stack.add("attention", attn, stack.num_layers)
    experts = r.integer("num_local_experts")
    top_k = _top_k(r, "num_experts_per_tok", experts)
    width = r.integer("intermediate_size")
    h = stack.hidden
    per_expert = h * 2 * width + 2 * width + width * h + h  # gate_up + bias, down + bias
    stack.add("routed", (experts * per_expert, 0), stack.num_layers)
    stack.add("router", (h * experts + experts, 0), stack.num_layers)
    _set_gqa_shape(stack, heads, kv_heads, head_dim)
    stack.shape["intermediate_size"] = 0
    _moe_shape(stack, experts, top_k, width, stack.num_layers)
    # Hugging Face GptOssConfig default: sliding and full attention alternate, sliding first.
    default = [
        "sliding_attention" if i % 2 == 0 else "full_attention" for i in range(stack.num_layers)
    ]
    _sliding_from_layer_types(r, stack, default)
    return stack


def _minimax_m2(r: ConfigReader) -> Stack:
    stack = _stack(r)
    if any(v != 1 for v in r.integers("attn_type_list")):
        raise UnsupportedModelError(
            r.model_id,
            "attn_type_list mixes in lightning (linear) attention, which is not modelled",
        )
    if r.integer("shared_intermediate_size", 0, minimum=0):
        raise UnsupportedModelError(r.model_id, "MiniMax shared experts are not modelled")
    heads, kv_heads, head_dim = _gqa_shape(r, stack.hidden)
    qk_norm = None
    if r.flag("use_qk_norm", False):
        norm_type = r.optional_text("qk_norm_type") or "per_layer"
        if norm_type not in ("per_layer", "per_head"):
            raise r.error("qk_norm_type", f"unknown value {norm_type!r}", ("per_layer", "per_head"))
        qk_norm = "layer" if norm_type == "per_layer" else "head"
    bias = r.flag("attention_bias", False)
    attn = _blocks.gqa_attention(
        stack.hidden, heads, kv_heads, head_dim, qkv_bias=bias, o_bias=bias, qk_norm=qk_norm
    )
    stack.add("attention", attn, stack.num_layers)
    experts = r.integer("num_local_experts")
    top_k = _top_k(r, "num_experts_per_tok", experts)
    width = r.integer("intermediate_size")
    stack.add("routed", (experts * 3 * stack.hidden * width, 0), stack.num_layers)
    routing_bias = experts if r.flag("use_routing_bias", False) else 0
    stack.add("router", (stack.hidden * experts + routing_bias, 0), stack.num_layers)
    _set_gqa_shape(stack, heads, kv_heads, head_dim)
    stack.shape["intermediate_size"] = 0
    _moe_shape(stack, experts, top_k, width, stack.num_layers)
    mtp = r.integer("num_mtp_modules", 0, minimum=0) if r.flag("use_mtp", False) else 0
    stack.shape["num_mtp_layers"] = mtp
    return stack


def _deepseek_moe_flags(r: ConfigReader, num_layers: int, num_experts: int) -> list[bool]:
    first_dense = r.integer("first_k_dense_replace", 0, minimum=0)
    freq = r.raw("moe_layer_freq", 1)
    if isinstance(freq, list):
        flags = r.integers("moe_layer_freq")
        if len(flags) != num_layers or any(f not in (0, 1) for f in flags):
            raise r.error("moe_layer_freq", f"must be an integer or {num_layers} flags of 0/1")
        return [num_experts > 0 and bool(f) for f in flags]
    step = r.integer("moe_layer_freq", 1)
    return [num_experts > 0 and i >= first_dense and i % step == 0 for i in range(num_layers)]


def _deepseek(r: ConfigReader, *, sparse: bool) -> Stack:
    """DeepSeek-V3 style: MLA, dense first layers then routed + shared experts; with
    ``sparse`` the DeepSeek-V3.2 sparse-attention indexer in every layer."""
    stack = _stack(r)
    heads = r.integer("num_attention_heads")
    q_lora = r.optional_integer("q_lora_rank")
    kv_lora = r.integer("kv_lora_rank")
    nope = r.integer("qk_nope_head_dim")
    rope = r.integer("qk_rope_head_dim")
    v_dim = r.integer("v_head_dim")
    attn = _blocks.mla_attention(
        stack.hidden,
        heads,
        q_lora_rank=q_lora,
        kv_lora_rank=kv_lora,
        qk_nope_head_dim=nope,
        qk_rope_head_dim=rope,
        v_head_dim=v_dim,
        bias=r.flag("attention_bias", False),
    )
    stack.add("attention", attn, stack.num_layers)
    if sparse:
        if q_lora is None:
            raise r.error("q_lora_rank", "is required by the sparse-attention indexer")
        index_heads, index_dim = r.integer("index_n_heads"), r.integer("index_head_dim")
        indexer = _blocks.dsa_indexer(stack.hidden, q_lora, index_heads, index_dim)
        stack.add("attention", indexer, stack.num_layers)
        stack.shape.update(
            index_n_heads=index_heads, index_head_dim=index_dim, index_topk=r.integer("index_topk")
        )
    experts = r.integer("n_routed_experts", 0, minimum=0)
    flags = _deepseek_moe_flags(r, stack.num_layers, experts)
    moe_layers = sum(flags)
    if moe_layers:
        width = r.integer("moe_intermediate_size")
        top_k = _top_k(r, "num_experts_per_tok", experts)
        _add_moe_and_dense(r, stack, flags, experts, width)
        shared = r.integer("n_shared_experts", 0, minimum=0)
        if shared:
            stack.add("shared", _blocks.gated_mlp(stack.hidden, shared * width), moe_layers)
            stack.shape.update(
                num_shared_experts=shared, shared_expert_intermediate_size=shared * width
            )
        score_bias = experts if r.optional_text("topk_method") == "noaux_tc" else 0
        stack.add("router", (stack.hidden * experts + score_bias, 0), moe_layers)
        _moe_shape(stack, experts, top_k, width, moe_layers)
    else:
        _add_moe_and_dense(r, stack, flags, 0, 0)
    stack.shape.update(
        attention="mla",
        num_attention_heads=heads,
        num_kv_heads=1,
        head_dim=nope + rope,
        v_head_dim=v_dim,
        kv_lora_rank=kv_lora,
        q_lora_rank=q_lora,
        qk_rope_head_dim=rope,
        num_mtp_layers=r.integer("num_nextn_predict_layers", 0, minimum=0),
    )
    return stack


def _qwen_hybrid(r: ConfigReader, *, moe: bool) -> Stack:
    """Qwen3-Next / Qwen3.5: Gated DeltaNet layers with gated full attention every few layers."""
    stack = _stack(r)
    kinds = r.layer_types("layer_types", stack.num_layers, ("linear_attention", "full_attention"))
    if kinds is None:
        interval = r.integer("full_attention_interval", 4)
        kinds = [
            "full_attention" if (i + 1) % interval == 0 else "linear_attention"
            for i in range(stack.num_layers)
        ]
    full = kinds.count("full_attention")
    linear = stack.num_layers - full
    heads, kv_heads, head_dim = _gqa_shape(r, stack.hidden)
    bias = r.flag("attention_bias", False)
    attn = _blocks.gqa_attention(
        stack.hidden,
        heads,
        kv_heads,
        head_dim,
        qkv_bias=bias,
        o_bias=bias,
        qk_norm="head",
        output_gate=r.flag("attn_output_gate", True),
    )
    stack.add("attention", attn, full)
    shapes = {
        "linear_num_key_heads": r.integer("linear_num_key_heads"),
        "linear_num_value_heads": r.integer("linear_num_value_heads"),
        "linear_key_head_dim": r.integer("linear_key_head_dim"),
        "linear_value_head_dim": r.integer("linear_value_head_dim"),
        "linear_conv_kernel": r.integer("linear_conv_kernel_dim"),
    }
    if linear:
        deltanet = _blocks.gated_deltanet(
            stack.hidden,
            key_heads=shapes["linear_num_key_heads"],
            value_heads=shapes["linear_num_value_heads"],
            key_head_dim=shapes["linear_key_head_dim"],
            value_head_dim=shapes["linear_value_head_dim"],
            conv_kernel=shapes["linear_conv_kernel"],
        )
        stack.add("attention", deltanet, linear)
        ssm_dtype = r.optional_text("mamba_ssm_dtype") or "bfloat16"
        if ssm_dtype not in ("float32", "bfloat16", "float16"):
            raise r.error(
                "mamba_ssm_dtype",
                f"unknown dtype {ssm_dtype!r}",
                ("float32", "bfloat16", "float16"),
            )
        stack.shape.update(
            num_linear_attention_layers=linear,
            recurrent_state_bytes_per_element=4 if ssm_dtype == "float32" else 2,
            **shapes,
        )
    if moe:
        experts = r.integer("num_experts")
        top_k = _top_k(r, "num_experts_per_tok", experts)
        width = r.integer("moe_intermediate_size")
        flags = _qwen_moe_flags(r, stack.num_layers, experts)
        moe_layers = sum(flags)
        _add_moe_and_dense(r, stack, flags, experts, width)
        shared = r.integer("shared_expert_intermediate_size", 0, minimum=0)
        if shared:
            stack.add("shared", _blocks.gated_mlp(stack.hidden, shared), moe_layers)
            stack.shape.update(num_shared_experts=1, shared_expert_intermediate_size=shared)
        # router plus the shared expert's sigmoid gate (one output)
        stack.add(
            "router", (stack.hidden * experts + (stack.hidden if shared else 0), 0), moe_layers
        )
        _moe_shape(stack, experts, top_k, width, moe_layers)
    else:
        _add_moe_and_dense(r, stack, [False] * stack.num_layers, 0, 0)
    _set_gqa_shape(stack, heads, kv_heads, head_dim)
    stack.shape["num_mtp_layers"] = r.integer("mtp_num_hidden_layers", 0, minimum=0)
    return stack


TEXT_FAMILIES: dict[str, Callable[[ConfigReader], Stack]] = {
    "llama": lambda r: _dense_gqa(r, style="llama"),
    "mistral": lambda r: _dense_gqa(r, style="mistral"),
    "qwen2": lambda r: _dense_gqa(r, style="qwen2"),
    "mimo": lambda r: _dense_gqa(r, style="qwen2"),
    "qwen3": lambda r: _dense_gqa(r, style="qwen3"),
    "qwen3_vl_text": lambda r: _dense_gqa(r, style="qwen3"),
    "qwen3_moe": _qwen3_moe,
    "qwen3_vl_moe_text": _qwen3_moe,
    "mixtral": _mixtral,
    "gpt_oss": _gpt_oss,
    "minimax_m2": _minimax_m2,
    "deepseek_v3": lambda r: _deepseek(r, sparse=False),
    "kimi_k2": lambda r: _deepseek(r, sparse=False),
    "deepseek_v32": lambda r: _deepseek(r, sparse=True),
    "glm_moe_dsa": lambda r: _deepseek(r, sparse=True),
    "qwen3_next": lambda r: _qwen_hybrid(r, moe=True),
    "qwen3_5_text": lambda r: _qwen_hybrid(r, moe=False),
    "qwen3_5_moe_text": lambda r: _qwen_hybrid(r, moe=True),
}
