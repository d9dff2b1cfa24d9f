"""How well the operator models predict kernel timings they were not fitted on.

Two held-out splits per measured table:

* ``slice`` -- every other interior value of one size axis is held out (GEMM: k;
  prefill attention: prompt length; decode attention: cached length; MoE: tokens;
  all-reduce: message bytes), so every held-out row lies between two grid lines the
  model never saw at that value: the honest test of the interpolation.
* ``random`` -- a random fraction of shapes (all kernel variants of a shape together)
  is held out; most held-out shapes keep neighbours on every side, so this is the
  easier split.

Errors are absolute percentage errors ``|predicted / measured - 1|`` against the fastest
measurement of each shape (tables measure some shapes with several kernels, and the
models predict the fastest). Also here: the error of the roofline and of a model
transferred from another GPU, which say how well GPUs without kernel data are predicted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from optimizer.errors import InvalidInputError
from optimizer.perf.calibration import fit_calibration, roofline_for_table
from optimizer.perf.kernel_data import KernelTable, load_kernel_table, measured_gpu_figures
from optimizer.perf.operators import (
    AllReduceModel,
    ContextAttentionModel,
    GemmModel,
    GenerationAttentionModel,
    MoEModel,
    OperatorModel,
)
from optimizer.perf.roofline import GpuFigures, RooflineCalibration

__all__ = [
    "SPLIT_AXIS",
    "ErrorSummary",
    "HeldOutResult",
    "TransferResult",
    "error_summary",
    "evaluate_held_out",
    "evaluate_transfer",
    "fastest_per_shape",
    "holdout_split",
    "model_for",
    "predict_rows",
    "roofline_errors",
]

SPLIT_AXIS: dict[str, str] = {
    "gemm": "k",
    "context_attention": "isl",
    "generation_attention": "kv_len",
    "context_mla": "isl",
    "generation_mla": "kv_len",
    "moe": "num_tokens",
    "custom_all_reduce": "message_bytes",
    "all_reduce": "message_bytes",
}
"""The size axis whose interior values the ``slice`` split holds out, per operator."""

_MODELS: dict[str, type[OperatorModel]] = {
    "gemm": GemmModel,
    "context_attention": ContextAttentionModel,
    "generation_attention": GenerationAttentionModel,
    "context_mla": ContextAttentionModel,
    "generation_mla": GenerationAttentionModel,
    "moe": MoEModel,
    "custom_all_reduce": AllReduceModel,
    "all_reduce": AllReduceModel,
}
_NOT_SHAPE = ("latency_ms", "kernel_source", "version")


def _check(operator: str) -> None:
    if operator not in SPLIT_AXIS:
        raise InvalidInputError("operator", f"no held-out evaluation for {operator!r}", SPLIT_AXIS)


def model_for(operator: str) -> OperatorModel:
    """A new, unfitted model for a tidy table's operator."""
    _check(operator)
    return _MODELS[operator]()


@dataclass(frozen=True)
class ErrorSummary:
    """Absolute percentage errors of predictions (fractions: 0.05 is 5 %)."""

    median: float
    mean: float
    p90: float
    rows: int

    def __str__(self) -> str:
        share = f"median {self.median:.1%}, mean {self.mean:.1%}, p90 {self.p90:.1%}"
        return f"{share} over {self.rows} rows"


def error_summary(predicted: np.ndarray, measured: np.ndarray) -> ErrorSummary:
    """Median, mean and 90th percentile of ``|predicted / measured - 1|``.

    Example:
        >>> str(error_summary(np.array([1.1, 0.9, 1.0]), np.array([1.0, 1.0, 1.0])))
        'median 10.0%, mean 6.7%, p90 10.0% over 3 rows'
    """
    predicted = np.asarray(predicted, dtype=float)
    measured = np.asarray(measured, dtype=float)
    if predicted.shape != measured.shape or predicted.size == 0:
        raise InvalidInputError("predicted", "must be a non-empty array shaped like measured")
    ape = np.abs(predicted / measured - 1.0)
    return ErrorSummary(
        float(np.median(ape)), float(ape.mean()), float(np.quantile(ape, 0.9)), int(ape.size)
    )


