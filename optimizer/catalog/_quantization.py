"""The format a published checkpoint ships its linear layers in.

Read from, in order: a ModelOpt ``hf_quant_config.json`` beside the config, then
``quantization_config`` of the config (top level, then ``text_config``). Recognised
``quant_method`` values:

* ``fp8`` -- ``fp8_block`` with ``weight_block_size``, else ``fp8``; ``fbgemm_fp8`` -- ``fp8``.
* ``mxfp4`` -- ``mxfp4``.
* ``modelopt`` (or a section with ``quant_algo``) -- FP8 -> ``fp8``, NVFP4 and
  W4A16_NVFP4 -> ``nvfp4``, W4A16_AWQ / W4A8_AWQ -> ``int4_wo``; MIXED_PRECISION -> the
  4-bit format when any layer group uses one (routed experts hold most weights), else
  ``fp8``.
* ``compressed-tensors`` -- from the first config group's weights: 4-bit int ->
  ``int4_wo``; 4-bit float in groups of 16 -> ``nvfp4``, of 32 (or an mxfp4 format) ->
  ``mxfp4``; 8-bit float -> ``fp8`` (``fp8_block`` with the block strategy).
* ``awq`` / ``gptq`` with 4-bit weights -> ``int4_wo``.

Anything else raises ``UnsupportedModelError``: a format epopt cannot name would give
silently wrong weight sizes downstream. Which modules a checkpoint leaves unquantized
(``ignore`` / ``exclude_modules`` lists) is not modelled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optimizer.domain.enums import Quantization
from optimizer.errors import UnsupportedModelError

__all__ = ["native_quantization"]


def native_quantization(
    config: Mapping[str, Any], quant_config: Mapping[str, Any] | None, model_id: str
) -> Quantization | None:
    """Quantization of the checkpoint's linear layers, or None for a 16-bit checkpoint.

    Args:
        config: the whole ``config.json``.
        quant_config: the sibling ``hf_quant_config.json`` (ModelOpt), if any.
        model_id: for error messages.

    Raises:
        UnsupportedModelError: the quantization section names a format epopt does not know.
    """
    if quant_config:
        section = quant_config.get("quantization", quant_config)
        if isinstance(section, Mapping):
            return _modelopt(section, model_id, "hf_quant_config.json")
    for where, holder in (("", config), ("text_config.", config.get("text_config"))):
        if isinstance(holder, Mapping) and isinstance(holder.get("quantization_config"), Mapping):
            return _from_quantization_config(
                holder["quantization_config"], model_id, f"{where}quantization_config"
            )
    return None


def _unsupported(model_id: str, where: str, what: str) -> UnsupportedModelError:
    return UnsupportedModelError(model_id, f"{where}: {what}")


def _from_quantization_config(
    section: Mapping[str, Any], model_id: str, where: str
) -> Quantization | None:
    method = section.get("quant_method")
    method = method.lower() if isinstance(method, str) else None
    if method in (None, "modelopt") and "quant_algo" in section:
        return _modelopt(section, model_id, where)
    if method == "fp8":
        return Quantization.FP8_BLOCK if section.get("weight_block_size") else Quantization.FP8
    if method == "fbgemm_fp8":
        return Quantization.FP8
    if method == "mxfp4":
        return Quantization.MXFP4
    if method == "compressed-tensors":
        return _compressed_tensors(section, model_id, where)
    if method in ("awq", "gptq"):
        bits = section.get("bits", section.get("w_bit"))
        if bits == 4:
            return Quantization.INT4_WO
        raise _unsupported(model_id, where, f"{method} with {bits!r}-bit weights is not modelled")
    raise _unsupported(
        model_id,
        where,
        f"quant_method {method!r} is not recognised "
        "(known: fp8, fbgemm_fp8, mxfp4, modelopt, compressed-tensors, awq, gptq)",
    )


_MODELOPT_ALGOS = {
    "FP8": Quantization.FP8,
    "NVFP4": Quantization.NVFP4,
    "W4A16_NVFP4": Quantization.NVFP4,
    "W4A16_AWQ": Quantization.INT4_WO,
    "W4A8_AWQ": Quantization.INT4_WO,
    "MXFP4": Quantization.MXFP4,
}


def _modelopt(section: Mapping[str, Any], model_id: str, where: str) -> Quantization:
    algo = section.get("quant_algo")
    if isinstance(algo, str) and algo.upper() in _MODELOPT_ALGOS:
        return _MODELOPT_ALGOS[algo.upper()]
    if algo == "MIXED_PRECISION":
        layers = section.get("quantized_layers")
        algos = set()
        if isinstance(layers, Mapping):
            algos = {
                str(layer.get("quant_algo", "")).upper()
                for layer in layers.values()
                if isinstance(layer, Mapping)
            }
        moe_algo = section.get("moe_quant_algo")
        if isinstance(moe_algo, str):
            algos.add(moe_algo.upper())
        known = [_MODELOPT_ALGOS[a] for a in sorted(algos) if a in _MODELOPT_ALGOS]
        four_bit = [q for q in known if q is not Quantization.FP8]
        if four_bit:
            return four_bit[0]
        if known:
            return known[0]
        raise _unsupported(model_id, where, "MIXED_PRECISION without a recognised layer format")
    raise _unsupported(
        model_id,
        where,
        f"ModelOpt quant_algo {algo!r} is not recognised "
        f"(known: {', '.join(sorted(_MODELOPT_ALGOS))}, MIXED_PRECISION)",
    )


def _compressed_tensors(section: Mapping[str, Any], model_id: str, where: str) -> Quantization:
    groups = section.get("config_groups")
    if not isinstance(groups, Mapping) or not groups:
        raise _unsupported(model_id, where, "compressed-tensors without config_groups")
    group = next(iter(groups.values()))
    weights = group.get("weights") if isinstance(group, Mapping) else None
    if not isinstance(weights, Mapping):
        raise _unsupported(model_id, where, "compressed-tensors group without weights")
    bits, kind = weights.get("num_bits"), weights.get("type")
    group_size = weights.get("group_size")
    fmt = f"{group.get('format', '')} {section.get('format', '')}".lower()
    if bits == 4 and kind == "int":
        return Quantization.INT4_WO
    if bits == 4 and kind == "float":
        if "mxfp4" in fmt or group_size == 32:
            return Quantization.MXFP4
        if group_size == 16:
            return Quantization.NVFP4
    if bits == 8 and kind == "float":
        return Quantization.FP8_BLOCK if weights.get("strategy") == "block" else Quantization.FP8
    raise _unsupported(
        model_id,
        where,
        f"compressed-tensors weights of {bits!r} bits, type {kind!r}, group {group_size!r} "
        "are not modelled",
    )
