"""Turn values from DataFrames and NumPy into plain JSON values before they are stored.

JSON columns are written with ``allow_nan=False`` on every backend (PostgreSQL rejects
``NaN`` in JSON), so absent values must be ``None`` before they reach the driver.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import date, datetime
from enum import Enum
from typing import Any

import numpy as np
import pandas as pd

from optimizer.errors import InvalidInputError

__all__ = ["json_payload", "to_json_value"]


def to_json_value(value: Any) -> Any:
    """A copy of ``value`` made of ``dict``/``list``/``str``/``int``/``float``/``bool``/``None``.

    NumPy scalars and arrays become Python numbers and lists; ``NaN``, infinities, ``pd.NA``
    and ``NaT`` become ``None``; enums their values; dates ISO-8601 text; mapping keys text.
    Anything else is returned as is (and fails to serialise later if it is not JSON).

    Example:
        >>> to_json_value({"a": np.float64("nan"), "b": np.int64(3), "c": (1, 2)})
        {'a': None, 'b': 3, 'c': [1, 2]}
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, Mapping):
        return {str(key): to_json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset | np.ndarray):
        return [to_json_value(item) for item in value]
    if isinstance(value, Enum):
        return to_json_value(value.value)
    if isinstance(value, np.generic):
        return to_json_value(value.item())
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def json_payload(value: Any, field: str) -> Any:
    """:func:`to_json_value` of ``value``, checked to serialise as strict JSON.

    Args:
        value: what is about to be stored in a JSON column.
        field: its name, for the error.

    Raises:
        InvalidInputError: something in ``value`` has no JSON form (an arbitrary object).

    Example:
        >>> json_payload({"x": object()}, "inputs")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        optimizer.errors.InvalidInputError: inputs: not storable as JSON: ...
    """
    converted = to_json_value(value)
    try:
        json.dumps(converted, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(field, f"not storable as JSON: {exc}") from exc
    return converted
