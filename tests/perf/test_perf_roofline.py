"""Roofline and work counts against hand calculations; efficiency fitting; GPU awareness."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.errors import InvalidInputError
from optimizer.perf import work
from optimizer.perf.calibration import fit_calibration, roofline_for_table
from optimizer.perf.operators import AlphaBeta
from optimizer.perf.roofline import (
    DEFAULT_CALIBRATION,
    IDEAL,
    Efficiency,
    GpuFigures,
    Roofline,
    RooflineCalibration,
    fit_efficiency,
    roofline_ms,
)

PEAK_ONLY = RooflineCalibration(
    tuple(
        (op, None, IDEAL)
        for op in ("gemm", "context_attention", "generation_attention", "moe", "all_reduce")
    )
)
GPU = GpuFigures(mem_bw_tb_s=2.0, bf16_tflops=1000.0, fp8_tflops=2000.0, interconnect_gb_s=400.0)


def test_compute_bound_gemm_is_flops_over_peak():
    # 4096^3 BF16 GEMM on a 1000-TFLOPS GPU at efficiency 1: 2 * 4096^3 / 1e15 seconds
    t = Roofline(GPU, PEAK_ONLY).gemm(4096, 4096, 4096, "bf16")
    assert float(t) == pytest.approx(2 * 4096**3 / 1e15 * 1e3)
    assert float(Roofline(GPU, PEAK_ONLY).gemm(4096, 4096, 4096, "fp8")) == pytest.approx(
        2 * 4096**3 / 2e15 * 1e3
    )


def test_memory_bound_gemv_is_bytes_over_bandwidth():
    # m=1, n=k=8192, bf16: x (8192 x 2 B) + W (8192^2 x 2 B) + y (8192 x 2 B) over 2 TB/s
    expected_bytes = 8192 * 2 + 8192 * 8192 * 2 + 8192 * 2
    assert float(work.gemm_bytes(1, 8192, 8192, "bf16")) == expected_bytes
    t = Roofline(GPU, PEAK_ONLY).gemm(1, 8192, 8192, "bf16")
    assert float(t) == pytest.approx(expected_bytes / 2e12 * 1e3)
    # fp8 halves weights and activations: the same GEMV takes about half as long
    fp8 = 8192 + 8192 * 8192 + 8192 * 2
    assert float(work.gemm_bytes(1, 8192, 8192, "fp8")) == fp8


def test_efficiency_and_overhead_enter_as_written():
    eff = Efficiency(compute=0.5, memory=0.8, overhead_ms=0.01)
    t = roofline_ms(1e12, 1e9, 1e15, 1e12, eff)
    assert float(t) == pytest.approx(max(1e12 / 5e14, 1e9 / 8e11) * 1e3 + 0.01)


def test_attention_work_by_hand():
    # 1 prompt of 4 tokens, 1 head of size 1: 10 causal pairs, QK and PV: 4 FLOPs per pair
    assert float(work.context_attention_flops(1, 4, 1, 1)) == 40.0
    assert float(work.context_attention_flops(1, 4, 1, 1, window=2)) == 4 * 7.0
    # decode: 2 sequences, 100 cached tokens, 8 KV heads of 128, bf16: K and V read once
    assert float(work.generation_attention_bytes(2, 100, 8, 8, 128, "bf16")) == pytest.approx(
        2 * 128 * (100 * 2 * 8 * 2 + 2 * 8 * 2)
    )
    assert float(
        work.generation_attention_bytes(1, 100, 8, 8, 128, "fp8", window=10)
    ) == pytest.approx(128 * (10 * 2 * 8 * 1 + 2 * 8 * 2))


def test_moe_touches_only_the_experts_a_batch_reaches():
    assert work.experts_touched([1, 8, 16, 100], 8, 128).tolist() == [8, 64, 128, 128]
    assert float(work.experts_touched(16, 8, 128, ep=8)) == 16.0
    random = work.experts_touched(16, 8, 128, balanced=False)
    assert float(random) == pytest.approx(128 * (1 - (1 - 1 / 128) ** 128))
    # weights of the touched experts dominate small batches: 1 token reads 8 of 128 experts
    one = work.moe_bytes(1, 4096, 1536, 8, 128, "bf16")
    assert float(one) == pytest.approx(8 * 3 * 4096 * 1536 * 2 + 8 * 4096 * (2 + 2))


def test_all_reduce_is_ring_bytes_over_link_bandwidth_plus_overhead():
    cal = PEAK_ONLY.with_efficiency("all_reduce", None, Efficiency(1.0, 1.0, 0.005))
    t = Roofline(GPU, cal).all_reduce([2**20, 2**20, 2**20], [1, 2, 8])
    assert t[0] == 0.0
    assert t[1] == pytest.approx(2**20 / 400e9 * 1e3 + 0.005)  # 2 (n-1)/n = 1 for n = 2
    assert t[2] == pytest.approx(2 * 7 / 8 * 2**20 / 400e9 * 1e3 + 0.005)
    with pytest.raises(InvalidInputError, match="interconnect_gb_s"):
        Roofline(GpuFigures(2.0, 1000.0)).all_reduce(1e6, 8)


def test_alpha_beta_recovers_its_closed_form():
    sizes = np.array([2**k for k in range(10, 28)], dtype=float)
    latency = 0.008 + sizes / (250.0 * 1e6)  # 8 us + bytes over 250 GB/s
    fit = AlphaBeta.fit(sizes, latency)
    assert fit.alpha_ms == pytest.approx(0.008, rel=1e-6)
    assert fit.bandwidth_gb_s == pytest.approx(250.0, rel=1e-6)
    np.testing.assert_allclose(fit.predict(sizes), latency)


def test_formats_without_a_tensor_core_path_run_at_the_next_peak():
    ampere = GpuFigures(mem_bw_tb_s=2.0, bf16_tflops=312.0)
    assert ampere.peak_flops("fp8") == ampere.peak_flops("bf16") == 312e12
    assert GPU.peak_flops("nvfp4") == 1000e12  # no fp4 figure: weight-only at BF16
    assert GpuFigures(8.0, 2250.0, 4500.0, 9000.0).peak_flops("mxfp4") == 9000e12


def test_gpu_figures_accept_any_object_and_reject_bad_values():
    class Spec:
        mem_bw_tb_s = 4.8
        bf16_tflops = 989.0
        fp8_tflops = 1979.0
        interconnect_gb_s = 450.0

    figures = GpuFigures.of(Spec())
    assert (figures.mem_bw_tb_s, figures.fp4_tflops) == (4.8, None)

    class NoCompute:
        mem_bw_tb_s = 0.6
        bf16_tflops = None

    with pytest.raises(InvalidInputError, match="bf16_tflops"):
        GpuFigures.of(NoCompute())
    with pytest.raises(InvalidInputError, match="mem_bw_tb_s"):
        GpuFigures(mem_bw_tb_s=-1.0, bf16_tflops=10.0)
    with pytest.raises(InvalidInputError, match="compute"):
        Efficiency(compute=0.0)


def test_calibration_lookup_falls_back_from_format_to_operator_to_default():
    own = Efficiency(0.5, 0.5, 0.001)
    cal = RooflineCalibration((("gemm", None, own),))
    cal = cal.with_efficiency("gemm", "fp8", Efficiency(0.3, 0.4, 0.001))
    assert cal.efficiency("gemm", "fp8").compute == 0.3
    assert cal.efficiency("gemm", "bf16") == own  # no bf16 entry: the operator's
    assert cal.efficiency("moe", "fp8") == DEFAULT_CALIBRATION.without("moe").efficiency("moe")
    # the defaults refine GEMM and MoE per format; a fitted GPU replaces them all
    assert DEFAULT_CALIBRATION.efficiency("gemm", "bf16") != DEFAULT_CALIBRATION.efficiency("gemm")
    assert DEFAULT_CALIBRATION.without("gemm").efficiency(
        "gemm", "bf16"
    ) == DEFAULT_CALIBRATION.without("gemm").efficiency("gemm")
    with pytest.raises(InvalidInputError, match="operator"):
        cal.efficiency("mla")


def test_fit_efficiency_recovers_known_parameters():
    rng = np.random.default_rng(1)
    flops = 10 ** rng.uniform(6, 13, 3000)
    bytes_moved = 10 ** rng.uniform(4, 10, 3000)
    truth = Efficiency(compute=0.62, memory=0.71, overhead_ms=0.004)
    measured = roofline_ms(flops, bytes_moved, 1e15, 3e12, truth)
    fitted = fit_efficiency(flops, bytes_moved, measured, 1e15, 3e12)
    assert fitted.compute == pytest.approx(0.62, rel=1e-3)
    assert fitted.memory == pytest.approx(0.71, rel=1e-3)
    assert fitted.overhead_ms == pytest.approx(0.004, rel=1e-3)


def test_fitted_h100_gemm_efficiencies_are_physical(h100, h100_tables):
    cal = fit_calibration({"gemm": h100_tables["gemm"].frame}, h100)
    bf16 = cal.efficiency("gemm", "bf16")
    # large BF16 GEMMs reach ~75 % of the 989-TFLOPS dense peak on an H100 (measured 0.78)
    assert 0.6 < bf16.compute < 0.95
    assert 0.6 < bf16.memory < 1.1
    assert 0.001 < bf16.overhead_ms < 0.01
    predicted = roofline_for_table("gemm", h100_tables["gemm"].frame, h100, cal)
    ape = np.abs(predicted / h100_tables["gemm"].frame["latency_ms"] - 1)
    assert np.median(ape) < 0.25  # the roofline alone: measured 17 %


sizes = st.floats(1, 1e5)
figures = st.floats(0.1, 10.0)


@settings(max_examples=100, deadline=None)
@given(sizes, sizes, sizes, figures, figures, st.sampled_from(["bf16", "fp8", "int4_wo", "nvfp4"]))
def test_roofline_never_slower_with_a_faster_gpu_or_faster_for_more_work(m, n, k, bw, scale, q):
    slow = Roofline(GpuFigures(bw, 100.0, 200.0, 400.0, 50.0))
    fast = Roofline(
        GpuFigures(bw * (1 + scale), 100.0 * (1 + scale), 200.0 * (1 + scale), 400.0, 50.0 * 2)
    )
    assert fast.gemm(m, n, k, q) <= slow.gemm(m, n, k, q)
    assert slow.gemm(m, n, k, q) <= slow.gemm(m * 2, n, k, q)
    assert fast.context_attention(2, m, 8, 2, 128) <= slow.context_attention(2, m, 8, 2, 128)
    assert slow.generation_attention(4, m, 8, 2, 128) <= slow.generation_attention(
        4, m + k, 8, 2, 128
    )
    assert fast.moe(m, 4096, 1536, 8, 128, q) <= slow.moe(m, 4096, 1536, 8, 128, q)
    assert slow.moe(m, 4096, 1536, 8, 128, q) <= slow.moe(m + k, 4096, 1536, 8, 128, q)
    assert fast.all_reduce(m * 1e3, 8) <= slow.all_reduce(m * 1e3, 8)
