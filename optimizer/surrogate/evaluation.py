"""Honest accuracy figures of the surrogate: held-out splits, metrics, a printable table.

Splits (all on aggregated runs, exact duplicate measurements removed first):

* ``unseen configuration`` -- 5-fold ``GroupKFold`` by :data:`SWEEP_KEYS`: a whole
  concurrency sweep is held out at once;
* ``unseen engine/format`` -- 5-fold ``GroupKFold`` by measured family (model
  architecture, GPU, engine, weight format): every run of a model on a GPU with one
  engine and format held out at once, the model and the GPU still measured otherwise
  (what a search over engines and formats asks for a deployed model);
* ``leave-one-model-out`` -- every model architecture held out in turn (checkpoints of
  one architecture -- DeepSeek-V3/R1/V3.1 and their NVFP4 exports, Llama-3.1-8B and its
  FP8 export -- go together, so no held-out model hides behind a renamed twin); the
  metrics are averaged over held-out architectures;
* ``leave-one-GPU-out`` -- h100_sxm, h200_sxm and b200_sxm held out in turn (averaged);
* ``prior only`` -- the operator prior without learning, on all rows;
* ``aiconfigurator rows`` -- H100/H200 x Llama-3.1-70B, Llama-3.1-8B-Instruct,
  Qwen3-32B, each model held out of training while it is evaluated, side by side with
  aiconfigurator 0.12.0's own estimator (:data:`AICONFIGURATOR_FIGURES`).

Metrics: MAPE (mean ``|pred - measured| / measured``), median APE, and the share of
measured values inside the 90 % interval.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold

from optimizer.catalog import load_model_spec
from optimizer.surrogate.cross_gpu import cross_gpu_keys, measured_family_keys
from optimizer.surrogate.features import (
    TARGETS,
    architecture_key,
    build_features,
    impossible_layouts,
    prior_frame,
    resolve_rows,
)
from optimizer.surrogate.model import SWEEP_KEYS, Surrogate, dedupe_runs, sweep_groups

__all__ = [
    "AICONFIGURATOR_FIGURES",
    "AICONFIGURATOR_GPUS",
    "AICONFIGURATOR_MODELS",
    "LOGO_GPUS",
    "SplitResult",
    "aiconfigurator_rows",
    "architecture_groups",
    "evaluate",
    "evaluation_runs",
    "format_table",
    "measured_families",
    "metrics",
    "repeat_noise",
    "time_surrogate",
]

AICONFIGURATOR_GPUS: tuple[str, ...] = ("h100_sxm", "h200_sxm")
AICONFIGURATOR_MODELS: tuple[str, ...] = (
    "meta-llama/Llama-3.1-70B",
    "meta-llama/Llama-3.1-8B-Instruct",
    "Qwen/Qwen3-32B",
)
AICONFIGURATOR_FIGURES: dict[str, float] = {"ttft_mape": 0.530, "tpot_mape": 0.149, "rows": 727}
"""aiconfigurator 0.12.0's own estimator on the 727 of those runs it accepts (issue #4)."""

LOGO_GPUS: tuple[str, ...] = ("h100_sxm", "h200_sxm", "b200_sxm")


@dataclass(frozen=True)
class SplitResult:
    """Figures of one split.

    Attributes:
        split: the split's name.
        rows: held-out rows evaluated (summed over folds).
        folds: number of held-out parts (averaged over for the per-part splits).
        figures: metric name -> value (``ttft_mape``, ``ttft_median_ape``,
            ``ttft_median_pe``, ``ttft_coverage`` and the same for ``tpot``).
    """

    split: str
    rows: int
    folds: int
    figures: dict[str, float]


