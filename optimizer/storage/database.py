"""Connect to the database and keep its schema at the version this epopt expects.

Two backends, chosen by URL:

- **SQLite** (the embedded default, a file in the user's data directory):
  ``sqlite:///path/to/file.sqlite3`` (``~`` is expanded). The parent directory is created;
  foreign keys are enforced; transactions are real (``BEGIN`` is issued when SQLAlchemy
  begins one), so a failed import or migration leaves nothing behind. The default rollback
  journal is kept (no WAL files beside the database).
- **PostgreSQL**: ``postgresql+psycopg://user:password@host:port/dbname``; a plain
  ``postgresql://`` (or ``postgres://``) URL is taken to mean the psycopg 3 driver.

The schema is managed by Alembic. The migration scripts ship with epopt (the top-level
``storage/migrations`` folder, inside the wheel as ``optimizer/_bundled/storage``) and are
found without looking at the working directory. :func:`open_database` refuses a database
that is not at the newest revision and tells the user to run ``epopt db upgrade``; it
upgrades by itself only the embedded default SQLite file, which belongs to epopt alone.

Every SQLAlchemy or Alembic failure leaves this module as a :class:`StorageError`.

Example:
    >>> engine = open_database("sqlite:///:memory:", auto_upgrade=True)
    >>> current_revision(engine) == head_revision()
    True
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from optimizer.errors import StorageError
from optimizer.resources import bundled_dir

__all__ = [
    "SUPPORTED_BACKENDS",
    "VERSION_TABLE",
    "create_engine_for",
    "current_revision",
    "downgrade",
    "head_revision",
    "mask_url",
    "migrations_dir",
    "normalize_url",
    "open_database",
    "require_head",
    "storage_error",
    "table_row_counts",
    "upgrade",
]

SUPPORTED_BACKENDS: tuple[str, ...] = ("sqlite", "postgresql")
"""Database backends epopt is tested against."""

_POSTGRES_ALIASES = {"postgres", "postgresql", "postgresql+psycopg"}


def storage_error(action: str, exc: BaseException, outcome: str | None = None) -> StorageError:
    """A :class:`StorageError` for a failed database operation, with the driver's message.

    SQLAlchemy's own text repeats the statement and its parameters (thousands of rows for
    a bulk insert); the driver's message (``exc.orig``) says what went wrong.

    Args:
        action: what was being done, e.g. ``"import of 5221 runs"``.
        exc: the SQLAlchemy (or other) exception; chain it with ``raise ... from exc``.
        outcome: what it means for the data, e.g. ``"rolled back, nothing written"``.

    Example:
        >>> str(storage_error("counting runs", RuntimeError("disk I/O error")))
        'counting runs failed: disk I/O error'
    """
    reason = getattr(exc, "orig", None) or exc
    text = " ".join(str(reason).split()) or type(reason).__name__
    return StorageError(f"{action} failed: {text}" + (f"; {outcome}" if outcome else ""))


def normalize_url(url: str | URL) -> URL:
    """Parse a database URL and pick the driver epopt ships with.

    Args:
        url: a SQLAlchemy URL. ``postgresql://`` and ``postgres://`` become
            ``postgresql+psycopg://``.

    Returns:
        The parsed URL.

    Raises:
        StorageError: the URL cannot be parsed or names a backend other than SQLite or
            PostgreSQL.

    Example:
        >>> normalize_url("postgresql://u:p@127.0.0.1/db").drivername
        'postgresql+psycopg'
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StorageError(f"database URL {str(url)!r} is not a valid URL: {exc}") from exc
    if parsed.drivername in _POSTGRES_ALIASES:
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
        raise StorageError(
            f"database URL {mask_url(parsed)!r}: unsupported backend "
            f"{parsed.get_backend_name()!r} (allowed: sqlite, postgresql)"
        )
    return parsed


def mask_url(url: str | URL) -> str:
    """The URL as text with its password replaced by ``***`` (safe to print or log).

    Example:
        >>> mask_url("postgresql+psycopg://epopt:secret@127.0.0.1:5432/epopt")
        'postgresql+psycopg://epopt:***@127.0.0.1:5432/epopt'
    """
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def _sqlite_file(url: URL) -> str | None:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:") or url.query.get("mode"):
        return None
    return database


def _enable_sqlite_transactions_and_foreign_keys(engine: sa.Engine) -> None:
    # SQLAlchemy's documented recipe: stop pysqlite from managing transactions itself, so
    # that BEGIN covers every statement (DDL included) and a rollback really undoes all.
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN")


