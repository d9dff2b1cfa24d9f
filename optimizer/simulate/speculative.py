"""Speculative decoding: acceptance, tokens per verification step, draft-length schedules.

A verification step of a sequence with draft length ``k`` emits ``X`` tokens, ``1 <= X <=
k + 1``: the accepted prefix of the ``k`` drafted tokens plus the target model's own
(bonus or correcting) token. With an i.i.d. per-token acceptance rate ``alpha``
(Leviathan, Kalman, Matias, "Fast Inference from Transformers via Speculative Decoding",
ICML 2023, arXiv 2211.17192)::

    P(X >= j + 1) = alpha^j            (j = 1..k)
    E[X] = (1 - alpha^(k + 1)) / (1 - alpha)

Engines also report **per-position acceptance rates** ``a_j = P(position j accepted)``
(vLLM's ``spec_decode_per_position_acceptance_rates``, non-increasing in ``j``); then
``E[X] = 1 + sum_j a_j``. An :class:`AcceptanceModel` holds such a curve; a scalar
``alpha`` is the curve ``a_j = alpha^j``.

Published defaults (:data:`PUBLISHED_ACCEPTANCE`) turn a reported mean acceptance length
(vLLM's ``mean_acceptance_length`` = 1 + accepted / drafts, which is ``E[X]``) at a draft
length into ``alpha`` by solving the formula above. They are hardware-, model- and
dataset-specific: override them with what your own traffic measures.

:class:`StepSampler` draws how many verification steps a sequence needs to emit ``R``
tokens, exactly (from i.i.d. per-step draws), so that simulated acceptance statistics
converge to the formula.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq

from optimizer.domain.enums import SpecMethod
from optimizer.errors import InvalidInputError

__all__ = [
    "PUBLISHED_ACCEPTANCE",
    "AcceptanceModel",
    "PublishedAcceptance",
    "SpecDecoding",
    "StepSampler",
    "acceptance_model",
    "alpha_from_acceptance_length",
    "expected_tokens_per_step",
]

MAX_DRAFT_LEN = 8
"""Longest draft the simulator models (EndpointConfig allows 0..8)."""


def expected_tokens_per_step(alpha: float, k: int) -> float:
    """``(1 - alpha^(k+1)) / (1 - alpha)``: expected tokens of one verification step.

    Example:
        >>> round(expected_tokens_per_step(0.8, 3), 4)
        2.952
    """
    if not 0.0 <= alpha <= 1.0:
        raise InvalidInputError("acceptance_rate", f"must be in [0, 1], got {alpha}")
    if k < 0:
        raise InvalidInputError("draft_len", f"must be >= 0, got {k}")
    if alpha == 1.0:
        return float(k + 1)
    return (1.0 - alpha ** (k + 1)) / (1.0 - alpha)


def alpha_from_acceptance_length(length: float, k: int) -> float:
    """The i.i.d. acceptance rate whose expected tokens per step at draft length ``k`` is
    ``length`` (a reported mean acceptance length, ``1 <= length <= k + 1``)."""
    if k < 1:
        raise InvalidInputError("draft_len", f"must be >= 1, got {k}")
    if not 1.0 <= length <= k + 1:
        raise InvalidInputError("acceptance_length", f"must be in [1, {k + 1}], got {length}")
    if length == 1.0:
        return 0.0
    if length == k + 1:
        return 1.0
    return float(brentq(lambda a: expected_tokens_per_step(a, k) - length, 0.0, 1.0 - 1e-12))


@dataclass(frozen=True)
class PublishedAcceptance:
    """A published acceptance measurement and the ``alpha`` it implies.

    Attributes:
        method: speculative-decoding method.
        acceptance_length: reported mean tokens per verification step.
        draft_len: the draft length it was measured at.
        source: where it was reported (model, dataset, engine).
        alpha: i.i.d. acceptance rate solved from the two figures.
    """

    method: SpecMethod
    acceptance_length: float
    draft_len: int
    source: str
    alpha: float = field(init=False)

    def __post_init__(self) -> None:
        alpha = alpha_from_acceptance_length(self.acceptance_length, self.draft_len)
        object.__setattr__(self, "alpha", alpha)


PUBLISHED_ACCEPTANCE: dict[SpecMethod, PublishedAcceptance] = {
    m.method: m
    for m in (
        PublishedAcceptance(
            SpecMethod.NGRAM,
            2.5,
            3,
            "vllm-project/vllm#19254: n-gram, Qwen3-32B-FP8, k=3, acceptance length "
            "2.16-2.83 (midpoint); strongly workload-dependent",
        ),
        PublishedAcceptance(
            SpecMethod.EAGLE,
            1.89,
            2,
            "vllm-project/vllm#16035: EAGLE, Llama-3-8B, MT-Bench, vLLM V1, batch 1, k=2",
        ),
        PublishedAcceptance(
            SpecMethod.EAGLE3,
            3.53,
            7,
            "vllm-project/vllm#26191: EAGLE-3, Llama-3.1-8B, MT-Bench, temperature 0, k=7",
        ),
        PublishedAcceptance(
            SpecMethod.MTP,
            1.9,
            2,
            "sgl-project/sglang#3582: DeepSeek-V3/R1 NextN (MTP), ~1.9 accepted length "
            "for 2 draft tokens",
        ),
        PublishedAcceptance(
            SpecMethod.DRAFT_MODEL,
            1.0 + 0.655 * 4,
            4,
            "vllm-project/vllm#7540: draft model, k=4, draft acceptance rate 0.655 "
            "(accepted / drafted), i.e. acceptance length 1 + 0.655 * 4",
        ),
    )
}
"""Default acceptance per method (see the module docstring for how ``alpha`` is derived)."""


@dataclass(frozen=True)
class AcceptanceModel:
    """Per-position acceptance rates ``a_j = P(draft position j accepted)``, j = 1..8.

    Attributes:
        per_position: non-increasing rates in ``[0, 1]``; positions beyond the tuple
            continue the last ratio ``a_j / a_(j-1)`` (a geometric tail).
    """

    per_position: tuple[float, ...]

    def __post_init__(self) -> None:
        rates = self.per_position
        if not rates:
            raise InvalidInputError("acceptance_per_position", "needs at least one rate")
        if any(not 0.0 <= a <= 1.0 for a in rates):
            raise InvalidInputError("acceptance_per_position", f"rates must be in [0, 1]: {rates}")
        if any(b > a + 1e-12 for a, b in itertools.pairwise(rates)):
            raise InvalidInputError(
                "acceptance_per_position",
                f"rates must not increase with the position: {rates}",
            )

    @classmethod
    def iid(cls, alpha: float) -> AcceptanceModel:
        """The curve of an i.i.d. acceptance rate: ``a_j = alpha^j``."""
        if not 0.0 <= alpha <= 1.0:
            raise InvalidInputError("acceptance_rate", f"must be in [0, 1], got {alpha}")
        return cls(tuple(alpha**j for j in range(1, MAX_DRAFT_LEN + 1)))

    def rates(self, k: int) -> np.ndarray:
        """``a_1 .. a_k`` (geometric continuation past the given positions)."""
        given = list(self.per_position[:k])
        while len(given) < k:
            last = given[-1]
            prev = given[-2] if len(given) >= 2 else 1.0
            given.append(last * (last / prev if prev > 0 else 0.0))
        return np.asarray(given, dtype=np.float64)

    def expected_tokens(self, k: int) -> float:
        """``E[X] = 1 + sum_j a_j``: expected tokens per verification step at draft length k."""
        return 1.0 + float(self.rates(k).sum()) if k > 0 else 1.0

    def tokens_pmf(self, k: int) -> np.ndarray:
        """``P(X = 1), ..., P(X = k + 1)``."""
        if k == 0:
            return np.ones(1)
        tail = np.concatenate([[1.0], self.rates(k), [0.0]])  # P(X >= j), j = 1..k+2
        return tail[:-1] - tail[1:]


@dataclass(frozen=True)
class SpecDecoding:
    """Speculative decoding of one replica.

    Attributes:
        method: the drafting method.
        schedule: ``((max_batch, k), ...)`` sorted by ``max_batch``: the draft length for
            a running batch of at most ``max_batch`` sequences; larger batches than the
            last entry use ``k = 0`` (speculation off), like vLLM's dynamic speculative
            decoding. A single ``((huge, k),)`` entry is a fixed draft length.
        acceptance: per-position acceptance.
        draft_cost_ratio: for ``draft_model`` only: one draft forward pass relative to
            one target decode step at the same batch (weights read ratio of draft to
            target; 0.1 for a ~1B draft of an ~8-10B target). Other methods are costed
            from the target's shapes (see :mod:`optimizer.simulate.step_time`).
    """

    method: SpecMethod
    schedule: tuple[tuple[int, int], ...]
    acceptance: AcceptanceModel
    draft_cost_ratio: float = 0.1

    def __post_init__(self) -> None:
        if self.method is SpecMethod.NONE:
            raise InvalidInputError("spec_method", "SpecDecoding needs a method other than none")
        if not self.schedule:
            raise InvalidInputError("draft_len_schedule", "needs at least one (max_batch, k)")
        bounds = [b for b, _ in self.schedule]
        if bounds != sorted(bounds) or len(set(bounds)) != len(bounds) or bounds[0] < 1:
            raise InvalidInputError(
                "draft_len_schedule", f"max_batch bounds must increase from >= 1: {bounds}"
            )
        if any(not 0 <= k <= MAX_DRAFT_LEN for _, k in self.schedule):
            raise InvalidInputError(
                "draft_len_schedule", f"draft lengths must be 0..{MAX_DRAFT_LEN}", self.schedule
            )
        if not self.draft_cost_ratio >= 0:
            raise InvalidInputError("draft_cost_ratio", "must be >= 0")

    @classmethod
    def fixed(
        cls,
        method: SpecMethod | str,
        k: int,
        *,
        alpha: float | None = None,
        per_position: Sequence[float] | None = None,
        draft_cost_ratio: float = 0.1,
    ) -> SpecDecoding:
        """A fixed draft length ``k`` at every batch size; acceptance from ``alpha``,
        ``per_position`` or the method's published default."""
        method = SpecMethod(method)
        return cls(
            method=method,
            schedule=((1 << 30, int(k)),),
            acceptance=acceptance_model(method, alpha, per_position),
            draft_cost_ratio=draft_cost_ratio,
        )

    def draft_len(self, batch: int) -> int:
        """Draft length for a running batch of ``batch`` sequences."""
        for bound, k in self.schedule:
            if batch <= bound:
                return k
        return 0

    @property
    def max_draft_len(self) -> int:
        """The longest draft of the schedule."""
        return max(k for _, k in self.schedule)


