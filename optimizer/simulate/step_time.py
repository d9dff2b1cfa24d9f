"""How long one engine step takes: tables from the operator prior, interpolated fast.

The event loop asks two questions, many times: how long does a decode step of ``b``
sequences holding ``K`` cached tokens take (and how fast does that grow as ``K`` grows),
and how long does a step take that also prefills a few prompt chunks. Both come from
the operator prior :func:`optimizer.perf.step.step_terms` -- the same model the learned
surrogate corrects -- evaluated once per replica configuration on small grids:

* ``linear(m)`` -- GEMMs, routed experts and all-reduces of a step of ``m`` tokens;
* ``lm_head(n)`` -- the output projection of ``n`` sampled tokens;
* ``decode_attention(b, L)`` -- generation attention of ``b`` sequences over ``L``
  cached tokens each (``L`` = the mean context of the running batch);
* ``context_attention(L)`` -- prefill attention of one prompt of ``L`` tokens; a chunk
  of ``c`` new tokens after ``p`` cached ones costs ``ctx(p + c) - ctx(p)`` (at least
  ``ctx(c)``), so chunking and prefix hits cost what they skip;
* a fixed per-step overhead.

Between grid points the tables are interpolated linearly (and extrapolated linearly in
``L`` beyond the last context point), in plain Python on lists so that one query costs
about a microsecond.

**Speculative decoding** (:class:`~optimizer.simulate.speculative.SpecDecoding`) turns
a decode step of ``b`` sequences into a verification of ``b * (k + 1)`` tokens (GEMMs,
output head; the KV cache is read once per sequence) plus ``k`` sequential draft
passes: an EAGLE/EAGLE-3 head is one decoder layer of the target's shape plus the
output head, MTP is ``num_mtp_layers`` such layers, n-gram drafting costs no GPU time,
and a separate draft model costs ``draft_cost_ratio`` times a target decode step.

**Pipeline parallelism** (``pp`` stages): the running batch is split into
``min(pp, sequences)`` micro-batches; each stage holds ``ceil(layers / pp)`` layers (the
busiest stage also runs the output head) and sends its activations to the next over
the interconnect. A token of every sequence takes one trip through all stages, so the
step (cycle) time is ``pp x stage_time(micro-batch)``; with fewer micro-batches than
stages the pipeline runs with bubbles (:meth:`StepTimeModel.pp_bubble`).

**Calibration.** ``decode_scale`` multiplies the time of a step's decode work (the step
as if it had no prefill chunks) and ``prefill_scale`` the extra time its prefill chunks
add; both may depend on the running batch -- the sequences decoding or being prefilled
-- (given at a few batch sizes, interpolated linearly in log batch size, constant
beyond the ends).
:mod:`optimizer.simulate.calibration` sets them so that simulated closed-loop TTFT and
TPOT reproduce the learned surrogate's, which keeps the simulator and the surrogate
telling one story.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import numpy as np

from optimizer.domain.endpoint import EndpointConfig
from optimizer.domain.enums import SpecMethod
from optimizer.domain.gpu import GPUSpec
from optimizer.domain.model_spec import ModelSpec
from optimizer.perf.step import LAYER_OVERHEAD_MS, kernel_library, step_terms
from optimizer.simulate.speculative import SpecDecoding

__all__ = [
    "P2P_LATENCY_MS",
    "StepCost",
    "StepTables",
    "StepTimeModel",
    "build_step_tables",
]

P2P_LATENCY_MS = 0.01
"""Fixed latency of one pipeline-stage activation send (NVLink-class, ~10 us)."""

_ACT_BYTES = 2.0


class StepCost(Protocol):
    """What the event loop needs from a step-time model (seconds)."""

    def decode(self, batch: int, kv_tokens: float) -> tuple[float, float]:
        """One decode step of ``batch`` sequences holding ``kv_tokens`` cached tokens in
        all: its duration and the duration's derivative with respect to ``kv_tokens``."""
        ...

    def mixed(
        self,
        batch: int,
        kv_tokens: float,
        chunks: Sequence[tuple[int, int]],
        running: int = 0,
    ) -> float:
        """A step that decodes ``batch`` sequences and prefills ``chunks`` of
        ``(new_tokens, cached_prefix_tokens)``; ``running`` sequences are in the
        batch in all (decoding or prefilling, this step or later)."""
        ...


