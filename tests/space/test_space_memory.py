"""The memory model: closed-form figures on a tiny model, and the cases that must hold."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from optimizer.domain.enums import Quantization
from optimizer.errors import InvalidInputError
from optimizer.resources import aiconfigurator_dir
from optimizer.space.memory import (
    NCCL_BUFFER_BYTES,
    RUNTIME_OVERHEAD_BYTES,
    MemoryFractionMode,
    estimate_memory,
)

GIB = 2**30
# Tiny model at tp=2, pp=2, fp8 weights, bf16 KV, 4 sequences of 100 tokens, blocks of 16,
# a 256-token chunk: every figure below is written out by hand.
STAGE = 2 / 4  # two of four layers on the busiest stage
WEIGHTS = (40_960 + 196_608) * 1.0 / 2 * STAGE + 576 * 2 * STAGE + 64_000 * 2 / 2  # 123_968
TOKENS = 112  # 100 rounded up to 7 blocks of 16
KV_PER_SEQUENCE = 2 * (8 + 8) * 2 * 4 * TOKENS / 2 * STAGE  # KV heads split over tp=2: 7_168
ACTIVATIONS = 256 * (2 * 64 + max(8 * 16 / 2 + 2 * 16 / 2, 3 * 256 / 2)) * 2 + 4 * 1000 * 4
OVERHEAD = 551 * 2**20 + 358_612_992  # runtime + NCCL buffers for a 2-GPU group
USABLE = 4 * GIB


def _tiny(model, gpu, **overrides):
    args = dict(
        tp=2,
        pp=2,
        quantization="fp8",
        kv_cache_dtype="bf16",
        max_batch_size=4,
        seq_len=100,
        kv_block_size=16,
        max_num_batched_tokens=256,
        memory_fraction=0.9,
    )
    args.update(overrides)
    return estimate_memory(model, gpu, **args)


def test_closed_form_breakdown_total_mode(tiny_model, test_gpu):
    m = _tiny(tiny_model, test_gpu).item()
    assert WEIGHTS == 123_968 and KV_PER_SEQUENCE == 7_168 and ACTIVATIONS == 278_144
    assert m["weights"] == pytest.approx(WEIGHTS)
    assert m["kv_per_sequence"] == pytest.approx(KV_PER_SEQUENCE)
    assert m["kv"] == pytest.approx(4 * KV_PER_SEQUENCE)
    assert m["activations"] == pytest.approx(ACTIVATIONS)
    assert m["overhead"] == pytest.approx(OVERHEAD)
    assert m["usable"] == USABLE
    kv_budget = 0.9 * USABLE - (WEIGHTS + ACTIVATIONS + OVERHEAD)
    assert m["kv_budget"] == pytest.approx(kv_budget)
    assert m["budget"] == pytest.approx(0.9 * USABLE)
    assert m["fits"] is True
    assert m["max_sequences"] == math.floor(kv_budget / KV_PER_SEQUENCE)


def test_closed_form_budget_static_and_free_modes(tiny_model, test_gpu):
    static = _tiny(tiny_model, test_gpu, fraction_mode=MemoryFractionMode.STATIC).item()
    expected = min(0.9 * USABLE - WEIGHTS - OVERHEAD, USABLE - WEIGHTS - ACTIVATIONS - OVERHEAD)
    assert static["kv_budget"] == pytest.approx(expected)
    free = _tiny(tiny_model, test_gpu, fraction_mode="free").item()
    assert free["kv_budget"] == pytest.approx(0.9 * (USABLE - WEIGHTS - ACTIVATIONS - OVERHEAD))


def test_static_mode_keeps_room_for_activations(tiny_model, test_gpu):
    # with f = 1 the static pool would take everything; activations must still fit
    m = _tiny(tiny_model, test_gpu, fraction_mode="static", memory_fraction=1.0).item()
    assert m["kv_budget"] == pytest.approx(USABLE - WEIGHTS - ACTIVATIONS - OVERHEAD)


def test_kv_heads_are_replicated_when_tp_exceeds_them(tiny_model, test_gpu):
    per_seq = _tiny(tiny_model, test_gpu, tp=[1, 2, 4, 8], pp=1).kv_per_sequence
    full = 2 * (8 + 8) * 2 * 4 * TOKENS
    # 2 KV heads: tp=2 halves the cache; tp=4 and tp=8 still keep one head per GPU
    assert per_seq.tolist() == pytest.approx([full, full / 2, full / 2, full / 2])


def test_mla_latent_is_replicated_over_tp(tiny_mla_model, test_gpu):
    per_seq = _tiny(tiny_mla_model, test_gpu, tp=[1, 2, 4], pp=1).kv_per_sequence
    assert per_seq.tolist() == pytest.approx([(32 + 8) * 2 * 4 * TOKENS] * 3)


def test_weights_at_one_gpu_equal_the_checkpoint_bytes(llama_70b, deepseek_v3, gpus):
    for model in (llama_70b, deepseek_v3):
        for q in Quantization:
            m = estimate_memory(model, gpus["h100_sxm"], seq_len=1, quantization=q)
            assert float(m.weights) == pytest.approx(model.weight_bytes(q), rel=1e-9)


def test_weights_split_over_tp_pp_and_experts_over_tp_dp(deepseek_v3, gpus):
    model = deepseek_v3
    m = estimate_memory(model, gpus["h200_sxm"], seq_len=1, tp=[1, 8], dp=[[1], [8]])
    weights = m.weights  # rows dp 1 / 8, columns tp 1 / 8
    routed = model.routed_expert_params * 2  # bf16 bytes
    assert weights[0, 0] - weights[1, 0] == pytest.approx(routed * (1 - 1 / 8))
    assert weights[0, 1] - weights[1, 1] == pytest.approx(routed * (1 / 8 - 1 / 64))


def test_pipeline_stage_holds_the_larger_end(tiny_model, test_gpu):
    one = _tiny(tiny_model, test_gpu, pp=1, tp=1, quantization="bf16").item()["weights"]
    two = _tiny(tiny_model, test_gpu, pp=2, tp=1, quantization="bf16").item()["weights"]
    body = (40_960 + 196_608 + 576) * 2
    assert one == pytest.approx(body + (64_000 + 64_000) * 2)
    assert two == pytest.approx(body / 2 + 64_000 * 2)


def test_speculative_drafters_add_weights_and_kv(tiny_model, test_gpu):
    base = _tiny(tiny_model, test_gpu, pp=1)
    eagle = _tiny(tiny_model, test_gpu, pp=1, spec_method="eagle", spec_draft_len=3)
    eagle3 = _tiny(tiny_model, test_gpu, pp=1, spec_method="eagle3", spec_draft_len=3)
    ngram = _tiny(tiny_model, test_gpu, pp=1, spec_method="ngram", spec_draft_len=3)
    layer = 40_960 / 4 + 3 * 64 * 256  # one 16-bit decoder layer shaped like the target
    assert float(eagle.weights - base.weights) == pytest.approx(layer * 2 / 2)
    assert float(eagle3.weights - eagle.weights) == pytest.approx(3 * 64 * 64 * 2 / 2)
    assert float(ngram.weights) == pytest.approx(float(base.weights))
    # 3 lookahead slots do not cross a block boundary (100 + 3 <= 112); the head adds a layer
    assert float(ngram.kv_per_sequence) == pytest.approx(float(base.kv_per_sequence))
    assert float(eagle.kv_per_sequence) == pytest.approx(float(base.kv_per_sequence) * 5 / 4)


def test_overhead_follows_the_collective_group(tiny_model, test_gpu):
    overhead = _tiny(tiny_model, test_gpu, tp=[1, 2, 4, 8], pp=1).overhead
    expected = [RUNTIME_OVERHEAD_BYTES + NCCL_BUFFER_BYTES[g] for g in (1, 2, 4, 8)]
    assert overhead.tolist() == expected
    # a 2-stage pipeline of single GPUs still talks over NCCL
    assert float(_tiny(tiny_model, test_gpu, tp=1, pp=2).overhead) == (
        RUNTIME_OVERHEAD_BYTES + NCCL_BUFFER_BYTES[2]
    )


def test_overhead_constants_come_from_aiconfigurator():
    system = yaml.safe_load((aiconfigurator_dir() / "systems" / "h100_sxm.yaml").read_text())
    assert system["misc"]["nccl_mem"] == NCCL_BUFFER_BYTES
    text = (aiconfigurator_dir() / "systems" / "h100_sxm.yaml").read_text()
    assert "551MB" in text and RUNTIME_OVERHEAD_BYTES == 551 * 2**20


def test_arrays_broadcast(tiny_model, test_gpu):
    m = _tiny(tiny_model, test_gpu, tp=np.array([[1], [2]]), max_batch_size=[1, 2, 4])
    assert m.fits.shape == m.kv.shape == m.weights.shape == (2, 3)
    assert m.to_frame().shape[0] == 6


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quantization", "int3"),
        ("kv_cache_dtype", "fp4"),
        ("spec_method", "medusa"),
        ("tp", 0),
        ("max_batch_size", 1.5),
        ("memory_fraction", 1.2),
    ],
)
def test_bad_arguments_name_the_field(tiny_model, test_gpu, field, value):
    with pytest.raises(InvalidInputError) as info:
        _tiny(tiny_model, test_gpu, **{field: value})
    assert info.value.field == field


# --- the cases that must hold (vLLM defaults: 0.9 of the GPU, 8192-token chunk, 16-token
# blocks; 8 sequences of 2,048 tokens) ---------------------------------------------------------
def _vllm(model, gpu, **knobs):
    return estimate_memory(
        model,
        gpu,
        seq_len=2048,
        max_batch_size=8,
        max_num_batched_tokens=8192,
        kv_block_size=16,
        memory_fraction=0.9,
        **knobs,
    )


def test_llama_70b_bf16_needs_two_h100(llama_70b, gpus):
    m = _vllm(llama_70b, gpus["h100_sxm"], tp=[1, 2])
    assert m.fits.tolist() == [False, True]
    assert m.weights[0] / GIB == pytest.approx(131.4, abs=0.1)  # 70.55 B params x 2 bytes
    assert m.weights[1] / GIB == pytest.approx(65.7, abs=0.1)
    assert m.kv[1] / GIB == pytest.approx(2.5)  # 8 x 2048 x 320 KiB / 2


def test_llama_405b_needs_fp8_on_eight_h100(llama_405b, gpus):
    m = _vllm(llama_405b, gpus["h100_sxm"], tp=8, quantization=["bf16", "fp8"])
    assert m.fits.tolist() == [False, True]
    layouts = _vllm(llama_405b, gpus["h100_sxm"], tp=[8, 4, 2], pp=[1, 2, 4])
    assert not layouts.fits.any()  # no 8-GPU layout holds 405B in bf16
