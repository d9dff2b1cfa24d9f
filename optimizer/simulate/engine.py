"""One engine replica (one attention data-parallel rank): continuous batching, event by event.

The loop follows what vLLM, SGLang and TensorRT-LLM schedulers do each step:

1. requests that arrived are queued (FCFS, or by priority then arrival);
2. queued requests are admitted while fewer than ``max_batch`` run and the KV pool has
   blocks for their prompt (minus the prefix-cache hits, plus a small watermark);
3. a step runs every decoding sequence one token (one verification of ``k + 1``
   tokens with speculative decoding) and fills the rest of the token budget
   (``max_num_batched_tokens``) with prompt chunks, oldest first (chunked prefill); a
   prompt whose last chunk ran gets its first token at the end of that step;
4. a sequence whose next token needs a block when none is free or evictable is
   preempted by recompute: it frees its blocks and re-queues, to prefill its prompt and
   the tokens it had generated again.

**Stretches.** While no prompt is being prefilled, every step looks the same except for
the slowly growing context, so the loop jumps over all the steps until the next event --
a completion (a heap of completion steps), the step in which the next admissible
request arrives, the step that would run out of KV blocks, or the caller's horizon --
in one go. Step time grows linearly with the cached tokens inside a stretch, so the
stretch's duration is an arithmetic series and the step in which an arrival lands is
the root of a quadratic. Per-sequence state lives in a few arrays indexed by batch slot,
so KV block counts are one vectorised expression per stretch.

Time is in seconds. Results are written into a shared :class:`RequestLog` (so several
engines behind a router fill one table) and the engine's :class:`EngineStats`.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from optimizer.errors import InvalidInputError
from optimizer.simulate.kv_cache import PrefixCache
from optimizer.simulate.records import PRIORITY_SHIFT, EngineStats, RequestLog
from optimizer.simulate.speculative import SpecDecoding, StepSampler
from optimizer.simulate.step_time import StepCost

__all__ = ["Engine", "EngineLimits"]

_MASK = PRIORITY_SHIFT - 1
_PHANTOM = -2  # warm-start sequences of a closed loop have ids -2, -3, ... (-1: empty slot)
_INF = math.inf


@dataclass(frozen=True)
class EngineLimits:
    """What bounds one engine rank.

    Attributes:
        total_blocks: KV blocks of the pool.
        block_size: tokens per block.
        max_batch: most running sequences (``max_num_seqs``).
        token_budget: most tokens per step (``max_num_batched_tokens``).
        priority: schedule by tenant priority (then arrival) instead of FCFS.
        prefix_caching: reuse cached prefix blocks.
        watermark_blocks: blocks admission leaves free for running sequences to grow.
        lookahead_tokens: KV slots reserved per sequence for draft tokens.
    """

    total_blocks: int
    block_size: int
    max_batch: int
    token_budget: int
    priority: bool = False
    prefix_caching: bool = True
    watermark_blocks: int = 0
    lookahead_tokens: int = 0

    def __post_init__(self) -> None:
        for name in ("total_blocks", "block_size", "max_batch", "token_budget"):
            if getattr(self, name) < 1:
                raise InvalidInputError(name, f"must be >= 1, got {getattr(self, name)}")


class Engine:
    """One engine rank replaying requests through continuous batching.

    Args:
        log: the run's request table (shared by all engines of a run).
        limits: batch, token-budget and KV limits.
        step: step-time model (:class:`~optimizer.simulate.step_time.StepCost`).
        spec: speculative decoding, or ``None``.
        rng: random generator (speculative acceptance draws).
        replica: this engine's index (recorded per request).
        bubble: optional ``batch -> idle stage share`` of a pipeline-parallel replica.

    Feed requests with :meth:`submit` (open loop, non-decreasing arrival times) or
    :meth:`start_closed_loop`, then call :meth:`run_until`.
    """

    def __init__(
        self,
        log: RequestLog,
        limits: EngineLimits,
        step: StepCost,
        *,
        spec: SpecDecoding | None = None,
        rng: np.random.Generator | None = None,
        replica: int = 0,
        bubble: Callable[[int], float] | None = None,
    ):
        self.log = log
        self.limits = limits
        self.step_model = step
        self.spec = spec
        self.replica = replica
        self.stats = EngineStats()
        self.cache = PrefixCache(limits.block_size, enabled=limits.prefix_caching)
        self._bubble = bubble
        self._sampler = (
            StepSampler(spec.acceptance, rng or np.random.default_rng(0)) if spec else None
        )
        self.now = 0.0
        self._S = 0  # decode steps run so far (every decoding sequence advances each step)
        # arrivals
        self._feed: list[int] = []
        self._feed_pos = 0
        self._pool: Sequence[int] = ()
        self._pool_pos = 0
        self._closed = False
        # queue and prefill
        self._waiting: list[int] = []
        self._prefilling: list[int] = []
        self._remaining: dict[int, int] = {}
        self._done: dict[int, int] = {}
        self._prompt: dict[int, int] = {}
        self._alloc: dict[int, int] = {}
        self._shared: dict[int, int] = {}
        self._generated: dict[int, int] = {}
        self._prefill_private = 0
        # decoding slots
        size = limits.max_batch
        self._len0 = np.zeros(size)
        self._s0 = np.zeros(size)
        self._rate = np.zeros(size)
        self._l_len0 = [0.0] * size
        self._l_s0 = [0.0] * size
        self._l_rate = [0.0] * size
        self._slot_rid = [-1] * size
        self._slot_serial = [0] * size
        self._slot_finish = [0] * size
        self._slot_remaining = [0] * size
        self._free_slots = list(range(size - 1, -1, -1))
        self._n_dec = 0
        self._heap: list[tuple[int, int, int]] = []
        self._serial = 0
        self._ka = 0.0  # sum(len0 - rate * s0): cached tokens = _ka + _rs * S
        self._rs = 0.0  # sum of per-step token rates
        self._shared_dec = 0
        self._blk_s = -1
        self._blk_val = 0
        self._k = 0
        self._inv_block = 1.0 / limits.block_size
        self._total_blocks = limits.total_blocks
        self._block = limits.block_size
        self._unit = spec is None  # one token per step: exact block sums from residues
        self._residues: list[int] = []
        self._sum_q = 0
        self._slot_c = [0] * size

    # --- feeding --------------------------------------------------------------------
    def submit(self, rid: int) -> None:
        """Queue request ``rid`` (its arrival time must not precede earlier ones')."""
        self._feed.append(rid)
        self.log.replica[rid] = self.replica

    def submit_many(self, rids: Sequence[int]) -> None:
        """Queue several requests, sorted by arrival."""
        self._feed.extend(rids)
        replica = self.log.replica
        for rid in rids:
            replica[rid] = self.replica

    def start_closed_loop(
        self, clients: int, pool: Sequence[int], warm: tuple[int, int] | None = None
    ) -> None:
        """``clients`` clients send the requests of ``pool`` in order, each its next one
        as soon as its previous one ends.

        Args:
            clients: closed-loop clients on this engine.
            pool: request ids, in the order the clients send them.
            warm: ``(input, output)`` tokens of the requests the clients are taken to be
                waiting on at time 0: client ``i`` of ``C`` starts with one already
                decoding, ``ceil(output * (i + 1) / C)`` tokens from its end, so the
                clients are spread over a request's life as in a long-running closed
                loop (steady state). These warm-up requests are not in the log.
                ``None``: every client sends its first request at time 0 (a burst).
        """
        self._closed = True
        self._pool = pool
        self._pool_pos = 0
        count = min(clients, len(pool))
        if warm is None:
            for _ in range(count):
                self._release_next(0.0)
            return
        isl, osl = warm
        for i in range(count):
            if self._n_dec >= self.limits.max_batch:
                self._release_next(0.0)
                continue
            remaining = max(1, math.ceil(osl * (i + 1) / count))
            rid = _PHANTOM - i
            self._prompt[rid] = isl + osl - remaining
            self._shared[rid] = 0
            self._alloc[rid] = 0
            self._start_decode(rid, remaining)
        self._sync_draft_len()

    def _release_next(self, time: float) -> None:
        if self._pool_pos < len(self._pool):
            rid = self._pool[self._pool_pos]
            self._pool_pos += 1
            self.log.arrival[rid] = time
            self.submit(rid)

    @property
    def outstanding(self) -> int:
        """Requests queued, running or arrived but not yet seen by the scheduler."""
        return (
            len(self._waiting)
            + len(self._prefilling)
            + self._n_dec
            + len(self._feed)
            - self._feed_pos
        )

    @property
    def acceptance_draws(self) -> tuple[int, int]:
        """(tokens, verification steps) of all speculative acceptance draws so far."""
        sampler = self._sampler
        return (sampler.drawn_tokens, sampler.drawn_steps) if sampler is not None else (0, 0)

    @property
    def running(self) -> int:
        """Sequences in the running batch (prefilling or decoding)."""
        return len(self._prefilling) + self._n_dec

    # --- KV accounting --------------------------------------------------------------
    def _decode_blocks(self) -> int:
        """Blocks held by decoding sequences at the current step."""
        if self._blk_s != self._S:
            self._blk_val = self._blocks_at(0)
            self._blk_s = self._S
        return self._blk_val

    def _blocks_at(self, steps: int) -> int:
        """Blocks decoding sequences will hold ``steps`` steps from now.

        One token per step (no speculation): with ``c = len0 - s0 = B*q + r`` per
        sequence and ``S = B*Q + s``, ``ceil((c + S) / B) = q + Q + ceil((r + s) / B)``,
        so the sum needs only the sum of ``q`` and the sorted residues ``r``. With
        speculation the rates are fractional and the sum is evaluated over the slots.
        """
        if not self._unit:
            tokens = self._len0 + self._rate * (self._S + steps - self._s0)
            return int(np.ceil(tokens * self._inv_block - 1e-9).sum())
        b = self._n_dec
        if not b:
            return 0
        block = self.limits.block_size
        whole, rest = divmod(self._S + steps, block)
        residues = self._residues
        value = self._sum_q + b * whole + b - bisect_left(residues, block + 1 - rest)
        if rest == 0:
            return value + b - bisect_right(residues, 0)
        return value + b

    def _free(self) -> int:
        if self._blk_s != self._S:
            self._blk_val = self._blocks_at(0)
            self._blk_s = self._S
        cache = self.cache
        return (
            self._total_blocks
            - self._prefill_private
            - self._blk_val
            + self._shared_dec
            - cache.pinned
            - cache.cached
        )

    def _reclaim(self) -> None:
        """Evict cached prefix blocks that running sequences have grown into."""
        free = self._free()
        if free < 0:
            self.cache.evict(-free)

    def _kv_steps(self, steps: int) -> int:
        """Most decode steps (<= ``steps``) the pool can grow the running batch by."""
        available = self._free() + self.cache.cached
        rate = (self._k + 1) if self.spec is not None else 1
        bound = self._n_dec * -(-(rate * steps) // self.limits.block_size)
        if bound <= available:
            return steps
        now = self._decode_blocks()
        if self._blocks_at(steps) - now <= available:
            return steps
        lo, hi = 0, steps  # lo fits, hi does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._blocks_at(mid) - now <= available:
                lo = mid
            else:
                hi = mid
        return lo

    # --- queueing and admission -------------------------------------------------------
    def _enqueue_arrivals(self) -> None:
        log = self.log
        feed = self._feed
        pos = self._feed_pos
        now = self.now
        limits = self.limits
        capacity = limits.total_blocks - limits.watermark_blocks
        block = limits.block_size
        extra = limits.lookahead_tokens
        while pos < len(feed):
            rid = feed[pos]
            arrival = log.arrival[rid]
            if arrival > now:
                break
            pos += 1
            self.stats.in_system_area += now - arrival
            if -(-(log.isl[rid] + log.osl[rid] + extra) // block) > capacity:
                log.rejected[rid] = True
                if self._closed:
                    self._release_next(now)
                continue
            self._prompt[rid] = log.isl[rid]
            self._generated[rid] = 0
            heapq.heappush(self._waiting, log.key[rid] if limits.priority else rid)
        self._feed_pos = pos

    def _hits(self, rid: int, prompt: int) -> int:
        log = self.log
        cache = self.cache
        hits = 0
        ns = log.lookup_ns[rid]
        if ns >= 0:
            hits = cache.lookup(ns, log.lookup_tokens[rid], prompt)
        ns = log.publish_ns[rid]
        if ns >= 0:
            own = log.publish_prefill[rid] + (prompt - log.isl[rid])
            hits = max(hits, cache.lookup(ns, own, prompt))
        return hits

    def _refs(self, rid: int) -> tuple[int, ...]:
        log = self.log
        a, b = log.lookup_ns[rid], log.publish_ns[rid]
        if a >= 0 and b >= 0 and a != b:
            return (a, b)
        if a >= 0:
            return (a,)
        return (b,) if b >= 0 else ()

    def _admit(self) -> None:
        limits = self.limits
        log = self.log
        cache = self.cache
        caching = limits.prefix_caching
        block = limits.block_size
        waiting = self._waiting
        while waiting and len(self._prefilling) + self._n_dec < limits.max_batch:
            rid = waiting[0] & _MASK
            prompt = self._prompt[rid]
            hits = self._hits(rid, prompt) if caching else 0
            refs = self._refs(rid) if caching else ()
            for ns in refs:
                cache.acquire(ns)
            need = -(-(prompt + limits.lookahead_tokens) // block) - hits
            free = self._free()
            if need > free + cache.cached - limits.watermark_blocks:
                for ns in refs:
                    cache.release(ns)
                break
            if need > free:
                cache.evict(need - free)
            heapq.heappop(waiting)
            self._prefill_private += need
            self._alloc[rid] = need
            self._shared[rid] = hits
            hit_tokens = hits * block
            if log.first_scheduled[rid] != log.first_scheduled[rid]:  # NaN: first admission
                log.first_scheduled[rid] = self.now
                log.cached_tokens[rid] = hit_tokens
            self.stats.prompt_tokens += prompt
            self.stats.hit_tokens += hit_tokens
            self._remaining[rid] = prompt - hit_tokens
            self._done[rid] = hit_tokens
            self._prefilling.append(rid)

    # --- decoding slots ---------------------------------------------------------------
    def _sample_steps(self, tokens: int) -> int:
        if self._sampler is None or self._k == 0:
            return tokens
        return self._sampler.steps(self._k, tokens)[0]

    def _place(self, slot: int, length: float, remaining: int) -> None:
        """(Re)start slot's decode: ``remaining`` tokens from ``length`` cached tokens."""
        steps = self._sample_steps(remaining)
        rate = remaining / steps
        S = self._S
        self._ka += length - rate * S - (self._l_len0[slot] - self._l_rate[slot] * self._l_s0[slot])
        self._rs += rate - self._l_rate[slot]
        self._len0[slot] = length
        self._s0[slot] = S
        self._rate[slot] = rate
        self._l_len0[slot] = length
        self._l_s0[slot] = S
        self._l_rate[slot] = rate
        self._slot_remaining[slot] = remaining
        if self._unit:
            c = int(length) - S
            whole, rest = divmod(c, self.limits.block_size)
            self._sum_q += whole
            insort(self._residues, rest)
            self._slot_c[slot] = c
        self._serial += 1
        self._slot_serial[slot] = self._serial
        self._slot_finish[slot] = S + steps
        heapq.heappush(self._heap, (S + steps, self._serial, slot))

    def _slot_tokens(self, slot: int) -> float:
        return self._l_len0[slot] + self._l_rate[slot] * (self._S - self._l_s0[slot])

    def _start_decode(self, rid: int, remaining: int) -> None:
        slot = self._free_slots.pop()
        self._slot_rid[slot] = rid
        length = float(self._prompt[rid] + self.limits.lookahead_tokens)
        self._decode_blocks()  # make the cached count current before changing slots
        self._blk_val += -(-int(length) // self.limits.block_size)
        self._prefill_private -= self._alloc.pop(rid)
        shared = self._shared[rid]
        self._shared_dec += shared
        self._n_dec += 1
        self._place(slot, length, remaining)

    def _clear_slot(self, slot: int) -> int:
        """Empty a slot; returns its request id."""
        self._decode_blocks()
        tokens = self._slot_tokens(slot)
        self._blk_val -= math.ceil(tokens * self._inv_block - 1e-9)
        self._ka -= self._l_len0[slot] - self._l_rate[slot] * self._l_s0[slot]
        self._rs -= self._l_rate[slot]
        if self._unit:
            self._unplace_unit(slot)
        self._len0[slot] = 0.0
        self._s0[slot] = 0.0
        self._rate[slot] = 0.0
        self._l_len0[slot] = 0.0
        self._l_s0[slot] = 0.0
        self._l_rate[slot] = 0.0
        self._slot_serial[slot] = 0
        rid = self._slot_rid[slot]
        self._slot_rid[slot] = -1
        self._free_slots.append(slot)
        self._n_dec -= 1
        self._shared_dec -= self._shared[rid]
        return rid

    def _unplace_unit(self, slot: int) -> None:
        whole, rest = divmod(self._slot_c[slot], self.limits.block_size)
        self._sum_q -= whole
        residues = self._residues
        del residues[bisect_left(residues, rest)]

    def _release_refs(self, rid: int) -> None:
        if self.limits.prefix_caching:
            for ns in self._refs(rid):
                self.cache.release(ns)

    def _finish(self, slot: int) -> None:
        log = self.log
        rid = self._clear_slot(slot)
        now = self.now
        if rid <= _PHANTOM:
            self._forget(rid)
            self._release_next(now)
            return
        log.finish[rid] = now
        if self.limits.prefix_caching and log.publish_final[rid]:
            ns = log.publish_ns[rid]
            self.cache.extend(ns, (log.isl[rid] + log.osl[rid]) // self.limits.block_size)
        self._release_refs(rid)
        self._forget(rid)
        if self._closed:
            self._release_next(now)

    def _forget(self, rid: int) -> None:
        for table in (self._prompt, self._shared, self._generated, self._remaining, self._done):
            table.pop(rid, None)

    def _complete_due(self) -> None:
        heap = self._heap
        S = self._S
        serial = self._slot_serial
        while heap and heap[0][0] <= S:
            _, ser, slot = heapq.heappop(heap)
            if serial[slot] == ser:
                rid = self._slot_rid[slot]
                if rid >= 0:
                    self.log.decode_steps[rid] += S - int(self._l_s0[slot])
                self._finish(slot)

    def _sync_draft_len(self) -> None:
        """Re-draw remaining steps when the batch size moves the draft length."""
        if self.spec is None:
            return
        k = self.spec.draft_len(self._n_dec)
        if k == self._k:
            return
        self._k = k
        S = self._S
        for slot, rid in enumerate(self._slot_rid):
            if rid == -1:
                continue
            ran = S - int(self._l_s0[slot])
            done = min(round(self._l_rate[slot] * ran), self._slot_remaining[slot] - 1)
            if rid >= 0:
                self.log.decode_steps[rid] += ran
            self._placed_again(slot, self._slot_tokens(slot), self._slot_remaining[slot] - done)

    def _placed_again(self, slot: int, length: float, remaining: int) -> None:
        self._decode_blocks()
        before = math.ceil(self._slot_tokens(slot) * self._inv_block - 1e-9)
        self._place(slot, length, remaining)
        self._blk_val += math.ceil(length * self._inv_block - 1e-9) - before

    def _preempt(self) -> bool:
        """Preempt the lowest-priority, latest-arrived decoding sequence (a warm-start
        sequence of a closed loop only when no other decodes: it is dropped)."""
        log = self.log
        best, victim, phantom = -1, -1, -1
        for slot, rid in enumerate(self._slot_rid):
            if rid >= 0:
                key = log.key[rid] if self.limits.priority else rid
                if key > best:
                    best, victim = key, slot
            elif rid <= _PHANTOM:
                phantom = slot
        if victim < 0:
            if phantom < 0:
                return False
            self._finish(phantom)
            return True
        ran = self._S - int(self._l_s0[victim])
        remaining = self._slot_remaining[victim]
        done = min(round(self._l_rate[victim] * ran), remaining - 1)
        rid = self._clear_slot(victim)
        log.decode_steps[rid] += ran
        log.preemptions[rid] += 1
        self.stats.preemptions += 1
        self._release_refs(rid)
        self._generated[rid] = log.osl[rid] - (remaining - done)
        self._prompt[rid] = log.isl[rid] + self._generated[rid]
        heapq.heappush(self._waiting, log.key[rid] if self.limits.priority else rid)
        return True

    # --- time integrals -----------------------------------------------------------------
    def _account(
        self, duration: float, steps: int, blocks_before: int, tokens_before: float
    ) -> None:
        """Integrate the stats over a step or stretch that just ran (``self._S`` moved)."""
        stats = self.stats
        b = self._n_dec
        running = len(self._prefilling) + b
        stats.in_system_area += (len(self._waiting) + running) * duration
        stats.running_area += running * duration
        if running > stats.max_running:
            stats.max_running = running
        stats.busy_time += duration
        stats.steps += steps
        if self._blk_s != self._S:
            self._blk_val = self._blocks_at(0)
            self._blk_s = self._S
        blocks_after = self._blk_val
        cache = self.cache
        fixed = self._prefill_private + cache.pinned - self._shared_dec
        used_after = blocks_after + fixed
        stats.kv_used_area += (0.5 * (blocks_before + blocks_after) + fixed) * duration
        if cache.cached:
            stats.kv_cached_area += cache.cached * duration
        if used_after > stats.kv_peak_blocks:
            stats.kv_peak_blocks = used_after
        if b:
            tokens_after = self._ka + self._rs * self._S
            tokens = 0.5 * (tokens_before + tokens_after) * steps
            stats.decode_waste_tokens += (
                0.5 * (blocks_before + blocks_after) * self._block * steps - tokens
            )
            stats.decode_token_steps += tokens
            stats.decode_seq_steps += b * steps
            stats.itl_seconds.append(duration / steps)
            stats.itl_weight.append(b * steps)
            if self._k:
                stats.spec_steps += b * steps
                stats.spec_tokens += self._rs * steps
        if self._bubble is not None:
            stats.bubble_area += self._bubble(running) * duration

    # --- steps --------------------------------------------------------------------------
    def _steps_to_cover(self, span: float, t0: float, growth: float) -> int:
        """Fewest steps (>= 1) whose total duration reaches ``span``."""
        if span <= t0:
            return 1
        if growth <= 1e-15 * t0:
            return max(1, math.ceil(span / t0 - 1e-12))
        a = 0.5 * growth
        b = t0 - a
        n = math.ceil((-b + math.sqrt(b * b + 4.0 * a * span)) / (2.0 * a) - 1e-9)
        n = max(n, 1)
        while n > 1 and (n - 1) * t0 + a * (n - 1) * (n - 2) >= span:
            n -= 1
        while n * t0 + a * n * (n - 1) < span:
            n += 1
        return n

    def _ensure_growth(self, steps: int) -> int:
        """Preempt until ``steps`` (or at least one) decode steps fit; returns how many fit."""
        while self._n_dec:
            fit = self._kv_steps(steps)
            if fit > 0:
                return fit
            self._preempt()
            self._sync_draft_len()
        return steps

    def _mixed_step(self) -> bool:
        """Run one step with prompt chunks; ``False`` when no chunk fits the budget."""
        b = self._n_dec
        if b:
            self._ensure_growth(1)
            b = self._n_dec
        budget = self.limits.token_budget - b * (self._k + 1)
        chunks: list[tuple[int, int]] = []
        finishing: list[int] = []
        remaining = self._remaining
        done = self._done
        new_tokens = 0
        for rid in self._prefilling:
            if budget <= 0:
                break
            left = remaining[rid]
            chunk = left if left <= budget else budget
            chunks.append((chunk, done[rid]))
            budget -= chunk
            new_tokens += chunk
            remaining[rid] = left - chunk
            done[rid] += chunk
            if chunk == left:
                finishing.append(rid)
        if not chunks:
            return False
        S = self._S
        kv = self._ka + self._rs * S
        if self._blk_s != S:
            self._blk_val = self._blocks_at(0)
            self._blk_s = S
        blocks_before = self._blk_val
        duration = self.step_model.mixed(b, kv, chunks, running=b + len(self._prefilling))
        stats = self.stats
        stats.prefill_tokens += new_tokens
        stats.mixed_steps += 1
        self.now += duration
        self._S = S + 1
        self._account(duration, 1, blocks_before, kv)
        if self._heap and self._heap[0][0] <= S + 1:
            self._complete_due()
        if finishing:
            self._finish_prefills(finishing)
        if self.cache.cached:
            self._reclaim()
        return True

    def _finish_prefills(self, rids: list[int]) -> None:
        log = self.log
        now = self.now
        cache = self.cache
        caching = self.limits.prefix_caching
        block = self.limits.block_size
        prefilling = self._prefilling
        for rid in rids:
            prefilling.remove(rid)
            if caching and log.publish_ns[rid] >= 0:
                moved = cache.extend(log.publish_ns[rid], log.publish_prefill[rid] // block)
                self._shared[rid] += moved
                self._alloc[rid] -= moved
                self._prefill_private -= moved
            generated = self._generated[rid]
            if generated == 0:
                log.first_token[rid] = now
                generated = 1
            remaining = log.osl[rid] - generated
            if remaining <= 0:
                self._prefill_private -= self._alloc.pop(rid)
                log.finish[rid] = now
                self._release_refs(rid)
                self._forget(rid)
                if self._closed:
                    self._release_next(now)
                continue
            self._generated[rid] = generated
            self._start_decode(rid, remaining)
        self._sync_draft_len()

    def _stretch(self, horizon: float) -> None:
        """Jump over the decode steps until the next event."""
        heap = self._heap
        serial = self._slot_serial
        while heap and serial[heap[0][2]] != heap[0][1]:
            heapq.heappop(heap)
        S = self._S
        n = heap[0][0] - S
        kv = self._ka + self._rs * S
        t0, slope = self.step_model.decode(self._n_dec, kv)
        growth = slope * self._rs
        limits = self.limits
        if (
            self._feed_pos < len(self._feed)
            and not self._waiting
            and self._n_dec < limits.max_batch
        ):
            span = self.log.arrival[self._feed[self._feed_pos]] - self.now
            n = min(n, self._steps_to_cover(span, t0, growth))
        if horizon < _INF:
            n = min(n, self._steps_to_cover(horizon - self.now, t0, growth))
        fit = self._kv_steps(n)
        if fit == 0:  # the next step needs a block nobody can give: preempt, then re-plan
            self._preempt()
            self._sync_draft_len()
            return
        n = fit
        if self._blk_s != S:
            self._blk_val = self._blocks_at(0)
            self._blk_s = S
        blocks_before = self._blk_val
        duration = n * t0 + 0.5 * growth * n * (n - 1)
        self.now += duration
        self._S = S + n
        self.stats.stretches += 1
        self._account(duration, n, blocks_before, kv)
        self._complete_due()
        if self.cache.cached:
            self._reclaim()
        if self.spec is not None:
            self._sync_draft_len()

    # --- the loop -----------------------------------------------------------------------
    def run_until(self, horizon: float = _INF) -> None:
        """Run every step that starts before ``horizon`` (the step in progress at the
        horizon completes; an idle engine stops at its next arrival after it)."""
        log = self.log
        while True:
            if self._feed_pos < len(self._feed):
                self._enqueue_arrivals()
            if self._waiting and len(self._prefilling) + self._n_dec < self.limits.max_batch:
                self._admit()
            if self._prefilling or self._n_dec:
                if self.now >= horizon:
                    break
                if not (self._prefilling and self._mixed_step()) and self._n_dec:
                    self._stretch(horizon)
                continue
            if self._feed_pos < len(self._feed):
                arrival = log.arrival[self._feed[self._feed_pos]]
                if arrival > horizon:
                    break
                if arrival > self.now:
                    self.now = arrival
                continue
            if self._waiting:  # nothing runs, and the head still does not fit
                self._drop_head()
                continue
            break
        self.stats.end_time = self.now

    def _drop_head(self) -> None:
        """A queued request that cannot fit even in an idle engine is rejected."""
        rid = heapq.heappop(self._waiting) & _MASK
        self.log.rejected[rid] = True
        self._forget(rid)
        if self._closed:
            self._release_next(self.now)
