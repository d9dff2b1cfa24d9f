"""TensorRT-LLM: every ``trtllm-serve`` flag we emit is documented, the extra options YAML
uses only documented LLM-API fields, and each knob lands in the right place."""

from __future__ import annotations

import itertools
import shlex

import pytest
import yaml

from optimizer.domain import EndpointConfig
from optimizer.errors import InvalidInputError
from optimizer.launch import extra_llm_api_options, launch_artifacts, trtllm_artifacts
from optimizer.launch.trtllm import EXTRA_OPTIONS_FILE

# trtllm-serve's click options, transcribed from NVIDIA/TensorRT-LLM
# tensorrt_llm/commands/serve.py (the `serve` command, both spellings of aliased options).
TRTLLM_OPTIONS: dict[str, object] = {
    "--tokenizer": str,
    "--host": str,
    "--port": int,
    "--backend": ("pytorch", "tensorrt", "_autodeploy", "trt"),
    "--log_level": str,
    "--max_beam_width": int,
    "--max_batch_size": int,
    "--max_num_tokens": int,
    "--max_seq_len": int,
    "--tensor_parallel_size": int,
    "--tp_size": int,
    "--pipeline_parallel_size": int,
    "--pp_size": int,
    "--moe_expert_parallel_size": int,
    "--ep_size": int,
    "--gpus_per_node": int,
    "--free_gpu_memory_fraction": str,
    "--kv_cache_free_gpu_memory_fraction": str,
    "--trust_remote_code": "flag",
    "--extra_llm_api_options": str,
    "--config": str,
    "--enable_chunked_prefill": "flag",
}

# LLM-API fields, from tensorrt_llm/llmapi/llm_args.py (BaseLlmArgs / TorchLlmArgs,
# KvCacheConfig, DecodingBaseConfig and its subclasses) and the speculative-decoding docs.
LLM_API_FIELDS = {
    "kv_cache_config", "enable_attention_dp", "enable_chunked_prefill",
    "disable_overlap_scheduler", "speculative_config", "max_batch_size", "max_num_tokens",
    "tensor_parallel_size", "pipeline_parallel_size", "moe_expert_parallel_size",
    "cuda_graph_config", "moe_config",
}  # fmt: skip
KV_CACHE_FIELDS = {
    "dtype", "tokens_per_block", "free_gpu_memory_fraction", "enable_block_reuse", "max_tokens",
    "host_cache_size",
}  # fmt: skip
KV_CACHE_DTYPES = {"auto", "fp8"}
DECODING_BASE_FIELDS = {
    "decoding_type", "max_draft_len", "max_total_draft_tokens", "speculative_model_dir",
    "speculative_model", "max_concurrency", "load_format",
}  # fmt: skip
DECODING_FIELDS = {
    "MTP": DECODING_BASE_FIELDS
    | {"num_nextn_predict_layers", "use_relaxed_acceptance_for_thinking", "relaxed_topk",
       "relaxed_delta", "use_mtp_vanilla", "mtp_eagle_one_model"},
    "Eagle3": DECODING_BASE_FIELDS
    | {"eagle_choices", "greedy_sampling", "posterior_threshold", "use_dynamic_tree",
       "dynamic_tree_max_topK", "num_eagle_layers", "eagle3_one_model"},
    "NGram": DECODING_BASE_FIELDS
    | {"max_matching_ngram_size", "is_keep_all", "is_use_oldest", "is_public_pool"},
    "DraftTarget": DECODING_BASE_FIELDS,
}  # fmt: skip

MODEL = "org/model"
DRAFT = "org/draft"


def _configs():
    grid = itertools.product(
        [(1, 1, 1, 1), (2, 1, 1, 1), (4, 2, 1, 1), (2, 1, 2, 4), (1, 1, 8, 8)],
        ["bf16", "fp8", "nvfp4"],  # every format comes from the checkpoint: no flag differs
        ["bf16", "fp8"],
        [None, 64],
        [("none", 0), ("ngram", 3), ("eagle3", 5), ("mtp", 1), ("draft_model", 4)],
        [None, 16, 128],
        [None, 4096],
    )
    for (tp, pp, dp, ep), quant, kv, batch, (method, k), block, chunk in grid:
        yield EndpointConfig(
            engine="trtllm",
            tp=tp,
            pp=pp,
            dp=dp,
            ep=ep,
            quantization=quant,
            kv_cache_dtype=kv,
            max_batch_size=batch,
            spec_method=method,
            spec_draft_len=k,
            kv_block_size=block,
            max_num_batched_tokens=chunk,
        )


def test_every_flag_and_yaml_field_is_documented(b200, documented_parser):
    parser = documented_parser(TRTLLM_OPTIONS, positional=("model",))
    configs = list(_configs())
    assert len(configs) > 1000
    for config in configs:
        art = trtllm_artifacts(config, MODEL, b200, speculative_model=DRAFT)
        assert art.argv[0] == "trtllm-serve"
        parsed = parser.parse_args(art.argv[1:])
        assert parsed.model == MODEL
        assert parsed.extra_llm_api_options == EXTRA_OPTIONS_FILE
        assert set(art.files) == {EXTRA_OPTIONS_FILE}
        options = yaml.safe_load(art.files[EXTRA_OPTIONS_FILE])
        assert options == extra_llm_api_options(config, DRAFT)
        assert set(options) <= LLM_API_FIELDS
        assert set(options["kv_cache_config"]) <= KV_CACHE_FIELDS
        assert options["kv_cache_config"]["dtype"] in KV_CACHE_DTYPES
        spec = options.get("speculative_config")
        if spec is not None:
            assert set(spec) <= DECODING_FIELDS[spec["decoding_type"]]
            assert spec["max_draft_len"] == config.spec_draft_len


