"""The step prior against hand sums of its operators, and its closed-loop shape."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.catalog import get_gpu
from optimizer.domain.gpu import GPUSpec
from optimizer.domain.model_spec import ModelSpec
from optimizer.perf import KernelLibrary
from optimizer.perf.closed_loop import closed_loop_prior
from optimizer.perf.step import (
    LAYER_OVERHEAD_MS,
    STEP_OVERHEAD_MS,
    decode_step_ms,
    kernel_library,
    prefill_ms,
    step_terms,
)

HIDDEN, HEADS, KV_HEADS, HEAD_DIM, INTER, VOCAB = 1024, 8, 2, 128, 4096, 32000


@pytest.fixture(scope="module")
def tiny() -> ModelSpec:
    """A one-layer dense GQA model."""
    attention = HIDDEN * HEADS * HEAD_DIM * 2 + 2 * HIDDEN * KV_HEADS * HEAD_DIM
    return ModelSpec(
        model_id="test/tiny",
        architecture="LlamaForCausalLM",
        num_layers=1,
        hidden_size=HIDDEN,
        num_attention_heads=HEADS,
        num_kv_heads=KV_HEADS,
        head_dim=HEAD_DIM,
        v_head_dim=HEAD_DIM,
        vocab_size=VOCAB,
        intermediate_size=INTER,
        embedding_params=VOCAB * HIDDEN,
        lm_head_params=VOCAB * HIDDEN,
        attention_params=attention,
        dense_mlp_params=3 * HIDDEN * INTER,
        routed_expert_params=0,
    )


@pytest.fixture(scope="module")
def gpu() -> GPUSpec:
    return get_gpu("h100_sxm").model_copy(update={"id": "test_roofline_gpu", "sm": None})


@pytest.fixture(scope="module")
def roofline(gpu) -> KernelLibrary:
    return KernelLibrary.roofline_only(gpu)


def test_decode_step_is_the_hand_sum_of_its_operators(tiny, gpu, roofline):
    batch, kv_len, tp = 16, 2048, 2
    attn_n = (HEADS * HEAD_DIM + 2 * KV_HEADS * HEAD_DIM) / tp  # q, k, v outputs
    attn_n += HEADS * HEAD_DIM * HIDDEN / HIDDEN / tp  # o projection, as equal weight bytes
    gemm = roofline.gemm(batch, attn_n, HIDDEN, "bf16")
    gemm += roofline.gemm(batch, 2 * INTER / tp, HIDDEN, "bf16")
    gemm += roofline.gemm(batch, HIDDEN, INTER / tp, "bf16")
    attention = roofline.generation_attention(
        batch, kv_len, HEADS / tp, KV_HEADS / tp, HEAD_DIM, "bf16"
    )
    comm = 2 * roofline.all_reduce(batch * HIDDEN * 2, tp)
    lm_head = roofline.gemm(batch, VOCAB / tp, HIDDEN, "bf16")
    overhead = STEP_OVERHEAD_MS + LAYER_OVERHEAD_MS
    expected = gemm + attention + comm + lm_head + overhead

    got = decode_step_ms(
        tiny, gpu, roofline, batch=batch, kv_len=kv_len, quantization="bf16", tp=tp
    )
    assert got == pytest.approx(float(expected), rel=1e-9)
    terms = step_terms(
        tiny,
        gpu,
        roofline,
        quantization="bf16",
        kv_dtype="bf16",
        tp=tp,
        dp=1,
        ep=1,
        decode_seqs=batch,
        kv_len=kv_len,
    )
    assert terms.comm_ms == pytest.approx(float(comm))
    assert terms.moe_ms == 0.0


def test_decode_step_at_least_reads_the_weights(tiny, gpu, roofline):
    weights = tiny.weight_bytes("bf16") - tiny.embedding_params * 2
    lower_bound_ms = weights / (gpu.mem_bw_tb_s * 1e12) * 1e3
    got = decode_step_ms(tiny, gpu, roofline, batch=1, kv_len=1, quantization="bf16")
    assert lower_bound_ms < got < 20 * lower_bound_ms + STEP_OVERHEAD_MS + 1.0


def test_prefill_grows_with_tokens_and_requests(tiny, gpu, roofline):
    t = prefill_ms(tiny, gpu, roofline, isl=np.array([128, 1024, 8192]), quantization="bf16")
    assert np.all(np.diff(t) > 0)
    many = prefill_ms(tiny, gpu, roofline, isl=1024, batch=8, quantization="bf16")
    assert many > t[1]


def test_fractional_prefill_interpolates_between_none_and_one(tiny, gpu, roofline):
    kwargs = {"quantization": "bf16", "kv_dtype": "bf16", "tp": 1, "dp": 1, "ep": 1}
    share = [
        float(
            step_terms(
                tiny,
                gpu,
                roofline,
                decode_seqs=8,
                kv_len=512,
                prefill_seqs=p,
                prefill_len=1024,
                **kwargs,
            ).total_ms
        )
        for p in (0.0, 0.5, 1.0)
    ]
    assert share[0] < share[1] < share[2]


@pytest.mark.slow
def test_closed_loop_prior_is_monotone_in_concurrency_and_input_length():
    from optimizer.catalog import load_model_spec

    gpu = get_gpu("h100_sxm")
    model = load_model_spec("meta-llama/Llama-3.1-8B-Instruct")
    conc = np.array([1, 4, 16, 64, 256, 1024, 4096])
    prior = closed_loop_prior(
        model,
        gpu,
        kernel_library(gpu),
        quantization="bf16",
        kv_dtype="bf16",
        tp=1,
        dp=1,
        ep=1,
        concurrency=conc,
        isl=1024,
        osl=512,
    )
    assert np.all(np.diff(prior.tpot_ms) >= 0)
    assert np.all(np.diff(prior.ttft_ms) >= 0)
    isl = np.array([128, 512, 2048, 8192])
    by_isl = closed_loop_prior(
        model,
        gpu,
        kernel_library(gpu),
        quantization="bf16",
        kv_dtype="bf16",
        tp=1,
        dp=1,
        ep=1,
        concurrency=64,
        isl=isl,
        osl=512,
    )
    assert np.all(np.diff(by_isl.tpot_ms) >= 0)
    assert np.all(np.diff(by_isl.ttft_ms) >= 0)
    frame = prior.to_frame()
    assert len(frame) == len(conc)
    assert {"ttft_ms", "tpot_ms", "decode_gemm_ms", "kv_capacity"} <= set(frame.columns)


@pytest.mark.slow
@pytest.mark.parametrize("concurrency", [24, 200, 700])
def test_closed_loop_tpot_mixes_steps_with_whole_prefills(concurrency):
    """TPOT is the mean of decode steps holding floor(a) and floor(a) + 1 prefills,
    a = B / osl prefills per step, weighted so that the mean count is a -- checked
    against the steps timed directly (an MoE model: its step time is concave in
    tokens, so spreading the prompt's tokens over every step would overstate TPOT)."""
    from optimizer.catalog import load_model_spec

    gpu = get_gpu("h200_sxm")
    model = load_model_spec("openai/gpt-oss-120b")
    library = kernel_library(gpu)
    knobs = {"quantization": "mxfp4", "kv_dtype": "bf16", "tp": 2, "dp": 1, "ep": 1}
    isl, osl = 2048, 256
    prior = closed_loop_prior(
        model, gpu, library, concurrency=concurrency, isl=isl, osl=osl, **knobs
    )
    arrivals = concurrency / osl
    whole, share = np.floor(arrivals), arrivals - np.floor(arrivals)

    def step(prefills: float) -> float:
        terms = step_terms(
            model,
            gpu,
            library,
            decode_seqs=concurrency,
            kv_len=isl + osl / 2,
            prefill_seqs=prefills,
            prefill_len=isl,
            **knobs,
        )
        return float(terms.total_ms)

    expected = (1 - share) * step(whole) + share * step(whole + 1)
    assert prior.tpot_ms.item() == pytest.approx(expected, rel=1e-12)
    assert prior.ttft_ms.item() == pytest.approx(0.5 * step(whole) + step(whole + 1), rel=1e-12)
    # one fractional prefill spread over every step costs more than the mix
    assert step(arrivals) > prior.tpot_ms.item()


@pytest.mark.slow
def test_moe_layers_add_expert_time():
    from optimizer.catalog import load_model_spec

    gpu = get_gpu("h200_sxm")
    model = load_model_spec("openai/gpt-oss-120b")
    terms = step_terms(
        model,
        gpu,
        kernel_library(gpu),
        quantization="mxfp4",
        kv_dtype="bf16",
        tp=np.array([1, 1]),
        dp=1,
        ep=1,
        decode_seqs=np.array([1, 256]),
        kv_len=1024,
    )
    assert np.all(terms.moe_ms > 0)
    assert terms.moe_ms[1] > terms.moe_ms[0]


def test_kernel_formats_of_block_scaled_fp8():
    from optimizer.catalog import load_model_spec
    from optimizer.domain.enums import Quantization
    from optimizer.perf.step import kernel_formats

    block = load_model_spec("Qwen/Qwen3-235B-A22B-FP8")
    assert block.native_quantization is Quantization.FP8_BLOCK
    plain = block.model_copy(update={"native_quantization": None})
    assert kernel_formats(block, "fp8") == ("fp8", "fp8_block")
    assert kernel_formats(plain, "fp8_block") == ("fp8", "fp8_block")
    assert kernel_formats(plain, "fp8") == ("fp8",)  # quantized at load: per-tensor
    assert kernel_formats(block, "nvfp4") == ("nvfp4",)
    assert kernel_formats(block, "bf16") == ("bf16",)


@pytest.mark.slow
def test_block_scaled_fp8_runs_the_fastest_measured_fp8_kernels():
    """Qwen3-235B's FP8 checkpoint is block-scaled: on H200 vLLM its experts time at
    the block-scaled Triton kernels, not the 5x slower per-tensor FlashInfer ones
    (measured TPOT at tp 4, 28 clients: 35 ms; the per-tensor prior said 103 ms)."""
    from optimizer.catalog import load_model_spec

    gpu = get_gpu("h200_sxm")
    block = load_model_spec("Qwen/Qwen3-235B-A22B-FP8")
    plain = block.model_copy(update={"native_quantization": None})
    library = kernel_library(gpu, "vllm")
    knobs = dict(
        kv_dtype="bf16", tp=4, dp=1, ep=1, decode_seqs=np.array([1.0, 28.0, 256.0]), kv_len=2000
    )

    def terms(model: ModelSpec, quantization: str):
        return step_terms(model, gpu, library, quantization=quantization, **knobs)

    served_fp8 = terms(block, "fp8")
    per_tensor = terms(plain, "fp8")
    block_scaled = terms(plain, "fp8_block")
    for family in ("gemm_ms", "moe_ms"):
        np.testing.assert_allclose(getattr(served_fp8, family), getattr(block_scaled, family))
        assert np.all(getattr(served_fp8, family) <= getattr(per_tensor, family))
    assert np.all(served_fp8.moe_ms < per_tensor.moe_ms / 2)
