"""Every feature the input length moves is constrained to act non-decreasingly.

The surrogate is monotone in input length by construction only if no feature that
changes with the input length is left free (or constrained the wrong way) for a
target. This checks the features themselves, without fitting anything.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optimizer.surrogate.features import (
    CATEGORICAL,
    MONOTONE_BY_TARGET,
    TARGETS,
    build_features,
    prior_frame,
    resolve_rows,
)

CONFIGS = [
    ("meta-llama/Llama-3.1-8B-Instruct", "h100_sxm", "vllm", "bf16", 1, 2, 210),
    ("meta-llama/Llama-3.1-70B", "h200_sxm", "trtllm", "fp8", 4, 512, 1024),
    ("openai/gpt-oss-120b", "b200_sxm", "sglang", "mxfp4", 2, 64, 8192),
    ("deepseek-ai/DeepSeek-R1", "h200_sxm", "sglang", "fp8", 8, 4096, 1024),
]


@pytest.mark.parametrize("config", CONFIGS, ids=[c[0].split("/")[1] for c in CONFIGS])
def test_features_moved_by_input_length_are_constrained_upwards(config):
    model, gpu, engine, quantization, tp, concurrency, osl = config
    rows = pd.DataFrame(
        [
            {
                "model": model,
                "gpu": gpu,
                "engine": engine,
                "quantization": quantization,
                "tp": tp,
                "dp": 1,
                "ep": 1,
                "concurrency": concurrency,
                "isl": isl,
                "osl": osl,
            }
            for isl in (16, 257, 4096, 16384)
        ]
    )
    resolved = resolve_rows(rows)
    features = build_features(resolved, prior_frame(resolved))
    for target in TARGETS:
        for name, constraint in MONOTONE_BY_TARGET[target].items():
            if name in CATEGORICAL:
                continue
            steps = np.diff(features[name].to_numpy(float))
            moved = np.abs(steps) > 1e-12
            if moved.any():
                assert constraint == 1, f"{target}: {name} moves with isl but is {constraint}"
                assert (steps >= -1e-12).all(), f"{name} falls as isl grows"
