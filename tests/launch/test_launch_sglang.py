"""SGLang: every flag we emit is one of SGLang's documented server arguments, and each knob
maps to the right flag and value."""

from __future__ import annotations

import itertools
import shlex

import pytest

from optimizer.domain import EndpointConfig
from optimizer.errors import InvalidInputError
from optimizer.launch import launch_artifacts, sglang_artifacts

# SGLang's documented server arguments (the ones a serving config touches), transcribed from
# sgl-project/sglang docs/advanced_features/server_arguments.md ("Options" column) and
# docs/advanced_features/speculative_decoding.md.
SGLANG_QUANTIZATION = (
    "awq", "fp8", "gptq", "marlin", "gptq_marlin", "awq_marlin", "bitsandbytes", "gguf",
    "modelopt", "modelopt_fp8", "modelopt_fp4", "petit_nvfp4", "w8a8_int8", "w8a8_fp8",
    "moe_wna16", "qoq", "w4afp8", "mxfp4", "mxfp8", "auto-round", "compressed-tensors",
    "modelslim", "quark_int4fp8_moe",
)  # fmt: skip
SGLANG_KV_CACHE_DTYPES = ("auto", "fp8_e5m2", "fp8_e4m3", "bf16", "bfloat16", "fp4_e2m1")
SGLANG_SPEC_ALGORITHMS = ("EAGLE", "EAGLE3", "NEXTN", "STANDALONE", "NGRAM")
SGLANG_OPTIONS: dict[str, object] = {
    "--model-path": str,
    "--host": str,
    "--port": int,
    "--quantization": SGLANG_QUANTIZATION,
    "--quantization-param-path": str,
    "--kv-cache-dtype": SGLANG_KV_CACHE_DTYPES,
    "--mem-fraction-static": str,
    "--max-running-requests": int,
    "--chunked-prefill-size": int,
    "--page-size": int,
    "--tensor-parallel-size": int,
    "--tp-size": int,
    "--pipeline-parallel-size": int,
    "--pp-size": int,
    "--data-parallel-size": int,
    "--dp-size": int,
    "--expert-parallel-size": int,
    "--ep-size": int,
    "--enable-dp-attention": "flag",
    "--cuda-graph-max-bs": int,
    "--speculative-algorithm": SGLANG_SPEC_ALGORITHMS,
    "--speculative-draft-model-path": str,
    "--speculative-num-steps": int,
    "--speculative-eagle-topk": int,
    "--speculative-num-draft-tokens": int,
}

MODEL = "org/model"
DRAFT = "org/draft"
LAUNCHER = ["python", "-m", "sglang.launch_server"]


def _configs():
    grid = itertools.product(
        [(1, 1, 1, 1), (2, 1, 1, 1), (4, 2, 1, 1), (2, 1, 2, 4), (1, 1, 8, 8)],
        ["bf16", "fp8", "fp8_block", "int4_wo", "nvfp4", "mxfp4"],
        ["bf16", "fp8"],
        [None, 64],
        [("none", 0), ("ngram", 3), ("eagle", 2), ("eagle3", 5), ("mtp", 1), ("draft_model", 4)],
        [None, 1, 64],
        [None, 4096],
    )
    for (tp, pp, dp, ep), quant, kv, batch, (method, k), page, chunk in grid:
        if dp > 1 and method in ("ngram", "draft_model"):
            continue
        yield EndpointConfig(
            engine="sglang",
            tp=tp,
            pp=pp,
            dp=dp,
            ep=ep,
            quantization=quant,
            kv_cache_dtype=kv,
            max_batch_size=batch,
            spec_method=method,
            spec_draft_len=k,
            kv_block_size=page,
            max_num_batched_tokens=chunk,
        )


def test_every_emitted_flag_is_documented(b200, documented_parser):
    parser = documented_parser(SGLANG_OPTIONS)
    configs = list(_configs())
    assert len(configs) > 1000
    for config in configs:
        art = sglang_artifacts(config, MODEL, b200, speculative_model=DRAFT)
        assert art.argv[:3] == LAUNCHER
        parsed = parser.parse_args(art.argv[3:])
        assert parsed.model_path == MODEL
        eagle_knobs = (
            parsed.speculative_num_steps,
            parsed.speculative_eagle_topk,
            parsed.speculative_num_draft_tokens,
        )
        if parsed.speculative_algorithm in (None, "NGRAM"):
            assert parsed.speculative_num_steps is None and parsed.speculative_eagle_topk is None
        else:
            # SGLang's docs: set all three explicitly or none; topk 1 => draft = steps + 1
            assert None not in eagle_knobs
            assert parsed.speculative_eagle_topk == 1
            assert parsed.speculative_num_draft_tokens == parsed.speculative_num_steps + 1
            assert parsed.speculative_num_steps == config.spec_draft_len


def test_defaults_leave_everything_to_sglang(h100):
    art = sglang_artifacts(EndpointConfig(engine="sglang"), MODEL, h100)
    assert art.argv == [*LAUNCHER, "--model-path", MODEL, "--host", "0.0.0.0", "--port", "8000"]
    assert art.files == {} and art.notes == [] and art.health_path == "/health"
    assert shlex.split(art.command) == art.argv


