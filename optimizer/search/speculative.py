"""Speculative decoding in the fast evaluator: expected tokens per step and draft cost.

The measured runs never enable speculative decoding, so the surrogate predicts the
target model alone and this module adjusts its TPOT analytically (DESIGN.md, layer 3;
shared REFERENCE.md section 4):

* a drafter proposes ``k`` tokens, the target verifies them in one step; with an i.i.d.
  per-token acceptance ``alpha`` a step yields ``E = (1 - alpha^(k+1)) / (1 - alpha)``
  tokens (Leviathan et al., ICML 2023, eq. 1);
* the verification step runs ``k + 1`` tokens per sequence, so it is predicted as a
  decode step of ``B * (k + 1)`` sequences -- conservative (the extra positions read no
  extra KV cache), and it reproduces the measured reversal: speculation helps a
  memory-bound small batch and hurts a compute-bound large one (vLLM dynamic
  speculative decoding docs, vllm#17984);
* drafting costs ``k * c`` target steps, ``c`` the draft-to-target step-time ratio;
* so ``TPOT_spec(B) = TPOT(B * (k + 1)) * (1 + k * c) / E``.

The acceptance rates are defaults fitted to published acceptance lengths (see
:data:`DEFAULT_ACCEPTANCE`); they depend on the data set and the draft, so users can
override them, and the evaluator widens the TPOT interval by
``acceptance_spread`` either side.

Example:
    >>> round(float(expected_tokens_per_step(0.6, 3)), 3)
    2.176
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from optimizer.domain.enums import SpecMethod
from optimizer.domain.model_spec import ModelSpec
from optimizer.errors import InvalidInputError

__all__ = [
    "DEFAULT_ACCEPTANCE",
    "DEFAULT_DRAFT_MODEL_COST",
    "SpecDecodingAssumptions",
    "expected_tokens_per_step",
]

DEFAULT_ACCEPTANCE: dict[str, float] = {
    SpecMethod.NGRAM.value: 0.6,
    SpecMethod.EAGLE.value: 0.55,
    SpecMethod.EAGLE3.value: 0.75,
    SpecMethod.MTP.value: 0.6,
    SpecMethod.DRAFT_MODEL.value: 0.65,
}
"""Per-token acceptance ``alpha`` by method, from the acceptance lengths (AL) in shared
REFERENCE.md section 4: n-gram AL 2.16-2.83 at k=3 (vllm#19254) -> ~0.6; EAGLE AL 1.89
at k=2 and 2.08 at k=4 (vllm#16035) -> ~0.55; EAGLE-3 AL 3.53 at k=7 (vllm#26191) and
4.68 at k=5 (sglang#4247) -> ~0.75; MTP AL ~1.9 at k=2 (sglang#3582) -> ~0.6; a draft
model's 0.655 draft acceptance (vllm#7540) -> ~0.65."""

DEFAULT_DRAFT_MODEL_COST = 0.1
"""Draft-to-target step-time ratio of a separate draft model (e.g. 8B drafting for
70B): the draft is not known from the target, so this is an assumption to override."""


def expected_tokens_per_step(alpha: ArrayLike, k: ArrayLike) -> np.ndarray:
    """``(1 - alpha^(k+1)) / (1 - alpha)``: tokens one verification step yields."""
    a = np.clip(np.asarray(alpha, dtype=np.float64), 0.0, 0.999999)
    n = np.asarray(k, dtype=np.float64)
    return (1.0 - a ** (n + 1.0)) / (1.0 - a)


@dataclass(frozen=True)
class SpecDecodingAssumptions:
    """What the evaluator assumes about speculative decoding (overridable).

    Attributes:
        acceptance: per-token acceptance rate by method.
        acceptance_spread: +/- on ``alpha`` that the TPOT interval covers.
        draft_model_cost: step-time ratio of a separate draft model.
    """

    acceptance: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_ACCEPTANCE))
    acceptance_spread: float = 0.1
    draft_model_cost: float = DEFAULT_DRAFT_MODEL_COST

    def __post_init__(self) -> None:
        for method, alpha in self.acceptance.items():
            if method not in DEFAULT_ACCEPTANCE:
                raise InvalidInputError(
                    f"spec_acceptance.{method}", "unknown method", list(DEFAULT_ACCEPTANCE)
                )
            if not 0.0 <= alpha < 1.0:
                raise InvalidInputError(f"spec_acceptance.{method}", f"must be in [0, 1): {alpha}")
        if not 0.0 <= self.acceptance_spread < 0.5:
            raise InvalidInputError("acceptance_spread", "must be in [0, 0.5)")
        if not 0.0 <= self.draft_model_cost < 1.0:
            raise InvalidInputError("draft_model_cost", "must be in [0, 1)")

    def alpha(self, method: str) -> float:
        """Acceptance of ``method`` (0 for ``none``)."""
        if method == SpecMethod.NONE.value:
            return 0.0
        return float(self.acceptance.get(method, DEFAULT_ACCEPTANCE[method]))

    def draft_cost(self, method: str, model: ModelSpec) -> float:
        """Draft-to-target step-time ratio ``c``.

        n-gram lookup runs on the CPU (0); an EAGLE/EAGLE-3 head is one decoder layer,
        MTP ``num_mtp_layers`` layers, each plus the output head -- as a share of the
        target's layers; a separate draft model uses :attr:`draft_model_cost`.
        """
        if method in (SpecMethod.NONE.value, SpecMethod.NGRAM.value):
            return 0.0
        if method == SpecMethod.DRAFT_MODEL.value:
            return self.draft_model_cost
        layers = max(model.num_mtp_layers, 1) if method == SpecMethod.MTP.value else 1
        return (layers + 1) / model.num_layers

    def _alphas(self, methods: np.ndarray) -> np.ndarray:
        distinct, inverse = np.unique(np.asarray(methods).astype(str), return_inverse=True)
        return np.array([self.alpha(m) for m in distinct], dtype=np.float64)[inverse]

    def tokens_per_step(self, methods: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Expected tokens per step of each (method, draft length) pair."""
        return expected_tokens_per_step(self._alphas(methods), k)

    def log_spread(self, methods: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Half the log-width of tokens per step when ``alpha`` moves by the spread."""
        alpha = self._alphas(methods)
        on = np.asarray(k) > 0
        low = expected_tokens_per_step(np.maximum(alpha - self.acceptance_spread, 0.0), k)
        high = expected_tokens_per_step(np.minimum(alpha + self.acceptance_spread, 0.99), k)
        return np.where(on, 0.5 * np.log(high / low), 0.0)
