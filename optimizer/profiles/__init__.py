"""Measured profile runs: native-schema validation, importers, the reference set, ingestion.

Example:
    >>> from optimizer.profiles import load_reference_profiles
    >>> runs = load_reference_profiles()
    >>> runs.loc[0, "source"]
    'aiconfigurator-core==0.12.0:systems/silicon_sample.csv'
"""

from __future__ import annotations

from optimizer.profiles.columns import OUTPUT_COLUMNS
from optimizer.profiles.importers import (
    BaseImporter,
    detect_importer,
    get_importer,
    importer_names,
    write_native,
)
from optimizer.profiles.ingest import REFERENCE, import_profiles, read_profiles
from optimizer.profiles.reference import load_reference_profiles
from optimizer.profiles.run_key import RUN_KEY_FIELDS, compute_run_keys, run_key
from optimizer.profiles.schema import validate_profiles

__all__ = [
    "OUTPUT_COLUMNS",
    "REFERENCE",
    "RUN_KEY_FIELDS",
    "BaseImporter",
    "compute_run_keys",
    "detect_importer",
    "get_importer",
    "import_profiles",
    "importer_names",
    "load_reference_profiles",
    "read_profiles",
    "run_key",
    "validate_profiles",
    "write_native",
]
