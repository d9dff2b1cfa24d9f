"""The ``epopt`` command line. Subcommands live one per module; ``main`` wires them."""

from __future__ import annotations

__all__: list[str] = []
