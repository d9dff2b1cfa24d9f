"""The importer extension point: one small base class, one subclass per file format."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from optimizer.errors import InvalidInputError

__all__ = ["OVERRIDE_FIELDS", "BaseImporter", "option_for"]

OVERRIDE_FIELDS: tuple[str, ...] = (
    "model",
    "gpu",
    "engine",
    "engine_version",
    "mode",
    "quantization",
    "kv_cache_dtype",
    "tp",
    "pp",
    "dp",
    "ep",
    "max_batch_size",
    "spec_method",
    "spec_draft_len",
    "kv_block_size",
    "source",
)
"""Native fields a caller can supply for a whole file; each has an ``epopt profiles import``
option of the same name (see :func:`option_for`). Importers accept a subset."""


def option_for(field: str) -> str:
    """The ``epopt profiles import`` option that supplies a native field (``tp`` -> ``--tp``)."""
    return "--" + field.replace("_", "-")


class BaseImporter(ABC):
    """Reads one file format into the native profile schema.

    Subclasses set :attr:`name` (what ``--format`` accepts), :attr:`description` and
    :attr:`overridable`, and implement :meth:`can_read` (keyed on the file's content and
    field names, never on a tool version) and :meth:`read`.

    Example:
        >>> from optimizer.profiles.importers import get_importer
        >>> get_importer("native").name
        'native'
    """

    name: ClassVar[str]
    """Format name, as ``--format`` spells it."""
    description: ClassVar[str]
    """One line for ``--help`` and error messages."""
    overridable: ClassVar[frozenset[str]] = frozenset()
    """Native fields a caller may supply for every row (``read(path, gpu="h100_sxm")``)."""

    @abstractmethod
    def can_read(self, path: Path) -> bool:
        """Whether ``path`` looks like this format (cheap: header or first record only)."""

    @abstractmethod
    def read(self, path: str | os.PathLike[str], /, **overrides: Any) -> pd.DataFrame:
        """Read, map and validate the whole file.

        Args:
            path: the file.
            **overrides: values of native fields (names in :attr:`overridable`) for fields
                the file does not carry; ``None`` values are ignored.

        Returns:
            A frame with exactly ``NATIVE_COLUMNS`` + ``run_key`` (see
            :func:`optimizer.profiles.validate_profiles`).

        Raises:
            ProfileImportError: the file, or its first bad row, cannot be imported.
            InvalidInputError: an override this format does not accept.
        """

    def _overrides(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """The given overrides without ``None`` values; unknown names are rejected."""
        given = {k: v for k, v in overrides.items() if v is not None}
        for field in given:
            if field not in self.overridable:
                raise InvalidInputError(
                    field,
                    f"cannot be set for {self.name} files",
                    sorted(self.overridable) or "nothing: the file carries every field",
                )
        return given

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
