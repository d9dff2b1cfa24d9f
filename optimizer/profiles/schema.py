"""Validate a whole DataFrame against the native profile schema and normalise it.

The native schema is :class:`optimizer.domain.ProfileRun` (one row = one measured run);
its field names, in order, are ``NATIVE_COLUMNS``. :func:`validate_profiles` checks every
row with that model and returns a frame with exactly ``NATIVE_COLUMNS`` plus ``run_key``,
in fixed dtypes (see :data:`~optimizer.profiles.columns.COLUMN_KINDS`):

- text and enum columns: ``object`` holding ``str`` or ``None`` (enums as their values);
- integer columns: ``int64``, or pandas ``Int64`` where the field may be null;
- float columns: ``float64`` (``NaN`` = absent);
- ``measured_at``: ``datetime64[us, UTC]`` (naive times are read as UTC);
- ``extra``: ``object`` holding a ``dict`` or ``None``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from optimizer.domain.profile_run import NATIVE_COLUMNS, ProfileRun
from optimizer.errors import ProfileImportError
from optimizer.profiles.columns import (
    COLUMN_KINDS,
    NULLABLE_COLUMNS,
    OUTPUT_COLUMNS,
    REQUIRED_COLUMNS,
    is_missing,
)
from optimizer.profiles.run_key import compute_run_keys

__all__ = ["check_columns", "validate_profiles"]


def check_columns(columns: Sequence[str], source: str, provided: Sequence[str] = ()) -> None:
    """Reject unknown columns and missing required ones, naming them.

    Args:
        columns: the column names of the input.
        source: file or data-set name used in the error.
        provided: required columns that the caller supplies itself (e.g. overrides).

    Raises:
        ProfileImportError: with ``row=None`` and ``field`` = the offending column(s).
    """
    allowed = set(OUTPUT_COLUMNS)
    unknown = [c for c in columns if c not in allowed]
    if unknown:
        raise ProfileImportError(
            source,
            None,
            ", ".join(map(str, unknown)),
            f"unknown column(s) {', '.join(map(repr, unknown))}; "
            f"the native columns are: {', '.join(NATIVE_COLUMNS)} (and optional run_key)",
        )
    present = set(columns) | set(provided)
    missing = [c for c in REQUIRED_COLUMNS if c not in present]
    if missing:
        raise ProfileImportError(
            source,
            None,
            ", ".join(missing),
            f"missing required column(s) {', '.join(map(repr, missing))}",
        )


_NAME_IN_MESSAGE = re.compile(r"\b(" + "|".join(sorted(NATIVE_COLUMNS, key=len)[::-1]) + r")\b")


def _row_error(source: str, row: int, exc: ValidationError) -> ProfileImportError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = first.get("loc") or ()
    message = str(first.get("msg", "invalid value"))
    if loc and first.get("type") == "missing":
        field = str(loc[0])
        reason = "required, but empty"
    elif loc:
        field = str(loc[0])
        reason = f"{message} (got {first.get('input')!r})"
    else:  # a model-level rule: name the first native field the message mentions
        found = _NAME_IN_MESSAGE.search(message)
        field = found.group(1) if found else "<row>"
        reason = message.removeprefix("Value error, ")
    if len(errors) > 1:
        others = sorted({str(e["loc"][0]) for e in errors[1:] if e.get("loc")} - {field})
        if others:
            reason += f"; this row also has problems in {', '.join(others)}"
    return ProfileImportError(source, row, field, reason)


# Fields with a non-null default: an empty cell means "the default", not null.
_DEFAULTED = frozenset(
    name
    for name, field in ProfileRun.model_fields.items()
    if not field.is_required() and field.default is not None
)


def _clean(record: dict[str, Any]) -> dict[str, Any]:
    clean = {}
    for name, value in record.items():
        if is_missing(value):
            if name in _DEFAULTED or name == "run_key":
                continue
            value = None
        elif name == "run_key":
            continue
        clean[name] = value
    return clean


def _column(values: list[Any], name: str) -> Any:
    kind = COLUMN_KINDS[name]
    if kind == "str":
        return pd.Series([None if v is None else str(v) for v in values], dtype=object)
    if kind == "int":
        if name in NULLABLE_COLUMNS:
            return pd.array(values, dtype="Int64")
        return np.asarray(values, dtype=np.int64)
    if kind == "float":
        return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    if kind == "datetime":
        return pd.to_datetime(pd.Series(values, dtype=object), utc=True).astype(
            "datetime64[us, UTC]"
        )
    if kind == "json":
        return pd.Series(values, dtype=object)
    return pd.Series(values, dtype=object)  # pragma: no cover - no other kind exists


def validate_profiles(
    frame: pd.DataFrame, source: str, *, rows: Sequence[int] | None = None
) -> pd.DataFrame:
    """Validate every row against :class:`~optimizer.domain.ProfileRun`; normalise the frame.

    Args:
        frame: one row per run; columns are a subset of ``NATIVE_COLUMNS`` and may include
            a ``run_key`` column, which is ignored and recomputed. An absent optional column,
            or an empty cell (``None``/``NaN``) in it, takes the schema default (``pp`` 1,
            ``mode`` ``agg``, ``spec_method`` ``none`` ...; null where the default is null).
        source: the file or data-set name, used in errors.
        rows: the row number a user sees for each frame row (1-based; what it counts is the
            importer's business: data rows after a CSV header, lines of a JSONL file, ...).
            Defaults to ``1 .. len(frame)``.

    Returns:
        A new frame with exactly ``NATIVE_COLUMNS`` + ``run_key``, a fresh ``RangeIndex``
        and the dtypes listed in the module docstring.

    Raises:
        ProfileImportError: at the first bad row: its row number, the field, and the reason
            (pydantic's message, which lists the allowed values of enums, and the bad value).

    Example:
        >>> import pandas as pd
        >>> row = dict(model="m", gpu="h100_sxm", engine="vllm", quantization="fp8", tp=1,
        ...            concurrency=8, isl=128, osl=128, ttft_ms=50.0, tpot_ms=9.0, source="x")
        >>> list(validate_profiles(pd.DataFrame([row]), "x").columns)[-1]
        'run_key'
    """
    check_columns(list(frame.columns), source)
    if rows is not None and len(rows) != len(frame):
        raise ValueError(f"rows has {len(rows)} numbers for {len(frame)} frame rows")
    records = frame.to_dict("records")
    columns: dict[str, list[Any]] = {name: [] for name in NATIVE_COLUMNS}
    for position, record in enumerate(records):
        try:
            run = ProfileRun.model_validate(_clean(record))
        except ValidationError as exc:
            row = rows[position] if rows is not None else position + 1
            raise _row_error(source, row, exc) from exc
        for name, values in columns.items():
            values.append(getattr(run, name))
    out = pd.DataFrame({name: _column(values, name) for name, values in columns.items()})
    out["run_key"] = compute_run_keys(out)
    return out
