"""Learned performance surrogate: TTFT/TPOT of serving configurations with intervals.

Example:
    >>> from optimizer.profiles import load_reference_profiles
    >>> from optimizer.surrogate import Surrogate
    >>> runs = load_reference_profiles()
    >>> runs = runs[runs["mode"] == "agg"]
    >>> model = Surrogate().fit(runs)                                   # doctest: +SKIP
    >>> model.predict(runs.drop(columns=["ttft_ms", "tpot_ms"])).columns  # doctest: +SKIP
"""

from __future__ import annotations

from optimizer.surrogate.evaluation import (
    AICONFIGURATOR_FIGURES,
    SplitResult,
    aiconfigurator_rows,
    architecture_groups,
    evaluate,
    evaluation_runs,
    format_table,
    metrics,
    time_surrogate,
)
from optimizer.surrogate.features import (
    FEATURES,
    MONOTONE,
    REQUIRED_COLUMNS,
    impossible_layouts,
)
from optimizer.surrogate.intervals import LogBand, fit_log_band
from optimizer.surrogate.model import (
    PREDICTION_COLUMNS,
    SWEEP_KEYS,
    NotFittedError,
    Surrogate,
    dedupe_runs,
    sweep_groups,
)

__all__ = [
    "AICONFIGURATOR_FIGURES",
    "FEATURES",
    "MONOTONE",
    "PREDICTION_COLUMNS",
    "REQUIRED_COLUMNS",
    "SWEEP_KEYS",
    "LogBand",
    "NotFittedError",
    "SplitResult",
    "Surrogate",
    "aiconfigurator_rows",
    "architecture_groups",
    "dedupe_runs",
    "evaluate",
    "evaluation_runs",
    "fit_log_band",
    "format_table",
    "impossible_layouts",
    "metrics",
    "sweep_groups",
    "time_surrogate",
]
