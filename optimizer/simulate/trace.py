"""Read a request trace (CSV or JSONL): arrival timestamp, input tokens, output tokens.

The I/O edge of the traffic model: :func:`read_trace` turns a file into a validated
:class:`Trace` of arrays; :mod:`optimizer.simulate.traffic` replays it.

Columns (case-insensitive; the first alias present is used):

* ``timestamp`` (``arrival_time``, ``time``, ``ts``) -- seconds, any origin;
* ``input_tokens`` (``isl``, ``input_length``, ``prompt_tokens``);
* ``output_tokens`` (``osl``, ``output_length``, ``completion_tokens``);
* optional ``tenant`` -- a tenant class name of the workload.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from optimizer.errors import InvalidInputError

__all__ = ["TRACE_COLUMNS", "Trace", "read_trace", "trace_from_arrays"]

TRACE_COLUMNS: dict[str, tuple[str, ...]] = {
    "timestamp": ("timestamp", "arrival_time", "time", "ts"),
    "input_tokens": ("input_tokens", "isl", "input_length", "prompt_tokens"),
    "output_tokens": ("output_tokens", "osl", "output_length", "completion_tokens"),
}
"""Required trace columns and the aliases accepted for each."""


@dataclass(frozen=True)
class Trace:
    """A validated trace, sorted by time, timestamps relative to the first request.

    Attributes:
        timestamp: seconds since the first request (non-decreasing, starts at 0).
        input_tokens: prompt tokens per request (>= 1).
        output_tokens: output tokens per request (>= 1).
        tenant: tenant name per request, or ``None`` when the trace has no tenant column.
    """

    timestamp: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    tenant: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.timestamp)


def trace_from_arrays(
    timestamp: object,
    input_tokens: object,
    output_tokens: object,
    tenant: object | None = None,
    *,
    field: str = "trace",
) -> Trace:
    """Validate and normalise trace columns (sorted by time, relative timestamps).

    Raises:
        InvalidInputError: no rows, a non-numeric or negative timestamp, a length < 1.
    """
    try:
        ts = np.asarray(timestamp, dtype=np.float64)
        isl = np.asarray(input_tokens, dtype=np.float64)
        osl = np.asarray(output_tokens, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(field, f"columns must be numbers: {exc}") from exc
    if ts.size == 0:
        raise InvalidInputError(field, "the trace has no requests")
    for name, values in (("timestamp", ts), ("input_tokens", isl), ("output_tokens", osl)):
        if values.shape != ts.shape:
            raise InvalidInputError(f"{field}.{name}", "columns differ in length")
        if not np.isfinite(values).all():
            raise InvalidInputError(f"{field}.{name}", "has missing or non-finite values")
    if (ts < 0).any():
        raise InvalidInputError(f"{field}.timestamp", "must be >= 0")
    for name, values in (("input_tokens", isl), ("output_tokens", osl)):
        if (values < 1).any() or (values != np.round(values)).any():
            raise InvalidInputError(f"{field}.{name}", "must be whole numbers >= 1")
    order = np.argsort(ts, kind="stable")
    tenants = None
    if tenant is not None:
        names = [str(t) for t in np.asarray(tenant, dtype=object)]
        tenants = tuple(names[i] for i in order)
    ts = ts[order]
    return Trace(
        timestamp=ts - ts[0],
        input_tokens=isl[order].astype(np.int64),
        output_tokens=osl[order].astype(np.int64),
        tenant=tenants,
    )


def _records(path: Path) -> list[dict[str, object]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"trace line {number}", f"not JSON: {exc.msg}") from exc
            if not isinstance(row, dict):
                raise InvalidInputError(f"trace line {number}", "must be a JSON object")
            rows.append(row)
        return rows
    import csv
    import io

    reader = csv.DictReader(io.StringIO(text))
    return [dict(row) for row in reader]


def read_trace(path: str | Path) -> Trace:
    """Read a CSV or JSONL trace (see the module docstring for the columns).

    Args:
        path: ``.csv`` or ``.jsonl`` / ``.ndjson`` file.

    Raises:
        InvalidInputError: unreadable file, empty trace, a missing column (named, with
            its accepted aliases), a bad value.
    """
    path = Path(path)
    field = "arrivals.path"
    if not path.is_file():
        raise InvalidInputError(field, f"no such file: {path}")
    rows = _records(path)
    if not rows:
        raise InvalidInputError(field, f"{path} has no requests")
    keys = {k.strip().lower(): k for k in rows[0]}
    columns: dict[str, str] = {}
    for name, aliases in TRACE_COLUMNS.items():
        found = next((keys[a] for a in aliases if a in keys), None)
        if found is None:
            raise InvalidInputError(
                f"{field}: column {name!r}", f"missing from {path.name}", aliases
            )
        columns[name] = found
    tenant_key = keys.get("tenant")

    def column(key: str) -> list[object]:
        values = []
        for number, row in enumerate(rows, start=1):
            value = row.get(key)
            if value is None or value == "":
                raise InvalidInputError(f"{field}: row {number}", f"missing value for {key!r}")
            values.append(value)
        return values

    return trace_from_arrays(
        column(columns["timestamp"]),
        column(columns["input_tokens"]),
        column(columns["output_tokens"]),
        column(tenant_key) if tenant_key else None,
        field=field,
    )
