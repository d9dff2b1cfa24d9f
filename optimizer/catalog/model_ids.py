"""Hugging Face ids of the bundled model configs, and the names that lead to them.

The bundled configs are the ones shipped in ``aiconfigurator_core/model_configs``
(``<org>--<name>_config.json``, some with ``<org>--<name>_hf_quant_config.json``).
Users type other spellings of the same checkpoints: Meta renamed its repositories
(``Meta-Llama-3.1-70B`` -> ``Llama-3.1-70B``), Zhipu AI publishes as ``zai-org``, and
instruction-tuned or re-quantized variants (``-Instruct``, ``-FP8``, ``-NVFP4``, often
re-published under ``nvidia/``) share their base model's architecture. ``resolve_model_id``
maps such names to a bundled id, in this order:

1. the bundled id itself, case-insensitively;
2. the explicit ``MODEL_ALIASES`` table;
3. a conservative normaliser: lower-case, map the organisation through ``ORG_ALIASES``,
   strip the variant suffixes in ``VARIANT_SUFFIXES`` (which change weights or storage,
   never the architecture) and the ``Meta-`` prefix of Llama names, then look for a
   bundled id with the same normalised name -- under the same organisation, or under any
   organisation when the name comes from ``nvidia/`` (NVIDIA re-publishes other
   organisations' models quantized). Among several matches the unsuffixed base wins.

Anything else is unknown: a name is never mapped to a different architecture.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from optimizer.errors import NotFoundError
from optimizer.resources import aiconfigurator_dir

__all__ = [
    "MODEL_ALIASES",
    "ORG_ALIASES",
    "VARIANT_SUFFIXES",
    "bundled_config_paths",
    "bundled_model_ids",
    "resolve_model_id",
]

_CONFIG_SUFFIX = "_config.json"
_QUANT_SUFFIX = "_hf_quant_config.json"

MODEL_ALIASES: dict[str, str] = {
    # Zhipu AI's GLM-5 is published under the zai-org organisation.
    "zhipuai/glm-5": "zai-org/GLM-5",
    # Meta renamed its Llama 3.1 repositories in 2024; the bundled configs keep the old names.
    "meta-llama/llama-3.1-8b": "meta-llama/Meta-Llama-3.1-8B",
    "meta-llama/llama-3.1-70b": "meta-llama/Meta-Llama-3.1-70B",
    "meta-llama/llama-3.1-405b": "meta-llama/Meta-Llama-3.1-405B",
}
"""Lower-cased name -> bundled id, for renames the normaliser should not guess."""

ORG_ALIASES: dict[str, str] = {"zhipuai": "zai-org"}
"""Lower-cased organisation -> the organisation the bundled configs use."""

VARIANT_SUFFIXES: tuple[str, ...] = (
    "-instruct",
    "-base",
    "-fp8-dynamic",
    "-fp8",
    "-nvfp4",
    "-fp4",
    "-bf16",
)
"""Name suffixes of variants that keep the architecture (tuning, weight format)."""


@cache
def bundled_config_paths() -> dict[str, Path]:
    """Bundled Hugging Face id -> path of its ``config.json``."""
    folder = aiconfigurator_dir() / "model_configs"
    paths = {}
    for path in sorted(folder.glob(f"*{_CONFIG_SUFFIX}")):
        if path.name.endswith(_QUANT_SUFFIX):
            continue
        stem = path.name[: -len(_CONFIG_SUFFIX)]
        org, sep, name = stem.partition("--")
        if sep and org and name:
            paths[f"{org}/{name}"] = path
    return paths


def bundled_model_ids() -> list[str]:
    """Hugging Face ids of the bundled configs, sorted (e.g. ``meta-llama/Meta-Llama-3.1-70B``)."""
    return sorted(bundled_config_paths())


def _normalised(model_id: str) -> tuple[str, str, bool]:
    """(organisation, name, is_variant): lower-cased, org aliases applied, variant
    suffixes and the ``Meta-`` prefix of Llama names removed."""
    org, _, name = model_id.lower().partition("/")
    org = ORG_ALIASES.get(org, org)
    variant = False
    changed = True
    while changed:
        changed = False
        for suffix in VARIANT_SUFFIXES:
            if name.endswith(suffix) and len(name) > len(suffix):
                name = name[: -len(suffix)]
                changed = variant = True
    if name.startswith("meta-llama-"):
        name = name[len("meta-") :]
    return org, name, variant


@cache
def _index() -> dict[str, list[tuple[str, bool, str]]]:
    """Normalised name -> [(normalised org, is_variant, bundled id)]."""
    index: dict[str, list[tuple[str, bool, str]]] = {}
    for model_id in bundled_model_ids():
        org, name, variant = _normalised(model_id)
        index.setdefault(name, []).append((org, variant, model_id))
    return index


def resolve_model_id(name: str) -> str:
    """The bundled id a user-typed Hugging Face id refers to.

    Args:
        name: e.g. ``"meta-llama/Llama-3.1-70B"``, ``"nvidia/DeepSeek-R1-NVFP4"``.

    Returns:
        A bundled id, e.g. ``"meta-llama/Meta-Llama-3.1-70B"``, ``"deepseek-ai/DeepSeek-R1"``.

    Raises:
        NotFoundError: no bundled config has this architecture under a known spelling.

    Example:
        >>> resolve_model_id("zhipuai/GLM-5")
        'zai-org/GLM-5'
    """
    bundled = {model_id.lower(): model_id for model_id in bundled_config_paths()}
    key = name.strip().lower()
    if key in bundled:
        return bundled[key]
    if key in MODEL_ALIASES:
        return MODEL_ALIASES[key]
    org, normal, _ = _normalised(key)
    pool = [
        (variant, cand_org != org, model_id)
        for cand_org, variant, model_id in _index().get(normal, [])
        if cand_org == org or org == "nvidia"
    ]
    if pool:
        # the unsuffixed base checkpoint first, then the requested organisation
        return min(pool)[2]
    raise NotFoundError("model", name, known=bundled_model_ids())
