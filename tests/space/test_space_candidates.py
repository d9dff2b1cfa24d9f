"""Enumerating a space: counts, reasons, the must-hold fits, and agreement with per-row checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optimizer.domain import Workload
from optimizer.errors import InvalidInputError
from optimizer.space import (
    KNOBS,
    MEMORY_COLUMNS,
    check_candidates,
    enumerate_candidates,
    example_candidates,
    load_search_space,
    sequence_tokens,
    summarize_candidates,
)

# 2,048-token requests (prompt plus output), batch cap 8, vLLM defaults otherwise
WORKLOAD = Workload.simple(isl=1024, osl=1024, concurrency=8)
PINNED = dict(
    dp=1,
    ep=1,
    kv_cache_dtype="bf16",
    max_batch_size=8,
    spec_method="none",
    kv_block_size=16,
    max_num_batched_tokens=8192,
)


def _one_row_per_layout(frame):
    return {(r.tp, r.pp, str(r.quantization)): r for r in frame.itertuples(index=False)}


def test_sequence_tokens():
    assert sequence_tokens(WORKLOAD) == 2048
    assert sequence_tokens(Workload.simple(isl=1000, osl=3, rate=1.0)) == 1003
    assert sequence_tokens(512) == 512
    for bad in (0, -1, 2.5, True):
        with pytest.raises(InvalidInputError):
            sequence_tokens(bad)


def test_llama_70b_bf16_fits_two_h100_not_one(llama_70b, gpus):
    space = load_search_space("vllm").restrict(tp=[1, 2], pp=1, quantization="bf16", **PINNED)
    frame = enumerate_candidates(space, llama_70b, gpus["h100_sxm"], WORKLOAD)
    rows = _one_row_per_layout(frame)
    assert len(frame) == 2
    assert not rows[(1, 1, "bf16")].feasible and rows[(1, 1, "bf16")].reason == "fits_in_memory"
    assert rows[(2, 1, "bf16")].feasible
    assert rows[(2, 1, "bf16")].weights_gib == pytest.approx(65.71, abs=0.01)


def test_llama_405b_needs_fp8_on_eight_h100(llama_405b, gpus):
    space = load_search_space("vllm").restrict(
        tp=[2, 4, 8], pp=[1, 2, 4], quantization=["bf16", "fp8"], **PINNED
    )
    frame = enumerate_candidates(space, llama_405b, gpus["h100_sxm"], WORKLOAD)
    eight = frame[frame["gpus_per_replica"] == 8]
    assert set(zip(eight["tp"], eight["pp"], strict=True)) == {(8, 1), (4, 2), (2, 4)}
    rows = _one_row_per_layout(eight)
    # 126 layers do not split over 4 pipeline stages
    assert rows[(2, 4, "bf16")].reason == rows[(2, 4, "fp8")].reason == "pp_divides_layers"
    for tp, pp in ((8, 1), (4, 2)):
        assert rows[(tp, pp, "bf16")].reason == "fits_in_memory"
        assert rows[(tp, pp, "fp8")].feasible


def test_counts_add_up(llama_70b, gpus):
    space = load_search_space("vllm").restrict(max_batch_size=[8, 64])
    frame = enumerate_candidates(space, llama_70b, gpus["h100_sxm"], 2048)
    summary = summarize_candidates(frame, space, llama_70b, gpus["h100_sxm"])
    assert summary.total == len(frame) == space.size
    assert summary.feasible == int(frame["feasible"].sum()) > 0
    assert summary.feasible + sum(summary.rejected.values()) == summary.total
    assert list(summary.rejected.values()) == sorted(summary.rejected.values(), reverse=True)
    assert set(summary.reasons) == set(space.constraints)
    assert frame.loc[frame["feasible"], "reason"].isna().all()
    assert frame.loc[~frame["feasible"], "reason"].notna().all()
    assert summary.to_dict()["rejected"][0]["count"] == max(summary.rejected.values())


def test_enumeration_agrees_with_row_by_row_checks(deepseek_v3, gpus):
    space = load_search_space("sglang").restrict(
        tp=[2, 8], pp=[1, 2], dp=[1, 2], ep=[1, 8], max_batch_size=[8, 256], kv_block_size=[1, 64]
    )
    frame = enumerate_candidates(space, deepseek_v3, gpus["h200_sxm"], 4096)
    rechecked = check_candidates(space, deepseek_v3, gpus["h200_sxm"], 4096, frame[list(KNOBS)])
    assert frame["feasible"].any() and not frame["feasible"].all()
    pd.testing.assert_series_equal(frame["reason"], rechecked["reason"])
    for column in MEMORY_COLUMNS:
        np.testing.assert_allclose(frame[column], rechecked[column], rtol=1e-6)


def test_grid_covers_every_combination_once(llama_8b, gpus):
    space = load_search_space("trtllm").restrict(max_batch_size=[8, 16])
    frame = enumerate_candidates(space, llama_8b, gpus["h100_sxm"], 1024)
    assert len(frame) == space.size
    assert not frame.duplicated(list(KNOBS)).any()
    assert ((frame["spec_method"] == "none") == (frame["spec_draft_len"] == 0)).all()
    assert (frame["gpus_per_replica"] == frame["tp"] * frame["pp"] * frame["dp"]).all()
    assert set(frame["engine"]) == {"trtllm"}


def test_full_vllm_space_for_llama_70b_on_h100(llama_70b, gpus):
    space = load_search_space("vllm")
    frame = enumerate_candidates(space, llama_70b, gpus["h100_sxm"], 2048)
    summary = summarize_candidates(frame, space, llama_70b, gpus["h100_sxm"])
    assert summary.total == space.size == 2_064_384
    assert 0 < summary.feasible < summary.total
    assert summary.rejected["dp_needs_moe"] > summary.rejected["ep_needs_moe"] > 0
    assert summary.rejected["fits_in_memory"] > 0
    # every feasible candidate really fits, and holds its batch
    feasible = frame[frame["feasible"]]
    assert (feasible["max_sequences"] >= feasible["max_batch_size"]).all()
    assert (feasible["quantization"].isin(["bf16", "fp8", "fp8_block", "int4_wo"])).all()


def test_example_candidates(llama_70b, gpus):
    space = load_search_space("vllm").restrict(max_batch_size=[8, 64])
    frame = enumerate_candidates(space, llama_70b, gpus["h100_sxm"], 2048)
    examples = example_candidates(frame, 4)
    assert 0 < len(examples) <= 4 and examples["feasible"].all()
    assert not examples.duplicated(["tp", "pp", "dp", "ep", "quantization"]).any()
    assert (examples["spec_method"] == "none").all()
    assert list(examples["gpus_per_replica"]) == sorted(examples["gpus_per_replica"])
    assert example_candidates(frame[~frame["feasible"]], 4).empty
