"""Native CSV / Parquet: columns checked by name, bad rows named, overrides fill gaps."""

from __future__ import annotations

import pandas as pd
import pytest

from optimizer.errors import InvalidInputError, ProfileImportError
from optimizer.profiles import OUTPUT_COLUMNS, read_profiles, write_native
from optimizer.profiles.importers import NativeImporter


def test_csv_and_parquet_samples_hold_the_same_runs(native_csv, native_parquet):
    from_csv = NativeImporter().read(native_csv)
    from_parquet = NativeImporter().read(native_parquet)
    assert len(from_csv) == 7
    assert tuple(from_csv.columns) == OUTPUT_COLUMNS
    pd.testing.assert_frame_equal(from_csv, from_parquet, check_exact=False, rtol=1e-12)
    assert from_csv["source"].nunique() == 3  # provenance of each row survives


def test_bad_row_three_names_row_field_and_allowed_values(native_frame, tmp_path):
    native_frame.loc[2, "engine"] = "tensorrt"
    path = tmp_path / "runs.csv"
    native_frame.to_csv(path, index=False)
    with pytest.raises(ProfileImportError) as info:
        NativeImporter().read(path)
    err = info.value
    assert (err.source, err.row, err.field) == ("runs.csv", 3, "engine")
    assert "'vllm', 'sglang' or 'trtllm'" in err.reason
    assert "row 3" in str(err)


def test_bad_tp_in_parquet(native_frame, tmp_path):
    native_frame.loc[2, "tp"] = 0
    path = tmp_path / "runs.parquet"
    native_frame.to_parquet(path)
    with pytest.raises(ProfileImportError) as info:
        NativeImporter().read(path)
    assert (info.value.row, info.value.field) == (3, "tp")


def test_unknown_columns_are_named(native_frame, tmp_path):
    path = tmp_path / "runs.csv"
    native_frame.assign(gpu_count=8, notes="x").to_csv(path, index=False)
    with pytest.raises(ProfileImportError) as info:
        NativeImporter().read(path)
    assert info.value.field == "gpu_count, notes"
    assert "'gpu_count'" in info.value.reason and "native columns are" in info.value.reason


def test_missing_required_columns_are_named_and_overrides_fill_them(native_frame, tmp_path):
    path = tmp_path / "runs.csv"
    native_frame.drop(columns=["gpu", "quantization", "source"]).to_csv(path, index=False)
    with pytest.raises(ProfileImportError) as info:
        NativeImporter().read(path)
    assert info.value.field == "gpu, quantization"
    runs = NativeImporter().read(path, gpu="b200_sxm", quantization="nvfp4")
    assert (runs["gpu"] == "b200_sxm").all() and (runs["quantization"] == "nvfp4").all()
    assert (runs["source"] == "runs.csv").all()  # no source column: the file name


def test_override_of_a_present_column_is_an_error(native_frame, tmp_path):
    path = tmp_path / "runs.csv"
    native_frame.to_csv(path, index=False)
    with pytest.raises(ProfileImportError) as info:
        NativeImporter().read(path, gpu="b200_sxm")
    assert info.value.field == "gpu" and "--gpu" in info.value.reason
    with pytest.raises(InvalidInputError):
        NativeImporter().read(path, extra={"a": 1})


def test_engine_version_text_is_not_turned_into_a_number(native_row, tmp_path):
    path = tmp_path / "runs.csv"
    pd.DataFrame([native_row(engine_version="0.10", source_id="007")]).to_csv(path, index=False)
    runs = NativeImporter().read(path)
    assert runs.loc[0, "engine_version"] == "0.10"
    assert runs.loc[0, "source_id"] == "007"


def test_bad_extra_json_names_the_row(native_frame, tmp_path):
    path = tmp_path / "runs.csv"
    native_frame.assign(extra=['{"a": 1}', None, "[1, 2]", None, None]).to_csv(path, index=False)
    with pytest.raises(ProfileImportError) as info:
        NativeImporter().read(path)
    assert (info.value.row, info.value.field) == (3, "extra")


def test_write_native_round_trip_and_suffix_check(native_frame, tmp_path):
    runs = read_profiles(write_native(native_frame, tmp_path / "a.csv"))
    again = read_profiles(write_native(runs, tmp_path / "b.parquet"))
    assert again["run_key"].tolist() == runs["run_key"].tolist()
    with pytest.raises(InvalidInputError):
        write_native(runs, tmp_path / "runs.xlsx")


def test_can_read(native_csv, native_parquet, vllm_json):
    importer = NativeImporter()
    assert importer.can_read(native_csv) and importer.can_read(native_parquet)
    assert not importer.can_read(vllm_json)
