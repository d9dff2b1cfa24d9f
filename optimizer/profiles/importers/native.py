"""The native profile schema as a file: CSV or Parquet with the columns of ``NATIVE_COLUMNS``.

Layout (what :func:`write_native` writes and :class:`NativeImporter` reads):

- one column per native field, by name, in any order; optional columns may be left out
  (they take the schema default); a ``run_key`` column may be present and is recomputed;
  any other column is an error that names it, and so is a missing required column;
- ``source`` may be left out: it then is the file name;
- ``extra`` is a JSON object text (or empty); ``measured_at`` is ISO-8601 (CSV) or a
  timestamp (Parquet); empty cells are nulls.

Row numbers in errors: for CSV the data row, not counting the header line (row 1 = the
first run, on line 2 of the file); for Parquet the 1-based row position.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from optimizer.errors import InvalidInputError, ProfileImportError
from optimizer.profiles.columns import COLUMN_KINDS, OUTPUT_COLUMNS, is_missing
from optimizer.profiles.importers.base import OVERRIDE_FIELDS, BaseImporter, option_for
from optimizer.profiles.schema import check_columns, validate_profiles

__all__ = ["NATIVE_SUFFIXES", "NativeImporter", "write_native"]

NATIVE_SUFFIXES: tuple[str, ...] = (".csv", ".parquet", ".pq")
"""File name endings the native format reads and writes."""

_PARQUET_MAGIC = b"PAR1"
_SIGNATURE = frozenset({"model", "gpu", "ttft_ms", "tpot_ms"})


def _is_parquet(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == _PARQUET_MAGIC


def _columns(path: Path) -> list[str]:
    if _is_parquet(path):
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    with path.open(newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle), [])


def _read_table(path: Path, source: str) -> pd.DataFrame:
    try:
        if _is_parquet(path):
            return pd.read_parquet(path)
        text_columns = {c: str for c, kind in COLUMN_KINDS.items() if kind in ("str", "json")}
        text_columns |= {"measured_at": str, "run_key": str}
        return pd.read_csv(path, dtype=text_columns, keep_default_na=False, na_values=[""])
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ProfileImportError(source, None, None, f"cannot read file: {exc}") from exc


def _parse_extra(values: pd.Series, source: str) -> list[dict[str, Any] | None]:
    parsed: list[dict[str, Any] | None] = []
    for row, value in enumerate(values, start=1):
        if is_missing(value):
            parsed.append(None)
        elif isinstance(value, dict):
            parsed.append(value)
        else:
            try:
                obj = json.loads(value)
            except (TypeError, json.JSONDecodeError) as exc:
                raise ProfileImportError(
                    source, row, "extra", f"not a JSON object ({exc}; got {value!r})"
                ) from None
            if not isinstance(obj, dict):
                raise ProfileImportError(source, row, "extra", f"not a JSON object (got {value!r})")
            parsed.append(obj)
    return parsed


class NativeImporter(BaseImporter):
    """Native-schema CSV or Parquet (columns named as ``NATIVE_COLUMNS``).

    Example:
        >>> NativeImporter().name
        'native'
    """

    name = "native"
    description = "native profile schema as CSV or Parquet (columns = NATIVE_COLUMNS)"
    overridable = frozenset(OVERRIDE_FIELDS)

    def can_read(self, path: Path) -> bool:
        """True for a CSV or Parquet file with ``model``, ``gpu``, ``ttft_ms``, ``tpot_ms``."""
        try:
            return set(_columns(Path(path))) >= _SIGNATURE
        except (OSError, UnicodeDecodeError, csv.Error, ValueError):
            return False

    def read(self, path: str | os.PathLike[str], /, **overrides: Any) -> pd.DataFrame:
        """Read and validate the file.

        Overrides fill a column the file does not have (the same value on every row); an
        override for a column the file has is an error.
        """
        path = Path(path)
        given = self._overrides(overrides)
        source = str(given.pop("source", None) or path.name)
        frame = _read_table(path, source)
        check_columns([str(c) for c in frame.columns], source, provided=[*given, "source"])
        for field, value in given.items():
            if field in frame.columns:
                raise ProfileImportError(
                    source,
                    None,
                    field,
                    f"the file has a {field!r} column and {option_for(field)} was given; "
                    "drop one of them",
                )
            frame[field] = value
        if "source" not in frame.columns:
            frame["source"] = source
        if "extra" in frame.columns:
            frame["extra"] = _parse_extra(frame["extra"], source)
        return validate_profiles(frame, source)


def write_native(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a validated profile frame as native CSV or Parquet, chosen by the file suffix.

    Args:
        frame: a frame with the native columns (as :func:`validate_profiles` returns;
            ``run_key`` is written when present).
        path: ``*.csv``, ``*.parquet`` or ``*.pq``.

    Returns:
        The path written.

    Raises:
        InvalidInputError: an unsupported suffix.

    Example:
        >>> from optimizer.profiles import load_reference_profiles
        >>> import tempfile, pathlib
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "runs.parquet"
        >>> _ = write_native(load_reference_profiles().head(3), out)
        >>> len(NativeImporter().read(out))
        3
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in NATIVE_SUFFIXES:
        raise InvalidInputError("path", f"unsupported file type {suffix!r}", NATIVE_SUFFIXES)
    out = frame[[c for c in OUTPUT_COLUMNS if c in frame.columns]].copy()
    if "extra" in out.columns:
        out["extra"] = [
            None if is_missing(v) else json.dumps(v, sort_keys=True) for v in out["extra"]
        ]
    if suffix == ".csv":
        if "measured_at" in out.columns:
            stamps = pd.to_datetime(out["measured_at"], utc=True)
            out["measured_at"] = stamps.dt.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
        out.to_csv(path, index=False)
    else:
        out.to_parquet(path, index=False)
    return path
