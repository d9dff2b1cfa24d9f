"""Per-operator latency models fitted on measured kernel tables.

Each model follows the scikit-learn convention (``fit`` returns ``self``, learned state
ends in ``_``) and predicts milliseconds, vectorised over numpy-broadcastable arguments,
monotone non-decreasing in the workload sizes (tokens, batch, lengths, bytes).
"""

from __future__ import annotations

from optimizer.perf.operators._base import OperatorModel
from optimizer.perf.operators.attention import (
    ContextAttentionModel,
    GenerationAttentionModel,
    equivalent_prompt_length,
)
from optimizer.perf.operators.collectives import AllReduceModel, AlphaBeta
from optimizer.perf.operators.gemm import GemmModel
from optimizer.perf.operators.moe import MoEModel, MoERegression

__all__ = [
    "AllReduceModel",
    "AlphaBeta",
    "ContextAttentionModel",
    "GemmModel",
    "GenerationAttentionModel",
    "MoEModel",
    "MoERegression",
    "OperatorModel",
    "equivalent_prompt_length",
]
