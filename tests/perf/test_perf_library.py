"""The per-GPU kernel library: measured first, then transferred, then roofline."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.errors import InvalidInputError, NotFoundError
from optimizer.perf.kernel_data import measured_gpu_figures
from optimizer.perf.library import LIBRARY_OPERATORS, KernelLibrary
from optimizer.perf.roofline import GpuFigures


@pytest.fixture(scope="module")
def h100_library(h100) -> KernelLibrary:
    return KernelLibrary.for_gpu("h100_sxm", h100, engine="vllm")


class L4Like:
    """What a catalog GPUSpec of an L4 offers: peak figures and the SM version."""

    mem_bw_tb_s = 0.3
    bf16_tflops = 121.0
    fp8_tflops = 242.0
    fp4_tflops = None
    interconnect_gb_s = 32.0
    sm = 89


def test_a_measured_gpu_answers_from_its_own_tables(h100_library):
    for operator in LIBRARY_OPERATORS:
        assert h100_library.has_measured(operator)
    assert h100_library.source("gemm") == "measured: h100_sxm gemm vllm 0.24.0 (100972 rows)"
    assert h100_library.model("gemm").predict(64, 4096, 4096, "bf16") == h100_library.gemm(
        64, 4096, 4096, "bf16"
    )


def test_queries_the_tables_do_not_cover_fall_back_to_the_roofline(h100_library):
    # MXFP4 GEMMs were never measured on an H100
    t = h100_library.gemm([64, 64], 4096, 4096, ["bf16", "mxfp4"])
    assert t[1] == pytest.approx(
        float(h100_library.roofline_for("gemm").gemm(64, 4096, 4096, "mxfp4"))
    )
    assert t[0] == pytest.approx(float(h100_library.model("gemm").predict(64, 4096, 4096, "bf16")))
    # 16 GPUs were never measured; 1 GPU costs nothing
    reduce = h100_library.all_reduce(2**20, [1, 8, 16])
    assert reduce[0] == 0.0
    assert reduce[2] == pytest.approx(
        float(h100_library.roofline_for("all_reduce").all_reduce(2**20, 16))
    )
    # an MoE format without measurements
    nvfp4 = h100_library.moe(64, 4096, 1536, 8, 128, "nvfp4")
    assert nvfp4 == pytest.approx(
        h100_library.roofline_for("moe").moe(64, 4096, 1536, 8, 128, "nvfp4")
    )
    assert h100_library.moe([1, 4096], 4096, 1536, 8, 128, "bf16").tolist() == pytest.approx(
        h100_library.model("moe").predict([1, 4096], 4096, 1536, 8, 128, "bf16").tolist()
    )


def test_the_calibration_is_fitted_on_the_gpus_own_tables(h100_library):
    gemm = h100_library.calibration_for("gemm")
    bf16 = gemm.efficiency("gemm", "bf16")
    assert bf16 != gemm.efficiency("gemm", "fp8")
    assert 0.5 < bf16.compute < 1.0


def test_an_unmeasured_gpu_borrows_the_measured_gpu_of_its_architecture():
    l4 = KernelLibrary.for_gpu("l4", L4Like(), engine="vllm")
    assert l4.source("gemm").startswith("transferred: l40s gemm vllm")
    assert not l4.has_measured("gemm")
    l40s = l4.reference
    assert l40s is not None and l40s.name == "l40s" and l40s.has_measured("gemm")
    m = np.array([1, 16, 256, 4096])
    slower, faster = l4.gemm(m, 4096, 4096, "bf16"), l40s.gemm(m, 4096, 4096, "bf16")
    # the L4 has less bandwidth (0.3 vs 0.86 TB/s) and compute: never faster, and ~2.9x
    # slower where a GEMM is bandwidth-bound
    assert (slower >= faster).all()
    assert slower[0] / faster[0] == pytest.approx(0.864 / 0.3, rel=0.35)
    decode_l4 = l4.generation_attention(64, 4096, 32, 8, 128)
    decode_l40s = l40s.generation_attention(64, 4096, 32, 8, 128)
    assert decode_l4 / decode_l40s == pytest.approx(0.864 / 0.3, rel=0.35)


def test_without_a_reference_every_operator_is_timed_by_the_roofline():
    mi300x = GpuFigures(
        mem_bw_tb_s=5.3, bf16_tflops=1307.4, fp8_tflops=2614.9, interconnect_gb_s=448.0
    )
    lib = KernelLibrary.for_gpu("mi300x", mi300x, engine="vllm")
    assert {lib.source(op) for op in LIBRARY_OPERATORS} == {"roofline"}
    values = [
        lib.gemm(128, 8192, 8192, "fp8"),
        lib.context_attention(2, 4096, 64, 8, 128),
        lib.generation_attention(64, 4096, 64, 8, 128, "fp8"),
        lib.moe(256, 7168, 2048, 8, 256, "fp8", ep=8),
        lib.all_reduce(2**24, 8),
    ]
    assert all(np.isfinite(v).all() and (v > 0).all() for v in values)
    with pytest.raises(NotFoundError):
        lib.model("gemm")
    faster = KernelLibrary.roofline_only(GpuFigures(10.6, 2614.8, 5229.8, interconnect_gb_s=896.0))
    assert faster.gemm(128, 8192, 8192, "fp8") < lib.gemm(128, 8192, 8192, "fp8")


def test_bad_names_are_rejected():
    with pytest.raises(InvalidInputError, match="engine"):
        KernelLibrary.for_gpu("h100_sxm", measured_gpu_figures("h100_sxm"), engine="tgi")
    lib = KernelLibrary.roofline_only(measured_gpu_figures("h100_sxm"))
    with pytest.raises(InvalidInputError, match="operator"):
        lib.source("mla")
