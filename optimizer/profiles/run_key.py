"""``run_key``: a content hash that identifies one measured run, so imports are idempotent.

The key is the SHA-256 (hex) of a canonical JSON serialisation of the run's native fields:

- **covered**: every column of ``NATIVE_COLUMNS`` except ``source`` and ``extra`` — that
  is what was run (model, gpu, engine, engine_version, mode, quantization, kv_cache_dtype,
  tp, pp, dp, ep, concurrency, request_rate, max_batch_size, isl, osl, spec_method,
  spec_draft_len, kv_block_size), what was measured (ttft_ms … request_per_s), when
  (measured_at) and the source's own row id (source_id). A field added to ``ProfileRun``
  later is covered automatically.
- **not covered**: ``source`` (a file name: renaming or re-exporting a file does not make
  its runs new) and ``extra`` (free-form provenance that a newer importer may enrich).
- **canonical values**: absent values (``None``/``NaN``/``NaT``) are left out, so a new
  nullable column does not change existing keys; enums become their string values;
  integers are ints (``8.0`` from a CSV is ``8``); floats are written with 12 significant
  digits (so a CSV or Parquet round trip, or a last-bit parser difference, keeps the key);
  datetimes become UTC ISO-8601 with microseconds (naive times are taken as UTC); keys
  are sorted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from optimizer.domain.profile_run import NATIVE_COLUMNS
from optimizer.profiles.columns import COLUMN_KINDS, is_missing

__all__ = ["RUN_KEY_FIELDS", "compute_run_keys", "run_key"]

RUN_KEY_FIELDS: tuple[str, ...] = tuple(c for c in NATIVE_COLUMNS if c not in {"source", "extra"})
"""The native fields that ``run_key`` hashes, in schema order."""

_PREFIX = b"epopt.run_key.v1\n"


def _canonical(kind: str, value: Any) -> Any:
    if kind == "str":
        return str(value.value if hasattr(value, "value") else value)
    if kind == "int":
        number = float(value)
        if not number.is_integer():
            raise ValueError(f"not an integer: {value!r}")
        return int(number)
    if kind == "float":
        number = float(value)
        return "0" if number == 0 else format(number, ".12g")
    if kind == "datetime":
        stamp = pd.Timestamp(value)
        stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
        moment: datetime = stamp.to_pydatetime()
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    raise ValueError(f"run_key does not cover {kind} fields")  # pragma: no cover


def _digest(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(_PREFIX + text.encode("utf-8")).hexdigest()


def run_key(run: Mapping[str, Any]) -> str:
    """The run key of one run given as a mapping of native field -> value.

    Args:
        run: a row in the native schema (a dict, a ``pandas.Series``, ``model_dump()``).
            Fields outside :data:`RUN_KEY_FIELDS` are ignored; absent ones count as null.

    Returns:
        64 lowercase hex characters.

    Example:
        >>> a = run_key({"model": "m", "tp": 2, "ttft_ms": 100.0})
        >>> a == run_key({"model": "m", "tp": 2.0, "ttft_ms": 100.00000000000001})
        True
    """
    payload = {}
    for name in RUN_KEY_FIELDS:
        value = run.get(name)
        if not is_missing(value):
            payload[name] = _canonical(COLUMN_KINDS[name], value)
    return _digest(payload)


def _canonical_column(column: pd.Series, kind: str) -> list[Any]:
    if kind == "datetime" and pd.api.types.is_datetime64_any_dtype(column.dtype):
        stamps = column.dt.tz_localize(UTC) if column.dt.tz is None else column.dt.tz_convert(UTC)
        text = stamps.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return [None if is_missing(v) else v for v in text.astype(object)]
    return [None if is_missing(v) else _canonical(kind, v) for v in column.astype(object)]


def compute_run_keys(frame: pd.DataFrame) -> pd.Series:
    """``run_key`` of every row of a native-schema frame, as a ``str`` Series on its index.

    Same result as :func:`run_key` row by row, computed column-wise.
    """
    columns = [
        (name, _canonical_column(frame[name], COLUMN_KINDS[name]))
        for name in RUN_KEY_FIELDS
        if name in frame.columns
    ]
    keys = []
    for position in range(len(frame)):
        payload = {}
        for name, values in columns:
            value = values[position]
            if value is not None:
                payload[name] = value
        keys.append(_digest(payload))
    return pd.Series(keys, index=frame.index, dtype=object)
