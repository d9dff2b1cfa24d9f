"""Shared fixtures: one small surrogate per session and a recommender on it."""

from __future__ import annotations

import pytest
from search_testing import MODEL

from optimizer.catalog import get_gpu, load_model_spec
from optimizer.domain import SLO, Workload
from optimizer.profiles import load_reference_profiles
from optimizer.search.recommend import Recommender
from optimizer.search.scenario import Scenario
from optimizer.surrogate import Surrogate


@pytest.fixture(scope="session")
def surrogate() -> Surrogate:
    """Fitted on dense-model runs of H100/H200/B200: quick, and enough for every path."""
    runs = load_reference_profiles()
    runs = runs[runs["mode"] == "agg"]
    keep = runs["gpu"].isin(["h100_sxm", "h200_sxm", "b200_sxm"]) & runs["model"].isin(
        ["meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-70B", "Qwen/Qwen3-32B"]
    )
    return Surrogate(max_iter=60, cv_folds=3).fit(runs[keep])


@pytest.fixture(scope="session")
def recommender(surrogate) -> Recommender:
    return Recommender(surrogate, surrogate_version=None)


@pytest.fixture(scope="session")
def scenario() -> Scenario:
    return Scenario(
        load_model_spec(MODEL),
        (get_gpu("h100_sxm"),),
        Workload.simple(1024, 256, rate=4.0),
        SLO.parse("ttft_p95<=1s,tpot_p95<=40ms"),
    )
