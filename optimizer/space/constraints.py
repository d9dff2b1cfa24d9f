"""Named feasibility checks a search-space file lists under ``constraints``.

Each check receives a ``CheckContext`` — the candidates' knob values as broadcastable
numpy arrays, plus the model, GPU, space and sequence length — and returns a boolean
array that is True where a candidate is *rejected*. Checks are pure and vectorised: the
enumerator passes one small array per knob, laid along its own axis, so a check costs
next to nothing however large the grid.

Every check has a one-line description, specialised to the model and GPU, that the
summaries print next to the count of candidates it rejects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from optimizer.domain.enums import KVCacheDtype, Quantization, SpecMethod
from optimizer.domain.gpu import GPUSpec
from optimizer.domain.model_spec import ModelSpec
from optimizer.space.memory import MemoryBreakdown, estimate_memory

if TYPE_CHECKING:
    from optimizer.space.schema import SearchSpace

__all__ = ["CONSTRAINTS", "CheckContext", "Constraint", "describe_constraint"]


@dataclass
class CheckContext:
    """What a check sees: knob arrays (broadcastable), the model, GPU, space and length.

    Attributes:
        knobs: knob name -> array; integer knobs hold ints, the others hold str values.
        seq_len: tokens per sequence the KV cache must hold (prompt plus output).
    """

    knobs: Mapping[str, np.ndarray]
    model: ModelSpec
    gpu: GPUSpec
    space: SearchSpace
    seq_len: int

    def __getitem__(self, knob: str) -> np.ndarray:
        return self.knobs[knob]

    @cached_property
    def memory(self) -> MemoryBreakdown:
        """Per-GPU memory of every candidate (computed once, on first use)."""
        k = self.knobs
        return estimate_memory(
            self.model,
            self.gpu,
            seq_len=self.seq_len,
            tp=k["tp"],
            pp=k["pp"],
            dp=k["dp"],
            quantization=k["quantization"],
            kv_cache_dtype=k["kv_cache_dtype"],
            max_batch_size=k["max_batch_size"],
            max_num_batched_tokens=k["max_num_batched_tokens"],
            spec_method=k["spec_method"],
            spec_draft_len=k["spec_draft_len"],
            kv_block_size=k["kv_block_size"],
            memory_fraction=self.space.memory.fraction(k["tp"] * k["pp"]),
            fraction_mode=self.space.memory.mode,
        )


Describe = Callable[[ModelSpec, GPUSpec, "SearchSpace"], str]


@dataclass(frozen=True)
class Constraint:
    """One named check: ``check(ctx)`` is True where a candidate is rejected."""

    name: str
    check: Callable[[CheckContext], Any]
    describe: Describe


CONSTRAINTS: dict[str, Constraint] = {}
"""Every named check, by the name a search-space file uses."""


def _constraint(describe: Describe) -> Callable[[Callable[[CheckContext], Any]], Constraint]:
    def register(check: Callable[[CheckContext], Any]) -> Constraint:
        constraint = Constraint(check.__name__, check, describe)
        CONSTRAINTS[check.__name__] = constraint
        return constraint

    return register


def describe_constraint(name: str, model: ModelSpec, gpu: GPUSpec, space: SearchSpace) -> str:
    """The one-line reason a check or a rule of ``space`` gives, for this model and GPU."""
    if name in CONSTRAINTS:
        return CONSTRAINTS[name].describe(model, gpu, space)
    rule = space.rule(name)
    if rule is None:
        raise KeyError(name)
    return rule.reason


def _supported(values: tuple[Any, ...]) -> list[str]:
    return [getattr(v, "value", v) for v in values]


# --- parallel layout ----------------------------------------------------------------------
@_constraint(lambda m, g, s: f"tp must divide the {m.num_attention_heads} attention heads")
def tp_divides_heads(ctx: CheckContext) -> Any:
    return ctx.model.num_attention_heads % ctx["tp"] != 0


@_constraint(
    lambda m, g, s: (
        f"tp and the {m.num_kv_heads} KV heads must divide one another "
        "(with tp > KV heads each head is replicated tp/KV times)"
    )
)
def tp_fits_kv_heads(ctx: CheckContext) -> Any:
    if ctx.model.attention == "mla":
        return np.False_
    heads, tp = ctx.model.num_kv_heads, ctx["tp"]
    return np.where(tp <= heads, heads % tp != 0, tp % heads != 0)


@_constraint(lambda m, g, s: f"tp must be <= {g.scale_up_gpus} GPUs of one NVLink domain ({g.id})")
def tp_within_node(ctx: CheckContext) -> Any:
    return ctx["tp"] > ctx.gpu.scale_up_gpus


@_constraint(lambda m, g, s: f"pp must divide the {m.num_layers} layers")
def pp_divides_layers(ctx: CheckContext) -> Any:
    return ctx.model.num_layers % ctx["pp"] != 0


@_constraint(
    lambda m, g, s: "dp > 1 needs an MoE model (for a dense model it is the same as more replicas)"
)
def dp_needs_moe(ctx: CheckContext) -> Any:
    return (ctx["dp"] > 1) & (not ctx.model.is_moe)


@_constraint(lambda m, g, s: "ep > 1 needs an MoE model")
def ep_needs_moe(ctx: CheckContext) -> Any:
    return (ctx["ep"] > 1) & (not ctx.model.is_moe)


@_constraint(
    lambda m, g, s: "mxfp4 quantizes MoE experts only (the gpt-oss format); a dense model has none"
)
def mxfp4_needs_moe(ctx: CheckContext) -> Any:
    return (ctx["quantization"] == "mxfp4") & (not ctx.model.is_moe)


@_constraint(lambda m, g, s: "ep must divide tp*dp (experts are spread over the replica's GPUs)")
def ep_divides_tp_dp(ctx: CheckContext) -> Any:
    return (ctx["tp"] * ctx["dp"]) % ctx["ep"] != 0


@_constraint(lambda m, g, s: f"ep must divide the {m.num_experts} routed experts")
def ep_divides_experts(ctx: CheckContext) -> Any:
    if not ctx.model.is_moe:
        return np.False_
    return ctx.model.num_experts % ctx["ep"] != 0


@_constraint(
    lambda m, g, s: (
        "ep must be 1 or tp*dp (--enable-expert-parallel spreads experts over all tp*dp GPUs)"
    )
)
def ep_spans_tp_dp(ctx: CheckContext) -> Any:
    return (ctx["ep"] != 1) & (ctx["ep"] != ctx["tp"] * ctx["dp"])


# --- formats ------------------------------------------------------------------------------
def _gpu_formats(gpu: GPUSpec) -> list[str]:
    return [q.value for q in Quantization if gpu.supports(q)]


@_constraint(
    lambda m, g, s: (
        f"weight format not native on {g.id} (sm {g.sm if g.sm is not None else 'n/a'}; "
        "fp8 needs sm_89+, nvfp4 sm_100+, weight-only mxfp4 sm_90+); "
        f"it runs {', '.join(_gpu_formats(g))}"
    )
)
def quantization_supported_by_gpu(ctx: CheckContext) -> Any:
    return ~np.isin(ctx["quantization"], _gpu_formats(ctx.gpu))


@_constraint(lambda m, g, s: f"fp8 KV cache needs FP8 tensor cores (sm_89+); {g.id} has none")
def kv_cache_dtype_supported_by_gpu(ctx: CheckContext) -> Any:
    if ctx.gpu.supports_fp8_kv():
        return np.False_
    return ctx["kv_cache_dtype"] == KVCacheDtype.FP8.value


@_constraint(
    lambda m, g, s: (
        f"{s.engine.value} supports the weight formats "
        f"{', '.join(_supported(s.supports.quantization))}"
    )
)
def quantization_supported_by_engine(ctx: CheckContext) -> Any:
    return ~np.isin(ctx["quantization"], _supported(ctx.space.supports.quantization))


@_constraint(
    lambda m, g, s: (
        f"{s.engine.value} supports the KV-cache dtypes "
        f"{', '.join(_supported(s.supports.kv_cache_dtype))}"
    )
)
def kv_cache_dtype_supported_by_engine(ctx: CheckContext) -> Any:
    return ~np.isin(ctx["kv_cache_dtype"], _supported(ctx.space.supports.kv_cache_dtype))


@_constraint(
    lambda m, g, s: (
        f"{m.model_id} is published as "
        f"{m.native_quantization.value if m.native_quantization else 'bf16'} weights; "
        "serving it in another format needs another checkpoint"
    )
)
def quantization_matches_checkpoint(ctx: CheckContext) -> Any:
    native = ctx.model.native_quantization
    if native is None:
        return np.False_
    return ctx["quantization"] != native.value


# --- speculative decoding -----------------------------------------------------------------
@_constraint(
    lambda m, g, s: (
        f"{s.engine.value} supports the speculative methods "
        f"{', '.join(_supported(s.supports.spec_method))}"
    )
)
def spec_method_supported_by_engine(ctx: CheckContext) -> Any:
    return ~np.isin(ctx["spec_method"], _supported(ctx.space.supports.spec_method))


@_constraint(
    lambda m, g, s: (
        "spec_draft_len must be 0 without speculative decoding and "
        f"1..{s.supports.max_spec_draft_len} with it"
    )
)
def spec_draft_len_matches_method(ctx: CheckContext) -> Any:
    off = ctx["spec_method"] == SpecMethod.NONE.value
    k = ctx["spec_draft_len"]
    return np.where(off, k != 0, (k < 1) | (k > ctx.space.supports.max_spec_draft_len))


@_constraint(lambda m, g, s: f"mtp needs multi-token-prediction layers; {m.model_id} has none")
def spec_method_supported_by_model(ctx: CheckContext) -> Any:
    if ctx.model.num_mtp_layers:
        return np.False_
    return ctx["spec_method"] == SpecMethod.MTP.value


# --- scheduler and cache ------------------------------------------------------------------
@_constraint(
    lambda m, g, s: (
        f"{s.engine.value} supports KV block sizes {', '.join(map(str, s.supports.kv_block_size))}"
    )
)
def kv_block_size_supported_by_engine(ctx: CheckContext) -> Any:
    return ~np.isin(ctx["kv_block_size"], list(ctx.space.supports.kv_block_size))


@_constraint(
    lambda m, g, s: (
        f"{s.knobs.max_num_batched_tokens.flag} must hold one decode step: "
        f"{s.knobs.max_batch_size.flag} x (1 + draft tokens)"
    )
)
def batched_tokens_cover_batch(ctx: CheckContext) -> Any:
    return ctx["max_num_batched_tokens"] < ctx["max_batch_size"] * (1 + ctx["spec_draft_len"])


@_constraint(
    lambda m, g, s: (
        "weights + activations + KV cache for max_batch_size sequences exceed "
        f"{g.id}'s {g.usable_memory_gib:g} GiB under {s.memory.flag}"
    )
)
def fits_in_memory(ctx: CheckContext) -> Any:
    return ~ctx.memory.fits
