"""What a run records: the per-request table engines fill, and each engine's integrals.

:class:`RequestLog` holds every request's inputs as plain Python lists (scalar access in
the event loop is several times faster than on numpy arrays) and its outcomes, shared by
all engine ranks of a run. :class:`EngineStats` accumulates one engine's time integrals
and counters; :mod:`optimizer.simulate.metrics` turns both into the report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from optimizer.simulate.traffic import RequestSet

__all__ = ["PRIORITY_SHIFT", "EngineStats", "RequestLog"]

PRIORITY_SHIFT = 1 << 40
"""Queue keys are ``-priority * PRIORITY_SHIFT + request id``: priority first, then arrival."""


class RequestLog:
    """Per-request inputs (as Python lists, for fast scalar access) and outcomes.

    Args:
        requests: the requests of the run.

    Attributes:
        arrival: arrival time (closed-loop arrivals are filled in by the engines).
        first_scheduled: when the request was first admitted.
        first_token: when its first token was produced.
        finish: when its last token was produced.
        preemptions: times it was preempted.
        cached_tokens: prompt tokens its first admission found in the prefix cache.
        decode_steps: decode (verification) steps it ran.
        replica: the engine that served it.
        rejected: whether it could never fit in the KV cache.
    """

    def __init__(self, requests: RequestSet):
        n = len(requests)
        self.requests = requests
        self.isl: list[int] = requests.isl.tolist()
        self.osl: list[int] = requests.osl.tolist()
        self.key: list[int] = (
            (-requests.priority.astype(np.int64)) * PRIORITY_SHIFT + np.arange(n, dtype=np.int64)
        ).tolist()
        self.lookup_ns: list[int] = requests.lookup_ns.tolist()
        self.lookup_tokens: list[int] = requests.lookup_tokens.tolist()
        self.publish_ns: list[int] = requests.publish_ns.tolist()
        self.publish_prefill: list[int] = requests.publish_prefill.tolist()
        self.publish_final: list[bool] = requests.publish_final.tolist()
        self.arrival: list[float] = requests.arrival.tolist()
        nan = math.nan
        self.first_scheduled: list[float] = [nan] * n
        self.first_token: list[float] = [nan] * n
        self.finish: list[float] = [nan] * n
        self.preemptions: list[int] = [0] * n
        self.cached_tokens: list[int] = [0] * n
        self.decode_steps: list[int] = [0] * n
        self.replica: list[int] = [-1] * n
        self.rejected: list[bool] = [False] * n


@dataclass
class EngineStats:
    """Time integrals and counters of one engine (seconds, blocks, tokens).

    Attributes:
        end_time: clock at the last event.
        busy_time: time spent running steps.
        steps: steps run.
        mixed_steps: steps that prefilled prompt chunks.
        stretches: runs of decode-only steps jumped over in one go.
        max_running: most sequences in the running batch.
        in_system_area: integral of requests in the system (queued or running) over time.
        kv_used_area: integral of blocks in use (running sequences and pinned prefixes).
        kv_cached_area: integral of cached, evictable prefix blocks.
        kv_peak_blocks: most blocks in use at a step boundary.
        decode_seq_steps: sum over decode steps of decoding sequences.
        decode_waste_tokens: sum over decode steps and sequences of unused slots in
            their blocks (trapezoid between stretch ends).
        decode_token_steps: the same sum of occupied slots (cached tokens).
        running_area: integral of running sequences over time.
        preemptions: sequences preempted.
        prefill_tokens: prompt tokens computed (recomputation included).
        prompt_tokens: prompt tokens admitted (hits included).
        hit_tokens: prompt tokens served by the prefix cache.
        spec_steps: verification steps with speculation on (draft length > 0).
        spec_tokens: tokens those steps emitted.
        bubble_area: integral of the pipeline's idle stage share over busy time.
        itl_seconds: step durations (one per stretch or mixed step) for inter-token
            latency percentiles; ``itl_weight`` holds the tokens that waited that long.
    """

    end_time: float = 0.0
    busy_time: float = 0.0
    steps: int = 0
    mixed_steps: int = 0
    stretches: int = 0
    max_running: int = 0
    in_system_area: float = 0.0
    kv_used_area: float = 0.0
    kv_cached_area: float = 0.0
    kv_peak_blocks: int = 0
    decode_seq_steps: int = 0
    decode_waste_tokens: float = 0.0
    decode_token_steps: float = 0.0
    running_area: float = 0.0
    preemptions: int = 0
    prefill_tokens: int = 0
    prompt_tokens: int = 0
    hit_tokens: int = 0
    spec_steps: int = 0
    spec_tokens: float = 0.0
    bubble_area: float = 0.0
    itl_seconds: list[float] = field(default_factory=list)
    itl_weight: list[float] = field(default_factory=list)