def create_engine_for(url: str | URL) -> sa.Engine:
    """A SQLAlchemy engine for a SQLite or PostgreSQL URL, ready for epopt.

    Nothing is connected yet, and the schema is not checked (see :func:`open_database`).
    JSON columns reject ``NaN`` and infinities on every backend (PostgreSQL would anyway).

    Args:
        url: ``sqlite:///file``, ``sqlite:///:memory:`` (one shared connection),
            ``postgresql+psycopg://...`` or ``postgresql://...``.

    Returns:
        The engine.

    Raises:
        StorageError: bad URL, unsupported backend, missing driver, or the SQLite file's
            directory cannot be created.

    Example:
        >>> create_engine_for("sqlite:///:memory:").dialect.name
        'sqlite'
    """
    parsed = normalize_url(url)
    options: dict[str, Any] = {
        "json_serializer": functools.partial(json.dumps, allow_nan=False),
    }
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_file(parsed)
        if path is not None and path.startswith("~"):
            path = str(Path(path).expanduser())
            parsed = parsed.set(database=path)
        if path is None:
            options["poolclass"] = StaticPool
            options["connect_args"] = {"check_same_thread": False}
        else:
            try:
                Path(path).resolve().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(
                    f"cannot create the directory of the SQLite database {path!r}: {exc}"
                ) from exc
    else:
        options["pool_pre_ping"] = True
    try:
        engine = sa.create_engine(parsed, **options)
    except (ArgumentError, ImportError) as exc:
        raise StorageError(f"cannot open database {mask_url(parsed)!r}: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        _enable_sqlite_transactions_and_foreign_keys(engine)
    return engine


def migrations_dir() -> str:
    """Path of the Alembic migration environment that ships with epopt."""
    return str(bundled_dir("storage") / "migrations")


VERSION_TABLE = "epopt_alembic_version"
"""Table holding epopt's schema revision. Not Alembic's default ``alembic_version``:
optuna's RDB storage keeps its own revision in that name, and studies share epopt's
database (``epopt recommend --search optuna``)."""

LEGACY_VERSION_TABLE = "alembic_version"
"""Where epopt databases created before the rename keep their revision."""


def _alembic_config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", migrations_dir())
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest schema revision this epopt knows."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise StorageError(f"no migrations found in {migrations_dir()}")
    return head


@contextmanager
def _engine(target: str | URL | sa.Engine) -> Iterator[sa.Engine]:
    if isinstance(target, sa.Engine):
        yield target
        return
    engine = create_engine_for(target)
    try:
        yield engine
    finally:
        engine.dispose()


def _where(engine: sa.Engine) -> str:
    return mask_url(engine.url)


def _migration_context(connection: sa.Connection) -> MigrationContext:
    return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})


def _legacy_revision(connection: sa.Connection) -> str | None:
    """epopt's revision in the pre-rename table, if that table holds one of epopt's
    revisions (another tool's ``alembic_version``, such as optuna's, is ignored)."""
    if LEGACY_VERSION_TABLE not in sa.inspect(connection).get_table_names():
        return None
    known = {
        rev.revision for rev in ScriptDirectory.from_config(_alembic_config()).walk_revisions()
    }
    rows = connection.execute(sa.text(f"SELECT version_num FROM {LEGACY_VERSION_TABLE}"))
    revisions = [r for (r,) in rows if r in known]
    return revisions[0] if revisions else None


def _adopt_legacy_revision(connection: sa.Connection) -> None:
    """Move epopt's revision from the pre-rename table into :data:`VERSION_TABLE`
    (once, inside the migration's transaction); drop the old table if that empties it."""
    if VERSION_TABLE in sa.inspect(connection).get_table_names():
        return
    revision = _legacy_revision(connection)
    if revision is None:
        return
    _migration_context(connection).stamp(ScriptDirectory.from_config(_alembic_config()), revision)
    connection.execute(
        sa.text(f"DELETE FROM {LEGACY_VERSION_TABLE} WHERE version_num = :r"), {"r": revision}
    )
    left = connection.execute(sa.text(f"SELECT COUNT(*) FROM {LEGACY_VERSION_TABLE}")).scalar()
    if not left:
        connection.execute(sa.text(f"DROP TABLE {LEGACY_VERSION_TABLE}"))


