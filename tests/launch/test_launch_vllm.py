"""vLLM: every flag we emit is one of vLLM's documented options, and each knob maps to
the right flag and value."""

from __future__ import annotations

import itertools
import json
import shlex

import pytest

from optimizer.domain import EndpointConfig
from optimizer.errors import InvalidInputError
from optimizer.launch import launch_artifacts, vllm_artifacts

# vLLM's documented options (the ones a serving config touches), transcribed from
# vllm-project/vllm vllm/engine/arg_utils.py (EngineArgs.add_cli_args, commit 99d7eb5) and
# vllm/entrypoints/openai/cli_args.py (FrontendArgs); value sets from
# vllm/model_executor/layers/quantization/__init__.py (QuantizationMethods),
# vllm/config/cache.py (CacheDType) and vllm/config/speculative.py (SpeculativeMethod).
VLLM_QUANTIZATION_METHODS = (
    "awq", "fp8", "fbgemm_fp8", "fp_quant", "modelopt", "modelopt_fp4", "modelopt_mxfp8",
    "modelopt_mixed", "gguf", "gptq_marlin", "awq_marlin", "gptq", "compressed-tensors",
    "bitsandbytes", "experts_int8", "quark", "moe_wna16", "torchao", "inc", "mxfp4",
    "gpt_oss_mxfp4", "online", "fp8_per_tensor", "fp8_per_block", "mxfp8",
)  # fmt: skip
VLLM_CACHE_DTYPES = (
    "auto", "bfloat16", "float16", "fp8", "fp8_e4m3", "fp8_e5m2", "fp8_inc", "fp8_ds_mla",
)  # fmt: skip
VLLM_SPECULATIVE_METHODS = {
    "ngram", "medusa", "mlp_speculator", "draft_model", "suffix", "eagle", "eagle3", "mtp",
    "deepseek_mtp", "ngram_gpu",
}  # fmt: skip
VLLM_SPECULATIVE_FIELDS = {
    "method", "num_speculative_tokens", "model", "draft_tensor_parallel_size", "quantization",
    "max_model_len", "prompt_lookup_max", "prompt_lookup_min", "disable_by_batch_size",
}  # fmt: skip
VLLM_OPTIONS: dict[str, object] = {
    "--model": str,
    "--host": str,
    "--port": int,
    "--dtype": ("auto", "half", "float16", "bfloat16", "float", "float32"),
    "--max-model-len": int,
    "--quantization": VLLM_QUANTIZATION_METHODS,
    "--distributed-executor-backend": ("ray", "mp", "uni", "external_launcher"),
    "--pipeline-parallel-size": int,
    "--tensor-parallel-size": int,
    "--data-parallel-size": int,
    "--enable-expert-parallel": "flag",
    "--block-size": int,
    "--gpu-memory-utilization": str,
    "--kv-cache-dtype": VLLM_CACHE_DTYPES,
    "--enable-prefix-caching": "flag",
    "--max-num-batched-tokens": int,
    "--max-num-seqs": int,
    "--enable-chunked-prefill": "flag",
    "--speculative-config": str,
}

MODEL = "org/model"
DRAFT = "org/draft"


