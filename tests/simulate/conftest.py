"""Shared fixtures of the simulator tests (helpers live in ``simhelpers``)."""

from __future__ import annotations

import pytest
from simhelpers import GPU, MODEL

from optimizer.catalog import get_gpu, load_model_spec
from optimizer.domain import EndpointConfig
from optimizer.simulate import StepTimeModel


@pytest.fixture(scope="session")
def llama():
    return load_model_spec(MODEL)


@pytest.fixture(scope="session")
def h100():
    return get_gpu(GPU)


@pytest.fixture(scope="session")
def prior_step(llama, h100) -> StepTimeModel:
    """The operator-prior step model of Llama-3.1-8B on one H100 (vLLM)."""
    return StepTimeModel.from_endpoint(
        llama, h100, EndpointConfig(engine="vllm"), max_batch=256, max_tokens=8192
    )
