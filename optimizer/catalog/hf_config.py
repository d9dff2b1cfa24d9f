"""Build a ``ModelSpec`` from a Hugging Face ``config.json``: pure computation, no I/O.

Families are chosen by ``model_type`` (of ``text_config`` for vision-language wrappers)
and each is read by the structure of its reference implementation:

======================================= ================================================
``model_type``                          structure
======================================= ================================================
llama, mistral                          GQA, SwiGLU MLP (mistral: sliding window)
qwen2, mimo                             GQA with q/k/v bias (Qwen2 sliding rule)
qwen3, qwen3_vl_text                    GQA with per-head q/k RMSNorm
qwen3_moe, qwen3_vl_moe_text            + MoE (``mlp_only_layers``, ``decoder_sparse_step``)
mixtral                                 GQA + MoE in every layer
gpt_oss                                 GQA with biases and sinks, sliding/full
                                        ``layer_types``, MoE experts with biases
minimax_m2                              GQA with per-layer q/k norm, MoE with routing bias
deepseek_v3, kimi_k2                    MLA + MoE (``first_k_dense_replace``,
                                        ``moe_layer_freq``) with shared experts
deepseek_v32, glm_moe_dsa               the same + DeepSeek sparse-attention indexer
qwen3_next, qwen3_5_text,               Gated DeltaNet / gated full attention hybrid
qwen3_5_moe_text                        (``layer_types``), dense or MoE with a shared expert
======================================= ================================================

Vision-language wrappers (``text_config`` + ``vision_config``): the language model is
read from ``text_config`` and the vision tower is counted exactly for the encoders
``optimizer.catalog._vision`` knows (Qwen3-VL, Qwen3.5, Kimi-K2.5); any other wrapper is
unsupported rather than counted wrong. Known architectures that cannot be modelled
faithfully (Mamba hybrids, compressed or block-sparse attention, heterogeneous layers)
raise ``UnsupportedModelError`` with the reason; unknown ones too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from optimizer.catalog._config_reader import ConfigReader
from optimizer.catalog._families import TEXT_FAMILIES
from optimizer.catalog._quantization import native_quantization
from optimizer.catalog._vision import moonvit_params, qwen_vit_params
from optimizer.domain.model_spec import ModelSpec
from optimizer.errors import InvalidInputError, UnsupportedModelError, format_validation_error

__all__ = ["SUPPORTED_MODEL_TYPES", "UNSUPPORTED_MODEL_TYPES", "model_spec_from_config"]


# wrapper model_type -> (default text model_type, vision-tower counter)
_VISION_WRAPPERS: dict[str, tuple[str, Callable[[ConfigReader, int], int]]] = {
    "qwen3_vl": ("qwen3_vl_text", lambda v, _h: qwen_vit_params(v)),
    "qwen3_vl_moe": ("qwen3_vl_moe_text", lambda v, _h: qwen_vit_params(v)),
    "qwen3_5": ("qwen3_5_text", lambda v, _h: qwen_vit_params(v)),
    "qwen3_5_moe": ("qwen3_5_moe_text", lambda v, _h: qwen_vit_params(v)),
    "kimi_k25": ("kimi_k2", moonvit_params),
}

SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(sorted({*TEXT_FAMILIES, *_VISION_WRAPPERS}))
"""``model_type`` values epopt can model (top-level or of ``text_config``)."""

UNSUPPORTED_MODEL_TYPES: dict[str, str] = {
    "nemotron_h": "hybrid Mamba-2 / attention / MoE stack (hybrid_override_pattern) "
    "is not modelled",
    "nemotron-nas": "heterogeneous layers (block_configs: skipped attention, per-layer FFN "
    "widths) are not modelled",
    "deepseek_v4": "DeepSeek-V4 compressed sparse attention (compress_ratios), hash-routed "
    "layers and hyper-connections are not modelled",
    "deepseek_ref": "DeepSeek-V4 compressed sparse attention (compress_ratios), hash-routed "
    "layers and hyper-connections are not modelled",
    "gemma4": "Gemma-4 per-layer global/local head shapes, shared K=V projections and its "
    "vision tower are not modelled",
    "llama4": "Llama-4 chunked local attention with interleaved NoPE global layers and its "
    "vision tower are not modelled",
    "mimo_v2_flash": "per-layer attention shapes of the sliding/full hybrid "
    "(swa_num_attention_heads, hybrid_layer_pattern) are not modelled",
    "step3p7": "Step-3.7 attention layout is not documented in its config well enough to model",
    "minimax_m3": "block-sparse attention (sparse_attention_config) is not modelled",
    "minimax_m3_vl": "block-sparse attention (sparse_attention_config) and its vision tower "
    "are not modelled",
    "kimi_k3": "Kimi linear-attention (KDA) / MLA hybrid is not modelled",
    "kimi_linear": "Kimi linear-attention (KDA) / MLA hybrid is not modelled",
}
"""Known ``model_type`` values that epopt refuses, with the reason."""


def _unsupported_reason(model_type: str) -> str:
    return UNSUPPORTED_MODEL_TYPES.get(
        model_type,
        f"model_type {model_type!r} is not one of the modelled families "
        f"({', '.join(SUPPORTED_MODEL_TYPES)})",
    )


def _architecture(config: Mapping[str, Any], model_type: str) -> str:
    archs = config.get("architectures")
    if isinstance(archs, list) and archs and isinstance(archs[0], str):
        return archs[0]
    return model_type


def model_spec_from_config(
    config: Mapping[str, Any], model_id: str, quant_config: Mapping[str, Any] | None = None
) -> ModelSpec:
    """Translate a Hugging Face ``config.json`` into a ``ModelSpec``.

    Args:
        config: the parsed ``config.json``.
        model_id: the id to record in the spec (and quote in errors).
        quant_config: the parsed ModelOpt ``hf_quant_config.json``, if the checkpoint has one.

    Returns:
        The spec, with parameters broken down by role (see ``ModelSpec`` for the counting
        conventions: MTP layers excluded, vision tower in totals only).

    Raises:
        InvalidInputError: a required field is missing or has an impossible value; the
            message names the dotted field.
        UnsupportedModelError: the architecture (or its quantization format) cannot be
            modelled faithfully; the message says why.

    Example:
        >>> spec = model_spec_from_config(
        ...     {"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 64,
        ...      "num_attention_heads": 4, "num_key_value_heads": 2,
        ...      "intermediate_size": 128, "vocab_size": 100},
        ...     "tiny/llama")
        >>> spec.kv_bytes_per_token("bf16")
        256
    """
    top = ConfigReader(config, model_id)
    model_type = top.text("model_type")
    vision_params = 0
    if model_type in _VISION_WRAPPERS:
        default_text_type, count_vision = _VISION_WRAPPERS[model_type]
        text = top.sub("text_config")
        text_type = text.optional_text("model_type") or default_text_type
        vision_params = count_vision(top.sub("vision_config"), text.integer("hidden_size"))
        tie_source = top if "tie_word_embeddings" in top else text
    elif model_type in UNSUPPORTED_MODEL_TYPES:
        raise UnsupportedModelError(model_id, _unsupported_reason(model_type))
    elif "text_config" in top or "vision_config" in top:
        raise UnsupportedModelError(
            model_id, f"vision-language wrapper {model_type!r} is not modelled"
        )
    else:
        text, text_type, tie_source = top, model_type, top
    family = TEXT_FAMILIES.get(text_type)
    if family is None:
        raise UnsupportedModelError(model_id, _unsupported_reason(text_type))
    stack = family(text)
    tie = tie_source.flag("tie_word_embeddings", False)
    embedding = stack.vocab * stack.hidden
    try:
        return ModelSpec(
            model_id=model_id,
            architecture=_architecture(config, model_type),
            num_layers=stack.num_layers,
            hidden_size=stack.hidden,
            vocab_size=stack.vocab,
            tie_word_embeddings=tie,
            embedding_params=embedding,
            lm_head_params=0 if tie else embedding,
            attention_params=stack.attention,
            dense_mlp_params=stack.dense_mlp,
            routed_expert_params=stack.routed,
            shared_expert_params=stack.shared,
            router_params=stack.router,
            other_params=stack.other,
            vision_params=vision_params,
            native_quantization=native_quantization(config, quant_config, model_id),
            **stack.shape,
        )
    except ValidationError as exc:
        raise InvalidInputError(
            "config", f"inconsistent model config for {model_id}: {format_validation_error(exc)}"
        ) from exc
