"""Cold start: weight bytes per node over bandwidth plus engine start-up, by hand."""

from __future__ import annotations

import pytest

from optimizer.capacity import (
    ColdStartAssumptions,
    cold_start_breakdown,
    cold_start_seconds,
)
from optimizer.catalog import load_model_spec
from optimizer.domain import EndpointConfig
from optimizer.domain.model_spec import BYTES_PER_PARAM
from optimizer.errors import InvalidInputError


@pytest.fixture(scope="module")
def llama8b():
    return load_model_spec("meta-llama/Llama-3.1-8B")


@pytest.fixture(scope="module")
def deepseek():
    return load_model_spec("deepseek-ai/DeepSeek-V3")


def test_dense_model_by_hand(llama8b):
    config = EndpointConfig(engine="vllm")
    expected = llama8b.weight_bytes("bf16") / 2.0e9 + 45.0 + 20.0
    assert cold_start_seconds(llama8b, config) == pytest.approx(expected)
    parts = cold_start_breakdown(llama8b, config)
    assert parts.weight_bytes_per_gpu == pytest.approx(llama8b.weight_bytes("bf16"))
    assert parts.total_s == pytest.approx(expected)


def test_one_node_reads_the_whole_model_whatever_the_tp(llama8b):
    one = cold_start_breakdown(llama8b, EndpointConfig(engine="sglang", tp=1))
    eight = cold_start_breakdown(llama8b, EndpointConfig(engine="sglang", tp=8))
    assert eight.weight_bytes_per_gpu == pytest.approx(one.weight_bytes_per_gpu / 8)
    assert eight.weight_load_s == pytest.approx(one.weight_load_s)


def test_nodes_load_in_parallel(llama8b):
    config = EndpointConfig(engine="vllm", tp=8, pp=2)
    one_node = cold_start_breakdown(llama8b, EndpointConfig(engine="vllm", tp=8))
    two_nodes = cold_start_breakdown(llama8b, config, gpus_per_node=8)
    assert two_nodes.weight_load_s == pytest.approx(one_node.weight_load_s / 2)


def test_moe_experts_split_over_tp_times_dp(deepseek):
    q = "fp8_block"
    total = deepseek.weight_bytes(q)
    routed = deepseek.routed_expert_params * BYTES_PER_PARAM[q]
    config = EndpointConfig(engine="sglang", tp=1, dp=8, ep=8, quantization=q)
    parts = cold_start_breakdown(deepseek, config)
    expected_per_gpu = (total - routed) + routed / 8  # attention copied in each dp group
    assert parts.weight_bytes_per_gpu == pytest.approx(expected_per_gpu)
    assert parts.weight_bytes_per_node == pytest.approx(8 * expected_per_gpu)
    tp8 = cold_start_breakdown(deepseek, EndpointConfig(engine="sglang", tp=8, quantization=q))
    assert tp8.weight_bytes_per_node == pytest.approx(total)
    assert parts.weight_load_s > tp8.weight_load_s  # dp re-reads the attention weights


def test_quantization_shrinks_the_load(llama8b):
    bf16 = cold_start_breakdown(llama8b, EndpointConfig(engine="vllm"))
    fp8 = cold_start_breakdown(llama8b, EndpointConfig(engine="vllm", quantization="fp8"))
    assert fp8.weight_load_s < 0.6 * bf16.weight_load_s


def test_assumptions_are_overridable(llama8b):
    config = EndpointConfig(engine="trtllm", tp=2)
    fast = ColdStartAssumptions(
        weight_read_gb_s=8.0,
        engine_startup_seconds={"trtllm": 10.0},
        cuda_graph_capture_seconds={"trtllm": 5.0},
        image_pull_seconds=30.0,
        node_provision_seconds=120.0,
    )
    expected = 120.0 + 30.0 + llama8b.weight_bytes("bf16") / 8.0e9 + 10.0 + 5.0
    assert cold_start_seconds(llama8b, config, fast) == pytest.approx(expected)
    # engines not named keep their defaults
    assert fast.engine_startup_seconds.vllm == ColdStartAssumptions().engine_startup_seconds.vllm


def test_defaults_differ_by_engine(llama8b):
    times = {
        engine: cold_start_seconds(llama8b, EndpointConfig(engine=engine))
        for engine in ("vllm", "sglang", "trtllm")
    }
    assert len(set(times.values())) == 3


def test_user_input_errors_name_the_key():
    with pytest.raises(InvalidInputError, match="weight_read_gb_s"):
        ColdStartAssumptions.from_mapping({"weight_read_gb_s": 0})
    with pytest.raises(InvalidInputError, match="engine_startup_seconds"):
        ColdStartAssumptions.from_mapping({"engine_startup_seconds": {"tgi": 3}})
    with pytest.raises(InvalidInputError, match="typo"):
        ColdStartAssumptions.from_mapping({"typo": 1})
    parsed = ColdStartAssumptions.from_mapping({"image_pull_seconds": 45})
    assert parsed.image_pull_seconds == 45.0


def test_bad_gpus_per_node(llama8b):
    with pytest.raises(InvalidInputError) as err:
        cold_start_seconds(llama8b, EndpointConfig(engine="vllm"), gpus_per_node=0)
    assert err.value.field == "gpus_per_node"


def test_describe_lists_every_term():
    lines = ColdStartAssumptions().describe("sglang")
    text = " ".join(lines)
    assert "2 GB/s" in text and "sglang starts in 40 s" in text and "20 s" in text
    assert "image pull 0 s" in text
