"""Named constraints and declarative rules, checked on given configurations."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.errors import InvalidInputError
from optimizer.space import CONSTRAINTS, check_candidates, load_search_space
from optimizer.space.rules import Condition, Rule

SEQ = 2048


def _check(engine, model, gpu, **columns):
    """Check one configuration per row; knobs not given take the engine defaults."""
    rows = max((len(v) for v in columns.values() if isinstance(v, list)), default=1)
    columns.setdefault("max_batch_size", 8)
    frame = {k: v if isinstance(v, list) else [v] * rows for k, v in columns.items()}
    return check_candidates(load_search_space(engine), model, gpu, SEQ, frame)


def _reasons(result):
    return [None if isinstance(r, float) else r for r in result["reason"].tolist()]


def test_tp_must_divide_64_heads(llama_70b, gpus):
    result = _check("vllm", llama_70b, gpus["h100_sxm"], tp=[3, 4])
    assert _reasons(result) == ["tp_divides_heads", None]


def test_tp_and_kv_heads_must_divide_one_another(tiny_model, test_gpu):
    # 8 query heads, 2 KV heads: tp 4 replicates each KV head twice; tp 8 four times
    result = check_candidates(
        load_search_space("vllm"), tiny_model, test_gpu, 64, {"tp": [2, 4, 8], "max_batch_size": 1}
    )
    assert result["feasible"].tolist() == [True, True, True]
    model = tiny_model.model_copy(update={"num_kv_heads": 4, "num_attention_heads": 12})
    result = check_candidates(
        load_search_space("vllm"), model, test_gpu, 64, {"tp": [2, 3, 6], "max_batch_size": 1}
    )
    assert _reasons(result) == [None, "tp_fits_kv_heads", "tp_fits_kv_heads"]


def test_tp_within_a_node(llama_405b, gpus):
    result = _check("vllm", llama_405b, gpus["h100_sxm"], tp=16, quantization="fp8")
    assert _reasons(result) == ["tp_within_node"]


def test_pp_must_divide_layers(llama_70b, gpus):
    result = _check("vllm", llama_70b, gpus["h100_sxm"], tp=2, pp=[3, 2])
    assert _reasons(result) == ["pp_divides_layers", None]


def test_fp8_needs_sm89(llama_8b, gpus):
    result = _check(
        "vllm",
        llama_8b,
        gpus["a100_sxm"],
        quantization=["fp8", "bf16", "bf16", "int4_wo"],
        kv_cache_dtype=["bf16", "fp8", "bf16", "bf16"],
    )
    assert _reasons(result) == [
        "quantization_supported_by_gpu",
        "kv_cache_dtype_supported_by_gpu",
        None,
        None,
    ]


def test_nvfp4_needs_blackwell(llama_8b, gpus):
    on_h100 = _check("vllm", llama_8b, gpus["h100_sxm"], quantization="nvfp4")
    on_b200 = _check("vllm", llama_8b, gpus["b200_sxm"], quantization="nvfp4")
    assert _reasons(on_h100) == ["quantization_supported_by_gpu"]
    assert on_b200["feasible"].tolist() == [True]


def test_expert_parallelism_needs_moe_and_must_divide(llama_70b, deepseek_v3, gpus):
    dense = _check("vllm", llama_70b, gpus["h100_sxm"], tp=4, ep=[1, 4], dp=[2, 1])
    assert _reasons(dense) == ["dp_needs_moe", "ep_needs_moe"]
    moe = _check(
        "sglang",
        deepseek_v3,
        gpus["h200_sxm"],
        tp=8,
        ep=[8, 3, 16],
        quantization="fp8_block",
    )
    assert _reasons(moe) == [None, "ep_divides_tp_dp", "ep_divides_tp_dp"]


def test_vllm_expert_parallelism_spans_tp_times_dp(deepseek_v3, gpus):
    result = _check(
        "vllm",
        deepseek_v3,
        gpus["h200_sxm"],
        tp=8,
        ep=[8, 4],
        quantization="fp8_block",
    )
    assert _reasons(result) == [None, "ep_spans_tp_dp"]
    # SGLang lets ep be any divisor of tp*dp
    assert _check("sglang", deepseek_v3, gpus["h200_sxm"], tp=8, ep=4, quantization="fp8_block")[
        "feasible"
    ].tolist() == [True]


def test_checkpoint_format_is_kept(deepseek_v3, gpus):
    result = _check("vllm", deepseek_v3, gpus["h200_sxm"], tp=8, quantization=["bf16", "fp8_block"])
    assert _reasons(result) == ["quantization_matches_checkpoint", None]


def test_speculative_decoding_checks(llama_70b, deepseek_v3, gpus):
    h100 = gpus["h100_sxm"]
    result = _check(
        "vllm",
        llama_70b,
        h100,
        tp=4,
        spec_method=["mtp", "eagle3", "eagle3", "none"],
        spec_draft_len=[2, 0, 3, 2],
    )
    assert _reasons(result) == [
        "spec_method_supported_by_model",
        "spec_draft_len_matches_method",
        None,
        "spec_draft_len_matches_method",
    ]
    mtp = _check(
        "vllm",
        deepseek_v3,
        gpus["h200_sxm"],
        tp=8,
        spec_method="mtp",
        spec_draft_len=1,
        quantization="fp8_block",
    )
    assert mtp["feasible"].tolist() == [True]
    # TensorRT-LLM's PyTorch backend offers no EAGLE-1 drafter
    trt = _check("trtllm", llama_70b, h100, tp=4, spec_method="eagle", spec_draft_len=3)
    assert _reasons(trt) == ["spec_method_supported_by_engine"]


def test_vllm_rule_forbids_pipeline_with_speculation(llama_70b, gpus):
    knobs = dict(tp=2, pp=2, spec_method="eagle3", spec_draft_len=3)
    assert _reasons(_check("vllm", llama_70b, gpus["h100_sxm"], **knobs)) == [
        "no_pp_with_spec_decoding"
    ]
    assert _check("sglang", llama_70b, gpus["h100_sxm"], **knobs)["feasible"].tolist() == [True]


def test_step_must_hold_the_batch(llama_8b, gpus):
    result = _check(
        "vllm",
        llama_8b,
        gpus["h100_sxm"],
        max_batch_size=[512, 128],
        max_num_batched_tokens=[256, 256],
    )
    assert _reasons(result) == ["batched_tokens_cover_batch", None]


def test_engine_and_block_size_support(llama_8b, gpus):
    result = _check("vllm", llama_8b, gpus["h100_sxm"], kv_block_size=[1, 16])
    assert _reasons(result) == ["kv_block_size_supported_by_engine", None]
    result = _check("sglang", llama_8b, gpus["h100_sxm"], kv_block_size=[1, 16])
    assert _reasons(result) == [None, None]


def test_first_failing_constraint_in_file_order_is_reported(llama_405b, gpus):
    # tp=3 fails tp_divides_heads; bf16 405B on 3 GPUs would not fit either
    result = _check("vllm", llama_405b, gpus["h100_sxm"], tp=3)
    assert _reasons(result) == ["tp_divides_heads"]


def test_missing_column_without_default_is_an_error(llama_8b, gpus):
    with pytest.raises(InvalidInputError) as info:
        check_candidates(load_search_space("sglang"), llama_8b, gpus["h100_sxm"], SEQ, {"tp": [1]})
    assert info.value.field == "max_batch_size"
    with pytest.raises(InvalidInputError) as info:
        check_candidates(
            load_search_space("vllm"), llama_8b, gpus["h100_sxm"], SEQ, {"replicas": [1]}
        )
    assert info.value.field == "replicas"


def test_every_constraint_describes_itself(llama_70b, deepseek_v3, gpus):
    space = load_search_space("vllm")
    for model in (llama_70b, deepseek_v3):
        for constraint in CONSTRAINTS.values():
            text = constraint.describe(model, gpus["h100_sxm"], space)
            assert text and "{" not in text


def test_condition_and_rule_masks():
    values = np.array([1, 2, 4, 8])
    assert Condition(gt=2).mask(values).tolist() == [False, False, True, True]
    assert Condition.model_validate({"in": [1, 8]}).mask(values).tolist() == [
        True,
        False,
        False,
        True,
    ]
    assert Condition(not_in=[1]).mask(values).tolist() == [False, True, True, True]
    methods = np.array(["none", "mtp"], dtype=object)
    assert Condition(ne="none").mask(methods).tolist() == [False, True]
    rule = Rule(
        name="r", reason="x", forbid={"pp": Condition(gt=1), "spec_method": Condition(eq="mtp")}
    )
    mask = rule.mask({"pp": np.array([[1], [2]]), "spec_method": methods})
    assert mask.tolist() == [[False, False], [False, True]]