def test_defaults(h100):
    art = trtllm_artifacts(EndpointConfig(engine="trtllm"), MODEL, h100)
    assert art.argv == [
        "trtllm-serve",
        MODEL,
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
        "--backend",
        "pytorch",
        "--extra_llm_api_options",
        EXTRA_OPTIONS_FILE,
    ]
    assert yaml.safe_load(art.files[EXTRA_OPTIONS_FILE]) == {"kv_cache_config": {"dtype": "auto"}}
    assert art.notes == [] and shlex.split(art.command) == art.argv


@pytest.mark.parametrize(
    ("knobs", "flag", "value"),
    [
        ({"tp": 4}, "--tp_size", "4"),
        ({"tp": 2, "pp": 2}, "--pp_size", "2"),
        ({"tp": 1, "dp": 8}, "--tp_size", "8"),
        ({"tp": 2, "dp": 2, "ep": 4}, "--ep_size", "4"),
        ({"max_batch_size": 128}, "--max_batch_size", "128"),
        ({"max_num_batched_tokens": 8192}, "--max_num_tokens", "8192"),
    ],
)
def test_knob_maps_to_flag(h100, value_of, knobs, flag, value):
    art = trtllm_artifacts(EndpointConfig(engine="trtllm", **knobs), MODEL, h100)
    assert value_of(art.argv, flag) == value


@pytest.mark.parametrize(
    ("knobs", "expected"),
    [
        ({"kv_cache_dtype": "fp8"}, {"kv_cache_config": {"dtype": "fp8"}}),
        ({"kv_block_size": 64}, {"kv_cache_config": {"dtype": "auto", "tokens_per_block": 64}}),
        ({"dp": 4}, {"kv_cache_config": {"dtype": "auto"}, "enable_attention_dp": True}),
        (
            {"max_num_batched_tokens": 2048},
            {"kv_cache_config": {"dtype": "auto"}, "enable_chunked_prefill": True},
        ),
    ],
)
def test_knob_maps_to_yaml(knobs, expected):
    assert extra_llm_api_options(EndpointConfig(engine="trtllm", **knobs)) == expected


@pytest.mark.parametrize(
    ("method", "expected", "two_model"),
    [
        ("ngram", {"decoding_type": "NGram", "max_draft_len": 3, "max_matching_ngram_size": 4}, 1),
        (
            "eagle3",
            {"decoding_type": "Eagle3", "max_draft_len": 3, "speculative_model_dir": DRAFT},
            0,
        ),
        (
            "mtp",
            {"decoding_type": "MTP", "max_draft_len": 3, "num_nextn_predict_layers": 3},
            0,
        ),
        (
            "draft_model",
            {"decoding_type": "DraftTarget", "max_draft_len": 3, "speculative_model_dir": DRAFT},
            1,
        ),
    ],
)
def test_speculative_config(method, expected, two_model):
    config = EndpointConfig(engine="trtllm", spec_method=method, spec_draft_len=3)
    draft = None if method in ("ngram", "mtp") else DRAFT
    options = extra_llm_api_options(config, draft)
    assert options["speculative_config"] == expected
    assert options.get("disable_overlap_scheduler", False) is bool(two_model)


def test_eagle_one_and_two_are_refused(h100):
    config = EndpointConfig(engine="trtllm", spec_method="eagle", spec_draft_len=2)
    with pytest.raises(InvalidInputError, match="EAGLE-3") as err:
        trtllm_artifacts(config, MODEL, h100, speculative_model=DRAFT)
    assert err.value.field == "spec_method"
    assert "eagle3" in str(err.value)


def test_quantization_comes_from_the_checkpoint(h100, b200):
    for quant in ("fp8", "fp8_block", "int4_wo"):
        art = trtllm_artifacts(EndpointConfig(engine="trtllm", quantization=quant), MODEL, h100)
        assert not any("quant" in f for f in art.argv if f.startswith("--"))
        assert any(quant in n and "checkpoint" in n for n in art.notes)
    native = trtllm_artifacts(
        EndpointConfig(engine="trtllm", quantization="nvfp4"),
        MODEL,
        b200,
        checkpoint_quantization="nvfp4",
    )
    assert native.notes == []


def test_attention_dp_with_tensor_parallel_attention_gets_a_note(h100):
    art = trtllm_artifacts(EndpointConfig(engine="trtllm", tp=2, dp=4), MODEL, h100)
    assert any("attention" in n and "tp=2" in n for n in art.notes)
    plain = trtllm_artifacts(EndpointConfig(engine="trtllm", tp=1, dp=8), MODEL, h100)
    assert plain.notes == []


def test_errors_name_the_field(h100, a100):
    with pytest.raises(InvalidInputError) as err:
        trtllm_artifacts(EndpointConfig(engine="trtllm", kv_cache_dtype="fp8"), MODEL, a100)
    assert err.value.field == "kv_cache_dtype"
    with pytest.raises(InvalidInputError) as err:
        trtllm_artifacts(EndpointConfig(engine="trtllm"), "  ", h100)
    assert err.value.field == "model_id"
    with pytest.raises(InvalidInputError) as err:
        trtllm_artifacts(
            EndpointConfig(engine="trtllm", spec_method="draft_model", spec_draft_len=2),
            MODEL,
            h100,
        )
    assert err.value.field == "speculative_model"


def test_dispatcher_picks_the_trtllm_builder(h100):
    config = EndpointConfig(engine="trtllm", tp=4, kv_block_size=64)
    assert launch_artifacts(config, MODEL, h100) == trtllm_artifacts(config, MODEL, h100)
