"""Shared fixtures: a tiny hand-made model and GPU, and catalog models and GPUs."""

from __future__ import annotations

import pytest

from optimizer.catalog.gpus import get_gpu
from optimizer.catalog.models import load_model_spec
from optimizer.domain.gpu import GPUSpec
from optimizer.domain.model_spec import ModelSpec
from optimizer.settings import Settings


@pytest.fixture(scope="session")
def tiny_model() -> ModelSpec:
    """4 layers, hidden 64, 8 query heads and 2 KV heads of dim 8, FFN 256, vocab 1000."""
    return ModelSpec(
        model_id="test/tiny",
        architecture="LlamaForCausalLM",
        num_layers=4,
        hidden_size=64,
        num_attention_heads=8,
        num_kv_heads=2,
        head_dim=8,
        v_head_dim=8,
        vocab_size=1000,
        intermediate_size=256,
        embedding_params=64_000,
        lm_head_params=64_000,
        attention_params=4 * (64 * 64 + 64 * 16 + 64 * 16 + 64 * 64),  # 40_960
        dense_mlp_params=4 * 3 * 64 * 256,  # 196_608
        routed_expert_params=0,
        other_params=2 * 64 * 4 + 64,  # 576
    )


@pytest.fixture(scope="session")
def tiny_mla_model() -> ModelSpec:
    """Like ``tiny_model`` but with MLA attention: a 32-wide latent plus an 8-wide rope key."""
    return ModelSpec(
        model_id="test/tiny-mla",
        architecture="DeepseekV3ForCausalLM",
        num_layers=4,
        hidden_size=64,
        num_attention_heads=8,
        num_kv_heads=1,
        head_dim=16,
        v_head_dim=8,
        vocab_size=1000,
        intermediate_size=256,
        attention="mla",
        kv_lora_rank=32,
        qk_rope_head_dim=8,
        embedding_params=64_000,
        lm_head_params=64_000,
        attention_params=40_000,
        dense_mlp_params=196_608,
        routed_expert_params=0,
    )


@pytest.fixture(scope="session")
def test_gpu() -> GPUSpec:
    """A Hopper-class GPU with exactly 4 GiB usable and 8 GPUs per node."""
    return GPUSpec(
        id="test_gpu",
        name="Test GPU",
        architecture="hopper",
        sm=90,
        memory_gib=4,
        usable_memory_gib=4,
        mem_bw_tb_s=1.0,
        interconnect="test link",
        interconnect_gb_s=100,
    )


@pytest.fixture(scope="session")
def llama_70b() -> ModelSpec:
    return load_model_spec("meta-llama/Llama-3.1-70B")


@pytest.fixture(scope="session")
def llama_405b() -> ModelSpec:
    return load_model_spec("meta-llama/Llama-3.1-405B")


@pytest.fixture(scope="session")
def llama_8b() -> ModelSpec:
    return load_model_spec("meta-llama/Llama-3.1-8B")


@pytest.fixture(scope="session")
def deepseek_v3() -> ModelSpec:
    return load_model_spec("deepseek-ai/DeepSeek-V3")


@pytest.fixture(scope="session")
def gpus():
    """Catalog GPUs at catalog prices (no user overrides)."""
    settings = Settings(gpu_prices={}, prices_file=None)
    return {g: get_gpu(g, settings) for g in ("h100_sxm", "a100_sxm", "b200_sxm", "h200_sxm")}