def acceptance_model(
    method: SpecMethod, alpha: float | None = None, per_position: Sequence[float] | None = None
) -> AcceptanceModel:
    """The acceptance of ``method``: from ``alpha``, from per-position rates, or the
    method's published default (:data:`PUBLISHED_ACCEPTANCE`)."""
    if alpha is not None and per_position is not None:
        raise InvalidInputError(
            "acceptance", "give either acceptance_rate or acceptance_per_position, not both"
        )
    if per_position is not None:
        return AcceptanceModel(tuple(float(a) for a in per_position))
    if alpha is None:
        alpha = PUBLISHED_ACCEPTANCE[method].alpha
    return AcceptanceModel.iid(alpha)


class StepSampler:
    """Exact sampling of verification steps: how many steps emit ``R`` tokens.

    Keeps, per draft length, a long stream of i.i.d. tokens-per-step draws and hands out
    consecutive stretches of it, so the draws of different sequences are independent and
    the pooled mean tokens per step is an unbiased estimate of ``E[X]``.

    Args:
        acceptance: the acceptance curve.
        rng: random generator.
        pool: draws generated at a time per draft length.
    """

    def __init__(self, acceptance: AcceptanceModel, rng: np.random.Generator, pool: int = 1 << 16):
        self._acceptance = acceptance
        self._rng = rng
        self._pool = pool
        self._cum: dict[int, np.ndarray] = {}
        self._pos: dict[int, int] = {}
        self.drawn_tokens = 0
        self.drawn_steps = 0

    def _refill(self, k: int, need: int) -> None:
        pmf = self._acceptance.tokens_pmf(k)
        size = max(self._pool, 2 * need)
        draws = self._rng.choice(np.arange(1, k + 2), size=size, p=pmf)
        self._cum[k] = np.concatenate([[0], np.cumsum(draws)])
        self._pos[k] = 0

    def steps(self, k: int, tokens: int) -> tuple[int, int]:
        """Verification steps to emit ``tokens`` tokens at draft length ``k``, and the
        tokens those steps produced before truncation at ``tokens`` (>= tokens)."""
        if tokens <= 0:
            return 0, 0
        if k == 0:
            self.drawn_tokens += tokens
            self.drawn_steps += tokens
            return tokens, tokens
        cum = self._cum.get(k)
        pos = self._pos.get(k, 0)
        if cum is None or cum[-1] - cum[pos] < tokens:
            self._refill(k, tokens)
            cum, pos = self._cum[k], 0
        start = int(cum[pos])
        end = int(np.searchsorted(cum, start + tokens, side="left"))
        produced = int(cum[end]) - start
        self._pos[k] = end
        self.drawn_tokens += produced
        self.drawn_steps += end - pos
        return end - pos, produced
