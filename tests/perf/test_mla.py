"""Multi-head latent attention timed from its own measured kernels (not as GQA)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optimizer.catalog import get_gpu, load_model_spec
from optimizer.perf import KernelLibrary
from optimizer.perf.kernel_data import (
    MLA_MEASURED_HEAD_DIM,
    MLA_MEASURED_LATENT_DIM,
    kernel_data_dir,
    load_kernel_table,
    table_versions,
)
from optimizer.perf.step import kernel_library, step_terms

GPU = "h200_sxm"


@pytest.fixture(scope="module")
def trtllm() -> KernelLibrary:
    return kernel_library(get_gpu(GPU), "trtllm")


def _raw(operator: str, engine: str) -> pd.DataFrame:
    version = table_versions(GPU, operator, engine)[0]
    name = "generation_mla_perf" if operator == "generation_mla" else "context_mla_perf"
    return pd.read_parquet(kernel_data_dir() / GPU / "mla" / engine / version / f"{name}.parquet")


def test_mla_tables_read_as_attention_rows_of_their_own_layout():
    table = load_kernel_table(GPU, "generation_mla", "trtllm").frame
    assert set(table["layout"]) == {"mla"}
    assert set(table["head_dim"]) == {MLA_MEASURED_LATENT_DIM}
    assert set(table["num_kv_heads"]) == {1}
    raw = _raw("generation_mla", "trtllm")
    # one new token attends to ``step`` cached tokens plus itself
    assert sorted(table["kv_len"].unique()) == sorted((raw["isl"] + raw["step"]).unique())
    context = load_kernel_table(GPU, "context_mla", "trtllm").frame
    assert set(context["head_dim"]) == {MLA_MEASURED_HEAD_DIM}
    assert (context["num_kv_heads"] == context["num_heads"]).all()
    gqa = load_kernel_table(GPU, "generation_attention", "trtllm").frame
    assert set(gqa["layout"]) == {"gqa"}


@pytest.mark.parametrize("operator", ["generation_mla", "context_mla"])
def test_measured_mla_points_are_answered_as_measured(trtllm, operator):
    raw = _raw(operator, "trtllm")
    raw = raw[(raw["mla_dtype"] == "bfloat16") & (raw["kv_cache_dtype"] == "fp8")]
    rows = raw.sample(40, random_state=0)
    if operator == "generation_mla":
        got = trtllm.generation_mla(
            rows["batch_size"],
            rows["isl"] + rows["step"],
            rows["num_heads"],
            MLA_MEASURED_LATENT_DIM,
            "fp8",
        )
    else:
        got = trtllm.context_mla(
            rows["batch_size"], rows["isl"], rows["num_heads"], MLA_MEASURED_HEAD_DIM, "fp8"
        )
    # grid cells are made monotone (small decode kernels time noisily, ~10 us): measured
    # points come back within a few percent
    ratio = got / rows["latency"].to_numpy()
    assert np.median(np.abs(np.log(ratio))) < 0.05
    assert np.abs(np.log(ratio)).max() < 0.35


def test_latent_decode_is_not_timed_as_a_wide_grouped_query_kernel(trtllm):
    # 128 query heads sharing one 576-wide latent entry: measured 0.027 ms per layer at
    # batch 16 over 1,024 cached tokens; as a one-KV-head GQA kernel of head size 576
    # (beyond every GQA table) it came out 40x slower
    mla = float(trtllm.generation_mla(16, 1024, 128, 576, "fp8"))
    assert mla == pytest.approx(0.0275, rel=0.1)
    assert float(trtllm.generation_attention(16, 1024, 128, 1, 576, "fp8")) > 10 * mla


def test_head_sizes_other_than_the_measured_scale_the_time(trtllm):
    base = trtllm.context_mla(2, 4096, 64, MLA_MEASURED_HEAD_DIM)
    wider = trtllm.context_mla(2, 4096, 64, 2 * MLA_MEASURED_HEAD_DIM)
    assert float(wider) == pytest.approx(2 * float(base), rel=1e-12)


def test_a_window_stands_in_as_the_equivalent_full_length(trtllm):
    capped = trtllm.generation_mla(32, 16384, 64, 576, "bf16", window=2048)
    assert float(capped) == pytest.approx(float(trtllm.generation_mla(32, 2048, 64, 576)))


def test_an_engine_without_mla_tables_borrows_another_engines_on_the_gpu():
    vllm = kernel_library(get_gpu(GPU), "vllm")
    sglang = kernel_library(get_gpu(GPU), "sglang")
    # the provenance names the borrowed table
    assert "+ sglang" in vllm.source("generation_attention")
    assert vllm.source("generation_attention").count("generation_mla_perf") == 1
    assert float(vllm.generation_mla(64, 2048, 128, 576)) == pytest.approx(
        float(sglang.generation_mla(64, 2048, 128, 576))
    )


def test_without_mla_measurements_latent_attention_falls_back_to_attention_of_its_shape():
    lib = KernelLibrary.roofline_only(get_gpu(GPU))
    assert float(lib.generation_mla(16, 1024, 128, 576)) == pytest.approx(
        float(lib.generation_attention(16, 1024, 128, 1, 576))
    )
    assert float(lib.context_mla(1, 2048, 16, 160)) == pytest.approx(
        float(lib.context_attention(1, 2048, 16, 16, 160))
    )


@pytest.mark.slow
def test_a_deepseek_decode_step_sums_the_latent_kernels_over_its_layers(trtllm):
    model = load_model_spec("deepseek-ai/DeepSeek-R1")
    gpu = get_gpu(GPU)
    tp = np.array([1.0, 8.0])
    terms = step_terms(
        model,
        gpu,
        trtllm,
        quantization="fp8",
        kv_dtype="bf16",
        tp=tp,
        dp=1,
        ep=1,
        decode_seqs=16,
        kv_len=1024,
    )
    per_layer = trtllm.generation_mla(16, 1024, np.maximum(128 / tp, 1), 576)
    assert np.allclose(terms.attention_ms, model.num_layers * per_layer, rtol=1e-9)
