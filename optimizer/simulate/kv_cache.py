"""Paged KV cache: block arithmetic and a prefix cache with LRU eviction.

The KV cache of one replica rank is a pool of ``total`` blocks of ``block_size`` tokens.
A sequence of ``n`` cached tokens holds ``ceil(n / block_size)`` blocks; the unused tail
of its last block is capacity lost to paging (:func:`blocks_for`, :func:`block_waste`).

**Prefix cache.** Content that several requests share -- a tenant's system prompt, the
earlier turns of a conversation -- lives in *chains* keyed by a namespace id: chain
``ns`` holds the first ``blocks`` full blocks of that content. Only whole blocks are
reused, so the block size sets the reuse granularity: a prompt whose first ``P``
tokens are shared hits at most ``floor(P / block_size)`` blocks. A chain referenced by a
running sequence is pinned; an unreferenced one stays cached (its blocks count as
free-but-evictable, as in vLLM and SGLang) until memory pressure evicts it, least
recently used first, from its tail (so that the surviving blocks remain a usable
prefix).

Blocks held privately by running sequences (their unique prompt and generated tokens)
are counted by the engine; this module counts the chains' blocks (``pinned`` and
``cached``) and evicts them on request.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

__all__ = ["PrefixCache", "block_waste", "blocks_for", "expected_block_waste"]


def blocks_for(tokens: int, block_size: int) -> int:
    """``ceil(tokens / block_size)``: blocks a sequence of ``tokens`` tokens holds."""
    return -(-tokens // block_size)


def block_waste(tokens: int, block_size: int) -> int:
    """Token slots lost in the last, partly filled block."""
    return blocks_for(tokens, block_size) * block_size - tokens


def expected_block_waste(lengths: np.ndarray, weights: np.ndarray | None, block_size: int) -> float:
    """Mean waste (token slots) of a sequence whose length follows the given
    distribution: ``E[ceil(n / B) * B - n]``.

    Args:
        lengths: possible lengths (tokens, >= 1).
        weights: their probabilities (uniform when ``None``).
        block_size: tokens per block.
    """
    n = np.asarray(lengths, dtype=np.int64)
    waste = (-n) % block_size
    if weights is None:
        return float(waste.mean())
    w = np.asarray(weights, dtype=np.float64)
    return float((waste * w).sum() / w.sum())


class PrefixCache:
    """Shared-prefix chains of one KV pool, with reference counts and LRU eviction.

    Args:
        block_size: tokens per block.
        enabled: with ``False`` nothing is ever cached (lookups miss, extensions are
            dropped), which is prefix caching turned off.

    Attributes:
        pinned: blocks in chains some running sequence references.
        cached: blocks in unreferenced chains (free but evictable).
        evicted: blocks evicted so far.
    """

    def __init__(self, block_size: int, *, enabled: bool = True):
        self.block_size = block_size
        self.enabled = enabled
        self.pinned = 0
        self.cached = 0
        self.evicted = 0
        self._blocks: dict[int, int] = {}
        self._refs: dict[int, int] = {}
        self._lru: OrderedDict[int, None] = OrderedDict()

    def chain_blocks(self, ns: int) -> int:
        """Blocks chain ``ns`` holds now."""
        return self._blocks.get(ns, 0)

    def lookup(self, ns: int, shared_tokens: int, prompt_tokens: int) -> int:
        """Blocks of a prompt that chain ``ns`` already holds: whole blocks of its first
        ``shared_tokens`` tokens, leaving at least one prompt token to compute."""
        if not self.enabled or ns < 0:
            return 0
        usable = min(shared_tokens, prompt_tokens - 1) // self.block_size
        return min(self._blocks.get(ns, 0), usable)

    def acquire(self, ns: int) -> None:
        """A running sequence starts referencing chain ``ns`` (pins it)."""
        refs = self._refs.get(ns, 0)
        self._refs[ns] = refs + 1
        if refs == 0:
            blocks = self._blocks.get(ns, 0)
            if blocks:
                self.cached -= blocks
                self.pinned += blocks
                self._lru.pop(ns, None)

    def release(self, ns: int) -> None:
        """A sequence stops referencing chain ``ns``; unreferenced chains become evictable."""
        refs = self._refs[ns] - 1
        if refs:
            self._refs[ns] = refs
            return
        del self._refs[ns]
        blocks = self._blocks.get(ns, 0)
        if blocks:
            self.pinned -= blocks
            self.cached += blocks
            self._lru[ns] = None
        else:
            self._blocks.pop(ns, None)

    def extend(self, ns: int, blocks: int) -> int:
        """Grow referenced chain ``ns`` to ``blocks`` blocks with blocks a sequence
        computed; returns how many blocks moved from the sequence to the chain."""
        if not self.enabled or ns < 0:
            return 0
        have = self._blocks.get(ns, 0)
        if blocks <= have:
            return 0
        self._blocks[ns] = blocks
        self.pinned += blocks - have
        return blocks - have

    def evict(self, blocks: int) -> int:
        """Evict up to ``blocks`` cached blocks, least recently released chains first,
        each from its tail; returns the number evicted."""
        done = 0
        while done < blocks and self._lru:
            ns = next(iter(self._lru))
            have = self._blocks[ns]
            take = min(have, blocks - done)
            if take == have:
                del self._blocks[ns]
                del self._lru[ns]
            else:
                self._blocks[ns] = have - take
            done += take
        self.cached -= done
        self.evicted += done
        return done
