"""Which importer reads a file: by content (``auto``) or by format name, chosen at the edge."""

from __future__ import annotations

import os
from pathlib import Path

from optimizer.errors import InvalidInputError, ProfileImportError
from optimizer.profiles.importers.aiconfigurator import AIConfiguratorImporter
from optimizer.profiles.importers.base import BaseImporter
from optimizer.profiles.importers.native import NativeImporter
from optimizer.profiles.importers.vllm_bench import VllmBenchImporter

__all__ = ["IMPORTERS", "detect_importer", "get_importer", "importer_names", "resolve_importer"]

IMPORTERS: tuple[BaseImporter, ...] = (
    AIConfiguratorImporter(),
    VllmBenchImporter(),
    NativeImporter(),
)
"""Every importer, in the order ``auto`` tries them."""


def importer_names() -> list[str]:
    """Format names, as ``--format`` accepts them (plus ``auto``)."""
    return [importer.name for importer in IMPORTERS]


def get_importer(name: str) -> BaseImporter:
    """The importer for a format name.

    Raises:
        InvalidInputError: an unknown name (the message lists the known ones).
    """
    for importer in IMPORTERS:
        if importer.name == name:
            return importer
    raise InvalidInputError("format", f"unknown format {name!r}", ["auto", *importer_names()])


def detect_importer(path: str | os.PathLike[str]) -> BaseImporter:
    """The first importer whose :meth:`~BaseImporter.can_read` accepts the file.

    Raises:
        ProfileImportError: the file does not exist, or no importer recognises it.
    """
    path = Path(path)
    if not path.is_file():
        raise ProfileImportError(str(path), None, None, "no such file")
    for importer in IMPORTERS:
        if importer.can_read(path):
            return importer
    known = "; ".join(f"{i.name}: {i.description}" for i in IMPORTERS)
    raise ProfileImportError(
        path.name, None, None, f"unrecognised file format (known formats: {known}); pass --format"
    )


def resolve_importer(spec: BaseImporter | str | None, path: str | os.PathLike[str]) -> BaseImporter:
    """An importer object from ``None``/``"auto"`` (detect), a format name, or an importer."""
    if isinstance(spec, BaseImporter):
        return spec
    if spec is None or spec == "auto":
        return detect_importer(path)
    return get_importer(spec)
