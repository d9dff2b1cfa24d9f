"""Read a profile file (or the bundled reference set) and store its runs, all or nothing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pandas as pd

from optimizer.errors import InvalidInputError, ProfileImportError
from optimizer.profiles.importers.aiconfigurator import bundled_silicon_source
from optimizer.profiles.importers.base import BaseImporter
from optimizer.profiles.importers.registry import resolve_importer
from optimizer.profiles.reference import load_reference_profiles

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from optimizer.storage.profile_store import InsertResult

__all__ = ["REFERENCE", "ProfileSource", "import_profiles", "read_profiles", "source_label"]


class _Reference:
    """Type of :data:`REFERENCE`."""

    _instance: _Reference | None = None

    def __new__(cls) -> _Reference:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "REFERENCE"


REFERENCE: Final = _Reference()
"""Stands for the bundled reference runs wherever a profile file is expected."""

ProfileSource = str | os.PathLike[str] | _Reference
"""A profile file path, or :data:`REFERENCE`."""


def source_label(source: ProfileSource) -> str:
    """How a source is named in provenance and import batches (file name or package file)."""
    if isinstance(source, _Reference):
        return bundled_silicon_source()
    return Path(source).name


def read_profiles(
    source: ProfileSource, /, *, importer: BaseImporter | str | None = None, **overrides: Any
) -> pd.DataFrame:
    """Read and validate a whole profile file; nothing is stored.

    Args:
        source: a file path, or :data:`REFERENCE` for the bundled runs.
        importer: ``None`` or ``"auto"`` (detect from content), a format name
            (``aiconfigurator``, ``vllm-bench``, ``native``) or an importer object.
        **overrides: native fields the file lacks (``gpu="h100_sxm"``, ``tp=2`` ...);
            ``None`` values are ignored.

    Returns:
        ``NATIVE_COLUMNS`` + ``run_key``, one row per run.

    Raises:
        ProfileImportError: missing or unrecognised file, or a bad row (named).
        InvalidInputError: an unknown format name or an override the format does not take.

    Example:
        >>> len(read_profiles(REFERENCE))
        5221
    """
    if isinstance(source, _Reference):
        given = {k: v for k, v in overrides.items() if v is not None}
        if given:
            raise InvalidInputError(
                next(iter(given)), "cannot be set for the reference runs", "nothing"
            )
        return load_reference_profiles()
    path = Path(source)
    if not path.is_file():
        raise ProfileImportError(str(path), None, None, "no such file")
    return resolve_importer(importer, path).read(path, **overrides)


def import_profiles(
    source: ProfileSource,
    db_engine: Engine,
    /,
    *,
    importer: BaseImporter | str | None = None,
    import_batch: str | None = None,
    **overrides: Any,
) -> InsertResult:
    """Read and validate the whole file, then insert its runs; idempotent on ``run_key``.

    A bad row raises before anything is written; the insert itself is all-or-nothing.

    Args:
        source: a file path, or :data:`REFERENCE` for the bundled runs.
        db_engine: a SQLAlchemy engine on a database at the newest schema
            (:func:`optimizer.storage.database.open_database`).
        importer: as for :func:`read_profiles`.
        import_batch: id recorded with the inserted rows (at most 64 characters); a fresh
            random id by default (the result carries it).
        **overrides: as for :func:`read_profiles` (``engine="vllm"`` is the *serving*
            engine; the database engine is the positional ``db_engine``).

    Returns:
        ``InsertResult(added, skipped)``: ``skipped`` counts runs already stored.

    Example:
        >>> from optimizer.storage.database import open_database
        >>> db = open_database("sqlite:///:memory:", auto_upgrade=True)
        >>> import_profiles(REFERENCE, db).added
        5221
        >>> import_profiles(REFERENCE, db).skipped
        5221
    """
    from optimizer.storage.profile_store import insert_profile_runs

    runs = read_profiles(source, importer=importer, **overrides)
    return insert_profile_runs(db_engine, runs, import_batch=import_batch)
