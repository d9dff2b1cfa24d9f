"""Store and read measured runs (the ``profile_runs`` table) as native-schema DataFrames.

Imports are idempotent and all-or-nothing: :func:`insert_profile_runs` writes a whole frame
in one transaction, skipping runs whose ``run_key`` is already stored (and repeats inside
the frame), or writes nothing at all. Key look-ups are chunked and rows are inserted in
bulk, so the 5,221 bundled runs take a fraction of a second on SQLite.

Two imports of overlapping runs running at the same moment can collide on the unique
``run_key``; the later one then fails cleanly (nothing written) and can simply be rerun.

Example:
    >>> from optimizer.storage import open_database
    >>> engine = open_database("sqlite:///:memory:", auto_upgrade=True)
    >>> count_profile_runs(engine, gpu="h100_sxm")
    0
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from optimizer.domain.profile_run import NATIVE_COLUMNS
from optimizer.errors import InvalidInputError
from optimizer.storage.database import mask_url, storage_error
from optimizer.storage.json_values import json_payload
from optimizer.storage.models import ProfileRunRecord, UTCDateTime, new_id, utc_now

__all__ = [
    "FILTER_COLUMNS",
    "RUN_COLUMNS",
    "InsertResult",
    "count_profile_runs",
    "insert_profile_runs",
    "load_profile_runs",
]

RUN_COLUMNS: tuple[str, ...] = (*NATIVE_COLUMNS, "run_key")
"""Columns that :func:`insert_profile_runs` takes and :func:`load_profile_runs` returns."""

FILTER_COLUMNS: tuple[str, ...] = (*(c for c in RUN_COLUMNS if c != "extra"), "import_batch")
"""Columns that :func:`load_profile_runs` and :func:`count_profile_runs` can filter on."""

_TABLE: sa.Table = ProfileRunRecord.__table__  # type: ignore[assignment]
_KEY_CHUNK = 500
_RUN_KEY = re.compile(r"[0-9a-f]{64}")
_MAX_BATCH = 64


def _kind(column: sa.Column[Any]) -> str:
    column_type = column.type
    if isinstance(column_type, UTCDateTime | sa.DateTime):
        return "datetime"
    if isinstance(column_type, sa.JSON):
        return "json"
    if isinstance(column_type, sa.Integer):
        return "int"
    if isinstance(column_type, sa.Float):
        return "float"
    if isinstance(column_type, sa.String):
        return "str"
    raise TypeError(f"profile_runs.{column.name}: no conversion for {column_type!r}")


_KINDS: dict[str, str] = {name: _kind(_TABLE.c[name]) for name in RUN_COLUMNS}


@dataclass(frozen=True)
class InsertResult:
    """Outcome of :func:`insert_profile_runs`.

    Attributes:
        added: rows written.
        skipped: rows not written because their ``run_key`` was already stored or repeated
            an earlier row of the same frame.
        import_batch: the batch id stored with every added row.
    """

    added: int
    skipped: int
    import_batch: str


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)


def _to_datetime(value: Any) -> datetime:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
    moment: datetime = stamp.to_pydatetime()
    return moment


def _to_python(kind: str, name: str, value: Any) -> Any:
    if _missing(value):
        return None
    if kind == "str":
        return str(value.value if isinstance(value, Enum) else value)
    if kind == "int":
        number = float(value)
        if not number.is_integer():
            raise InvalidInputError(name, f"{value!r} is not an integer")
        return int(number)
    if kind == "float":
        return float(value)
    if kind == "datetime":
        return _to_datetime(value)
    return json_payload(value, name)


def _column_values(runs: pd.DataFrame, name: str) -> list[Any]:
    kind = _KINDS[name]
    values = []
    for position, value in enumerate(runs[name].astype(object)):
        try:
            values.append(_to_python(kind, name, value))
        except InvalidInputError as exc:
            message = str(exc).removeprefix(f"{name}: ")
            raise InvalidInputError(name, f"row {position + 1} of the frame: {message}") from exc
    return values


def _records(runs: pd.DataFrame) -> list[dict[str, Any]]:
    columns = {name: _column_values(runs, name) for name in RUN_COLUMNS}
    return [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]


def _check_columns(runs: pd.DataFrame) -> None:
    given = list(runs.columns)
    missing = [c for c in RUN_COLUMNS if c not in given]
    unknown = [str(c) for c in given if c not in RUN_COLUMNS]
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown column(s) {', '.join(unknown)}")
        raise InvalidInputError("runs", "; ".join(problems), allowed=RUN_COLUMNS)
    if runs.columns.duplicated().any():
        raise InvalidInputError("runs", "duplicate column names", allowed=RUN_COLUMNS)


def _existing_keys(connection: sa.Connection, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), _KEY_CHUNK):
        chunk = keys[start : start + _KEY_CHUNK]
        query = sa.select(_TABLE.c.run_key).where(_TABLE.c.run_key.in_(chunk))
        found.update(connection.scalars(query))
    return found


def insert_profile_runs(
    engine: sa.Engine, runs: pd.DataFrame, import_batch: str | None = None
) -> InsertResult:
    """Store validated runs; skip those already stored; all or nothing.

    Args:
        engine: an engine on a database at head (see :func:`~optimizer.storage.open_database`).
        runs: exactly the columns of ``NATIVE_COLUMNS`` plus ``run_key`` (any order), as
            :func:`optimizer.profiles.validate_profiles` returns them: missing values as
            ``None``/``NaN``/``NaT``, enums as their strings (or enum members),
            ``measured_at`` as datetimes (naive = UTC), ``extra`` as ``dict`` or ``None``.
        import_batch: id stored with every added row (at most 64 characters); a fresh
            random id when ``None``.

    Returns:
        How many rows were added and skipped, and the batch id.

    Raises:
        InvalidInputError: columns missing or unknown, a ``run_key`` missing or not 64
            lowercase hex characters, a
            non-integer in an integer column, an ``extra`` without a JSON form, an
            ``import_batch`` longer than 64 characters.
        StorageError: the database refused a row (a NOT NULL or check constraint) or
            failed; the transaction was rolled back and nothing was written.

    Example:
        >>> from optimizer.profiles import load_reference_profiles
        >>> from optimizer.storage import open_database
        >>> engine = open_database("sqlite:///:memory:", auto_upgrade=True)
        >>> insert_profile_runs(engine, load_reference_profiles()).added  # doctest: +SKIP
        5221
    """
    _check_columns(runs)
    records = _records(runs)
    for position, record in enumerate(records):
        key = record["run_key"]
        if key is None:
            raise InvalidInputError("run_key", f"missing in row {position + 1} of the frame")
        if not _RUN_KEY.fullmatch(key):
            raise InvalidInputError(
                "run_key",
                f"row {position + 1} of the frame: {key!r} is not a SHA-256 hex digest "
                "(64 characters 0-9a-f)",
            )
    batch = import_batch if import_batch is not None else new_id()
    if not 1 <= len(batch) <= _MAX_BATCH:
        raise InvalidInputError(
            "import_batch", f"must be 1 to {_MAX_BATCH} characters, got {batch!r}"
        )
    unique: dict[str, dict[str, Any]] = {}
    for record in records:
        unique.setdefault(record["run_key"], record)
    imported_at = utc_now()
    action = f"import of {len(records)} profile runs into {mask_url(engine.url)}"
    try:
        with engine.begin() as connection:
            existing = _existing_keys(connection, list(unique))
            new_rows = [
                {**record, "imported_at": imported_at, "import_batch": batch}
                for key, record in unique.items()
                if key not in existing
            ]
            if new_rows:
                connection.execute(sa.insert(_TABLE), new_rows)
    except SQLAlchemyError as exc:
        raise storage_error(action, exc, "rolled back, nothing written") from exc
    return InsertResult(
        added=len(new_rows), skipped=len(records) - len(new_rows), import_batch=batch
    )


def _conditions(filters: Mapping[str, Any]) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    for name, wanted in filters.items():
        if name not in FILTER_COLUMNS:
            raise InvalidInputError(name, "not a profile-run column to filter on", FILTER_COLUMNS)
        column = _TABLE.c[name]
        kind = _KINDS.get(name, "str")
        if isinstance(wanted, Iterable) and not isinstance(wanted, str | bytes | Mapping):
            values = [_to_python(kind, name, v) for v in wanted]
            conditions.append(column.in_(values))
        elif _missing(wanted):
            conditions.append(column.is_(None))
        else:
            conditions.append(column == _to_python(kind, name, wanted))
    return conditions


def count_profile_runs(engine: sa.Engine, /, **filters: Any) -> int:
    """Number of stored runs matching every filter.

    Args:
        engine: an engine on a database at head.
        **filters: column name (see :data:`FILTER_COLUMNS`) to a value, a list of values
            (any of them), or ``None`` (absent). Enum members are compared by value.
            ``engine`` here is the serving engine: the database engine is positional-only.

    Raises:
        InvalidInputError: a filter names no filterable column.
        StorageError: the database failed.

    Example:
        >>> from optimizer.storage import open_database
        >>> engine = open_database("sqlite:///:memory:", auto_upgrade=True)
        >>> count_profile_runs(engine, gpu="h200_sxm", engine=["vllm", "sglang"])
        0
    """
    query = sa.select(sa.func.count()).select_from(_TABLE).where(*_conditions(filters))
    try:
        with engine.connect() as connection:
            return int(connection.execute(query).scalar_one())
    except SQLAlchemyError as exc:
        raise storage_error("counting profile runs", exc) from exc


def _frame_column(name: str, values: list[Any]) -> Any:
    kind = _KINDS[name]
    if kind == "int":
        if _TABLE.c[name].nullable:
            return pd.array(values, dtype="Int64")
        return np.asarray(values, dtype=np.int64)
    if kind == "float":
        return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    if kind == "datetime":
        stamps = pd.to_datetime(pd.Series(values, dtype=object), utc=True)
        return stamps.astype("datetime64[us, UTC]")
    return pd.Series(values, dtype=object)


def load_profile_runs(engine: sa.Engine, /, **filters: Any) -> pd.DataFrame:
    """Stored runs matching every filter, in the native schema, in import order.

    Args:
        engine: an engine on a database at head.
        **filters: as for :func:`count_profile_runs`, e.g. ``model="meta-llama/Llama-3.1-8B"``,
            ``gpu=["h100_sxm", "h200_sxm"]``, ``engine="vllm"``.

    Returns:
        One row per run, columns ``NATIVE_COLUMNS`` then ``run_key``, a fresh
        ``RangeIndex``, and the dtypes of :func:`optimizer.profiles.validate_profiles`:
        text as ``object``, integers ``int64`` (``Int64`` where nullable), floats
        ``float64`` (``NaN`` = absent), ``measured_at`` ``datetime64[us, UTC]``, ``extra``
        ``dict`` or ``None``.

    Raises:
        InvalidInputError: a filter names no filterable column.
        StorageError: the database failed.

    Example:
        >>> from optimizer.storage import open_database
        >>> engine = open_database("sqlite:///:memory:", auto_upgrade=True)
        >>> load_profile_runs(engine, model="meta-llama/Llama-3.1-8B", gpu="h100_sxm").shape
        (0, 40)
    """
    query = (
        sa.select(*(_TABLE.c[name] for name in RUN_COLUMNS))
        .where(*_conditions(filters))
        .order_by(_TABLE.c.id)
    )
    try:
        with engine.connect() as connection:
            rows = connection.execute(query).all()
    except SQLAlchemyError as exc:
        raise storage_error("loading profile runs", exc) from exc
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in RUN_COLUMNS]
    return pd.DataFrame(
        {
            name: _frame_column(name, list(values))
            for name, values in zip(RUN_COLUMNS, columns, strict=True)
        }
    )