def metrics(measured: pd.DataFrame, predicted: pd.DataFrame) -> dict[str, float]:
    """MAPE, median APE, median signed percentage error and interval coverage for TTFT
    and TPOT.

    The signed median (``*_median_pe``, ``(predicted - measured) / measured``) shows a
    bias MAPE hides and even rewards: a percentage error is at most 100 % below the
    measurement and unbounded above it, so under-predicting an uncertain value lowers
    MAPE -- and an optimistic latency is the error that breaks a user's SLO.

    Args:
        measured: rows with ``ttft_ms`` and ``tpot_ms``.
        predicted: the same index, with the prediction columns (bounds optional).
    """
    out: dict[str, float] = {}
    for target in TARGETS:
        name = target.removesuffix("_ms")
        y = measured[target].to_numpy(float)
        p = predicted[target].to_numpy(float)
        ape = np.abs(p - y) / y
        out[f"{name}_mape"] = float(np.mean(ape))
        out[f"{name}_median_ape"] = float(np.median(ape))
        out[f"{name}_median_pe"] = float(np.median((p - y) / y))
        lo, hi = f"{target}_lo", f"{target}_hi"
        if lo in predicted and predicted[lo].notna().all():
            inside = (y >= predicted[lo].to_numpy()) & (y <= predicted[hi].to_numpy())
            out[f"{name}_coverage"] = float(np.mean(inside))
        else:
            out[f"{name}_coverage"] = float("nan")
    return out


def architecture_groups(runs: pd.DataFrame) -> pd.Series:
    """One label per model architecture: checkpoints with identical shapes share it
    (the label is the first model id of the group, in row order)."""
    first: dict[str, str] = {}
    signature: dict[str, str] = {}
    for model_id in pd.unique(runs["model"]):
        spec = load_model_spec(str(model_id))
        signature[model_id] = first.setdefault(architecture_key(spec), model_id)
    return runs["model"].map(signature)


def measured_families(runs: pd.DataFrame, architectures: pd.Series) -> np.ndarray:
    """Integer group of every row: one per model architecture, GPU, engine and format
    (the families :class:`Surrogate` tells measured from new), numbered in order of
    first appearance."""
    keys = measured_family_keys(cross_gpu_keys(architectures, runs), runs["gpu"])
    return pd.factorize(keys)[0]


def repeat_noise(runs: pd.DataFrame) -> dict[str, float]:
    """How far measurements of the same knobs disagree: for every row whose knobs
    (:data:`SWEEP_KEYS`, concurrency and KV dtype) were measured more than once, the
    absolute percentage difference from the mean of its other measurements, averaged
    (after removing exact duplicates). A floor for any model's MAPE on those rows.

    Returns:
        ``rows`` (rows with repeats) and ``ttft_ms`` / ``tpot_ms`` (mean APE, %).
    """
    runs = dedupe_runs(runs)
    keys = [c for c in (*SWEEP_KEYS, "concurrency", "kv_cache_dtype") if c in runs]
    grouped = runs.assign(**{k: runs[k].astype(str) for k in keys}).groupby(keys, dropna=False)
    out: dict[str, float] = {}
    for target in TARGETS:
        count = grouped[target].transform("count")
        others = (grouped[target].transform("sum") - runs[target]) / (count - 1)
        repeated = (count > 1).to_numpy()
        ape = (others - runs[target]).abs() / runs[target]
        out[target] = float(100.0 * ape[repeated].mean()) if repeated.any() else float("nan")
        out["rows"] = float(repeated.sum())
    return out


def aiconfigurator_rows(runs: pd.DataFrame) -> pd.Series:
    """Mask of the runs of aiconfigurator's comparison (757 in the bundled reference)."""
    return runs["gpu"].isin(AICONFIGURATOR_GPUS) & runs["model"].isin(AICONFIGURATOR_MODELS)


