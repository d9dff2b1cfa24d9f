"""`epopt space`: count candidate and feasible configurations."""

from __future__ import annotations

__all__ = ["space_command"]


def space_command() -> None:
    """Show the search space."""
    raise NotImplementedError