@pytest.mark.parametrize(
    ("knobs", "flag", "value"),
    [
        ({"tp": 4}, "--tp-size", "4"),
        ({"tp": 2, "pp": 4}, "--pp-size", "4"),
        ({"tp": 2, "dp": 4}, "--tp-size", "8"),  # SGLang's tp-size counts every GPU
        ({"tp": 2, "dp": 4}, "--dp-size", "4"),
        ({"tp": 2, "dp": 4, "ep": 8}, "--ep-size", "8"),
        ({"quantization": "fp8"}, "--quantization", "fp8"),
        ({"quantization": "fp8_block"}, "--quantization", "fp8"),
        ({"quantization": "int4_wo"}, "--quantization", "awq_marlin"),
        ({"quantization": "nvfp4"}, "--quantization", "modelopt_fp4"),
        ({"quantization": "mxfp4"}, "--quantization", "mxfp4"),
        ({"kv_cache_dtype": "fp8"}, "--kv-cache-dtype", "fp8_e4m3"),
        ({"max_batch_size": 48}, "--max-running-requests", "48"),
        ({"kv_block_size": 16}, "--page-size", "16"),
        ({"max_num_batched_tokens": 2048}, "--chunked-prefill-size", "2048"),
    ],
)
def test_knob_maps_to_flag(b200, value_of, knobs, flag, value):
    art = sglang_artifacts(EndpointConfig(engine="sglang", **knobs), MODEL, b200)
    assert value_of(art.argv, flag) == value


def test_attention_data_parallelism_is_switched_on_with_dp(h100):
    assert (
        "--enable-dp-attention"
        in sglang_artifacts(EndpointConfig(engine="sglang", tp=1, dp=8), MODEL, h100).argv
    )
    assert (
        "--enable-dp-attention"
        not in sglang_artifacts(EndpointConfig(engine="sglang", tp=8), MODEL, h100).argv
    )


@pytest.mark.parametrize(
    ("method", "algorithm", "draft_path"),
    [
        ("eagle", "EAGLE", True),
        ("eagle3", "EAGLE3", True),
        ("mtp", "NEXTN", False),
        ("draft_model", "STANDALONE", True),
    ],
)
def test_speculative_algorithms(h100, value_of, method, algorithm, draft_path):
    config = EndpointConfig(engine="sglang", spec_method=method, spec_draft_len=3)
    draft = DRAFT if draft_path else None
    art = sglang_artifacts(config, MODEL, h100, speculative_model=draft)
    assert value_of(art.argv, "--speculative-algorithm") == algorithm
    assert value_of(art.argv, "--speculative-num-steps") == "3"
    assert value_of(art.argv, "--speculative-num-draft-tokens") == "4"
    assert ("--speculative-draft-model-path" in art.argv) is draft_path


def test_ngram_sets_only_the_draft_token_count(h100, value_of):
    config = EndpointConfig(engine="sglang", spec_method="ngram", spec_draft_len=5)
    art = sglang_artifacts(config, MODEL, h100)
    assert value_of(art.argv, "--speculative-algorithm") == "NGRAM"
    assert value_of(art.argv, "--speculative-num-draft-tokens") == "6"
    assert "--speculative-num-steps" not in art.argv
    assert any("CUDA only" in n for n in art.notes)


@pytest.mark.parametrize("method", ["ngram", "draft_model"])
def test_methods_without_dp_attention_support_are_refused(h100, method):
    config = EndpointConfig(engine="sglang", dp=2, spec_method=method, spec_draft_len=2)
    with pytest.raises(InvalidInputError, match="data parallelism") as err:
        sglang_artifacts(config, MODEL, h100, speculative_model=DRAFT)
    assert err.value.field == "spec_method"


def test_fp8_kv_cache_note_and_gptq(h100, value_of):
    art = sglang_artifacts(EndpointConfig(engine="sglang", kv_cache_dtype="fp8"), MODEL, h100)
    assert any("--quantization-param-path" in n for n in art.notes)
    gptq = sglang_artifacts(
        EndpointConfig(engine="sglang", quantization="int4_wo"), MODEL, h100, int4_format="gptq"
    )
    assert value_of(gptq.argv, "--quantization") == "gptq_marlin"


def test_errors_name_the_field(h100, a100):
    with pytest.raises(InvalidInputError) as err:
        sglang_artifacts(EndpointConfig(engine="vllm"), MODEL, h100)
    assert err.value.field == "engine"
    with pytest.raises(InvalidInputError) as err:
        sglang_artifacts(EndpointConfig(engine="sglang", quantization="mxfp4"), MODEL, a100)
    assert err.value.field == "quantization"
    with pytest.raises(InvalidInputError) as err:
        sglang_artifacts(
            EndpointConfig(engine="sglang", spec_method="eagle3", spec_draft_len=2), MODEL, h100
        )
    assert err.value.field == "speculative_model"
    with pytest.raises(InvalidInputError) as err:
        sglang_artifacts(EndpointConfig(engine="sglang"), MODEL, h100, port=70000)
    assert err.value.field == "port"
    with pytest.raises(InvalidInputError) as err:
        sglang_artifacts(
            EndpointConfig(engine="sglang"), MODEL, h100, checkpoint_quantization="int3"
        )
    assert err.value.field == "checkpoint_quantization"


def test_multi_node_replica_gets_a_note(gb200):
    art = sglang_artifacts(EndpointConfig(engine="sglang", tp=4, pp=2), MODEL, gb200)
    assert any("--nnodes" in n for n in art.notes)


def test_dispatcher_picks_the_sglang_builder(h100):
    config = EndpointConfig(engine="sglang", tp=2, max_batch_size=32)
    assert launch_artifacts(config, MODEL, h100) == sglang_artifacts(config, MODEL, h100)
