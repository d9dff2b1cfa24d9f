"""Where optuna studies live: beside epopt's data, so a search resumes and
``optuna-dashboard`` can open it.

optuna's RDB storage keeps its schema revision in an Alembic table named
``alembic_version`` -- the same name epopt's own migrations use -- so the two cannot
share one SQL schema: each would read the other's revision and refuse to start
(optuna raises "no longer compatible with the table schema"). Studies therefore go
to the same *database server and file location* under a separate namespace:

* SQLite ``sqlite:///path/epopt.sqlite3`` -> ``sqlite:///path/epopt.studies.sqlite3``
  (a file beside it);
* PostgreSQL -> the same database, schema ``epopt_studies`` (created on first use);
* an in-memory SQLite database -> optuna's in-memory storage (nothing persists).

Open a study store with :func:`open_study_storage`; inspect it with
``optuna-dashboard <study storage URL>`` (:func:`study_storage_url` gives it).

Example:
    >>> study_storage_url("sqlite:////data/epopt.sqlite3")
    'sqlite:////data/epopt.studies.sqlite3'
"""

from __future__ import annotations

from pathlib import PurePath
from typing import TYPE_CHECKING

from optimizer.errors import StorageError

if TYPE_CHECKING:
    from optuna.storages import BaseStorage

__all__ = ["STUDY_SCHEMA", "open_study_storage", "study_storage_url"]

STUDY_SCHEMA = "epopt_studies"
"""PostgreSQL schema that holds optuna's tables."""


def study_storage_url(database_url: str) -> str | None:
    """The study storage that goes with an epopt database URL (``None``: in memory).

    Raises:
        InvalidInputError: a database backend epopt does not support.
    """
    from optimizer.storage.database import normalize_url

    url = normalize_url(database_url)
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            return None
        path = PurePath(url.database)
        return str(url.set(database=str(path.with_name(f"{path.stem}.studies{path.suffix}"))))
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
    engine_kwargs: dict[str, object] = {}
    if url.startswith("postgresql"):
        try:
            engine = sa.create_engine(url)
            with engine.begin() as connection:
                connection.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {STUDY_SCHEMA}"))
            engine.dispose()
        except sa.exc.SQLAlchemyError as exc:
            raise StorageError(f"creating schema {STUDY_SCHEMA}: {exc}") from exc
        engine_kwargs["connect_args"] = {"options": f"-csearch_path={STUDY_SCHEMA}"}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except (sa.exc.SQLAlchemyError, RuntimeError) as exc:
        raise StorageError(f"opening the study storage: {exc}") from exc
