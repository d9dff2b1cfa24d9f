"""Choosing the importer: by content (auto) or by name at the edge."""

from __future__ import annotations

import pytest

from optimizer.errors import InvalidInputError, ProfileImportError
from optimizer.profiles import detect_importer, get_importer, importer_names, read_profiles
from optimizer.profiles.importers import (
    AIConfiguratorImporter,
    BaseImporter,
    NativeImporter,
    VllmBenchImporter,
    resolve_importer,
)
from optimizer.profiles.importers.aiconfigurator import bundled_silicon_csv


def test_names():
    assert importer_names() == ["aiconfigurator", "vllm-bench", "native"]
    assert all(isinstance(get_importer(n), BaseImporter) for n in importer_names())


def test_detection_by_content(vllm_json, vllm_jsonl, native_csv, native_parquet, tmp_path):
    assert isinstance(detect_importer(bundled_silicon_csv()), AIConfiguratorImporter)
    assert isinstance(detect_importer(vllm_json), VllmBenchImporter)
    assert isinstance(detect_importer(vllm_jsonl), VllmBenchImporter)
    assert isinstance(detect_importer(native_csv), NativeImporter)
    assert isinstance(detect_importer(native_parquet), NativeImporter)
    renamed = tmp_path / "results.txt"  # the name does not matter, the content does
    renamed.write_bytes(vllm_json.read_bytes())
    assert isinstance(detect_importer(renamed), VllmBenchImporter)


def test_unrecognised_and_missing_files(tmp_path):
    other = tmp_path / "notes.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(ProfileImportError) as info:
        detect_importer(other)
    assert "--format" in info.value.reason and "vllm-bench" in info.value.reason
    with pytest.raises(ProfileImportError) as info:
        read_profiles(tmp_path / "absent.json")
    assert "no such file" in str(info.value)


def test_unknown_format_name_lists_known_ones():
    with pytest.raises(InvalidInputError) as info:
        get_importer("genai-perf")
    assert info.value.field == "format"
    assert "auto, aiconfigurator, vllm-bench, native" in str(info.value)


def test_resolve(vllm_json):
    importer = NativeImporter()
    assert resolve_importer(importer, vllm_json) is importer
    assert isinstance(resolve_importer("auto", vllm_json), VllmBenchImporter)
    assert isinstance(resolve_importer(None, vllm_json), VllmBenchImporter)
    with pytest.raises(ProfileImportError):  # forced wrong format: the native reader refuses
        read_profiles(vllm_json, importer="native")
