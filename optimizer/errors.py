"""The one exception tree of epopt.

::

    EpoptError                     base of everything epopt raises on purpose
    ├── InvalidInputError          a value a user gave is not allowed (field, allowed values)
    ├── NotFoundError              an id that no catalog knows (model, GPU, engine, ...)
    ├── UnsupportedModelError      a model config that epopt cannot model ("unsupported: <reason>")
    ├── SearchSpaceError           a broken search-space YAML (names file, knob and problem)
    ├── ProfileImportError         a bad row in a profile file (names row, field and reason)
    └── StorageError               the database could not do what was asked

Third-party errors (pydantic, SQLAlchemy, YAML) are converted at the boundary that
calls them, with ``raise ... from exc``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "EpoptError",
    "InvalidInputError",
    "NotFoundError",
    "ProfileImportError",
    "SearchSpaceError",
    "StorageError",
    "UnsupportedModelError",
    "format_validation_error",
]


class EpoptError(Exception):
    """Base class of every error epopt raises on purpose."""


class InvalidInputError(EpoptError, ValueError):
    """A value given by the user is not allowed.

    Attributes:
        field: dotted name of the offending field.
        allowed: description of the allowed values, when known.
    """

    def __init__(self, field: str, message: str, allowed: Iterable[Any] | str | None = None):
        self.field = field
        self.allowed = allowed
        text = f"{field}: {message}"
        if allowed is not None:
            allowed_text = allowed if isinstance(allowed, str) else ", ".join(map(str, allowed))
            text += f" (allowed: {allowed_text})"
        super().__init__(text)


class NotFoundError(EpoptError, LookupError):
    """An identifier that no catalog knows."""

    def __init__(self, kind: str, name: str, known: Iterable[str] | None = None):
        self.kind = kind
        self.name = name
        text = f"unknown {kind} {name!r}"
        if known is not None:
            known = sorted(known)
            shown = ", ".join(known[:40]) + (" ..." if len(known) > 40 else "")
            text += f"; known: {shown}"
        super().__init__(text)


class UnsupportedModelError(EpoptError):
    """A model configuration that epopt cannot model faithfully."""

    def __init__(self, model: str, reason: str):
        self.model = model
        self.reason = reason
        super().__init__(f"{model}: unsupported: {reason}")


class SearchSpaceError(EpoptError):
    """A search-space file that is malformed."""

    def __init__(self, file: str, knob: str | None, problem: str):
        self.file = file
        self.knob = knob
        self.problem = problem
        where = f"{file}: knob {knob!r}" if knob else file
        super().__init__(f"{where}: {problem}")


class ProfileImportError(EpoptError):
    """A profile file that cannot be imported; nothing was written."""

    def __init__(self, source: str, row: int | None, field: str | None, reason: str):
        self.source = source
        self.row = row
        self.field = field
        self.reason = reason
        parts = [source]
        if row is not None:
            parts.append(f"row {row}")
        if field is not None:
            parts.append(f"field {field!r}")
        super().__init__(": ".join(parts) + f": {reason}")


class StorageError(EpoptError):
    """The database refused or failed an operation."""


def format_validation_error(exc: Any) -> str:
    """Render a pydantic ``ValidationError`` as ``field: message`` lines.

    Pydantic's messages already list the allowed values for enums and literals
    ("Input should be 'vllm', 'sglang' or 'trtllm'"); this keeps them and drops the
    URL noise.
    """
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ())) or "<root>"
        lines.append(f"{loc}: {err.get('msg', 'invalid value')}")
    return "; ".join(lines)