@dataclass(frozen=True)
class StepTables:
    """Operator-prior step costs (ms) of one replica configuration on grids.

    Attributes:
        tokens: grid of tokens per step (``m``), increasing.
        linear_ms: GEMMs + experts + all-reduces of a step of ``m`` tokens.
        lm_head_ms: output head of ``m`` sampled tokens.
        batch: grid of decoding sequences, increasing.
        kv_len: grid of mean cached context per sequence, increasing.
        decode_attention_ms: ``[batch, kv_len]`` generation attention.
        context_len: grid of prompt lengths, increasing.
        context_attention_ms: prefill attention of one prompt of that length.
        overhead_ms: fixed cost of a step.
        num_layers: decoder layers of the target.
        pp: pipeline stages.
        stage_share: share of the layers on the busiest stage, ``ceil(L / pp) / L``.
        p2p_ms_per_token: stage-to-stage activation transfer per token.
        draft_layers: decoder layers of a draft pass (EAGLE 1, MTP its layer count,
            0 for n-gram and a separate draft model).
    """

    tokens: np.ndarray
    linear_ms: np.ndarray
    lm_head_ms: np.ndarray
    batch: np.ndarray
    kv_len: np.ndarray
    decode_attention_ms: np.ndarray
    context_len: np.ndarray
    context_attention_ms: np.ndarray
    overhead_ms: float
    num_layers: int
    pp: int = 1
    stage_share: float = 1.0
    p2p_ms_per_token: float = 0.0
    draft_layers: float = 0.0


def _grid(top: int, dense: int = 16, points: int = 40) -> np.ndarray:
    """Integers 1..dense, then a geometric grid up to ``top`` (inclusive)."""
    top = max(int(top), 2)
    small = np.arange(1, min(dense, top) + 1, dtype=np.float64)
    if top <= dense:
        return small
    large = np.round(np.geomspace(dense, top, points))
    return np.unique(np.concatenate([small, large]))


def build_step_tables(
    model: ModelSpec,
    gpu: GPUSpec,
    endpoint: EndpointConfig,
    *,
    max_batch: int,
    max_tokens: int,
    max_context: int = 1 << 20,
) -> StepTables:
    """Evaluate the operator prior for one replica configuration on the grids.

    Args:
        model: the model's shapes.
        gpu: the GPU.
        endpoint: the engine knobs (tp, dp, ep, pp, quantization, KV dtype, spec method).
        max_batch: most sequences one step decodes (grid top of ``batch``).
        max_tokens: most tokens one step processes (grid top of ``tokens``).
        max_context: longest context tabulated (longer ones are extrapolated).

    Returns:
        The tables (cached: the same configuration is evaluated once per process).
    """
    key = endpoint.model_dump_json(include=_TABLE_KNOBS)
    return _cached_tables(
        model.model_dump_json(),
        gpu.model_dump_json(),
        key,
        int(max_batch),
        int(max_tokens),
        int(max_context),
    )


_TABLE_KNOBS = {
    "engine",
    "tp",
    "pp",
    "dp",
    "ep",
    "quantization",
    "kv_cache_dtype",
    "spec_method",
    "spec_draft_len",
}


@lru_cache(maxsize=256)
def _cached_tables(
    model_json: str,
    gpu_json: str,
    endpoint_json: str,
    max_batch: int,
    max_tokens: int,
    max_context: int,
) -> StepTables:
    model = ModelSpec.model_validate_json(model_json)
    gpu = GPUSpec.model_validate_json(gpu_json)
    endpoint = EndpointConfig.model_validate_json(endpoint_json)
    return _build_tables(model, gpu, endpoint, max_batch, max_tokens, max_context)


