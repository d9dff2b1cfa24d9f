"""Domain types: valid values round-trip, invalid ones name the field and allowed values."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from optimizer.domain import (
    SLO,
    EndpointConfig,
    FixedLength,
    GPUSpec,
    LogNormalLength,
    Prediction,
    ProfileRun,
    TenantClass,
    UniformLength,
    Workload,
)
from optimizer.errors import InvalidInputError, format_validation_error


def _messages(exc: ValidationError) -> str:
    return format_validation_error(exc)


def test_endpoint_config_rejects_unknown_engine_listing_allowed_values():
    with pytest.raises(ValidationError) as info:
        EndpointConfig(engine="tensorrt")
    text = _messages(info.value)
    assert text.startswith("engine:")
    for allowed in ("vllm", "sglang", "trtllm"):
        assert allowed in text


def test_endpoint_config_rejects_unknown_quantization_listing_allowed_values():
    with pytest.raises(ValidationError) as info:
        EndpointConfig(engine="vllm", quantization="int3")
    text = _messages(info.value)
    assert text.startswith("quantization:")
    assert "fp8_block" in text and "nvfp4" in text


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"spec_method": "eagle3", "spec_draft_len": 0}, "spec_draft_len"),
        ({"spec_method": "none", "spec_draft_len": 3}, "spec_draft_len"),
        ({"tp": 2, "ep": 4}, "ep"),
        ({"kv_block_size": 24}, "kv_block_size"),
        ({"tp": 0}, "tp"),
        ({"spec_draft_len": 9, "spec_method": "ngram"}, "spec_draft_len"),
    ],
)
def test_endpoint_config_inconsistent_values_name_the_field(kwargs, field):
    with pytest.raises(ValidationError) as info:
        EndpointConfig(engine="vllm", **kwargs)
    assert field in _messages(info.value)


def test_endpoint_config_counts_gpus():
    config = EndpointConfig(engine="sglang", tp=4, pp=2, dp=1, replicas=3)
    assert config.gpus_per_replica == 8
    assert config.total_gpus == 24


def test_slo_parse_units_and_bounds():
    slo = SLO.parse("ttft_p95<=2s, tpot_p99<=50ms, usd_per_mtok<=0.8, tok_s_per_user>=20")
    assert slo.ttft_p95_ms == 2000.0
    assert slo.tpot_p99_ms == 50.0
    assert slo.max_usd_per_mtok == 0.8
    assert slo.min_output_tok_s_per_user == 20.0
    assert slo.latency_bounds() == {"ttft_p95_ms": 2000.0, "tpot_p99_ms": 50.0}


@pytest.mark.parametrize("text", ["ttft_p97<=2s", "ttft_p95>=2s", "ttft_p95<=2h", "latency"])
def test_slo_parse_rejects_bad_clauses_with_allowed_list(text):
    with pytest.raises(InvalidInputError) as info:
        SLO.parse(text)
    assert info.value.field.startswith("slo")
    assert "allowed" in str(info.value)


def test_length_distribution_means_match_closed_forms():
    assert FixedLength(tokens=128).mean() == 128
    assert UniformLength(low=100, high=300).mean() == 200
    lognormal = LogNormalLength(median=1000, sigma=0.5)
    assert math.isclose(lognormal.mean(), 1000 * math.exp(0.125))


def test_uniform_length_requires_ordered_bounds():
    with pytest.raises(ValidationError, match="high"):
        UniformLength(low=10, high=5)


def test_workload_tenant_shares_must_sum_to_one_and_mix_means():
    short = TenantClass(
        name="chat", share=0.75, isl=FixedLength(tokens=1000), osl=FixedLength(tokens=200)
    )
    long = TenantClass(
        name="rag", share=0.25, isl=FixedLength(tokens=8000), osl=FixedLength(tokens=400)
    )
    workload = Workload(arrivals={"kind": "poisson", "rate": 5.0}, tenants=(short, long))
    assert workload.mean_isl() == pytest.approx(0.75 * 1000 + 0.25 * 8000)
    assert workload.mean_osl() == pytest.approx(250)
    with pytest.raises(ValidationError, match="shares must sum to 1"):
        Workload(arrivals={"kind": "poisson", "rate": 5.0}, tenants=(short,))


def test_workload_rejects_unknown_arrival_kind_naming_allowed():
    tenant = TenantClass(
        name="a", share=1.0, isl=FixedLength(tokens=10), osl=FixedLength(tokens=10)
    )
    with pytest.raises(ValidationError) as info:
        Workload(arrivals={"kind": "weibull", "rate": 1.0}, tenants=(tenant,))
    text = _messages(info.value)
    assert "arrivals" in text and "poisson" in text and "closed_loop" in text


def test_workload_simple_needs_exactly_one_load():
    assert Workload.simple(isl=2048, osl=128, concurrency=8).arrivals.concurrency == 8
    with pytest.raises(ValueError):
        Workload.simple(isl=10, osl=10)
    with pytest.raises(ValueError):
        Workload.simple(isl=10, osl=10, concurrency=1, rate=1.0)


def _gpu(**overrides) -> GPUSpec:
    base = dict(
        id="x",
        name="X",
        architecture="Hopper",
        sm=90,
        memory_gib=80,
        usable_memory_gib=79,
        mem_bw_tb_s=3.35,
        bf16_tflops=989,
        interconnect="NVLink",
        interconnect_gb_s=450,
    )
    base.update(overrides)
    return GPUSpec(**base)


@pytest.mark.parametrize(
    ("sm", "supported"),
    [
        (80, {"bf16", "int4_wo"}),
        (89, {"bf16", "int4_wo", "fp8", "fp8_block"}),
        (90, {"bf16", "int4_wo", "fp8", "fp8_block", "mxfp4"}),
        (100, {"bf16", "int4_wo", "fp8", "fp8_block", "nvfp4", "mxfp4"}),
    ],
)
def test_gpu_quantization_support_follows_architecture(sm, supported):
    gpu = _gpu(sm=sm)
    all_formats = {"bf16", "int4_wo", "fp8", "fp8_block", "nvfp4", "mxfp4"}
    assert {q for q in all_formats if gpu.supports(q)} == supported


def test_gpu_explicit_quantization_list_wins_for_non_cuda_parts():
    gpu = _gpu(sm=None, vendor="amd", quantizations=("bf16", "fp8"))
    assert gpu.supports("fp8") and not gpu.supports("nvfp4")


def test_prediction_requires_ordered_interval():
    with pytest.raises(ValidationError, match="ttft_ms"):
        Prediction(
            ttft_ms=100, tpot_ms=10, ttft_ms_lo=120, ttft_ms_hi=150, tpot_ms_lo=9, tpot_ms_hi=11
        )
    p = Prediction(
        ttft_ms=100, tpot_ms=10, ttft_ms_lo=90, ttft_ms_hi=150, tpot_ms_lo=9, tpot_ms_hi=11
    )
    assert p.e2e_ms(osl=11) == 200
    assert p.output_tok_s_per_user() == 100


def test_profile_run_needs_a_load_and_names_bad_fields():
    row = dict(
        model="m",
        gpu="h100_sxm",
        engine="vllm",
        quantization="fp8",
        tp=1,
        isl=10,
        osl=10,
        ttft_ms=1.0,
        tpot_ms=1.0,
        source="test",
        concurrency=4,
    )
    assert ProfileRun(**row).concurrency == 4
    with pytest.raises(ValidationError, match="concurrency or request_rate"):
        ProfileRun(**{**row, "concurrency": None})
    with pytest.raises(ValidationError) as info:
        ProfileRun(**{**row, "mode": "split"})
    assert "mode" in _messages(info.value) and "disagg" in _messages(info.value)
