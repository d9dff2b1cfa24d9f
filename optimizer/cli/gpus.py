"""`epopt gpus` subcommands."""

from __future__ import annotations

import typer

__all__ = ["app"]

app = typer.Typer(help="gpus", no_args_is_help=True)