def _build_tables(
    model: ModelSpec,
    gpu: GPUSpec,
    endpoint: EndpointConfig,
    max_batch: int,
    max_tokens: int,
    max_context: int,
) -> StepTables:
    library = kernel_library(gpu, endpoint.engine)
    common = {
        "quantization": endpoint.quantization.value,
        "kv_dtype": endpoint.kv_cache_dtype.value,
        "tp": endpoint.tp,
        "dp": endpoint.dp,
        "ep": endpoint.ep,
    }
    tokens = _grid(max_tokens, dense=32, points=48)
    lin = step_terms(model, gpu, library, decode_seqs=tokens, kv_len=1.0, **common)
    batch = _grid(max_batch, dense=16, points=28)
    kv_len = np.unique(np.round(np.geomspace(1, max_context, 31)))
    attn = step_terms(
        model, gpu, library, decode_seqs=batch[:, None], kv_len=kv_len[None, :], **common
    )
    context_len = np.unique(np.round(np.geomspace(1, max_context, 41)))
    ctx = step_terms(
        model, gpu, library, prefill_seqs=1.0, prefill_len=context_len, **common
    ).attention_ms
    layers = model.num_layers
    pp = endpoint.pp
    method = endpoint.spec_method
    if method in (SpecMethod.EAGLE, SpecMethod.EAGLE3):
        draft_layers = 1.0
    elif method is SpecMethod.MTP:
        draft_layers = float(max(model.num_mtp_layers, 1))
    else:
        draft_layers = 0.0
    p2p = 0.0
    if pp > 1:
        p2p = 1e3 * model.hidden_size * _ACT_BYTES / (gpu.interconnect_gb_s * 1e9)
    tables = StepTables(
        tokens=tokens,
        linear_ms=np.asarray(lin.gemm_ms + lin.moe_ms + lin.comm_ms, dtype=np.float64),
        lm_head_ms=np.asarray(lin.lm_head_ms, dtype=np.float64),
        batch=batch,
        kv_len=kv_len,
        decode_attention_ms=np.asarray(attn.attention_ms, dtype=np.float64),
        context_len=context_len,
        context_attention_ms=np.asarray(ctx, dtype=np.float64),
        overhead_ms=float(np.ravel(lin.overhead_ms)[0]),
        num_layers=layers,
        pp=pp,
        stage_share=math.ceil(layers / pp) / layers,
        p2p_ms_per_token=p2p,
        draft_layers=draft_layers,
    )
    for value in vars(tables).values():  # shared through the cache: read-only
        if isinstance(value, np.ndarray):
            value.setflags(write=False)
    return tables


def _interp(xs: list[float], ys: list[float], x: float) -> float:
    """Piecewise-linear interpolation, constant below the grid, linear beyond it."""
    i = bisect_right(xs, x)
    if i <= 0:
        return ys[0]
    if i >= len(xs):
        i = len(xs) - 1
    x0, x1 = xs[i - 1], xs[i]
    y0, y1 = ys[i - 1], ys[i]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def _interp_slope(xs: list[float], ys: list[float], x: float) -> tuple[float, float]:
    """Value and slope of :func:`_interp` at ``x``."""
    i = bisect_right(xs, x)
    if i <= 0:
        return ys[0], 0.0
    if i >= len(xs):
        i = len(xs) - 1
    x0, x1 = xs[i - 1], xs[i]
    y0, y1 = ys[i - 1], ys[i]
    slope = (y1 - y0) / (x1 - x0)
    return y0 + slope * (x - x0), slope


