"""The ``--url`` option every database-backed command shares, and how it resolves.

The database is ``--url`` when given, else ``EPOPT_DATABASE_URL``, else the embedded
SQLite file in the user's data directory. SQLAlchemy is imported only when a command
opens the database, so ``epopt --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["UrlOption", "database_url", "open_engine"]

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="Database URL, e.g. sqlite:///epopt.sqlite3 or "
        "postgresql+psycopg://user:password@host:5432/db "
        "[default: EPOPT_DATABASE_URL, else a SQLite file in the user data directory]",
        show_default=False,
    ),
]


def database_url(url: str | None) -> str:
    """``url`` if given, else the configured database."""
    if url:
        return url
    from optimizer.settings import Settings

    return Settings().database_url


def open_engine(url: str | None, *, migrate: bool) -> sa.Engine:
    """Open the database; ``migrate`` brings it to head first (else a stale one is refused,
    except the embedded default, which always upgrades itself)."""
    from optimizer.storage.database import open_database

    return open_database(database_url(url), auto_upgrade=True if migrate else None)