def evaluation_runs(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """The runs the splits are measured on, and why the others are left out.

    Aggregated runs without exact duplicates (:func:`dedupe_runs`), without runs that
    repeat another's measurement under another name of the same architecture (181
    reference runs labelled DeepSeek-R1 repeat DeepSeek-V3 runs exactly: the two copies of
    a sweep would fall into different folds of the unseen-configuration split, one
    training on the other's answer), and without the runs whose recorded layout no
    engine can serve (:func:`impossible_layouts`), which :meth:`Surrogate.fit` leaves out
    too and ``predict`` refuses.

    Returns:
        The kept runs (index reset) and the reason of each left-out run (its original
        index label -> reason).
    """
    runs = runs[runs["mode"] == "agg"] if "mode" in runs else runs
    runs = dedupe_runs(runs, models=architecture_groups(runs))
    reasons = impossible_layouts(runs)
    left_out = (reasons != "").to_numpy()
    return runs.loc[~left_out].reset_index(drop=True), reasons[left_out]


class _Design:
    """Features and prior of all rows, computed once and shared by every split."""

    def __init__(self, runs: pd.DataFrame, estimator: Surrogate):
        resolved = resolve_rows(runs, estimator.gpus, estimator.models)
        self.prior = prior_frame(resolved)
        self.X = build_features(resolved, self.prior)
        self.runs = runs
        self.estimator = estimator

    def fit_predict(self, train: np.ndarray, test: np.ndarray, intervals: bool) -> pd.DataFrame:
        model = Surrogate(**self.estimator.get_params())
        if not intervals:
            model.set_params(cv_folds=0)
        model._fit_design(self.X.iloc[train], self.prior.iloc[train], self.runs.iloc[train])
        return model._predict_design(self.X.iloc[test], self.prior.iloc[test], self.runs.iloc[test])


def _held_out(labels: pd.Series, values: tuple[str, ...] | None = None) -> Iterator[np.ndarray]:
    for value in values if values is not None else pd.unique(labels):
        yield (labels == value).to_numpy()


def evaluate(
    runs: pd.DataFrame,
    estimator: Surrogate | None = None,
    splits: tuple[str, ...] = ("unseen", "family", "lomo", "logo", "prior", "aiconfigurator"),
    n_splits: int = 5,
    progress: Callable[[str], None] | None = None,
) -> list[SplitResult]:
    """Evaluate a surrogate's parameters on held-out splits of measured runs.

    Args:
        runs: measured runs (aggregated mode; duplicates and impossible layouts are
            removed here, see :func:`evaluation_runs`).
        estimator: the (unfitted) surrogate whose parameters to evaluate; default
            ``Surrogate()``.
        splits: which of ``unseen``, ``family``, ``lomo``, ``logo``, ``prior``,
            ``aiconfigurator``.
        n_splits: folds of the unseen-configuration and unseen engine/format splits.
        progress: called with a short message as each split finishes.

    Returns:
        One :class:`SplitResult` per split, in the order asked.
    """
    estimator = estimator if estimator is not None else Surrogate()
    runs, _ = evaluation_runs(runs)
    design = _Design(runs, estimator)
    arch = architecture_groups(runs)
    results: list[SplitResult] = []
    for split in splits:
        if split in ("unseen", "family"):
            if split == "unseen":
                groups, name = sweep_groups(runs), "unseen configuration"
            else:
                groups, name = measured_families(runs, arch), "unseen engine/format"
            parts = []
            for train, test in GroupKFold(n_splits=n_splits).split(runs, groups=groups):
                parts.append(design.fit_predict(train, test, intervals=True))
            pred = pd.concat(parts).loc[runs.index]
            results.append(SplitResult(name, len(runs), n_splits, metrics(runs, pred)))
        elif split in ("lomo", "logo"):
            labels = arch if split == "lomo" else runs["gpu"]
            values = None if split == "lomo" else LOGO_GPUS
            per_part, rows = [], 0
            for mask in _held_out(labels, values):
                train, test = np.flatnonzero(~mask), np.flatnonzero(mask)
                pred = design.fit_predict(train, test, intervals=True)
                per_part.append(metrics(runs.iloc[test], pred))
                rows += len(test)
            figures = {k: float(np.nanmean([p[k] for p in per_part])) for k in per_part[0]}
            name = "leave-one-model-out" if split == "lomo" else "leave-one-GPU-out"
            results.append(SplitResult(name, rows, len(per_part), figures))
        elif split == "prior":
            results.append(
                SplitResult("prior only", len(runs), 1, metrics(runs, design.prior[list(TARGETS)]))
            )
        elif split == "aiconfigurator":
            rows_mask = aiconfigurator_rows(runs).to_numpy()
            parts = []
            for model_id in AICONFIGURATOR_MODELS:
                family = arch[runs["model"] == model_id].iloc[0]
                test = np.flatnonzero(rows_mask & (runs["model"] == model_id).to_numpy())
                train = np.flatnonzero((arch != family).to_numpy())
                parts.append(design.fit_predict(train, test, intervals=True))
            pred = pd.concat(parts)
            measured = runs.loc[pred.index]
            results.append(
                SplitResult(
                    "aiconfigurator rows (model held out)",
                    len(pred),
                    len(parts),
                    metrics(measured, pred),
                )
            )
        else:
            raise ValueError(f"unknown split {split!r}")
        if progress is not None:
            progress(f"{results[-1].split}: done")
    return results


def time_surrogate(
    runs: pd.DataFrame, n_predict: int = 10_000, seed: int = 0, repeats: int = 5
) -> dict[str, float]:
    """Seconds to fit on all runs and to predict ``n_predict`` rows drawn from them.

    Prediction is timed ``repeats`` times on the same rows; ``predict_s`` is the median
    (one call on a shared machine is as likely to catch another process's burst as
    not), ``predict_min_s`` / ``predict_max_s`` the fastest and slowest call.
    """
    runs, _ = evaluation_runs(runs)
    start = time.perf_counter()
    model = Surrogate().fit(runs)
    fit_s = time.perf_counter() - start
    rng = np.random.default_rng(seed)
    sample = runs.iloc[rng.integers(0, len(runs), n_predict)].reset_index(drop=True)
    sample = sample.drop(columns=list(TARGETS))
    sample["concurrency"] = rng.integers(1, 4097, n_predict)
    seconds = []
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        model.predict(sample)
        seconds.append(time.perf_counter() - start)
    return {
        "fit_s": fit_s,
        "predict_s": float(np.median(seconds)),
        "predict_min_s": min(seconds),
        "predict_max_s": max(seconds),
        "rows_predicted": float(n_predict),
    }


def format_table(results: list[SplitResult]) -> str:
    """A plain-text table of the figures (percentages), aiconfigurator's beside them.

    ``MdPE`` is the median signed error (negative: the model predicts too low)."""
    columns = ("MAPE", "MdAPE", "MdPE", "cov")
    keys = ("mape", "median_ape", "median_pe", "coverage")
    head = f"{'split':40s} {'rows':>6s}" + "".join(
        f" {f'{target} {c}':>11s}" for target in ("TTFT", "TPOT") for c in columns
    )
    lines = [head, "-" * len(head)]

    def pct(x: float) -> str:
        return "-" if np.isnan(x) else f"{100 * x:.1f}%"

    for r in results:
        f = r.figures
        lines.append(
            f"{r.split:40s} {r.rows:6d}"
            + "".join(
                f" {pct(f.get(f'{t}_{k}', float('nan'))):>11s}"
                for t in ("ttft", "tpot")
                for k in keys
            )
        )
    a = AICONFIGURATOR_FIGURES
    blank = f" {'':>11s}" * (len(keys) - 1)
    lines.append(
        f"{'aiconfigurator 0.12.0 (its 727 rows)':40s} {int(a['rows']):6d}"
        f" {pct(a['ttft_mape']):>11s}{blank} {pct(a['tpot_mape']):>11s}"
    )
    return "\n".join(lines)
