"""Validation of a whole frame against the native schema: output shape, defaults, errors."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from optimizer.domain import NATIVE_COLUMNS
from optimizer.errors import ProfileImportError
from optimizer.profiles import OUTPUT_COLUMNS, validate_profiles


def test_output_has_exactly_the_native_columns_plus_run_key(native_frame):
    out = validate_profiles(native_frame, "t")
    assert tuple(out.columns) == (*NATIVE_COLUMNS, "run_key")
    assert tuple(out.columns) == OUTPUT_COLUMNS
    assert len(out) == 5
    assert list(out.index) == list(range(5))


def test_output_dtypes_are_fixed(native_frame):
    out = validate_profiles(native_frame, "t")
    assert out["tp"].dtype == "int64"
    assert str(out["concurrency"].dtype) == "Int64"
    assert out["ttft_ms"].dtype == "float64"
    assert out["engine"].dtype == object
    assert all(type(v) is str for v in out["engine"])  # enum values, not enum members
    assert str(out["measured_at"].dtype) == "datetime64[us, UTC]"


def test_absent_optional_columns_and_empty_cells_take_schema_defaults(native_row):
    frame = pd.DataFrame([native_row(pp=None, spec_method=float("nan")), native_row(pp=2)])
    out = validate_profiles(frame, "t")
    assert out["pp"].tolist() == [1, 2]
    assert out["spec_method"].tolist() == ["none", "none"]
    assert out["dp"].tolist() == [1, 1]
    assert out["mode"].tolist() == ["agg", "agg"]
    assert math.isnan(out.loc[0, "request_rate"])
    assert out.loc[0, "kv_cache_dtype"] is None


def test_bad_enum_in_row_three_names_row_field_and_allowed_values(native_frame):
    native_frame.loc[2, "engine"] = "tensorrt"
    with pytest.raises(ProfileImportError) as info:
        validate_profiles(native_frame, "runs.csv")
    err = info.value
    assert (err.source, err.row, err.field) == ("runs.csv", 3, "engine")
    for allowed in ("'vllm'", "'sglang'", "'trtllm'", "'tensorrt'"):
        assert allowed in err.reason
    assert str(err).startswith("runs.csv: row 3: field 'engine': ")


def test_tp_zero_names_row_and_bound(native_frame):
    native_frame.loc[3, "tp"] = 0
    with pytest.raises(ProfileImportError) as info:
        validate_profiles(native_frame, "t")
    assert (info.value.row, info.value.field) == (4, "tp")
    assert "greater than or equal to 1" in info.value.reason


def test_row_numbers_can_be_given_by_the_importer(native_frame):
    native_frame.loc[1, "quantization"] = "int3"
    with pytest.raises(ProfileImportError) as info:
        validate_profiles(native_frame, "t", rows=[10, 12, 14, 16, 18])
    assert (info.value.row, info.value.field) == (12, "quantization")
    assert "'nvfp4'" in info.value.reason


def test_model_level_rule_names_the_field(native_row):
    frame = pd.DataFrame([native_row(concurrency=None)])
    with pytest.raises(ProfileImportError) as info:
        validate_profiles(frame, "t")
    assert info.value.field == "concurrency"
    assert "request_rate" in info.value.reason


def test_required_value_missing_in_a_row(native_row):
    frame = pd.DataFrame([native_row(), native_row(gpu=None)])
    with pytest.raises(ProfileImportError) as info:
        validate_profiles(frame, "t")
    assert (info.value.row, info.value.field) == (2, "gpu")


def test_unknown_and_missing_columns_are_named(native_frame):
    with pytest.raises(ProfileImportError) as info:
        validate_profiles(native_frame.assign(colour="red", size=1), "t")
    assert info.value.row is None
    assert "'colour'" in info.value.reason and "'size'" in info.value.reason
    with pytest.raises(ProfileImportError) as info:
        validate_profiles(native_frame.drop(columns=["isl", "ttft_ms"]), "t")
    assert info.value.field == "isl, ttft_ms"


def test_given_run_key_column_is_recomputed(native_frame):
    out = validate_profiles(native_frame.assign(run_key="bogus"), "t")
    assert (out["run_key"] != "bogus").all()
    assert out["run_key"].str.fullmatch(r"[0-9a-f]{64}").all()


def test_empty_frame_gives_empty_output():
    out = validate_profiles(pd.DataFrame(columns=list(NATIVE_COLUMNS)), "t")
    assert len(out) == 0
    assert tuple(out.columns) == OUTPUT_COLUMNS
