"""Closed-loop TTFT and TPOT priors composed from engine steps (:mod:`optimizer.perf.step`).

Closed-loop estimates (``C`` clients, each sending a request of ``isl`` input and
``osl`` output tokens as soon as its previous one finishes), per attention-DP rank with
``B = C / dp`` running sequences:

* ``TPOT = mean step(B decode tokens over isl + osl / 2 cached tokens, plus the
  prefills of isl tokens that step holds)``: every request is prefilled once per
  ``osl`` decode steps, so continuous batching interleaves ``a = B / osl`` prefills into
  each decode step on average (chunked prefill merges them into the step; separate
  prefill steps cost the same on average). A step holds a whole number of them,
  ``floor(a)`` or ``floor(a) + 1``, and the mean is taken over those two steps' times.
* ``TTFT = 0.5 * step(B decodes, floor(a) prefills) + step(B decodes, floor(a) + 1
  prefills)``: a new request waits on average half of the running step, then is
  prefilled with the others that arrived during it, next to the running decodes.
* ``queue_ms``: when ``B`` exceeds the sequences the KV cache holds (``S``, from
  :func:`~optimizer.space.memory.estimate_memory`), the excess would wait for free
  slots, ``(B / S - 1) * osl * TPOT``. Reported apart, not added to TTFT: the memory
  estimate is conservative and engines cap their batch in ways the runs do not record,
  so the learned model decides how much of it shows.
* ``burst_prefill_ms``: the prefill of all ``B`` requests at once -- what the first
  requests of a closed-loop benchmark see when every client starts together.

Every term is non-decreasing in concurrency and input length, and non-increasing in
GPU bandwidth and FLOPS (the steps' operators are), which is what the learned
surrogate's monotonicity rests on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from optimizer.domain.enums import Quantization
from optimizer.domain.gpu import GPUSpec
from optimizer.domain.model_spec import BYTES_PER_PARAM, ModelSpec
from optimizer.perf.library import KernelLibrary
from optimizer.perf.queries import Plan, evaluate
from optimizer.perf.roofline import GpuFigures
from optimizer.perf.step import ACTIVATION_WIRE_BYTES, StepTerms, step_plan
from optimizer.space.memory import estimate_memory

__all__ = ["ClosedLoopPrior", "closed_loop_plan", "closed_loop_prior"]


def _f(value: ArrayLike) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


@dataclass(frozen=True)
class ClosedLoopPrior:
    """Closed-loop TTFT/TPOT estimates and the terms a learned model corrects.

    Attributes:
        ttft_ms, tpot_ms: the prior's estimates.
        decode: terms of the mean steady-state decode step (the mix of steps holding
            ``floor(a)`` and ``floor(a) + 1`` prefills).
        prefill: terms of the step that prefills a new request (``floor(a) + 1``
            prefills next to the running decodes).
        burst_prefill_ms: prefill of all running requests at once.
        queue_ms: waiting for a free KV slot (0 when the KV cache holds the batch).
        batch: running sequences per attention-DP rank (``C / dp``).
        kv_capacity: sequences of ``isl + osl`` tokens the KV cache holds per rank.
        weight_read_ms: per-GPU weight bytes over the GPU's bandwidth.
        kv_read_ms: per-GPU KV bytes one decode step reads, over the bandwidth.
        compute_ms: per-GPU FLOPs of one decode step over the peak of the format.
        comm_bytes: bytes all-reduced per decode step on one GPU.
    """

    ttft_ms: np.ndarray
    tpot_ms: np.ndarray
    decode: StepTerms
    prefill: StepTerms
    burst_prefill_ms: np.ndarray
    queue_ms: np.ndarray
    batch: np.ndarray
    kv_capacity: np.ndarray
    weight_read_ms: np.ndarray
    kv_read_ms: np.ndarray
    compute_ms: np.ndarray
    comm_bytes: np.ndarray

    def columns(self) -> dict[str, np.ndarray]:
        """All figures as flat arrays of one length, by the column names of :meth:`to_frame`."""
        columns: dict[str, np.ndarray] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, StepTerms):
                for g in fields(value):
                    columns[f"{f.name}_{g.name}"] = np.ravel(getattr(value, g.name))
                columns[f"{f.name}_total_ms"] = np.ravel(value.total_ms)
            else:
                columns[f.name] = np.ravel(value)
        n = max(len(v) for v in columns.values())
        return {k: np.broadcast_to(v, (n,)) if len(v) == 1 else v for k, v in columns.items()}

    def to_frame(self, index: pd.Index | None = None) -> pd.DataFrame:
        """All figures as columns (``decode_*`` / ``prefill_*`` for the step terms)."""
        return pd.DataFrame(self.columns(), index=index)


def _kv_capacity(
    model: ModelSpec,
    gpu: GPUSpec,
    quantization: str,
    kv_dtype: str,
    tp: np.ndarray,
    dp: np.ndarray,
    seq_len: np.ndarray,
) -> np.ndarray:
    """Sequences of ``seq_len`` tokens the KV cache of one attention-DP rank holds (>= 1)."""
    memory = estimate_memory(
        model,
        gpu,
        seq_len=seq_len.astype(np.int64),
        tp=tp.astype(np.int64),
        dp=dp.astype(np.int64),
        quantization=quantization,
        kv_cache_dtype=kv_dtype,
    )
    return np.maximum(_f(memory.max_sequences), 1.0)


def closed_loop_prior(
    model: ModelSpec,
    gpu: GPUSpec,
    library: KernelLibrary,
    *,
    quantization: str,
    kv_dtype: str,
    tp: ArrayLike,
    dp: ArrayLike,
    ep: ArrayLike,
    concurrency: ArrayLike,
    isl: ArrayLike,
    osl: ArrayLike,
) -> ClosedLoopPrior:
    """TTFT and TPOT of ``concurrency`` closed-loop clients (see the module docstring).

    Args:
        model: the model's shapes.
        gpu: the GPU.
        library: its kernel library.
        quantization: weight format.
        kv_dtype: KV-cache element type.
        tp, dp, ep: parallel degrees.
        concurrency: clients.
        isl, osl: input and output tokens per request.

    Returns:
        The estimates with their terms, arrays of the broadcast shape.

    Example:
        >>> from optimizer.catalog import get_gpu, load_model_spec
        >>> from optimizer.perf.step import kernel_library
        >>> gpu = get_gpu("h100_sxm")
        >>> p = closed_loop_prior(load_model_spec("meta-llama/Llama-3.1-8B-Instruct"), gpu,
        ...     kernel_library(gpu), quantization="bf16", kv_dtype="bf16", tp=1, dp=1, ep=1,
        ...     concurrency=[1, 64], isl=1024, osl=1024)
        >>> bool(p.tpot_ms[0] < p.tpot_ms[1])
        True
    """
    plan = closed_loop_plan(
        model,
        gpu,
        quantization=quantization,
        kv_dtype=kv_dtype,
        tp=tp,
        dp=dp,
        ep=ep,
        concurrency=concurrency,
        isl=isl,
        osl=osl,
    )
    return evaluate(library, [plan])[0]


def closed_loop_plan(
    model: ModelSpec,
    gpu: GPUSpec,
    *,
    quantization: str,
    kv_dtype: str,
    tp: ArrayLike,
    dp: ArrayLike,
    ep: ArrayLike,
    concurrency: ArrayLike,
    isl: ArrayLike,
    osl: ArrayLike,
) -> Plan[ClosedLoopPrior]:
    """:func:`closed_loop_prior` as a :class:`~optimizer.perf.queries.Plan`: the kernel
    lookups of its steps, to be timed together with other plans' on the same library
    (:func:`~optimizer.perf.queries.evaluate`), and the estimate built from them.

    Arguments as for :func:`closed_loop_prior`, less the library.
    """
    # (np.broadcast_arrays returns arrays already of the common shape as they are)
    tp_, dp_, ep_, conc, isl_, osl_ = np.broadcast_arrays(
        *(_f(a) for a in (tp, dp, ep, concurrency, isl, osl))
    )
    shape = tp_.shape
    batch = np.maximum(conc / dp_, 1.0)
    kv_len = isl_ + osl_ / 2.0

    arrivals = batch / np.maximum(osl_, 1.0)
    # A decode step holds a whole number of prefills: ``floor(arrivals)`` or one more,
    # in the proportion that makes their mean ``arrivals``. The mean step is the same
    # mix of those two steps' times -- not the time of one step with a fractional
    # prefill, which would spread the prompt's tokens over every step (at small batches
    # a step's time is concave in its tokens: weights, and the experts a batch touches,
    # are read once whatever the tokens).
    fewer = np.floor(arrivals)
    more_share = arrivals - fewer
    none = np.zeros(shape)
    # The three steps of the estimate, planned as one step stacked on a leading axis (its
    # lookups timed in one call per operator): decode steps holding ``fewer`` and
    # ``fewer + 1`` prefills, and the burst prefill.
    steps = step_plan(
        model,
        gpu,
        decode_seqs=np.stack([batch, batch, none]),
        kv_len=np.stack([kv_len, kv_len, np.ones(shape)]),
        prefill_seqs=np.stack([fewer, fewer + 1.0, batch]),
        prefill_len=np.broadcast_to(isl_, (3, *shape)),
        quantization=quantization,
        kv_dtype=kv_dtype,
        tp=np.broadcast_to(tp_, (3, *shape)),
        dp=np.broadcast_to(dp_, (3, *shape)),
        ep=np.broadcast_to(ep_, (3, *shape)),
    )

    def finish(answers: Sequence[np.ndarray]) -> ClosedLoopPrior:
        stacked = steps.finish(answers)
        with_fewer, with_more, burst_terms = (
            StepTerms(**{f.name: getattr(stacked, f.name)[i] for f in fields(StepTerms)})
            for i in range(3)
        )
        decode = StepTerms(
            **{
                f.name: (1.0 - more_share) * getattr(with_fewer, f.name)
                + more_share * getattr(with_more, f.name)
                for f in fields(StepTerms)
            }
        )
        prefill = with_more
        tpot = decode.total_ms
        burst = burst_terms.total_ms

        capacity = _kv_capacity(model, gpu, quantization, kv_dtype, tp_, dp_, isl_ + osl_)
        queue = np.maximum(batch / capacity - 1.0, 0.0) * osl_ * tpot
        ttft = 0.5 * with_fewer.total_ms + prefill.total_ms

        q = Quantization(quantization)
        bandwidth = gpu.mem_bw_tb_s * 1e12
        experts = model.routed_expert_params * BYTES_PER_PARAM[q]
        weight_bytes = (model.weight_bytes(q) - experts) / tp_ + experts / (tp_ * dp_)
        kv_token = model.kv_bytes_per_token(kv_dtype)
        kv_split = 1.0 if model.attention == "mla" else np.minimum(tp_, float(model.num_kv_heads))
        kv_bytes = batch * kv_len * kv_token / kv_split
        flops = (batch + arrivals * isl_) * model.flops_per_token(0) / tp_
        flops = flops + batch * _attention_flops(model, kv_len) / tp_
        return ClosedLoopPrior(
            ttft_ms=ttft,
            tpot_ms=tpot,
            decode=decode,
            prefill=prefill,
            burst_prefill_ms=burst,
            queue_ms=queue,
            batch=batch,
            kv_capacity=capacity,
            weight_read_ms=1e3 * weight_bytes / bandwidth,
            kv_read_ms=1e3 * kv_bytes / bandwidth,
            compute_ms=1e3 * flops / GpuFigures.of(gpu).peak_flops(q),
            comm_bytes=2.0 * model.num_layers * batch * model.hidden_size * ACTIVATION_WIRE_BYTES,
        )

    return Plan(steps.queries, finish)


def _attention_flops(model: ModelSpec, kv_len: np.ndarray) -> np.ndarray:
    """Attention FLOPs of one token over ``kv_len`` cached tokens (per distinct length)."""
    unique, inverse = np.unique(np.round(kv_len).astype(np.int64), return_inverse=True)
    base = model.flops_per_token(0)
    values = np.array([model.flops_per_token(int(n)) - base for n in unique], dtype=np.float64)
    return values[inverse].reshape(kv_len.shape)
