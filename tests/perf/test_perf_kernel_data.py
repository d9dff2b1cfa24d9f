"""Finding, choosing and tidying the measured kernel tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optimizer.errors import InvalidInputError, NotFoundError
from optimizer.perf.dtypes import format_values, kv_dtype_from_kernel, quantization_from_kernel
from optimizer.perf.kernel_data import (
    OPERATORS,
    available_engines,
    gpus_with_kernel_data,
    load_kernel_table,
    measured_gpu_figures,
    table_versions,
    version_sort_key,
)


def test_gpus_with_data_are_the_measured_ones_and_empty_folders_are_not():
    gpus = set(gpus_with_kernel_data())
    expected = {
        "a100_sxm",
        "b200_sxm",
        "b300_sxm",
        "gb200",
        "gb300",
        "h100_sxm",
        "h200_sxm",
        "l40s",
        "rtx_pro_6000_server",
    }
    assert expected <= gpus
    assert not gpus & {"h100_pcie", "l4", "a100_pcie", "a30"}


def test_version_order_is_pep440_with_unparseable_strings_first():
    versions = ["1.3.0rc20", "0.5.6.post2", "not-a-version-7", "1.3.0rc23", "1.0.0", "0.5.14"]
    ordered = sorted(versions, key=version_sort_key)
    assert ordered == [
        "not-a-version-7",
        "0.5.6.post2",
        "0.5.14",
        "1.0.0",
        "1.3.0rc20",
        "1.3.0rc23",
    ]


def test_reuse_only_version_folders_are_skipped():
    # b200 trtllm 1.3.0rc23 only declares reuse of 1.3.0rc20's gemm table (reuse.yaml)
    assert table_versions("b200_sxm", "gemm", "trtllm") == ("1.3.0rc20",)


def test_gemm_table_is_tidy_and_in_epopt_vocabulary():
    table = load_kernel_table("h100_sxm", "gemm", "vllm")
    frame = table.frame
    assert {"quantization", "m", "n", "k", "latency_ms", "kernel_source", "version"} <= set(frame)
    assert set(frame["quantization"]) == {"bf16", "fp8", "fp8_block"}
    assert (frame["latency_ms"] > 0).all()
    block = frame[frame["quantization"] == "fp8_block"]
    assert ((block["n"] % 128 == 0) & (block["k"] % 128 == 0)).all()
    assert table.version == "0.24.0"
    source = table.sources[0]
    assert source.path.is_file() and source.path.name == "gemm_perf.parquet"
    assert "torch.nn.functional.linear" in source.kernel_sources


def test_returned_frame_can_be_changed_without_touching_the_cache():
    first = load_kernel_table("h100_sxm", "custom_all_reduce", "vllm").frame
    first["latency_ms"] = -1.0
    again = load_kernel_table("h100_sxm", "custom_all_reduce", "vllm").frame
    assert (again["latency_ms"] > 0).all()


def test_newer_partial_version_is_backfilled_slice_by_slice_from_older_ones():
    table = load_kernel_table("h100_sxm", "moe", "trtllm")
    versions = [s.version for s in table.sources]
    assert versions[0] == "1.3.0rc23" and "1.3.0rc20" in versions
    keys = [
        "quantization",
        "hidden",
        "inter",
        "topk",
        "num_experts",
        "tp",
        "ep",
        "distribution",
        "gated",
    ]
    per_slice = table.frame.groupby(keys)["version"].nunique()
    assert (per_slice == 1).all(), "a slice mixes rows from two versions"
    assert len(table.frame) > 100_000  # far more than the newest version alone (10,692 rows)


def test_backfill_and_version_choice_on_a_synthetic_tree(tmp_path):
    def write(version: str, dtypes: list[str], latency: float) -> None:
        folder = tmp_path / "gpu_x" / "gemm" / "vllm" / version
        folder.mkdir(parents=True)
        rows = [
            {
                "gemm_dtype": d,
                "m": m,
                "n": 256,
                "k": 256,
                "latency": latency * m,
                "kernel_source": "k",
            }
            for d in dtypes
            for m in (1, 2)
        ]
        pd.DataFrame(rows).assign(version=version).to_parquet(folder / "gemm_perf.parquet")

    write("1.0.0", ["bfloat16", "fp8", "sq"], latency=1.0)
    write("1.1.0", ["bfloat16"], latency=2.0)
    reuse_only = tmp_path / "gpu_x" / "gemm" / "vllm" / "1.2.0"
    reuse_only.mkdir()
    (reuse_only / "reuse.yaml").write_text("schema_version: 1\n")

    table = load_kernel_table("gpu_x", "gemm", "vllm", root=tmp_path)
    frame = table.frame.set_index(["quantization", "m"])
    assert [s.version for s in table.sources] == ["1.1.0", "1.0.0"]
    assert frame.loc[("bf16", 2), "latency_ms"] == 4.0  # newest version wins its slices
    assert frame.loc[("fp8", 2), "latency_ms"] == 2.0  # older version fills the rest
    assert "sq" not in set(table.frame["quantization"])  # no epopt name: left out
    assert gpus_with_kernel_data(tmp_path) == ("gpu_x",)


def test_generation_length_counts_the_new_token_and_attention_window_defaults_to_zero():
    gen = load_kernel_table("h100_sxm", "generation_attention", "vllm").frame
    assert gen["kv_len"].min() == 2  # step 1 plus the token being decoded
    ctx = load_kernel_table("a100_sxm", "context_attention", "vllm").frame  # no window column
    assert set(ctx["window"]) == {0}


def test_collective_message_sizes_are_converted_from_elements_to_bytes():
    nccl = load_kernel_table("h100_sxm", "nccl", "nccl")
    assert nccl.engine == "nccl"
    raw = pd.read_parquet(nccl.sources[0].path)
    raw = raw[
        (raw["op_name"] == "all_reduce") & (raw["num_gpus"] == 8) & (raw["message_size"] == 1024)
    ]
    tidy = nccl.frame[(nccl.frame["collective"] == "all_reduce") & (nccl.frame["num_gpus"] == 8)]
    for dtype, width in (("half", 2), ("int8", 1)):
        latency = raw.loc[raw["nccl_dtype"] == dtype, "latency"].item()
        match = tidy[tidy["latency_ms"] == latency]
        assert match["message_bytes"].tolist() == [1024 * width]


def test_unknown_gpu_operator_or_engine_errors_name_what_exists():
    with pytest.raises(NotFoundError, match="kernel table"):
        load_kernel_table("l4", "gemm", "vllm")
    with pytest.raises(NotFoundError, match="h100_sxm/gemm/vllm"):
        load_kernel_table("h100_sxm", "gemm", "nccl")
    with pytest.raises(InvalidInputError, match="operator"):
        load_kernel_table("h100_sxm", "mla", "vllm")
    assert set(OPERATORS) >= {"gemm", "moe", "nccl"}
    assert available_engines("l4", "gemm") == ()


def test_measured_gpu_figures_come_from_the_system_files():
    h100 = measured_gpu_figures("h100_sxm")
    assert (h100.mem_bw_tb_s, h100.bf16_tflops, h100.fp8_tflops) == (3.35, 989.0, 1978.0)
    assert h100.fp4_tflops is None and h100.interconnect_gb_s == 450.0
    assert measured_gpu_figures("b200_sxm").fp4_tflops == 9000.0
    with pytest.raises(NotFoundError):
        measured_gpu_figures("tpu_v5")


def test_kernel_dtype_names_map_to_epopt_names():
    assert quantization_from_kernel("fp8_block").value == "fp8_block"
    assert quantization_from_kernel("w4a16_mxfp4").value == "mxfp4"
    assert quantization_from_kernel("int8_wo") is None
    assert kv_dtype_from_kernel("bfloat16").value == "bf16"
    assert format_values(np.array(["fp8", "bf16", "fp8"], dtype=object)).tolist() == [
        "fp8",
        "bf16",
        "fp8",
    ]
    with pytest.raises(InvalidInputError, match="allowed: bf16"):
        format_values(["fp16"])
