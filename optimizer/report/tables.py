"""The full candidate table as a file: CSV or Parquet, chosen by the file suffix.

Writes go to a temporary file beside the target and are renamed into place, so a reader
never sees half a table. Enum values (``Engine.VLLM``) are written as their strings.
"""

from __future__ import annotations

import os
import tempfile
from enum import Enum
from pathlib import Path

import pandas as pd

from optimizer.errors import InvalidInputError

__all__ = ["TABLE_SUFFIXES", "read_candidates", "write_candidates"]

TABLE_SUFFIXES: dict[str, str] = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
"""File suffixes and the format each one writes."""


def _format(path: Path) -> str:
    fmt = TABLE_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise InvalidInputError(
            "path", f"unsupported table file type {path.suffix!r}", allowed=list(TABLE_SUFFIXES)
        )
    return fmt


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Enum members become their values; column names become strings."""
    out = frame.copy()
    out.columns = [str(c) for c in out.columns]
    for column in out.columns:
        series = out[column]
        if series.dtype == object and series.map(lambda v: isinstance(v, Enum)).any():
            out[column] = series.map(lambda v: v.value if isinstance(v, Enum) else v)
    return out


def _default_index(frame: pd.DataFrame) -> bool:
    index = frame.index
    return (
        isinstance(index, pd.RangeIndex)
        and index.start == 0
        and index.step == 1
        and index.name is None
    )


def write_candidates(frame: pd.DataFrame, path: Path | str) -> Path:
    """Write the candidate table to ``path``: ``.csv`` or ``.parquet``/``.pq``.

    A default ``RangeIndex`` is not written; any other index (e.g. a named candidate id)
    is written as columns.

    Args:
        frame: one row per candidate, any columns.
        path: output file; its folder is created if needed.

    Returns:
        ``path``.

    Raises:
        InvalidInputError: an unsupported suffix (names the allowed ones), or a column
            that Parquet cannot store (names the error).

    Example:
        >>> write_candidates(pd.DataFrame({"tp": [1, 2]}), "candidates.csv")  # doctest: +SKIP
        PosixPath('candidates.csv')
    """
    path = Path(path)
    fmt = _format(path)
    table = _plain(frame)
    if not _default_index(table):
        table = table.reset_index()
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        if fmt == "csv":
            table.to_csv(temporary, index=False)
        else:
            try:
                table.to_parquet(temporary, index=False)
            except (TypeError, ValueError) as exc:  # pyarrow's errors subclass these
                raise InvalidInputError("frame", f"cannot be stored as Parquet: {exc}") from exc
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def read_candidates(path: Path | str) -> pd.DataFrame:
    """Read a table written by ``write_candidates``.

    Raises:
        InvalidInputError: an unsupported suffix, or a file that does not exist.
    """
    path = Path(path)
    fmt = _format(path)
    if not path.is_file():
        raise InvalidInputError("path", f"{path} does not exist")
    return pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