def _configs():
    """A grid over every knob (valid EndpointConfigs that vLLM can run)."""
    grid = itertools.product(
        [(1, 1, 1, 1), (2, 1, 1, 1), (4, 2, 1, 1), (2, 1, 2, 4), (8, 1, 1, 8)],
        ["bf16", "fp8", "fp8_block", "int4_wo", "nvfp4", "mxfp4"],
        ["bf16", "fp8"],
        [None, 64],
        [("none", 0), ("ngram", 3), ("eagle", 2), ("eagle3", 5), ("mtp", 1), ("draft_model", 4)],
        [None, 32],
        [None, 4096],
    )
    for (tp, pp, dp, ep), quant, kv, batch, (method, k), block, chunk in grid:
        if pp > 1 and method != "none":
            continue
        yield EndpointConfig(
            engine="vllm",
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


def test_every_emitted_flag_is_documented(b200, documented_parser):
    parser = documented_parser(VLLM_OPTIONS, positional=("model_tag",))
    configs = list(_configs())
    assert len(configs) > 1000
    for config in configs:
        art = vllm_artifacts(config, MODEL, b200, speculative_model=DRAFT)
        assert art.argv[:3] == ["vllm", "serve", MODEL]
        parsed = parser.parse_args(art.argv[2:])
        assert parsed.model_tag == MODEL
        if parsed.speculative_config is not None:
            spec = json.loads(parsed.speculative_config)
            assert set(spec) <= VLLM_SPECULATIVE_FIELDS
            assert spec["method"] in VLLM_SPECULATIVE_METHODS
            assert spec["num_speculative_tokens"] == config.spec_draft_len


def test_defaults_leave_everything_to_vllm(h100):
    art = vllm_artifacts(EndpointConfig(engine="vllm"), MODEL, h100)
    assert art.argv == ["vllm", "serve", MODEL, "--host", "0.0.0.0", "--port", "8000"]
    assert art.files == {} and art.notes == []
    assert art.health_path == "/health" and art.port == 8000


@pytest.mark.parametrize(
    ("knobs", "flag", "value"),
    [
        ({"tp": 4}, "--tensor-parallel-size", "4"),
        ({"tp": 2, "pp": 2}, "--pipeline-parallel-size", "2"),
        ({"tp": 2, "dp": 4}, "--data-parallel-size", "4"),
        ({"quantization": "fp8"}, "--quantization", "fp8"),
        ({"quantization": "fp8_block"}, "--quantization", "fp8"),
        ({"quantization": "int4_wo"}, "--quantization", "awq_marlin"),
        ({"quantization": "nvfp4"}, "--quantization", "modelopt_fp4"),
        ({"quantization": "mxfp4"}, "--quantization", "mxfp4"),
        ({"kv_cache_dtype": "fp8"}, "--kv-cache-dtype", "fp8"),
        ({"max_batch_size": 96}, "--max-num-seqs", "96"),
        ({"kv_block_size": 64}, "--block-size", "64"),
        ({"max_num_batched_tokens": 2048}, "--max-num-batched-tokens", "2048"),
    ],
)
def test_knob_maps_to_flag(b200, value_of, knobs, flag, value):
    art = vllm_artifacts(EndpointConfig(engine="vllm", **knobs), MODEL, b200)
    assert value_of(art.argv, flag) == value


def test_expert_parallel_is_a_switch_over_tp_times_dp(h100):
    art = vllm_artifacts(EndpointConfig(engine="vllm", tp=2, dp=4, ep=8), MODEL, h100)
    assert "--enable-expert-parallel" in art.argv
    assert (
        "--enable-expert-parallel"
        not in vllm_artifacts(EndpointConfig(engine="vllm", tp=2, dp=4), MODEL, h100).argv
    )
    with pytest.raises(InvalidInputError, match="ep") as err:
        vllm_artifacts(EndpointConfig(engine="vllm", tp=2, dp=4, ep=4), MODEL, h100)
    assert err.value.field == "ep" and "8" in str(err.value)


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("ngram", {"method": "ngram", "num_speculative_tokens": 3}),
        ("eagle", {"method": "eagle", "num_speculative_tokens": 3, "model": DRAFT}),
        ("eagle3", {"method": "eagle3", "num_speculative_tokens": 3, "model": DRAFT}),
        ("mtp", {"method": "mtp", "num_speculative_tokens": 3, "model": DRAFT}),
        ("draft_model", {"method": "draft_model", "num_speculative_tokens": 3, "model": DRAFT}),
    ],
)
def test_speculative_config_json(h100, value_of, method, expected):
    config = EndpointConfig(engine="vllm", spec_method=method, spec_draft_len=3)
    art = vllm_artifacts(config, MODEL, h100, speculative_model=DRAFT)
    assert json.loads(value_of(art.argv, "--speculative-config")) == expected


