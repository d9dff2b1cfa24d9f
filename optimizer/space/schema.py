"""The search space of one engine, as declared in ``search_spaces/<engine>.yaml``.

A space lists, per knob, the values to search (the grid), the engine's own name for the
knob, and its default; what the engine supports at all (``supports``: the grid must stay
inside it); how the engine sizes its memory (``memory``); and the constraints a candidate
must pass, in the order they are checked (``constraints``: names of Python checks from
``optimizer.space.constraints`` or of declarative ``rules`` defined in the file).

Validation errors carry the offending knob in their context (``ctx["knob"]``) so the
loader can name it.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator

from optimizer.domain.enums import Engine, KVCacheDtype, Quantization, SpecMethod
from optimizer.errors import InvalidInputError, format_validation_error
from optimizer.space.knobs import ENUM_KNOBS, KNOBS, knob_error
from optimizer.space.memory import MemoryFractionMode
from optimizer.space.rules import Rule

__all__ = [
    "EngineSupport",
    "EnumKnob",
    "IntKnob",
    "Knobs",
    "MemorySpec",
    "SearchSpace",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


# Upper bounds follow optimizer.domain.endpoint.EndpointConfig.
_INT_BOUNDS: dict[str, tuple[int, int]] = {
    "tp": (1, 64),
    "pp": (1, 16),
    "dp": (1, 64),
    "ep": (1, 64),
    "max_batch_size": (1, 16384),
    "spec_draft_len": (1, 8),
    "kv_block_size": (1, 1024),
    "max_num_batched_tokens": (16, 1 << 20),
}


class IntKnob(BaseModel):
    """An integer knob: the values to search and the engine's name and default for it."""

    model_config = _FROZEN
    flag: str = Field(min_length=1, description="the engine's own name for the knob")
    values: tuple[StrictInt, ...] = Field(min_length=1)
    default: StrictInt | None = None
    note: str | None = None


class EnumKnob(BaseModel):
    """A knob over a closed vocabulary (quantization, KV-cache dtype, speculative method)."""

    model_config = _FROZEN
    flag: str = Field(min_length=1)
    values: tuple[str, ...] = Field(min_length=1)
    default: str | None = None
    note: str | None = None


class Knobs(BaseModel):
    """All knobs of a space; every one must be declared."""

    model_config = _FROZEN
    tp: IntKnob
    pp: IntKnob
    dp: IntKnob
    ep: IntKnob
    quantization: EnumKnob
    kv_cache_dtype: EnumKnob
    max_batch_size: IntKnob
    spec_method: EnumKnob
    spec_draft_len: IntKnob
    kv_block_size: IntKnob
    max_num_batched_tokens: IntKnob

    @model_validator(mode="after")
    def _values(self) -> Knobs:
        for name in KNOBS:
            knob = getattr(self, name)
            if len(set(knob.values)) != len(knob.values):
                raise knob_error(name, f"values repeat: {list(knob.values)}")
            if name in ENUM_KNOBS:
                vocabulary = [v.value for v in ENUM_KNOBS[name]]
                for value in (*knob.values, *([knob.default] if knob.default else [])):
                    if value not in vocabulary:
                        raise knob_error(
                            name, f"unknown value {value!r} (allowed: {', '.join(vocabulary)})"
                        )
                continue
            low, high = _INT_BOUNDS[name]
            for value in knob.values:
                if not low <= value <= high:
                    raise knob_error(name, f"value {value} is outside {low}..{high}")
            if name == "kv_block_size":
                odd = [v for v in knob.values if not _is_power_of_two(v)]
                if odd:
                    raise knob_error(name, f"block sizes must be powers of two, got {odd}")
        return self

    def get(self, name: str) -> IntKnob | EnumKnob:
        """The knob called ``name``."""
        if name not in KNOBS:
            raise InvalidInputError("knob", f"unknown knob {name!r}", allowed=KNOBS)
        knob: IntKnob | EnumKnob = getattr(self, name)
        return knob


class MemorySpec(BaseModel):
    """How the engine caps its memory: the flag, what it caps, and its default."""

    model_config = _FROZEN
    flag: str = Field(min_length=1)
    mode: MemoryFractionMode
    default: float = Field(gt=0, le=1)
    by_world_size: dict[int, Annotated[float, Field(gt=0, le=1)]] | None = Field(
        default=None,
        description="minimum tp*pp -> fraction, when the engine's default depends on it",
    )
    note: str | None = None

    def fraction(self, world_size: Any) -> Any:
        """The default fraction for a replica of ``world_size`` = tp*pp GPUs (array-like)."""
        sizes = np.asarray(world_size)
        if not self.by_world_size:
            return np.full(sizes.shape, self.default, dtype=np.float64)
        keys = sorted(self.by_world_size)
        table = np.array([self.by_world_size[k] for k in keys], dtype=np.float64)
        position = np.searchsorted(np.array(keys), sizes, side="right") - 1
        return np.where(position >= 0, table[np.clip(position, 0, None)], self.default)


