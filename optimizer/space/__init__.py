"""Search spaces: each engine's knobs and values, their constraints, memory fit, enumeration.

Example:
    >>> from optimizer.space import load_search_space
    >>> load_search_space("vllm").values("kv_block_size")
    (16, 32, 64, 128)
"""

from __future__ import annotations

from optimizer.space.candidates import (
    MEMORY_COLUMNS,
    SpaceSummary,
    check_candidates,
    enumerate_candidates,
    example_candidates,
    sequence_tokens,
    summarize_candidates,
)
from optimizer.space.constraints import CONSTRAINTS, CheckContext, Constraint, describe_constraint
from optimizer.space.knobs import KNOBS
from optimizer.space.loader import bundled_space_path, load_search_space, parse_search_space
from optimizer.space.memory import MemoryBreakdown, MemoryFractionMode, estimate_memory
from optimizer.space.rules import Condition, Rule
from optimizer.space.schema import SearchSpace

__all__ = [
    "CONSTRAINTS",
    "KNOBS",
    "MEMORY_COLUMNS",
    "CheckContext",
    "Condition",
    "Constraint",
    "MemoryBreakdown",
    "MemoryFractionMode",
    "Rule",
    "SearchSpace",
    "SpaceSummary",
    "bundled_space_path",
    "check_candidates",
    "describe_constraint",
    "enumerate_candidates",
    "estimate_memory",
    "example_candidates",
    "load_search_space",
    "parse_search_space",
    "sequence_tokens",
    "summarize_candidates",
]
