"""Per-operator models fitted on the H100 tables: monotone, faithful, strict, transferable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.errors import InvalidInputError, NotFoundError
from optimizer.perf.operators import GemmModel, MoEModel, equivalent_prompt_length
from optimizer.perf.roofline import GpuFigures

# sizes reaching far beyond every measured grid, to cover extrapolation too
tokens = st.integers(1, 200_000)
dims = st.integers(1, 100_000)
ramps = st.lists(st.integers(1, 300_000), min_size=2, max_size=40).map(sorted)
EXAMPLES = settings(max_examples=25, deadline=None)


def non_decreasing(values: np.ndarray) -> bool:
    """Monotone up to floating-point rounding of the interpolation."""
    values = np.asarray(values, dtype=float)
    return bool((values > 0).all() and (np.diff(values) >= -1e-9 * values[1:]).all())


@EXAMPLES
@given(dims, dims, dims, ramps, st.sampled_from(["bf16", "fp8", "fp8_block"]))
def test_gemm_is_monotone_in_m_n_and_k(gemm_model, m, n, k, ramp, q):
    ramp = np.array(ramp)
    assert non_decreasing(gemm_model.predict(ramp, n, k, q))
    assert non_decreasing(gemm_model.predict(m, ramp, k, q))
    assert non_decreasing(gemm_model.predict(m, n, ramp, q))


heads = st.sampled_from([(1, 1), (8, 1), (12, 2), (28, 4), (32, 8), (64, 8), (40, 40)])
head_dims = st.sampled_from([64, 80, 128, 256])
kv_dtypes = st.sampled_from(["bf16", "fp8"])
windows = st.sampled_from([0, 128, 4096])  # none, measured, unmeasured


@EXAMPLES
@given(st.integers(1, 512), tokens, heads, head_dims, kv_dtypes, windows, ramps)
def test_prefill_attention_is_monotone_in_batch_and_prompt_length(
    context_model, batch, isl, hk, dim, kv, window, ramp
):
    h, kvh = hk
    ramp = np.array(ramp)
    assert non_decreasing(context_model.predict(batch, ramp, h, kvh, dim, kv, window))
    assert non_decreasing(
        context_model.predict(np.minimum(ramp, 4096), isl, h, kvh, dim, kv, window)
    )


@EXAMPLES
@given(st.integers(1, 4096), tokens, heads, head_dims, kv_dtypes, windows, ramps)
def test_decode_attention_is_monotone_in_batch_and_cached_length(
    generation_model, batch, kv_len, hk, dim, kv, window, ramp
):
    h, kvh = hk
    ramp = np.array(ramp)
    assert non_decreasing(generation_model.predict(batch, ramp, h, kvh, dim, kv, window))
    assert non_decreasing(generation_model.predict(ramp, kv_len, h, kvh, dim, kv, window))


@EXAMPLES
@given(
    ramps,
    st.sampled_from(
        [
            # measured configurations
            (4096, 1536, 8, 128, "bf16", 1, 1),
            (7168, 2048, 8, 256, "fp8_block", 1, 8),
            (2880, 2880, 4, 32, "mxfp4", 2, 1),
            # never measured: the regression answers
            (3000, 1000, 6, 64, "bf16", 1, 1),
            (5120, 1408, 4, 60, "fp8", 2, 2),
        ]
    ),
)
def test_moe_is_monotone_in_tokens(moe_model, ramp, config):
    hidden, inter, topk, experts, q, tp, ep = config
    assert non_decreasing(
        moe_model.predict(np.array(ramp), hidden, inter, topk, experts, q, tp, ep)
    )


@EXAMPLES
@given(st.lists(st.floats(1, 4e9), min_size=2, max_size=40).map(sorted), st.sampled_from([2, 4, 8]))
def test_all_reduce_is_monotone_in_bytes(all_reduce_model, sizes, n):
    assert non_decreasing(all_reduce_model.predict(np.array(sizes), n))


def test_models_reproduce_their_own_measurements(h100_tables, gemm_model, generation_model):
    frame = h100_tables["gemm"].frame
    bf16 = frame[(frame["quantization"] == "bf16") & (frame["m"] >= 64)]
    ape = np.abs(
        gemm_model.predict(bf16["m"], bf16["n"], bf16["k"], "bf16") / bf16["latency_ms"] - 1
    )
    assert np.median(ape) < 0.02  # measured 0.0 %: despiking and monotonicity move few cells
    gen = h100_tables["generation_attention"].frame.head(5000)
    predicted = generation_model.predict(
        gen["batch"],
        gen["kv_len"],
        gen["num_heads"],
        gen["num_kv_heads"],
        gen["head_dim"],
        gen["kv_dtype"],
    )
    assert np.median(np.abs(predicted / gen["latency_ms"] - 1)) < 0.03


def test_extrapolation_follows_the_physics_of_each_axis(gemm_model, context_model):
    # 2x the largest measured m: a compute-bound GEMM takes 2x as long
    at_max = gemm_model.predict(32768, 8192, 8192, "bf16")
    assert gemm_model.predict(65536, 8192, 8192, "bf16") == pytest.approx(2 * at_max)
    # 2x the longest measured prompt: full attention takes 4x as long
    longest = context_model.predict(1, 16384, 32, 8, 128)
    assert context_model.predict(1, 32768, 32, 8, 128) == pytest.approx(4 * longest)


def test_unmeasured_windows_use_the_full_grid_at_the_equivalent_length(
    context_model, generation_model
):
    args = (4, 2048, 32, 8, 128, "bf16")
    # a window covering the whole prompt is full attention
    assert context_model.predict(*args, window=4096) == context_model.predict(*args)
    expected = context_model.predict(4, equivalent_prompt_length(2048, 1000), 32, 8, 128, "bf16")
    assert context_model.predict(*args, window=1000) == pytest.approx(expected)
    decode = (16, 8192, 32, 8, 128, "bf16")
    assert generation_model.predict(*decode, window=4096) == generation_model.predict(
        16, 4096, *decode[2:]
    )
    # a measured window uses its own grid (its kernel differs from the full one)
    assert ("bf16", 128) in {(kv.value, w) for kv, w in context_model.windows}
    mapped = context_model.predict(4, equivalent_prompt_length(2048, 128), 32, 8, 128, "bf16")
    assert context_model.predict(*args, window=128) != pytest.approx(mapped, rel=0.01)


def test_strict_lookups_name_the_missing_format_and_lenient_ones_return_nan(gemm_model, moe_model):
    with pytest.raises(NotFoundError, match="nvfp4"):
        gemm_model.predict(16, 4096, 4096, "nvfp4")
    lenient = gemm_model.predict([16, 16], 4096, 4096, ["bf16", "nvfp4"], strict=False)
    assert lenient[0] > 0 and np.isnan(lenient[1])
    assert gemm_model.covers_quantization(["bf16", "nvfp4"]).tolist() == [True, False]
    with pytest.raises(NotFoundError, match="nvfp4"):
        moe_model.predict(16, 4096, 1536, 8, 128, "nvfp4")
    assert np.isnan(moe_model.predict(16, 4096, 1536, 8, 128, "nvfp4", strict=False))


def test_invalid_sizes_are_rejected_with_the_field_name(gemm_model, context_model, moe_model):
    with pytest.raises(InvalidInputError, match=r"^m:"):
        gemm_model.predict(0, 4096, 4096, "bf16")
    with pytest.raises(InvalidInputError, match="quantization"):
        gemm_model.predict(1, 4096, 4096, "fp16")
    with pytest.raises(InvalidInputError, match="num_kv_heads"):
        context_model.predict(1, 128, 8, 16, 128)
    with pytest.raises(InvalidInputError, match="window"):
        context_model.predict(1, 128, 8, 8, 128, window=-1)
    with pytest.raises(InvalidInputError, match="topk"):
        moe_model.predict(1, 4096, 1536, 200, 128, "bf16")
    with pytest.raises(InvalidInputError, match="not fitted"):
        GemmModel().predict(1, 1, 1, "bf16")
    with pytest.raises(InvalidInputError, match="missing columns"):
        GemmModel().fit(pd.DataFrame({"m": [1], "latency_ms": [1.0]}))


def test_measured_moe_configurations_use_their_grid_and_others_the_regression(moe_model):
    assert moe_model.covers_configuration(4096, 1536, 8, 128, "bf16").item()
    assert not moe_model.covers_configuration(3000, 1000, 6, 64, "bf16").item()
    measured_only = moe_model.predict(64, 3000, 1000, 6, 64, "bf16", measured_only=True)
    assert np.isnan(measured_only)
    coefficients = moe_model.regression_.coefficients["bf16"]
    assert all(c >= 0 for c in coefficients)
    # 1 / (ms per weight byte) is an effective bandwidth: physical for an H100 (3.35 TB/s peak)
    assert 1.0 < 1e-9 / coefficients[1] < 4.0  # TB/s


def test_a_truncated_token_sweep_is_extrapolated_along_the_regression_shape():
    tokens = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    rows = []
    for hidden, measured in ((4096, tokens), (2048, tokens), (3072, [1])):
        for t in measured:
            # weight-bound until the 8 experts... flat, then linear: like real MoE kernels
            latency = 0.05 + hidden * 1e-5 + t * hidden * 1e-8
            rows.append(
                {
                    "quantization": "bf16",
                    "hidden": hidden,
                    "inter": 1024,
                    "topk": 2,
                    "num_experts": 8,
                    "tp": 1,
                    "ep": 1,
                    "distribution": "balanced",
                    "gated": True,
                    "num_tokens": t,
                    "latency_ms": latency,
                }
            )
    model = MoEModel().fit(pd.DataFrame(rows))
    truth = 0.05 + 3072 * 1e-5 + 1024 * 3072 * 1e-8
    predicted = float(model.predict(1024, 3072, 1024, 2, 8, "bf16"))
    single_point_linear = (0.05 + 3072 * 1e-5 + 3072 * 1e-8) * 1024
    assert predicted < truth * 2 < single_point_linear / 10


def test_transfer_to_the_same_gpu_changes_nothing_and_a_faster_gpu_is_never_slower(
    h100, gemm_model
):
    from optimizer.perf.roofline import DEFAULT_CALIBRATION

    same = gemm_model.transferred(h100, h100, DEFAULT_CALIBRATION)
    m = np.array([1, 64, 4096, 50000])
    np.testing.assert_allclose(
        same.predict(m, 4096, 4096, "bf16"), gemm_model.predict(m, 4096, 4096, "bf16")
    )
    faster = GpuFigures(h100.mem_bw_tb_s * 2, h100.bf16_tflops * 2, h100.fp8_tflops * 2)
    moved = gemm_model.transferred(h100, faster, DEFAULT_CALIBRATION)
    before, after = gemm_model.predict(m, 4096, 4096, "bf16"), moved.predict(m, 4096, 4096, "bf16")
    assert (after <= before).all()
    # large compute-bound GEMMs get the full 2x; tiny ones keep their fixed overhead
    assert after[-1] == pytest.approx(before[-1] / 2, rel=0.05)
    assert after[0] > before[0] / 2
    assert "transferred" in moved.source_
