"""The knobs every search space declares, and the error that names one of them."""

from __future__ import annotations

from pydantic_core import PydanticCustomError

from optimizer.domain.enums import KVCacheDtype, Quantization, SpecMethod

__all__ = ["ENUM_KNOBS", "INT_KNOBS", "KNOBS", "knob_error"]

KNOBS: tuple[str, ...] = (
    "tp",
    "pp",
    "dp",
    "ep",
    "quantization",
    "kv_cache_dtype",
    "max_batch_size",
    "spec_method",
    "spec_draft_len",
    "kv_block_size",
    "max_num_batched_tokens",
)
"""Every knob, in enumeration order (DESIGN.md "The knobs")."""

ENUM_KNOBS: dict[str, type[Quantization] | type[KVCacheDtype] | type[SpecMethod]] = {
    "quantization": Quantization,
    "kv_cache_dtype": KVCacheDtype,
    "spec_method": SpecMethod,
}
INT_KNOBS: tuple[str, ...] = tuple(k for k in KNOBS if k not in ENUM_KNOBS)


def knob_error(knob: str | None, problem: str) -> PydanticCustomError:
    """A validation error about ``knob`` (``None``: the file as a whole)."""
    text = f"knob {knob!r}: {problem}" if knob else problem
    context = {"message": text, "knob": knob, "problem": problem}
    return PydanticCustomError("search_space", "{message}", context)
