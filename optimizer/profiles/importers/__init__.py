"""Profile importers: one :class:`BaseImporter` subclass per file format, and a registry.

::

    BaseImporter                 name, can_read(path), read(path, **overrides)
    ├── AIConfiguratorImporter   "aiconfigurator": aiconfigurator silicon_sample.csv
    ├── VllmBenchImporter        "vllm-bench": vllm bench serve --save-result JSON / JSONL
    └── NativeImporter           "native": the native schema as CSV or Parquet
"""

from __future__ import annotations

from optimizer.profiles.importers.aiconfigurator import AIConfiguratorImporter
from optimizer.profiles.importers.base import OVERRIDE_FIELDS, BaseImporter, option_for
from optimizer.profiles.importers.native import NativeImporter, write_native
from optimizer.profiles.importers.registry import (
    IMPORTERS,
    detect_importer,
    get_importer,
    importer_names,
    resolve_importer,
)
from optimizer.profiles.importers.vllm_bench import VllmBenchImporter

__all__ = [
    "IMPORTERS",
    "OVERRIDE_FIELDS",
    "AIConfiguratorImporter",
    "BaseImporter",
    "NativeImporter",
    "VllmBenchImporter",
    "detect_importer",
    "get_importer",
    "importer_names",
    "option_for",
    "resolve_importer",
    "write_native",
]
