"""Parameter counts of the vision towers of the vision-language models epopt models.

A vision-language checkpoint holds its vision encoder in the same weights, so memory
fit must count it; a text token never passes through it, so it is not active. Only
the encoders whose structure is known exactly are counted here:

* ``qwen_vit`` -- the Qwen3-VL / Qwen3.5 encoder (Hugging Face
  ``Qwen3VLVisionModel``): Conv3d patch embedding, learned position table, pre-norm
  blocks (LayerNorm, fused qkv and proj with bias, 2-layer GELU MLP with bias), a patch
  merger (LayerNorm, two linears) and one DeepStack merger per
  ``deepstack_visual_indexes`` entry (LayerNorm after the spatial shuffle).
* ``moonvit`` -- Kimi-K2.5's MoonViT-3D (vLLM ``MoonViT3dPretrainedModel``): Conv2d
  patch embedding, learned 2-D position table, pre-norm blocks, final LayerNorm, and
  the ``patchmerger`` projector (LayerNorm, two linears with bias).

Any other encoder makes the whole model unsupported (``hf_config`` says which).
"""

from __future__ import annotations

from optimizer.catalog._config_reader import ConfigReader
from optimizer.errors import UnsupportedModelError

__all__ = ["moonvit_params", "qwen_vit_params"]


def _layer_norm(width: int) -> int:
    return 2 * width


def _linear(fan_in: int, fan_out: int, bias: bool = True) -> int:
    return fan_in * fan_out + (fan_out if bias else 0)


def qwen_vit_params(vision: ConfigReader) -> int:
    """Parameters of a Qwen3-VL / Qwen3.5 vision encoder and its mergers."""
    hidden = vision.integer("hidden_size")
    inter = vision.integer("intermediate_size")
    depth = vision.integer("depth")
    in_channels = vision.integer("in_channels", 3)
    patch = vision.integer("patch_size")
    temporal = vision.integer("temporal_patch_size", 2)
    merge = vision.integer("spatial_merge_size", 2)
    out_hidden = vision.integer("out_hidden_size")
    positions = vision.integer("num_position_embeddings")
    deepstack = len(vision.integers("deepstack_visual_indexes"))

    patch_embed = in_channels * temporal * patch * patch * hidden + hidden
    block = (
        2 * _layer_norm(hidden)
        + _linear(hidden, 3 * hidden)
        + _linear(hidden, hidden)
        + _linear(hidden, inter)
        + _linear(inter, hidden)
    )
    merged = hidden * merge * merge
    merger_linears = _linear(merged, merged) + _linear(merged, out_hidden)
    merger = _layer_norm(hidden) + merger_linears
    deepstack_mergers = deepstack * (_layer_norm(merged) + merger_linears)
    return patch_embed + positions * hidden + depth * block + merger + deepstack_mergers


def moonvit_params(vision: ConfigReader, text_hidden: int) -> int:
    """Parameters of Kimi-K2.5's MoonViT-3D encoder and its ``patchmerger`` projector."""
    model = vision.model_id
    projector = vision.optional_text("mm_projector_type") or "patchmerger"
    checks = {
        "mm_projector_type": (projector, "patchmerger"),
        "pos_emb_type": (vision.optional_text("pos_emb_type") or "divided_fixed", "divided_fixed"),
        "norm_type": (vision.optional_text("norm_type") or "layernorm", "layernorm"),
        "mlp_type": (vision.optional_text("mlp_type") or "mlp2", "mlp2"),
    }
    for key, (value, expected) in checks.items():
        if value != expected:
            raise UnsupportedModelError(
                model, f"vision_config.{key} {value!r} is not modelled (only {expected!r})"
            )
    hidden = vision.integer("vt_hidden_size")
    inter = vision.integer("vt_intermediate_size")
    depth = vision.integer("vt_num_hidden_layers")
    qkv = vision.integer("qkv_hidden_size", hidden)
    patch = vision.integer("patch_size")
    pos_h = vision.integer("init_pos_emb_height")
    pos_w = vision.integer("init_pos_emb_width")
    attn_bias = vision.flag("attn_bias", True)
    linear_bias = vision.flag("linear_bias", True)
    patch_bias = vision.flag("patch_embed_proj_bias", True)
    merge = vision.raw("merge_kernel_size", [2, 2])
    if not (isinstance(merge, list) and len(merge) == 2 and all(isinstance(m, int) for m in merge)):
        raise vision.error("merge_kernel_size", "must be two integers")

    patch_embed = 3 * patch * patch * hidden + (hidden if patch_bias else 0)
    block = (
        2 * _layer_norm(hidden)
        + _linear(hidden, 3 * qkv, attn_bias)
        + _linear(qkv, hidden, attn_bias)
        + _linear(hidden, inter, linear_bias)
        + _linear(inter, hidden, linear_bias)
    )
    merged = hidden * merge[0] * merge[1]
    projector_params = _layer_norm(hidden) + _linear(merged, merged) + _linear(merged, text_hidden)
    return (
        patch_embed
        + pos_h * pos_w * hidden
        + depth * block
        + _layer_norm(hidden)
        + projector_params
    )
