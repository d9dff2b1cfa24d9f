"""A surrogate fitted once per session on a subset of the reference runs."""

from __future__ import annotations

import pandas as pd
import pytest

from optimizer.profiles import load_reference_profiles
from optimizer.surrogate import Surrogate

PROPERTY_GPUS = ("h100_sxm", "h200_sxm", "b200_sxm")


@pytest.fixture(scope="session")
def agg_runs() -> pd.DataFrame:
    runs = load_reference_profiles()
    return runs[runs["mode"] == "agg"].reset_index(drop=True)


@pytest.fixture(scope="session")
def small_runs(agg_runs) -> pd.DataFrame:
    """Dense-model runs on the property GPUs: enough for every code path, quick to fit."""
    keep = agg_runs["gpu"].isin(PROPERTY_GPUS) & agg_runs["model"].isin(
        [
            "meta-llama/Llama-3.1-8B-Instruct",
            "meta-llama/Llama-3.1-70B",
            "Qwen/Qwen3-32B",
            "openai/gpt-oss-120b",
        ]
    )
    return agg_runs[keep]


@pytest.fixture(scope="session")
def fitted(small_runs) -> Surrogate:
    return Surrogate(max_iter=80, cv_folds=3).fit(small_runs)
