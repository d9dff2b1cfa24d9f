"""A GPU SKU as the catalog describes it."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from optimizer.domain.enums import Quantization

__all__ = ["GPUSpec"]

# Minimum SM version at which each weight format runs (vLLM supported-hardware table,
# TensorRT-LLM quantization docs; see shared REFERENCE.md section 6). int4 weight-only
# kernels (AWQ/GPTQ Marlin) run from Ampere on; FP8 W8A8 needs Ada/Hopper; NVFP4 needs
# Blackwell's FP4 tensor cores. MXFP4 runs on Hopper as weight-only (W4A16) MoE kernels:
# that is how vLLM and TensorRT-LLM serve gpt-oss's native MXFP4 checkpoint there, and the
# bundled measured runs include it on H100 and H200.
_MIN_SM: dict[Quantization, int] = {
    Quantization.BF16: 80,
    Quantization.INT4_WO: 80,
    Quantization.FP8: 89,
    Quantization.FP8_BLOCK: 89,
    Quantization.MXFP4: 90,
    Quantization.NVFP4: 100,
}


class GPUSpec(BaseModel):
    """One GPU SKU: capacity, speed, interconnect, and an on-demand price with its source.

    ``sm`` is the CUDA compute capability times ten (90 for Hopper); ``None`` for non-CUDA
    parts (MI300X), which then support only what ``quantizations`` lists explicitly.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(description="catalog id, e.g. h100_sxm")
    name: str
    vendor: str = "nvidia"
    architecture: str
    sm: int | None = Field(default=None, ge=70, le=200)
    memory_gib: float = Field(gt=0, description="nominal memory")
    usable_memory_gib: float = Field(gt=0, description="what the runtime can allocate")
    mem_bw_tb_s: float = Field(gt=0, description="peak HBM/GDDR bandwidth, TB/s")
    bf16_tflops: float | None = Field(default=None, gt=0, description="dense BF16 tensor TFLOPS")
    fp8_tflops: float | None = Field(default=None, gt=0)
    fp4_tflops: float | None = Field(default=None, gt=0)
    int8_tops: float | None = Field(default=None, gt=0)
    interconnect: str
    interconnect_gb_s: float = Field(gt=0, description="per-GPU, one direction, GB/s")
    gpus_per_node: int = Field(default=8, ge=1, description="GPUs in one server / tray")
    nvlink_domain_gpus: int | None = Field(
        default=None,
        ge=1,
        description="GPUs sharing one NVLink fabric (72 on an NVL72 rack); None = gpus_per_node",
    )
    tdp_w: float | None = Field(default=None, gt=0)
    price_usd_per_hour: float | None = Field(default=None, gt=0)
    price_source: str | None = None
    price_date: date | None = None
    spec_source: str = ""
    quantizations: tuple[Quantization, ...] | None = Field(
        default=None, description="explicit list for non-CUDA parts; derived from sm otherwise"
    )

    def supports(self, quantization: Quantization | str) -> bool:
        """Whether this GPU runs the weight format natively."""
        q = Quantization(quantization)
        if self.quantizations is not None:
            return q in self.quantizations
        if self.sm is None:
            return q is Quantization.BF16
        return self.sm >= _MIN_SM[q]

    def supports_fp8_kv(self) -> bool:
        """FP8 KV cache needs FP8 tensor cores (sm_89+) or an explicit FP8 entry."""
        return self.supports(Quantization.FP8)

    @property
    def scale_up_gpus(self) -> int:
        """GPUs one tensor-parallel group can span at NVLink speed."""
        return self.nvlink_domain_gpus or self.gpus_per_node

    @property
    def usable_memory_bytes(self) -> int:
        return int(self.usable_memory_gib * 2**30)
