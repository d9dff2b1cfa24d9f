"""Helpers of the simulator tests: fake step-time models, roomy limits, request sets."""

from __future__ import annotations

import numpy as np

from optimizer.domain import Workload
from optimizer.simulate import EngineLimits, RequestSet, generate_requests

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
GPU = "h100_sxm"


class ConstantStep:
    """Every step takes ``seconds``, whatever it runs (deterministic service)."""

    frontend_s = 0.0

    def __init__(self, seconds: float):
        self.seconds = seconds

    def decode(self, batch: int, kv_tokens: float) -> tuple[float, float]:
        return self.seconds, 0.0

    def mixed(self, batch, kv_tokens, chunks, running=0) -> float:
        return self.seconds


class ExponentialStep:
    """Steps with prompt chunks take an exponential time of mean ``mean`` (decode steps
    take ``mean``): with one-token answers and a batch of one, exponential service."""

    def __init__(self, mean: float, seed: int):
        self.mean = mean
        self._draws = np.random.default_rng(seed).exponential(mean, 1 << 20).tolist()

    def decode(self, batch: int, kv_tokens: float) -> tuple[float, float]:
        return self.mean, 0.0

    def mixed(self, batch, kv_tokens, chunks, running=0) -> float:
        return self._draws.pop()


class LinearStep:
    """``base + per_seq * batch`` seconds per decode step, ``per_token`` per prefill token:
    a cheap, monotone model for direction tests that need batching to matter."""

    def __init__(self, base: float = 0.01, per_seq: float = 1e-4, per_token: float = 2e-5):
        self.base, self.per_seq, self.per_token = base, per_seq, per_token

    def decode(self, batch: int, kv_tokens: float) -> tuple[float, float]:
        return self.base + self.per_seq * batch, 0.0

    def mixed(self, batch, kv_tokens, chunks, running=0) -> float:
        return self.base + self.per_seq * batch + self.per_token * sum(c for c, _ in chunks)


def limits(**overrides) -> EngineLimits:
    """Roomy limits (one rank, a million blocks of 16 tokens) with overrides."""
    values = {"total_blocks": 1_000_000, "block_size": 16, "max_batch": 256, "token_budget": 8192}
    values.update(overrides)
    return EngineLimits(**values)


def requests(workload: Workload, n: int, seed: int = 0, **kwargs) -> RequestSet:
    return generate_requests(workload, n, np.random.default_rng(seed), **kwargs)