class StepTimeModel:
    """Step times of one replica (one attention-DP rank), from :class:`StepTables`.

    Implements :class:`StepCost`. Construct with :meth:`from_endpoint` (operator prior)
    and calibrate with :func:`optimizer.simulate.calibration.calibrate`.

    Args:
        tables: the operator-prior tables.
        spec: speculative decoding, or ``None``.
        decode_scale: multiplies the decode work of every step: one number, or one per
            ``scale_batch`` entry.
        prefill_scale: multiplies the time prefill chunks add to a step (same form).
        scale_batch: running batch sizes at which the scales are given (increasing);
            ``None`` when they are single numbers.
        frontend_s: latency outside the engine added to every request's first token
            and end (HTTP, tokenisation, dispatch); not a step cost.

    Example:
        >>> from optimizer.catalog import get_gpu, load_model_spec
        >>> from optimizer.domain import EndpointConfig
        >>> m = StepTimeModel.from_endpoint(load_model_spec("meta-llama/Llama-3.1-8B-Instruct"),
        ...     get_gpu("h100_sxm"), EndpointConfig(engine="vllm"), max_batch=64,
        ...     max_tokens=8192)                                        # doctest: +SKIP
        >>> m.decode(1, 1000)[0] < m.decode(64, 64000)[0]                 # doctest: +SKIP
        True
    """

    def __init__(
        self,
        tables: StepTables,
        spec: SpecDecoding | None = None,
        *,
        decode_scale: float | Sequence[float] = 1.0,
        prefill_scale: float | Sequence[float] = 1.0,
        scale_batch: Sequence[float] | None = None,
        frontend_s: float = 0.0,
    ):
        if not frontend_s >= 0:
            raise ValueError("frontend_s must be >= 0")
        self.frontend_s = float(frontend_s)
        decode = np.atleast_1d(np.asarray(decode_scale, dtype=np.float64))
        prefill = np.atleast_1d(np.asarray(prefill_scale, dtype=np.float64))
        points = 1 if scale_batch is None else len(scale_batch)
        if decode.size != points or prefill.size != points:
            raise ValueError("decode_scale and prefill_scale need one value per scale_batch")
        if (decode <= 0).any() or (prefill < 0).any():
            raise ValueError("decode_scale must be > 0 and prefill_scale >= 0")
        self.tables = tables
        self.spec = spec
        self.scale_batch = None if scale_batch is None else tuple(float(b) for b in scale_batch)
        if self.scale_batch is not None and (
            list(self.scale_batch) != sorted(self.scale_batch) or min(self.scale_batch) < 1
        ):
            raise ValueError("scale_batch must increase from >= 1")
        self.decode_scale: float | tuple[float, ...] = (
            float(decode[0]) if scale_batch is None else tuple(decode.tolist())
        )
        self.prefill_scale: float | tuple[float, ...] = (
            float(prefill[0]) if scale_batch is None else tuple(prefill.tolist())
        )
        self._scale_x = np.log(np.asarray(self.scale_batch)) if self.scale_batch else None
        self._scale_d = decode
        self._scale_p = prefill
        self._scales: dict[int, tuple[float, float]] = {}
        self._tok = tables.tokens.tolist()
        self._lin = tables.linear_ms.tolist()
        self._head = tables.lm_head_ms.tolist()
        self._kv = tables.kv_len.tolist()
        self._ctx_x = tables.context_len.tolist()
        self._ctx_y = tables.context_attention_ms.tolist()
        self._decode_cache: dict[int, tuple[float, list[float]]] = {}
        self._attn_rows: dict[float, list[float]] = {}

    @classmethod
    def from_endpoint(
        cls,
        model: ModelSpec,
        gpu: GPUSpec,
        endpoint: EndpointConfig,
        *,
        max_batch: int,
        max_tokens: int,
        spec: SpecDecoding | None = None,
    ) -> StepTimeModel:
        """The uncalibrated operator-prior model of a replica (see :func:`build_step_tables`)."""
        k = spec.max_draft_len if spec is not None else 0
        tables = build_step_tables(
            model, gpu, endpoint, max_batch=max_batch, max_tokens=max_tokens + max_batch * k
        )
        return cls(tables, spec)

    def with_scales(
        self,
        decode_scale: float | Sequence[float],
        prefill_scale: float | Sequence[float],
        scale_batch: Sequence[float] | None = None,
        *,
        frontend_s: float = 0.0,
    ) -> StepTimeModel:
        """A copy with other calibration scales and frontend latency (same tables)."""
        return StepTimeModel(
            self.tables,
            self.spec,
            decode_scale=decode_scale,
            prefill_scale=prefill_scale,
            scale_batch=scale_batch,
            frontend_s=frontend_s,
        )

    def scales(self, batch: int) -> tuple[float, float]:
        """(decode, prefill) scale at a running batch of ``batch`` sequences."""
        cached = self._scales.get(batch)
        if cached is None:
            if self._scale_x is None:
                cached = (float(self._scale_d[0]), float(self._scale_p[0]))
            else:
                x = math.log(max(batch, 1))
                cached = (
                    float(np.interp(x, self._scale_x, self._scale_d)),
                    float(np.interp(x, self._scale_x, self._scale_p)),
                )
            self._scales[batch] = cached
        return cached

    # --- raw (unscaled) milliseconds ------------------------------------------------
    def _attention_row(self, batch: float) -> list[float]:
        """Generation attention (ms) of ``batch`` sequences at every ``kv_len`` grid point."""
        row = self._attn_rows.get(batch)
        if row is None:
            t = self.tables
            i = int(np.searchsorted(t.batch, batch, side="right"))
            i = min(max(i, 1), len(t.batch) - 1)
            b0, b1 = t.batch[i - 1], t.batch[i]
            w = min(max((batch - b0) / (b1 - b0), 0.0), 1.0)
            values = (1.0 - w) * t.decode_attention_ms[i - 1] + w * t.decode_attention_ms[i]
            row = values.tolist()
            self._attn_rows[batch] = row
        return row

    def draft_len(self, batch: int) -> int:
        """Draft length at a running batch of ``batch`` sequences (0 without speculation)."""
        return self.spec.draft_len(batch) if (self.spec is not None and batch > 0) else 0

    def _draft(self, batch: int, k: int) -> tuple[float, float]:
        """``k`` sequential draft passes over ``batch`` sequences: (context-independent
        ms, multiple of the target's generation attention of the full batch)."""
        spec = self.spec
        if k == 0 or spec is None or spec.method is SpecMethod.NGRAM:
            return 0.0, 0.0
        t = self.tables
        lin = _interp(self._tok, self._lin, batch)
        head = _interp(self._tok, self._head, batch)
        if spec.method is SpecMethod.DRAFT_MODEL:
            ratio = spec.draft_cost_ratio
            return k * ratio * (lin + head + t.overhead_ms), k * ratio
        layers = t.draft_layers
        fixed = k * (layers * (lin / t.num_layers + LAYER_OVERHEAD_MS) + head)
        return fixed, k * layers / t.num_layers

    def _stage_fixed(self, tokens: float, sampled: float) -> float:
        """Context-independent ms of one step cycle for a micro-batch of ``tokens``."""
        t = self.tables
        lin = _interp(self._tok, self._lin, tokens)
        head = _interp(self._tok, self._head, sampled)
        if t.pp == 1:
            return lin + head + t.overhead_ms
        stage = t.stage_share * lin + head + t.overhead_ms
        return t.pp * (stage + t.p2p_ms_per_token * tokens + P2P_LATENCY_MS)

    def _decode_parts(self, batch: int) -> tuple[float, list[float]]:
        """(context-independent ms, ms per ``kv_len`` grid point) of a decode step."""
        cached = self._decode_cache.get(batch)
        if cached is not None:
            return cached
        t = self.tables
        k = self.draft_len(batch)
        micro = min(t.pp, batch)
        per = batch / micro
        draft_fixed, draft_attn = self._draft(batch, k)
        fixed = self._stage_fixed(per * (k + 1), per * (k + 1)) + draft_fixed
        own = self._attention_row(per)
        factor = t.pp * t.stage_share
        if draft_attn:
            full = self._attention_row(float(batch))
            row = [factor * a + draft_attn * f for a, f in zip(own, full, strict=True)]
        else:
            row = [factor * a for a in own]
        self._decode_cache[batch] = (fixed, row)
        return fixed, row

    def decode_ms(self, batch: int, kv_tokens: float) -> tuple[float, float]:
        """Unscaled decode step (ms) and its slope in ms per cached token."""
        if batch <= 0:
            return self.tables.overhead_ms, 0.0
        fixed, row = self._decode_parts(batch)
        value, slope = _interp_slope(self._kv, row, kv_tokens / batch)
        return fixed + value, slope / batch

    def _context_ms(self, new: int, prefix: int) -> float:
        whole = _interp(self._ctx_x, self._ctx_y, prefix + new)
        done = _interp(self._ctx_x, self._ctx_y, prefix) if prefix > 0 else 0.0
        alone = _interp(self._ctx_x, self._ctx_y, new)
        return max(whole - done, alone)

    def mixed_ms(
        self, batch: int, kv_tokens: float, chunks: Sequence[tuple[int, int]]
    ) -> tuple[float, float]:
        """Unscaled (decode part, prefill part) in ms of a step that decodes ``batch``
        sequences and prefills ``chunks``; the decode part is the step without chunks."""
        decode = self.decode_ms(batch, kv_tokens)[0] if batch > 0 else self.tables.overhead_ms
        if not chunks:
            return decode, 0.0
        t = self.tables
        k = self.draft_len(batch)
        if t.pp == 1 and k == 0:  # fast path: only GEMM tokens, samples and context change
            tok, lin, head = self._tok, self._lin, self._head
            new_tokens = 0
            context = 0.0
            for c, p in chunks:
                new_tokens += c
                context += self._context_ms(c, p)
            base = max(batch, 1)
            extra = (
                _interp(tok, lin, batch + new_tokens)
                - _interp(tok, lin, base)
                + _interp(tok, head, batch + len(chunks))
                - _interp(tok, head, base)
                + context
            )
            if batch == 0:
                extra += _interp(tok, lin, base) + _interp(tok, head, base)
            return decode, max(extra, 0.0)
        micro = min(t.pp, batch + len(chunks))
        new_tokens = sum(c for c, _ in chunks)
        tokens = (batch * (k + 1) + new_tokens) / micro
        sampled = (batch * (k + 1) + len(chunks)) / micro
        context = sum(self._context_ms(c, p) for c, p in chunks) / micro
        total = self._stage_fixed(tokens, sampled) + t.pp * t.stage_share * context
        if batch > 0:
            draft_fixed, draft_attn = self._draft(batch, k)
            mean_len = kv_tokens / batch
            own = _interp(self._kv, self._attention_row(batch / micro), mean_len)
            total += t.pp * t.stage_share * own + draft_fixed
            if draft_attn:
                total += draft_attn * _interp(self._kv, self._attention_row(float(batch)), mean_len)
        return decode, max(total - decode, 0.0)

    # --- the StepCost protocol (seconds, scaled) --------------------------------------
    def decode(self, batch: int, kv_tokens: float) -> tuple[float, float]:
        value, slope = self.decode_ms(batch, kv_tokens)
        scale = 1e-3 * self.scales(batch)[0]
        return value * scale, slope * scale

    def mixed(
        self,
        batch: int,
        kv_tokens: float,
        chunks: Sequence[tuple[int, int]],
        running: int = 0,
    ) -> float:
        decode, prefill = self.mixed_ms(batch, kv_tokens, chunks)
        d, p = self.scales(max(running, batch, 1))
        return 1e-3 * (d * decode + p * prefill)

    def pp_bubble(self, batch: int) -> float:
        """Idle share of the pipeline stages at a running batch of ``batch`` sequences:
        missing micro-batches plus the busiest stage's layer imbalance."""
        t = self.tables
        if t.pp == 1 or batch <= 0:
            return 0.0
        busy = min(t.pp, batch) / t.pp
        balance = 1.0 / (t.pp * t.stage_share)
        return 1.0 - busy * balance