class EngineSupport(BaseModel):
    """What the engine can do at all; the searched values must be a subset."""

    model_config = _FROZEN
    quantization: tuple[Quantization, ...] = Field(min_length=1)
    kv_cache_dtype: tuple[KVCacheDtype, ...] = Field(min_length=1)
    spec_method: tuple[SpecMethod, ...] = Field(min_length=1)
    kv_block_size: tuple[StrictInt, ...] = Field(min_length=1)
    max_spec_draft_len: StrictInt = Field(ge=1, le=8)


class SearchSpace(BaseModel):
    """One engine's knobs, their searched values, support, memory cap and constraints.

    Example:
        >>> from optimizer.space import load_search_space
        >>> space = load_search_space("vllm")
        >>> space.knobs.max_batch_size.flag
        'max_num_seqs'
    """

    model_config = _FROZEN
    engine: Engine
    engine_version: str | None = Field(default=None, description="versions the file describes")
    memory: MemorySpec
    supports: EngineSupport
    knobs: Knobs
    constraints: tuple[str, ...] = Field(min_length=1)
    rules: tuple[Rule, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> SearchSpace:
        for name in ("quantization", "kv_cache_dtype", "spec_method", "kv_block_size"):
            supported = {getattr(v, "value", v) for v in getattr(self.supports, name)}
            knob = self.knobs.get(name)
            extra = [v for v in knob.values if v not in supported]
            if extra:
                raise knob_error(
                    name,
                    f"{self.engine.value} does not support {extra} "
                    f"(supports: {', '.join(map(str, sorted(supported)))})",
                )
        too_long = [
            v for v in self.knobs.spec_draft_len.values if v > self.supports.max_spec_draft_len
        ]
        if too_long:
            raise knob_error(
                "spec_draft_len",
                f"{too_long} exceed the engine's max_spec_draft_len "
                f"{self.supports.max_spec_draft_len}",
            )
        from optimizer.space.constraints import CONSTRAINTS

        rule_names = [rule.name for rule in self.rules]
        if len(set(rule_names)) != len(rule_names):
            raise knob_error("rules", "rule names repeat")
        clash = sorted(set(rule_names) & set(CONSTRAINTS))
        if clash:
            raise knob_error("rules", f"rule names shadow built-in constraints: {clash}")
        known = {*CONSTRAINTS, *rule_names}
        for name in self.constraints:
            if name not in known:
                raise knob_error(
                    "constraints",
                    f"unknown constraint {name!r} (known: {', '.join(sorted(known))})",
                )
        if len(set(self.constraints)) != len(self.constraints):
            raise knob_error("constraints", "constraint names repeat")
        unlisted = [name for name in rule_names if name not in self.constraints]
        if unlisted:
            raise knob_error("constraints", f"rules defined but not listed: {unlisted}")
        return self

    def values(self, knob: str) -> tuple[Any, ...]:
        """The searched values of ``knob``."""
        return tuple(self.knobs.get(knob).values)

    def rule(self, name: str) -> Rule | None:
        """The declarative rule called ``name``, if the file defines one."""
        return next((r for r in self.rules if r.name == name), None)

    def spec_pairs(self) -> list[tuple[str, int]]:
        """(spec_method, spec_draft_len) pairs to search: ``none`` only with 0, every
        other method with each searched draft length."""
        pairs: list[tuple[str, int]] = []
        for method in self.values("spec_method"):
            if method == SpecMethod.NONE.value:
                pairs.append((method, 0))
            else:
                pairs.extend((method, k) for k in self.values("spec_draft_len"))
        return pairs

    @property
    def size(self) -> int:
        """Number of candidates the grid holds."""
        sizes = [len(self.values(k)) for k in KNOBS if k not in ("spec_method", "spec_draft_len")]
        return math.prod(sizes) * len(self.spec_pairs())

    def restrict(self, **values: Any) -> SearchSpace:
        """A copy searching only the given values of some knobs (a value or a list each).

        The values need not be on the grid but must be valid for the knob and supported
        by the engine.

        Raises:
            InvalidInputError: an unknown knob or an invalid value; names the knob.

        Example:
            >>> load_search_space("vllm").restrict(max_batch_size=8).values("max_batch_size")
            (8,)
        """
        data = self.model_dump(mode="json", by_alias=True)
        for knob, given in values.items():
            if knob not in KNOBS:
                raise InvalidInputError(knob, "unknown knob", allowed=KNOBS)
            listed = list(given) if isinstance(given, list | tuple) else [given]
            data["knobs"][knob]["values"] = [getattr(v, "value", v) for v in listed]
        try:
            return SearchSpace.model_validate(data)
        except ValidationError as exc:
            field = _error_knob(exc) or "space"
            raise InvalidInputError(field, format_validation_error(exc)) from exc


def _error_knob(exc: ValidationError) -> str | None:
    for err in exc.errors():
        ctx: dict[str, Any] = err.get("ctx") or {}
        if ctx.get("knob"):
            return str(ctx["knob"])
        loc = err.get("loc", ())
        if len(loc) >= 2 and loc[0] == "knobs":
            return str(loc[1])
    return None
