"""Declarative constraints of a search-space file: ``rules`` of conditions on knob values.

A rule rejects the candidates that match every one of its conditions; a condition is one
comparison of one knob (``eq``, ``ne``, ``in``, ``not_in``, ``gt``, ``ge``, ``lt``,
``le``). Rules are data, evaluated with numpy; no YAML text is ever executed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from optimizer.space.knobs import ENUM_KNOBS, KNOBS, knob_error

__all__ = ["Condition", "Rule"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")

_ORDERING = ("gt", "ge", "lt", "le")


class Condition(BaseModel):
    """One test on one knob: exactly one of eq, ne, in, not_in, gt, ge, lt, le."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    eq: int | str | None = None
    ne: int | str | None = None
    in_: tuple[int | str, ...] | None = Field(default=None, alias="in")
    not_in: tuple[int | str, ...] | None = None
    gt: int | None = None
    ge: int | None = None
    lt: int | None = None
    le: int | None = None

    @model_validator(mode="after")
    def _one(self) -> Condition:
        given = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "a condition takes exactly one of eq, ne, in, not_in, gt, ge, lt, le; "
                f"got {len(given)}"
            )
        return self

    @property
    def operator(self) -> str:
        """Name of the one test this condition holds."""
        name = next(n for n in type(self).model_fields if getattr(self, n) is not None)
        return "in" if name == "in_" else name

    @property
    def operand(self) -> Any:
        """The value(s) the knob is tested against."""
        return getattr(self, "in_" if self.operator == "in" else self.operator)

    def mask(self, values: Any) -> Any:
        """Where ``values`` (array-like) pass the test."""
        array = np.asarray(values)
        op, operand = self.operator, self.operand
        if op == "eq":
            return array == operand
        if op == "ne":
            return array != operand
        if op == "in":
            return np.isin(array, list(operand))
        if op == "not_in":
            return ~np.isin(array, list(operand))
        return {"gt": np.greater, "ge": np.greater_equal, "lt": np.less, "le": np.less_equal}[op](
            array, operand
        )


_RULE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class Rule(BaseModel):
    """A declarative constraint: candidates matching every condition are rejected.

    Example (YAML)::

        - name: no_pp_with_spec_decoding
          reason: vLLM cannot combine pipeline parallelism with speculative decoding
          forbid: {pp: {gt: 1}, spec_method: {ne: none}}
    """

    model_config = _FROZEN
    name: str
    reason: str = Field(min_length=1)
    forbid: dict[str, Condition] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _RULE_NAME.match(value):
            raise ValueError("rule names are lower_snake_case identifiers")
        return value

    @model_validator(mode="after")
    def _knobs(self) -> Rule:
        for knob, condition in self.forbid.items():
            if knob not in KNOBS:
                raise knob_error(knob, f"rule {self.name!r} tests an unknown knob")
            operands = condition.operand
            operands = operands if isinstance(operands, tuple) else (operands,)
            if knob in ENUM_KNOBS:
                if condition.operator in _ORDERING:
                    raise knob_error(
                        knob, f"rule {self.name!r}: {condition.operator} needs a number"
                    )
                vocabulary = {v.value for v in ENUM_KNOBS[knob]}
                bad = [v for v in operands if v not in vocabulary]
            else:
                bad = [v for v in operands if not isinstance(v, int) or isinstance(v, bool)]
            if bad:
                raise knob_error(knob, f"rule {self.name!r} tests invalid values {bad}")
        return self

    def mask(self, knobs: Mapping[str, Any]) -> Any:
        """Where a candidate (knob name -> broadcastable array) is forbidden."""
        result: Any = np.True_
        for knob, condition in self.forbid.items():
            result = result & condition.mask(knobs[knob])
        return result
