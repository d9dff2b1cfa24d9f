"""Shared fixtures of the perf tests: measured H100 tables and models fitted on them once."""

from __future__ import annotations

import pytest

from optimizer.perf.kernel_data import KernelTable, load_kernel_table, measured_gpu_figures
from optimizer.perf.operators import (
    AllReduceModel,
    ContextAttentionModel,
    GemmModel,
    GenerationAttentionModel,
    MoEModel,
)
from optimizer.perf.roofline import GpuFigures

GPU = "h100_sxm"
ENGINE = "vllm"


@pytest.fixture(scope="session")
def h100() -> GpuFigures:
    """Peak figures of the GPU the H100 tables were measured on."""
    return measured_gpu_figures(GPU)


@pytest.fixture(scope="session")
def h100_tables() -> dict[str, KernelTable]:
    """The measured H100 / vLLM tables, by operator."""
    operators = ("gemm", "context_attention", "generation_attention", "moe", "custom_all_reduce")
    return {op: load_kernel_table(GPU, op, ENGINE) for op in operators}


@pytest.fixture(scope="session")
def gemm_model(h100_tables) -> GemmModel:
    return GemmModel().fit(h100_tables["gemm"])


@pytest.fixture(scope="session")
def context_model(h100_tables) -> ContextAttentionModel:
    return ContextAttentionModel().fit(h100_tables["context_attention"])


@pytest.fixture(scope="session")
def generation_model(h100_tables) -> GenerationAttentionModel:
    return GenerationAttentionModel().fit(h100_tables["generation_attention"])


@pytest.fixture(scope="session")
def moe_model(h100_tables) -> MoEModel:
    return MoEModel().fit(h100_tables["moe"])


@pytest.fixture(scope="session")
def all_reduce_model(h100_tables) -> AllReduceModel:
    return AllReduceModel().fit(h100_tables["custom_all_reduce"])