def fastest_per_shape(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct shape, with the fastest of its measurements."""
    shape = [c for c in frame.columns if c not in _NOT_SHAPE]
    return frame.groupby(shape, as_index=False, sort=False)["latency_ms"].min()


def holdout_split(
    frame: pd.DataFrame, operator: str, how: str = "slice", fraction: float = 0.2, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a tidy table into training and held-out rows.

    Args:
        frame: tidy rows.
        operator: the table's operator (see :data:`SPLIT_AXIS`).
        how: ``slice`` (every other interior value of the operator's split axis) or
            ``random`` (a random ``fraction`` of shapes).
        fraction: share of shapes held out by the random split.
        seed: seed of the random split.

    Returns:
        ``(train, test)``.
    """
    _check(operator)
    if how == "random":
        if not 0 < fraction < 1:
            raise InvalidInputError("fraction", f"must be in (0, 1), got {fraction!r}")
        # hold out whole shapes: the kernel variants of one shape go to the same side
        shape = frame.groupby(
            [c for c in frame.columns if c not in _NOT_SHAPE], sort=False
        ).ngroup()
        chosen = np.random.default_rng(seed).random(int(shape.max()) + 1) < fraction
        held = chosen[shape.to_numpy()]
    elif how == "slice":
        axis = SPLIT_AXIS[operator]
        values = np.sort(frame[axis].unique())
        held = frame[axis].isin(values[1:-1:2]).to_numpy()
    else:
        raise InvalidInputError("how", f"unknown split {how!r}", ["slice", "random"])
    return frame[~held], frame[held]


def predict_rows(model: OperatorModel, operator: str, frame: pd.DataFrame) -> np.ndarray:
    """The model's prediction (ms) for every row of a tidy table of its operator."""
    _check(operator)
    f = frame
    if isinstance(model, GemmModel):
        return model.predict(
            f["m"], f["n"], f["k"], f["quantization"].to_numpy(object), strict=False
        )
    if isinstance(model, ContextAttentionModel | GenerationAttentionModel):
        length = f["isl"] if isinstance(model, ContextAttentionModel) else f["kv_len"]
        if operator.endswith("_mla"):
            return model.predict_mla(
                f["batch"], length, f["num_heads"], f["kv_dtype"].to_numpy(object), strict=False
            )
        return model.predict(
            f["batch"],
            length,
            f["num_heads"],
            f["num_kv_heads"],
            f["head_dim"],
            f["kv_dtype"].to_numpy(object),
            f["window"],
            strict=False,
        )
    if isinstance(model, MoEModel):
        return model.predict(
            f["num_tokens"],
            f["hidden"],
            f["inter"],
            f["topk"],
            f["num_experts"],
            f["quantization"].to_numpy(object),
            f["tp"],
            f["ep"],
            f["distribution"].to_numpy(object),
            f["gated"].to_numpy(bool),
            strict=False,
        )
    if isinstance(model, AllReduceModel):
        return model.predict(f["message_bytes"], f["num_gpus"], strict=False)
    raise InvalidInputError(
        "model", f"no row mapping for {type(model).__name__}"
    )  # pragma: no cover


@dataclass(frozen=True)
class HeldOutResult:
    """Held-out accuracy of one operator model on one table."""

    table: str
    operator: str
    split: str
    errors: ErrorSummary
    fit_seconds: float


def evaluate_held_out(table: KernelTable, how: str = "slice", seed: int = 0) -> HeldOutResult:
    """Fit the operator's model on the training rows of a split and score the held-out ones.

    Held-out shapes are scored against their fastest measurement; rows the model cannot
    answer (none for the splits here) would count as failures of the whole evaluation.

    Example:
        >>> from optimizer.perf.kernel_data import load_kernel_table
        >>> result = evaluate_held_out(load_kernel_table("h100_sxm", "custom_all_reduce", "vllm"))
        >>> result.errors.median < 0.2
        True
    """
    train, test = holdout_split(table.frame, table.operator, how, seed=seed)
    test = fastest_per_shape(test)
    start = time.perf_counter()
    model = model_for(table.operator).fit(train)
    seconds = time.perf_counter() - start
    predicted = predict_rows(model, table.operator, test)
    if np.isnan(predicted).any():
        raise InvalidInputError(
            "table", f"{int(np.isnan(predicted).sum())} held-out rows have no prediction"
        )
    return HeldOutResult(
        table.describe(),
        table.operator,
        how,
        error_summary(predicted, test["latency_ms"].to_numpy()),
        seconds,
    )


def roofline_errors(
    frame: pd.DataFrame, operator: str, gpu: object, calibration: RooflineCalibration
) -> ErrorSummary:
    """Error of the roofline (under ``calibration``) on the fastest measurement of each shape.

    ``operator`` is a calibrated operator name (``custom_all_reduce`` is scored as
    ``all_reduce``).
    """
    name = "all_reduce" if operator == "custom_all_reduce" else operator
    rows = fastest_per_shape(frame)
    predicted = roofline_for_table(name, rows, gpu, calibration)
    return error_summary(predicted, rows["latency_ms"].to_numpy())


@dataclass(frozen=True)
class TransferResult:
    """How well one GPU's kernels predict another's, for one operator.

    Attributes:
        operator: the table's operator.
        roofline: error of the roofline on the target GPU with the source GPU's
            fitted efficiencies.
        transferred: error of the source's measured model scaled by the ratio of
            roofline times; ``None`` when no target shape is covered.
        coverage: share of target shapes the transferred model answers.
    """

    operator: str
    roofline: ErrorSummary
    transferred: ErrorSummary | None
    coverage: float


def evaluate_transfer(
    source: str,
    target: str,
    engine: str = "vllm",
    operators: tuple[str, ...] = (
        "gemm",
        "context_attention",
        "generation_attention",
        "moe",
        "custom_all_reduce",
    ),
    source_figures: object | None = None,
    target_figures: object | None = None,
) -> list[TransferResult]:
    """Predict a measured GPU's kernels from another GPU's, as if the target were unmeasured.

    Args:
        source: measured GPU id to learn from (``h100_sxm``).
        target: measured GPU id to predict (``h200_sxm``); its tables are only scored.
        engine: engine of both GPUs' tables.
        operators: tidy-table operators to score.
        source_figures, target_figures: peak figures (default: aiconfigurator's
            system files, :func:`~optimizer.perf.kernel_data.measured_gpu_figures`).

    Returns:
        One :class:`TransferResult` per operator.
    """
    src = (
        GpuFigures.of(source_figures)
        if source_figures is not None
        else measured_gpu_figures(source)
    )
    dst = (
        GpuFigures.of(target_figures)
        if target_figures is not None
        else measured_gpu_figures(target)
    )
    tables = {op: load_kernel_table(source, op, engine) for op in operators}
    calibrated = {
        ("all_reduce" if op == "custom_all_reduce" else op): t.frame for op, t in tables.items()
    }
    calibration = fit_calibration(calibrated, src)
    results = []
    for op, table in tables.items():
        rows = fastest_per_shape(load_kernel_table(target, op, engine).frame)
        roof = roofline_errors(rows, op, dst, calibration)
        moved = model_for(op).fit(table).transferred(src, dst, calibration)
        predicted = predict_rows(moved, op, rows)
        answered = ~np.isnan(predicted)
        errors = (
            error_summary(predicted[answered], rows["latency_ms"].to_numpy()[answered])
            if answered.any()
            else None
        )
        results.append(TransferResult(op, roof, errors, float(answered.mean())))
    return results
