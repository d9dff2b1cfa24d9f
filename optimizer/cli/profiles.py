"""`epopt profiles` subcommands."""

from __future__ import annotations

import typer

__all__ = ["app"]

app = typer.Typer(help="profiles", no_args_is_help=True)