def test_mtp_needs_no_draft_model(h100, value_of):
    config = EndpointConfig(engine="vllm", spec_method="mtp", spec_draft_len=1)
    art = vllm_artifacts(config, MODEL, h100)
    assert json.loads(value_of(art.argv, "--speculative-config")) == {
        "method": "mtp",
        "num_speculative_tokens": 1,
    }


def test_command_is_the_shell_quoted_argv(h100):
    config = EndpointConfig(engine="vllm", tp=2, spec_method="eagle3", spec_draft_len=2)
    art = vllm_artifacts(config, "org/model with space", h100, speculative_model=DRAFT)
    assert shlex.split(art.command) == art.argv
    assert '\'{"method"' in art.command  # the JSON is one quoted word


@pytest.mark.parametrize(("fmt", "value"), [("awq", "awq_marlin"), ("gptq", "gptq_marlin")])
def test_int4_format(h100, value_of, fmt, value):
    config = EndpointConfig(engine="vllm", quantization="int4_wo")
    art = vllm_artifacts(config, MODEL, h100, int4_format=fmt)
    assert value_of(art.argv, "--quantization") == value


def test_invalid_int4_format_names_the_field(h100):
    config = EndpointConfig(engine="vllm", quantization="int4_wo")
    with pytest.raises(InvalidInputError) as err:
        vllm_artifacts(config, MODEL, h100, int4_format="exl2")  # type: ignore[arg-type]
    assert err.value.field == "int4_format"


def test_pipeline_parallel_with_speculation_is_refused(h100):
    config = EndpointConfig(engine="vllm", tp=2, pp=2, spec_method="ngram", spec_draft_len=2)
    with pytest.raises(InvalidInputError, match="pipeline parallelism") as err:
        vllm_artifacts(config, MODEL, h100)
    assert err.value.field == "spec_method"


@pytest.mark.parametrize("method", ["eagle", "eagle3", "draft_model"])
def test_drafter_methods_need_a_draft_model(h100, method):
    config = EndpointConfig(engine="vllm", spec_method=method, spec_draft_len=2)
    with pytest.raises(InvalidInputError) as err:
        vllm_artifacts(config, MODEL, h100)
    assert err.value.field == "speculative_model"


@pytest.mark.parametrize(
    ("gpu", "knobs", "field"),
    [
        ("h100", {"quantization": "nvfp4"}, "quantization"),
        ("a100", {"quantization": "fp8"}, "quantization"),
        ("a100", {"kv_cache_dtype": "fp8"}, "kv_cache_dtype"),
    ],
)
def test_hardware_support_is_checked(request, gpu, knobs, field):
    with pytest.raises(InvalidInputError) as err:
        vllm_artifacts(EndpointConfig(engine="vllm", **knobs), MODEL, request.getfixturevalue(gpu))
    assert err.value.field == field


def test_other_engines_config_is_refused(h100):
    with pytest.raises(InvalidInputError) as err:
        vllm_artifacts(EndpointConfig(engine="sglang"), MODEL, h100)
    assert err.value.field == "engine"


def test_notes_for_checkpoint_draft_and_nodes(b200, h100):
    prequantized = vllm_artifacts(EndpointConfig(engine="vllm", quantization="nvfp4"), MODEL, b200)
    assert any("nvfp4" in n and MODEL in n for n in prequantized.notes)
    native = vllm_artifacts(
        EndpointConfig(engine="vllm", quantization="nvfp4"),
        MODEL,
        b200,
        checkpoint_quantization="nvfp4",
    )
    assert native.notes == []
    unused = vllm_artifacts(EndpointConfig(engine="vllm"), MODEL, h100, speculative_model=DRAFT)
    assert any("ignored" in n for n in unused.notes)
    big = vllm_artifacts(EndpointConfig(engine="vllm", tp=8, pp=2), MODEL, h100)
    assert any("16 GPUs" in n for n in big.notes)


def test_dispatcher_picks_the_vllm_builder(h100):
    config = EndpointConfig(engine="vllm", tp=2)
    assert launch_artifacts(config, MODEL, h100) == vllm_artifacts(config, MODEL, h100)
