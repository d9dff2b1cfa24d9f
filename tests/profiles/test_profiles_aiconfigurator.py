"""The aiconfigurator silicon CSV: every row mapped, provenance kept, mapping rules hold."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from optimizer.domain import ProfileRun
from optimizer.errors import InvalidInputError, ProfileImportError
from optimizer.profiles import load_reference_profiles
from optimizer.profiles.importers.aiconfigurator import (
    AIConfiguratorImporter,
    bundled_silicon_csv,
    map_row,
    parse_data_source,
    squared_layout,
)


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    return load_reference_profiles()


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return pd.read_csv(bundled_silicon_csv(), dtype=str, keep_default_na=False, na_values=[""])


def _source_row(raw: pd.DataFrame, **changes: object) -> dict[str, object]:
    record = raw.iloc[0].to_dict()
    record.update(changes)
    return record


def test_every_row_is_imported(runs, raw):
    assert len(raw) == 5221
    assert len(runs) == 5221
    assert runs["mode"].value_counts().to_dict() == {"agg": 3619, "disagg": 1602}
    assert runs["source_id"].tolist() == raw["id"].tolist()


def test_every_row_passes_profile_run_validation(runs):
    records = runs.drop(columns=["run_key"]).to_dict("records")
    clean = [
        {k: (None if pd.isna(v) else v) for k, v in r.items() if k != "extra"} for r in records
    ]
    for record, extra in zip(clean, runs["extra"], strict=True):
        ProfileRun.model_validate({**record, "extra": extra})


def test_provenance_on_every_row(runs, raw):
    assert (runs["source"] == "aiconfigurator-core==0.12.0:systems/silicon_sample.csv").all()
    assert runs["source_id"].notna().all() and runs["source_id"].is_unique
    assert all(isinstance(e, dict) and e for e in runs["extra"])
    assert all("quantization_from" in e and "concurrency_from" in e for e in runs["extra"])
    has_measured = raw["silicon_data_source"].str.contains("measured=")
    assert has_measured.sum() == 4303
    assert runs["measured_at"].notna().tolist() == has_measured.tolist()


def test_identity_columns_are_kept_exactly(runs, raw):
    assert runs["model"].tolist() == raw["model_path"].tolist()
    assert runs["gpu"].tolist() == raw["system"].tolist()
    assert runs["engine"].tolist() == raw["backend"].tolist()
    assert runs["engine_version"].fillna("").tolist() == raw["backend_version"].fillna("").tolist()
    assert runs["ttft_ms"].tolist() == raw["silicon_ttft_ms"].astype(float).tolist()
    assert runs["tpot_ms"].tolist() == raw["silicon_tpot_ms"].astype(float).tolist()


def test_quantization_mapping(runs, raw):
    source = [e["quantization_from"] for e in runs["extra"]]
    assert pd.Series(source).value_counts().to_dict() == {
        "gemm_quant_mode": 4295,
        "gemm_quant_mode nvfp4 on an MXFP4 checkpoint": 480,
        "default": 366,
        "precision": 80,
    }
    blank = raw["gemm_quant_mode"].isna()
    assert blank.sum() == 446
    relabelled = runs["quantization"] == "mxfp4"
    assert set(runs.loc[relabelled, "model"]) == {"openai/gpt-oss-120b"}
    assert (raw.loc[relabelled, "gemm_quant_mode"] == "nvfp4").all()
    kept = ~blank & ~relabelled
    assert (runs.loc[kept, "quantization"] == raw.loc[kept, "gemm_quant_mode"]).all()
    inferred = runs[[s == "default" for s in source]]
    assert set(inferred["model"]) == {"Qwen/Qwen3-32B", "meta-llama/Llama-3.1-8B-Instruct"}
    assert (inferred["quantization"] == "bf16").all()
    assert runs["quantization"].value_counts().to_dict() == {
        "fp8": 2507,
        "nvfp4": 1498,
        "mxfp4": 480,
        "bf16": 446,
        "fp8_block": 200,
        "int4_wo": 90,
    }


@pytest.mark.parametrize(
    ("precision", "model", "expected", "origin"),
    [
        ("fp4", "x/Model", "nvfp4", "precision"),
        ("int4", "x/Model", "int4_wo", "precision"),
        (None, "nvidia/Llama-3.1-8B-Instruct-FP8", "fp8", "model_name"),
        (None, "nvidia/Qwen3-32B-NVFP4", "nvfp4", "model_name"),
        (None, "openai/gpt-oss-120b-MXFP4", "mxfp4", "model_name"),
        (None, "Qwen/Qwen3-32B-AWQ", "int4_wo", "model_name"),
        (None, "Qwen/Qwen3-32B", "bf16", "default"),
    ],
)
def test_blank_gemm_quant_mode_fallbacks(raw, precision, model, expected, origin):
    record = _source_row(raw, gemm_quant_mode=float("nan"), precision=precision, model_path=model)
    mapped = map_row(record, "s", 1)
    assert mapped["quantization"] == expected
    assert mapped["extra"]["quantization_from"] == origin


def test_unknown_precision_names_column_and_allowed(raw):
    record = _source_row(raw, gemm_quant_mode=None, precision="fp6")
    with pytest.raises(ProfileImportError) as info:
        map_row(record, "s", 7)
    assert (info.value.row, info.value.field) == (7, "precision")
    assert "fp8, fp4, int4, bf16" in info.value.reason


def _squared(runs: pd.DataFrame) -> np.ndarray:
    return np.array([e.get("layout_from") == "squared_layout" for e in runs["extra"]])


def test_agg_rows_use_the_single_pool(runs, raw):
    agg = (raw["mode"] == "agg").to_numpy() & ~_squared(runs)
    assert (runs.loc[agg, "tp"] == raw.loc[agg, "tp_size"].astype(float)).all()
    zero_or_blank = raw["attention_dp_size"].astype(float).fillna(0).eq(0).to_numpy()
    assert (runs.loc[agg & zero_or_blank, "dp"] == 1).all()
    assert (
        runs.loc[agg & ~zero_or_blank, "dp"]
        == raw.loc[agg & ~zero_or_blank, "attention_dp_size"].astype(float)
    ).all()
    assert (
        runs.loc[agg, "ep"] == raw.loc[agg, "moe_ep_size"].astype(float).fillna(1).replace(0, 1)
    ).all()
    assert all("batch_size" in e for e in runs.loc[agg, "extra"])
    assert (runs.loc[agg, "ep"] >= 1).all() and (runs.loc[agg, "pp"] == 1).all()


def test_agg_rows_run_on_the_gpus_their_id_names(runs, raw):
    named = raw["id"].str.extract(r"_tp(\d+)(?:_0)?_(?:dp(\d+)(?:_0)?_)?ep(?:\d+|none)(?:_0)?_")
    has = named[0].notna().to_numpy() & (raw["mode"] == "agg").to_numpy()
    assert has.sum() == 3001
    id_gpus = named.loc[has, 0].astype(int) * named.loc[has, 1].astype(float).fillna(1).astype(int)
    assert (runs.loc[has, "tp"] * runs.loc[has, "dp"] == id_gpus).all()
    file_gpus = raw.loc[has, "tp_size"].astype(float) * raw.loc[has, "attention_dp_size"].astype(
        float
    ).fillna(1).replace(0, 1)
    assert ((file_gpus != id_gpus) == _squared(runs)[has]).all()
    assert _squared(runs)[has].sum() == 234


def test_squared_layouts_keep_the_files_values(runs, raw):
    squared = _squared(runs)
    assert squared.sum() == 414
    assert (raw.loc[squared, "mode"] == "agg").all()
    pairs = zip(runs[squared].iterrows(), raw[squared].iterrows(), strict=True)
    for (_, row), (_, source) in pairs:
        extra = row["extra"]
        assert extra["tp_size"] == int(float(source["tp_size"]))
        assert extra["moe_ep_size"] == int(float(source["moe_ep_size"]))
        file_gpus = extra["tp_size"] * max(extra.get("attention_dp_size", 1), 1)
        assert (row["tp"] * row["dp"]) ** 2 == file_gpus
        assert row["ep"] == row["tp"] * row["dp"]


@pytest.mark.parametrize(
    ("tp", "dp", "moe_tp", "moe_ep", "named_gpus", "expected"),
    [
        (64, 1, 8, 8, None, (8, 1, 8)),
        (64, 1, 8, 8, 8, (8, 1, 8)),
        (64, 1, 8, 8, 64, None),  # the id says 64 GPUs: as written
        (1, 64, 8, 8, None, (1, 8, 8)),
        (4, 4, 1, 16, None, (4, 1, 4)),
        (2, 2, 1, 4, None, (2, 1, 2)),  # the DP form is squared at N = 2 too
        (4, 1, 2, 2, 2, (2, 1, 2)),
        (4, 1, 2, 2, 4, None),  # ..._tp4_epnone_...: MoE TP 2 x EP 2 on 4 GPUs
        (4, 1, 2, 2, None, None),  # no id layout: N = 2 is taken as written
        (8, 1, 1, 8, None, None),
        (16, 1, 1, 16, None, None),
        (8, 1, 2, 4, None, None),
        (72, 1, 72, 1, None, None),
    ],
)
def test_squared_layout(tp, dp, moe_tp, moe_ep, named_gpus, expected):
    assert squared_layout(tp, dp, moe_tp, moe_ep, named_gpus) == expected


def test_disagg_rows_use_the_decode_pool_and_keep_both_pools(runs, raw):
    disagg = (raw["mode"] == "disagg").to_numpy()
    decode = raw.loc[disagg]
    got = runs.loc[disagg]
    assert (got["tp"] == decode["decode_tp_size"].astype(float)).all()
    assert (got["dp"] == decode["decode_attention_dp_size"].astype(float)).all()
    ep = decode["decode_moe_ep_size"].astype(float).replace(0, 1)
    assert (got["ep"] == ep).all()
    for extra in got["extra"]:
        assert {"prefill_tp_size", "decode_tp_size", "prefill_moe_ep_size"} <= set(extra)
        assert "batch_size" not in extra and "tp_size" not in extra


def test_concurrency_is_the_client_count(runs, raw):
    client = raw["silicon_data_source"].str.extract(r"silicon_concurrency=(\d+)")[0]
    present = client.notna().to_numpy()
    assert present.sum() == 5202
    copies = pd.Series([e.get("deployment_copies", 1) for e in runs["extra"]], index=runs.index)
    per_copy = client[present].astype(int) // copies[present]
    assert (runs.loc[present, "concurrency"] == per_copy).all()
    derived = runs.loc[~present]
    assert len(derived) == 19
    assert (derived["concurrency"] >= 1).all()
    origin = pd.Series([e["concurrency_from"] for e in derived["extra"]]).value_counts()
    assert origin.to_dict() == {
        "batch_size*attention_dp_size": 12,
        "decode_batch_size*decode_num_workers*decode_attention_dp": 7,
    }


def test_clients_spread_over_copies_of_the_deployment(runs, raw):
    # 416 clients of 15,500-token requests on two GPUs, 13 sequences per copy (batch_size)
    position = raw.index[
        raw["id"].str.startswith(
            "nvidia_qwen3_32b_nvfp4_nvidia_qwen3_32b_nvfp4_b200_sxm_trtllm_agg"
        )
    ][0]
    row = runs.loc[position]
    assert (row["concurrency"], row["extra"]["deployment_copies"]) == (13, 32)
    assert row["extra"]["silicon_concurrency"] == 416
    assert row["extra"]["concurrency_from"] == "silicon_concurrency/deployment_copies"
    copied = [e for e in runs["extra"] if "deployment_copies" in e]
    assert len(copied) == 16
    assert all(e["silicon_concurrency"] % e["deployment_copies"] == 0 for e in copied)


def test_one_disagg_row_in_full(runs, raw):
    position = raw.index[raw["id"] == "kimik2_5_gb200_trtllm_fp4_disagg_1024x1024_c4_cfg759"][0]
    row = runs.loc[position]
    assert (row["mode"], row["tp"], row["dp"], row["ep"], row["concurrency"]) == (
        "disagg",
        8,
        1,
        8,
        4,
    )
    assert row["extra"]["prefill_attention_dp_size"] == 4
    assert row["extra"]["decode_num_workers"] == 4
    assert row["extra"]["silicon_data_source"]["config_id"] == "759"
    assert row["measured_at"] == pd.Timestamp("2026-04-18T00:00:00Z")


def test_data_source_parsing():
    pairs, bare = parse_data_source(
        "db-dump/2026-04-27; config_id=733; silicon_concurrency=128; image"
    )
    assert pairs == {"config_id": "733", "silicon_concurrency": "128"}
    assert bare == ["db-dump/2026-04-27", "image"]


def test_bad_cells_name_row_and_source_column(raw):
    with pytest.raises(ProfileImportError) as info:
        map_row(_source_row(raw, mode="mixed"), "s", 3)
    assert (info.value.row, info.value.field) == (3, "mode")
    with pytest.raises(ProfileImportError) as info:
        map_row(_source_row(raw, tp_size="four"), "s", 4)
    assert (info.value.row, info.value.field) == (4, "tp_size")
    bad_time = "silicon_concurrency=8; measured=yesterday"
    with pytest.raises(ProfileImportError) as info:
        map_row(_source_row(raw, silicon_data_source=bad_time), "s", 5)
    assert info.value.field == "silicon_data_source"


def test_a_bad_row_in_a_copy_of_the_file_is_reported_with_its_row(raw, tmp_path):
    copy = raw.head(6).copy()
    copy.loc[4, "backend"] = "tensorrt"
    path = tmp_path / "silicon.csv"
    copy.to_csv(path, index=False)
    with pytest.raises(ProfileImportError) as info:
        AIConfiguratorImporter().read(path)
    assert (info.value.source, info.value.row, info.value.field) == ("silicon.csv", 5, "engine")
    assert "'trtllm'" in info.value.reason


def test_overrides_other_than_source_are_refused():
    with pytest.raises(InvalidInputError) as info:
        AIConfiguratorImporter().read(bundled_silicon_csv(), gpu="h100_sxm")
    assert info.value.field == "gpu"


def test_reading_the_whole_file_is_fast():
    start = time.perf_counter()
    AIConfiguratorImporter().read(bundled_silicon_csv())
    assert time.perf_counter() - start < 5.0  # ~1 s on 2 shared cores


def test_header_only_file_gives_no_runs(raw, tmp_path):
    path = tmp_path / "silicon.csv"
    raw.head(0).to_csv(path, index=False)
    assert len(AIConfiguratorImporter().read(path)) == 0
