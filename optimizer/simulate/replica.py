"""One endpoint configuration made concrete for the simulator: limits, KV pool, step times.

:func:`build_replica` resolves what an :class:`~optimizer.domain.endpoint.EndpointConfig`
leaves to the engine (batch cap, block size, token budget and memory fraction: the
defaults its search-space file declares), sizes the KV pool of one engine rank from the
memory model (:func:`optimizer.space.memory.estimate_memory`: what the engine's memory
cap leaves after weights, activations and runtime overhead, in blocks of the
configured size), and builds the step-time model from the operator prior
(:class:`~optimizer.simulate.step_time.StepTimeModel`).

An engine without a declared batch cap (SGLang derives ``max_running_requests`` from
its KV pool) gets :data:`UNCAPPED_BATCH` sequences: the KV pool is what binds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from optimizer.domain.endpoint import EndpointConfig
from optimizer.domain.enums import SpecMethod
from optimizer.domain.gpu import GPUSpec
from optimizer.domain.model_spec import ModelSpec
from optimizer.errors import InvalidInputError
from optimizer.simulate.config import SimulationOptions
from optimizer.simulate.engine import EngineLimits
from optimizer.simulate.speculative import AcceptanceModel, SpecDecoding, acceptance_model
from optimizer.simulate.step_time import StepCost, StepTimeModel
from optimizer.space.loader import load_search_space
from optimizer.space.memory import estimate_memory

__all__ = ["UNCAPPED_BATCH", "Replica", "build_replica", "resolve_model_gpu", "spec_decoding"]

UNCAPPED_BATCH = 1024
"""Batch cap for engines that declare none (the KV pool binds first)."""

_GIB = float(2**30)


@dataclass(frozen=True)
class Replica:
    """Everything the simulator derives from an endpoint on a model and GPU.

    Attributes:
        endpoint: the knobs as given.
        model: model shapes.
        gpu: the GPU.
        limits: batch, token budget and KV pool of one engine rank.
        step: step-time model of one rank.
        spec: speculative decoding, if on.
        ranks: engine ranks behind the router (``replicas x dp``).
        memory: per-GPU memory figures (GiB) and KV sizing.
        calibration: how the step times were obtained.
    """

    endpoint: EndpointConfig
    model: ModelSpec
    gpu: GPUSpec
    limits: EngineLimits
    step: StepCost
    spec: SpecDecoding | None
    ranks: int
    memory: dict[str, float] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)

    @property
    def max_concurrency(self) -> int:
        """Sequences of ``memory['mean_tokens']`` tokens one rank runs at once."""
        per_seq = max(math.ceil(self.memory["mean_tokens"] / self.limits.block_size), 1)
        return max(1, min(self.limits.max_batch, self.limits.total_blocks // per_seq))

    def with_step(self, step: StepCost, calibration: dict[str, Any]) -> Replica:
        """A copy with another step-time model."""
        return Replica(
            self.endpoint,
            self.model,
            self.gpu,
            self.limits,
            step,
            self.spec,
            self.ranks,
            dict(self.memory),
            dict(calibration),
        )


def resolve_model_gpu(model: ModelSpec | str, gpu: GPUSpec | str) -> tuple[ModelSpec, GPUSpec]:
    """Catalog lookups for ids; specs pass through."""
    from optimizer.catalog import get_gpu, load_model_spec

    return (
        load_model_spec(model) if isinstance(model, str) else model,
        get_gpu(gpu) if isinstance(gpu, str) else gpu,
    )


def spec_decoding(endpoint: EndpointConfig, options: SimulationOptions) -> SpecDecoding | None:
    """The endpoint's speculative decoding with the options' acceptance and schedule."""
    if endpoint.spec_method is SpecMethod.NONE:
        return None
    acceptance: AcceptanceModel = acceptance_model(
        endpoint.spec_method, options.acceptance_rate, options.acceptance_per_position
    )
    schedule = options.draft_len_schedule or ((1 << 30, endpoint.spec_draft_len),)
    return SpecDecoding(
        method=endpoint.spec_method,
        schedule=tuple((int(b), int(k)) for b, k in schedule),
        acceptance=acceptance,
        draft_cost_ratio=options.draft_cost_ratio,
    )


def build_replica(
    endpoint: EndpointConfig,
    model: ModelSpec | str,
    gpu: GPUSpec | str,
    *,
    options: SimulationOptions | None = None,
    step_model: StepCost | None = None,
    mean_tokens: float = 2048.0,
) -> Replica:
    """Resolve defaults, size the KV pool and build the (uncalibrated) step model.

    Args:
        endpoint: engine knobs.
        model: model spec or catalog id.
        gpu: GPU spec or catalog id.
        options: simulator settings.
        step_model: use this step-time model instead of the operator prior.
        mean_tokens: typical tokens per sequence (input + output), used to turn the
            memory model's per-sequence figures into bytes per token.

    Raises:
        InvalidInputError: the configuration leaves no memory for the KV cache, or a
            sequence of ``mean_tokens`` does not fit.
    """
    options = options or SimulationOptions()
    model, gpu = resolve_model_gpu(model, gpu)
    space = load_search_space(endpoint.engine)
    knobs = space.knobs
    max_batch = endpoint.max_batch_size or knobs.max_batch_size.default or UNCAPPED_BATCH
    block = endpoint.kv_block_size or knobs.kv_block_size.default or 16
    budget = endpoint.max_num_batched_tokens or knobs.max_num_batched_tokens.default or 8192
    fraction = options.memory_fraction or float(space.memory.fraction(endpoint.tp * endpoint.pp))
    spec = spec_decoding(endpoint, options)
    draft = spec.max_draft_len if spec is not None else 0
    length = max(round(float(mean_tokens)), 1)
    memory = estimate_memory(
        model,
        gpu,
        seq_len=[length, 2 * length],
        tp=endpoint.tp,
        pp=endpoint.pp,
        dp=endpoint.dp,
        quantization=endpoint.quantization.value,
        kv_cache_dtype=endpoint.kv_cache_dtype.value,
        max_batch_size=int(max_batch),
        max_num_batched_tokens=int(budget),
        spec_method=endpoint.spec_method.value,
        spec_draft_len=endpoint.spec_draft_len,
        memory_fraction=fraction,
        fraction_mode=space.memory.mode,
    )
    one, two = (float(x) for x in memory.kv_per_sequence)
    per_token = (two - one) / length
    state = max(one - per_token * length, 0.0)  # fixed per-sequence state (linear attention)
    kv_budget = float(memory.kv_budget[0]) - max_batch * state
    blocks = int(kv_budget // (per_token * block)) if per_token > 0 else 0
    if kv_budget <= 0 or blocks < 1:
        raise InvalidInputError(
            "endpoint",
            f"{endpoint.engine.value} tp={endpoint.tp} pp={endpoint.pp} "
            f"{endpoint.quantization.value} leaves no KV cache for {model.model_id} on {gpu.id} "
            f"(weights {float(memory.weights[0]) / _GIB:.1f} GiB per GPU, "
            f"KV budget {float(memory.kv_budget[0]) / _GIB:.2f} GiB)",
        )
    limits = EngineLimits(
        total_blocks=blocks,
        block_size=int(block),
        max_batch=int(max_batch),
        token_budget=int(budget),
        priority=options.scheduling == "priority",
        prefix_caching=options.prefix_caching,
        watermark_blocks=int(options.watermark * blocks),
        lookahead_tokens=draft,
    )
    calibration: dict[str, Any] = {"source": "given"}
    if step_model is None:
        step_model = StepTimeModel.from_endpoint(
            model, gpu, endpoint, max_batch=int(max_batch), max_tokens=int(budget), spec=spec
        )
        calibration = {"source": "operator prior (uncalibrated)"}
    return Replica(
        endpoint=endpoint,
        model=model,
        gpu=gpu,
        limits=limits,
        step=step_model,
        spec=spec,
        ranks=endpoint.replicas * endpoint.dp,
        memory={
            "weights_gib": float(memory.weights[0]) / _GIB,
            "activations_gib": float(memory.activations[0]) / _GIB,
            "kv_budget_gib": kv_budget / _GIB,
            "kv_bytes_per_token": per_token,
            "memory_fraction": fraction,
            "mean_tokens": float(length),
        },
        calibration=calibration,
    )
