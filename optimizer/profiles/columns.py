"""Column facts of the native profile schema, derived from :class:`ProfileRun`.

Derived, not restated: a field added to ``ProfileRun`` gets its column kind here
automatically, and the validator and ``run_key`` follow.
"""

from __future__ import annotations

import math
import types
import typing
from datetime import datetime
from enum import Enum
from typing import Any

import pandas as pd

from optimizer.domain.profile_run import NATIVE_COLUMNS, ProfileRun

__all__ = [
    "COLUMN_KINDS",
    "NULLABLE_COLUMNS",
    "OUTPUT_COLUMNS",
    "REQUIRED_COLUMNS",
    "is_missing",
]

OUTPUT_COLUMNS: tuple[str, ...] = (*NATIVE_COLUMNS, "run_key")
"""Columns of every validated profile frame: the native schema, then ``run_key``."""


def _kind(annotation: Any) -> str:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = args[0] if len(args) == 1 else annotation
    if typing.get_origin(annotation) is dict:
        return "json"
    if isinstance(annotation, type) and not issubclass(annotation, bool):
        if issubclass(annotation, Enum | str):
            return "str"
        if issubclass(annotation, datetime):
            return "datetime"
        if issubclass(annotation, int):
            return "int"
        if issubclass(annotation, float):
            return "float"
    raise TypeError(f"ProfileRun field type {annotation!r} has no column kind")


COLUMN_KINDS: dict[str, str] = {
    name: _kind(field.annotation) for name, field in ProfileRun.model_fields.items()
}
"""Native column -> kind: ``str`` (text and enums), ``int``, ``float``, ``datetime``, ``json``."""

NULLABLE_COLUMNS: frozenset[str] = frozenset(
    name
    for name, field in ProfileRun.model_fields.items()
    if not field.is_required() and field.default is None
)
"""Native columns that may be null."""

REQUIRED_COLUMNS: tuple[str, ...] = tuple(
    name for name, field in ProfileRun.model_fields.items() if field.is_required()
)
"""Native columns without a default: a file must provide them."""


def is_missing(value: object) -> bool:
    """Whether a cell is absent: ``None``, ``NaN``, ``pd.NA`` or ``NaT``."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)
