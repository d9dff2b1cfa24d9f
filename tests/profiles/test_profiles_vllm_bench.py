"""vllm bench serve results: exact field mapping (ms), metadata vs overrides, clear errors."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from optimizer.errors import InvalidInputError, ProfileImportError
from optimizer.profiles import read_profiles
from optimizer.profiles.importers import VllmBenchImporter


def _result(vllm_json, **changes):
    result = json.loads(vllm_json.read_text())
    result.update(changes)
    return {k: v for k, v in result.items() if v is not ...}


def _write(tmp_path, *results, name="bench.json"):
    path = tmp_path / name
    if len(results) == 1 and name.endswith(".json"):
        path.write_text(json.dumps(results[0]))
    else:
        path.write_text("\n".join(json.dumps(r) for r in results))
    return path


def test_save_result_file_maps_exactly(vllm_json):
    runs = VllmBenchImporter().read(vllm_json)
    assert len(runs) == 1
    row = runs.iloc[0]
    expected = {
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "gpu": "h100_sxm",
        "engine": "vllm",
        "engine_version": "0.11.0",
        "mode": "agg",
        "quantization": "bf16",
        "tp": 1,
        "pp": 1,
        "dp": 1,
        "ep": 1,
        "concurrency": 64,
        "isl": 1024,
        "osl": 128,
        "spec_method": "none",
        "spec_draft_len": 0,
        "ttft_ms": 182.417,
        "tpot_ms": 14.205,
        "ttft_p50_ms": 169.648,
        "ttft_p90_ms": 238.966,
        "ttft_p99_ms": 373.955,
        "tpot_p50_ms": 13.211,
        "tpot_p90_ms": 18.609,
        "tpot_p99_ms": 29.12,
        "e2e_p50_ms": 1847.4,
        "e2e_p90_ms": 2602.252,
        "e2e_p99_ms": 4072.227,
        "output_tok_s": 4123.936,
        "request_per_s": 32.2182,
        "source": "example_vllm_bench_llama-3.1-8b_h100_c64.json",
        "measured_at": pd.Timestamp("2025-03-12T14:15:02Z"),
    }
    assert {k: row[k] for k in expected} == expected
    assert math.isnan(row["request_rate"]) and math.isnan(row["ttft_p95_ms"])
    assert row["source_id"] is None
    extra = row["extra"]
    assert extra["mean_e2el_ms"] == 1986.452 and extra["p99_itl_ms"] == 28.829
    assert extra["completed"] == 640 and extra["backend"] == "vllm"
    assert "latencies" not in extra and "queue_times" not in extra
    assert extra["label"] == "epopt-example (synthetic numbers)"
    assert "p50_ttft_ms" not in extra  # the same statistic as median_ttft_ms, mapped
    assert "request_goodput" not in extra  # null values are dropped


def test_append_result_jsonl_with_overrides(vllm_jsonl, qwen_overrides):
    runs = read_profiles(vllm_jsonl, model="Qwen/Qwen3-32B", **qwen_overrides)
    assert len(runs) == 2
    open_loop, eagle = runs.iloc[0], runs.iloc[1]
    assert open_loop["request_rate"] == 8.0 and pd.isna(open_loop["concurrency"])
    assert (open_loop["isl"], open_loop["osl"]) == (2048, 256)
    assert eagle["concurrency"] == 32 and math.isnan(eagle["request_rate"])
    assert (eagle["spec_method"], eagle["spec_draft_len"]) == ("eagle3", 3)
    assert eagle["extra"]["spec_decode_acceptance_length"] == 2.86
    assert eagle["extra"]["spec_decode_per_position_acceptance_rates"] == [0.812, 0.617, 0.431]
    assert (runs["model"] == "Qwen/Qwen3-32B").all()
    assert (runs["gpu"] == "h100_sxm").all() and (runs["tp"] == 2).all()
    assert all(e["model_id"] == "/models/Qwen3-32B" for e in runs["extra"])


def test_missing_required_field_names_field_and_option(vllm_jsonl):
    with pytest.raises(ProfileImportError) as info:
        read_profiles(vllm_jsonl, gpu="h100_sxm", engine="vllm", quantization="fp8")
    err = info.value
    assert (err.row, err.field) == (1, "tp")
    assert "--tp" in err.reason and "--metadata tp=" in err.reason


@pytest.mark.parametrize(
    ("field", "value"),
    [("gpu", "h100_sxm"), ("engine", "vllm"), ("quantization", "bf16"), ("tp", 1)],
)
def test_each_required_deployment_field(vllm_json, tmp_path, field, value):
    path = _write(tmp_path, _result(vllm_json, **{field: ...}))
    with pytest.raises(ProfileImportError) as info:
        VllmBenchImporter().read(path)
    assert info.value.field == field
    assert f"--{field}" in info.value.reason
    assert VllmBenchImporter().read(path, **{field: value}).loc[0, field] == value


def test_override_that_contradicts_the_file_is_an_error(vllm_json):
    with pytest.raises(ProfileImportError) as info:
        VllmBenchImporter().read(vllm_json, tp=2)
    assert info.value.field == "tp"
    assert "'1'" in info.value.reason and "--tp" in info.value.reason
    assert len(VllmBenchImporter().read(vllm_json, tp=1, gpu="H100_SXM")) == 1  # agrees


def test_unknown_override_is_refused(vllm_json):
    with pytest.raises(InvalidInputError) as info:
        VllmBenchImporter().read(vllm_json, ttft_ms=1.0)
    assert info.value.field == "ttft_ms"
    assert "gpu" in str(info.value)


def test_invalid_metadata_value_lists_allowed_values(vllm_json, tmp_path):
    path = _write(tmp_path, _result(vllm_json, quantization="awq"))
    with pytest.raises(ProfileImportError) as info:
        VllmBenchImporter().read(path)
    assert (info.value.row, info.value.field) == (1, "quantization")
    assert "'int4_wo'" in info.value.reason


def test_spec_decode_counters_need_a_method(vllm_json, tmp_path):
    path = _write(
        tmp_path, _result(vllm_json, spec_decode_num_drafts=100, spec_decode_acceptance_length=2.1)
    )
    with pytest.raises(ProfileImportError) as info:
        VllmBenchImporter().read(path)
    assert info.value.field == "spec_method" and "--spec-method" in info.value.reason
    with pytest.raises(ProfileImportError) as info:
        VllmBenchImporter().read(path, spec_method="ngram")
    assert info.value.field == "spec_draft_len" and "--spec-draft-len" in info.value.reason
    runs = VllmBenchImporter().read(path, spec_method="ngram", spec_draft_len=4)
    assert (runs.loc[0, "spec_method"], runs.loc[0, "spec_draft_len"]) == ("ngram", 4)


def test_unbounded_burst_uses_num_prompts(vllm_json, tmp_path):
    path = _write(tmp_path, _result(vllm_json, max_concurrency=None))
    row = VllmBenchImporter().read(path).iloc[0]
    assert row["concurrency"] == 640
    assert row["extra"]["concurrency_from"] == "num_prompts"


def test_jsonl_errors_report_the_line_number(vllm_json, tmp_path):
    good = _result(vllm_json)
    bad = _result(vllm_json, engine="tensorrt")
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps(good) + "\n\n" + json.dumps(bad) + "\n")
    with pytest.raises(ProfileImportError) as info:
        VllmBenchImporter().read(path)
    assert (info.value.row, info.value.field) == (3, "engine")
    path.write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(ProfileImportError) as info:
        VllmBenchImporter().read(path)
    assert info.value.row == 2


def test_json_array_and_zero_completed(vllm_json, tmp_path):
    path = tmp_path / "runs.json"
    path.write_text(json.dumps([_result(vllm_json), _result(vllm_json, completed=0)]))
    with pytest.raises(ProfileImportError) as info:
        VllmBenchImporter().read(path)
    assert (info.value.row, info.value.field) == (2, "completed")


def test_can_read_keys_on_fields(vllm_json, vllm_jsonl, native_csv, tmp_path):
    importer = VllmBenchImporter()
    assert importer.can_read(vllm_json) and importer.can_read(vllm_jsonl)
    assert not importer.can_read(native_csv)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"model_id": "m", "throughput": 1}))
    assert not importer.can_read(other)
