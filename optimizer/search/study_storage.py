"""Where optuna studies live: in epopt's own database, so an interrupted search
resumes by study name and ``optuna-dashboard <database URL>`` can open it.

optuna's RDB storage adds its tables (``studies``, ``trials``, ...) and keeps its
schema revision in Alembic's default ``alembic_version`` table; epopt keeps its own in
``epopt_alembic_version`` (:data:`optimizer.storage.database.VERSION_TABLE`), so the two
schemas live side by side. An in-memory SQLite database gets optuna's in-memory storage
(nothing persists).

Example:
    >>> study_storage_url("sqlite:////data/epopt.sqlite3")
    'sqlite:////data/epopt.sqlite3'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optimizer.errors import StorageError

if TYPE_CHECKING:
    from optuna.storages import BaseStorage

__all__ = ["open_study_storage", "study_storage_url"]


def study_storage_url(database_url: str) -> str | None:
    """The study storage that goes with an epopt database URL (``None``: in memory).

    Raises:
        InvalidInputError: a database backend epopt does not support.
    """
    from optimizer.storage.database import normalize_url

    url = normalize_url(database_url)
    if url.get_backend_name() == "sqlite" and (not url.database or url.database == ":memory:"):
        return None
    return url.render_as_string(hide_password=False)


def open_study_storage(database_url: str) -> BaseStorage | None:
    """optuna storage for studies that go with ``database_url`` (see module docstring).

    Raises:
        StorageError: the database cannot be reached or optuna refuses its schema.
    """
    import optuna
    import sqlalchemy as sa

    url = study_storage_url(database_url)
    if url is None:
        return None
    try:
        return optuna.storages.RDBStorage(url)
    except (sa.exc.SQLAlchemyError, RuntimeError) as exc:
        raise StorageError(f"opening the study storage: {exc}") from exc
