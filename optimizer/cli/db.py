"""`epopt db`: create or migrate the database schema and show where it stands.

The database is ``--url`` when given, else ``EPOPT_DATABASE_URL``, else the embedded
SQLite file in the user's data directory. Passwords are never printed.
SQLAlchemy and Alembic are imported inside the commands, so ``epopt --help`` stays fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from optimizer.cli._database import UrlOption, database_url

__all__ = ["app", "current", "info", "upgrade"]

app = typer.Typer(
    help="Create or migrate the database schema (SQLite by default, PostgreSQL by URL).",
    no_args_is_help=True,
)


def _revision_text(revision: str | None, head: str) -> str:
    if revision is None:
        return "none (no epopt schema; run `epopt db upgrade`)"
    if revision == head:
        return f"{revision} (head)"
    return f"{revision} (head is {head}; run `epopt db upgrade`)"


@app.command()
def upgrade(
    url: UrlOption = None,
    revision: Annotated[str, typer.Option("--revision", help="Target schema revision.")] = "head",
) -> None:
    """Create the schema in an empty database, or migrate it to the newest revision."""
    from optimizer.storage import database

    engine = database.create_engine_for(database_url(url))
    try:
        before = database.current_revision(engine)
        database.upgrade(engine, revision)
        after = database.current_revision(engine)
    finally:
        engine.dispose()
    where = database.mask_url(engine.url)
    if before == after:
        typer.echo(f"{where}: already at revision {after}")
    else:
        typer.echo(f"{where}: upgraded from {before or 'empty'} to {after}")


@app.command()
def current(url: UrlOption = None) -> None:
    """Print the schema revision the database is at."""
    from optimizer.storage import database

    target = database_url(url)
    typer.echo(_revision_text(database.current_revision(target), database.head_revision()))


@app.command()
def info(url: UrlOption = None) -> None:
    """Print the database URL (password masked), its schema revision and row counts."""
    from optimizer.storage import database

    target = database_url(url)
    engine = database.create_engine_for(target)
    try:
        revision = database.current_revision(engine)
        head = database.head_revision()
        typer.echo(f"url: {database.mask_url(engine.url)}")
        typer.echo(f"backend: {engine.dialect.name}")
        typer.echo(f"revision: {_revision_text(revision, head)}")
        if revision == head:
            for table, rows in database.table_row_counts(engine).items():
                typer.echo(f"rows in {table}: {rows}")
    finally:
        engine.dispose()