def current_revision(target: str | URL | sa.Engine) -> str | None:
    """The schema revision a database is at, or ``None`` when it has no epopt schema.

    Args:
        target: a database URL or an engine from :func:`create_engine_for`.

    Raises:
        StorageError: the database cannot be reached.
    """
    with _engine(target) as engine:
        try:
            with engine.connect() as connection:
                revision = _migration_context(connection).get_current_revision()
                return revision if revision is not None else _legacy_revision(connection)
        except SQLAlchemyError as exc:
            raise storage_error(f"reading the schema revision of {_where(engine)}", exc) from exc


def _migrate(target: str | URL | sa.Engine, action: str, revision: str) -> None:
    with _engine(target) as engine:
        try:
            with engine.begin() as connection:
                _adopt_legacy_revision(connection)
                config = _alembic_config(connection)
                if action == "upgrade":
                    command.upgrade(config, revision)
                else:
                    command.downgrade(config, revision)
        except CommandError as exc:
            raise StorageError(f"cannot {action} {_where(engine)} to {revision!r}: {exc}") from exc
        except SQLAlchemyError as exc:
            raise storage_error(
                f"{action} of {_where(engine)} to {revision!r}", exc, "rolled back"
            ) from exc


def upgrade(url: str | URL | sa.Engine, revision: str = "head") -> None:
    """Migrate a database forward to ``revision`` (default: the newest), in one transaction.

    An empty database gets the whole schema; one already at ``revision`` is left alone.

    Args:
        url: a database URL or an engine from :func:`create_engine_for`.
        revision: an Alembic revision id, ``"head"`` or a relative one like ``"+1"``.

    Raises:
        StorageError: unknown revision, unreachable database, or a failed migration
            (rolled back).
    """
    _migrate(url, "upgrade", revision)


def downgrade(url: str | URL | sa.Engine, revision: str) -> None:
    """Migrate a database back to ``revision`` (``"base"`` drops every epopt table).

    Args:
        url: a database URL or an engine from :func:`create_engine_for`.
        revision: an Alembic revision id, ``"base"`` or a relative one like ``"-1"``.

    Raises:
        StorageError: unknown revision, unreachable database, or a failed migration.
    """
    _migrate(url, "downgrade", revision)


def require_head(engine: sa.Engine) -> None:
    """Refuse a database whose schema is not the one this epopt was built for.

    Raises:
        StorageError: the database has no epopt schema, an older one (run
            ``epopt db upgrade``), or a revision this epopt does not know (written by a
            newer epopt).
    """
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    where = _where(engine)
    upgrade_hint = (
        "run `epopt db upgrade` (add `--url URL` for a database other than EPOPT_DATABASE_URL)"
    )
    if current is None:
        raise StorageError(f"database {where} has no epopt schema yet; {upgrade_hint}")
    known = {
        script.revision
        for script in ScriptDirectory.from_config(_alembic_config()).walk_revisions()
    }
    if current not in known:
        raise StorageError(
            f"database {where} is at schema revision {current!r}, which this epopt does not "
            f"know (newest known: {head!r}); it was written by a newer epopt: upgrade epopt"
        )
    raise StorageError(
        f"database {where} is at schema revision {current!r}, this epopt needs {head!r}; "
        f"{upgrade_hint}"
    )


def table_row_counts(engine: sa.Engine) -> dict[str, int]:
    """Rows in each epopt table, by table name (the database must be at head).

    Raises:
        StorageError: the database failed (for example, a table is missing).
    """
    from optimizer.storage.models import Base

    counts = {}
    try:
        with engine.connect() as connection:
            for table in Base.metadata.sorted_tables:
                query = sa.select(sa.func.count()).select_from(table)
                counts[table.name] = int(connection.execute(query).scalar_one())
    except SQLAlchemyError as exc:
        raise storage_error(f"counting rows in {_where(engine)}", exc) from exc
    return counts


def open_database(url: str | URL, *, auto_upgrade: bool | None = None) -> sa.Engine:
    """An engine on a database whose schema is at head, ready for the stores.

    Args:
        url: the database URL (usually ``Settings().database_url``).
        auto_upgrade: migrate to head instead of refusing. ``None`` (default) means: only
            for the embedded default SQLite file (``optimizer.settings.default_database_url``),
            which no other program shares; an explicitly configured database is never
            migrated behind its owner's back.

    Returns:
        The engine (dispose of it when done).

    Raises:
        StorageError: the database is unreachable or not at head (the message says to run
            ``epopt db upgrade``).
    """
    if auto_upgrade is None:
        from optimizer.settings import default_database_url

        auto_upgrade = normalize_url(url) == normalize_url(default_database_url())
    engine = create_engine_for(url)
    try:
        if auto_upgrade:
            upgrade(engine)
        else:
            require_head(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine
