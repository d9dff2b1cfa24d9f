"""The learned performance surrogate: operator prior times a learned, monotone correction.

For each target (TTFT, TPOT) the surrogate learns ``log(measured / baseline)`` with a
gradient-boosted tree ensemble (scikit-learn ``HistGradientBoostingRegressor``; TTFT
with the absolute-error loss, i.e. the conditional median: measured TTFT has a heavy
tail of runs far off their neighbours, and fitting their mean cost 4 points of MAPE on
unseen configurations; TPOT with squared error, which generalised better to unseen
models, after leaving out the runs whose out-of-fold residual is more than 3 scaled
MADs from the median: a few broken sweeps -- e.g. a GB200 Qwen3-32B sweep whose TPOT
jumps 5x from one client to two -- otherwise pull every model of that architecture) on the
physics features of :mod:`optimizer.surrogate.features` (the operator prior's TTFT,
TPOT and their terms among them), under monotonic constraints
(:data:`~optimizer.surrogate.features.MONOTONE_BY_TARGET`; scikit-learn's median line
search of the absolute-error trees ignores them, so each tree is repaired as it grows,
:mod:`optimizer.surrogate.monotone`): the learned factor never
decreases with a feature that grows with input length (and, for TPOT, concurrency) or
with one of the prior's times, and never increases with a hardware peak. The
``baseline`` is the workload-independent floor of a step (per-GPU weight read time plus
the fixed step overhead), which itself only shrinks on faster hardware, so predictions
are monotone by construction: TPOT in concurrency and input length, TTFT in input
length, both in hardware speed.

Why not learn ``log(measured / prior)``? The measured/prior ratio *falls* with
concurrency where the prior over-estimates large batches, so a correction constrained
to be monotone in concurrency is forced flat there (it measured 26 % TPOT MAPE on
unseen configurations against 15 % for the baseline form). ``measured / baseline``
rises with concurrency and input length like the measurements do, so the constraints
cost little. Trees are constant beyond their training range, so predictions stay
bounded for concurrencies nobody measured.

Beyond the measured range the trees are flat, so ``baseline * exp(f)`` would stop
growing with concurrency and throughput would grow without bound. The prediction is
therefore floored by the operator prior: ``max(baseline * exp(f), prior * k)``, with
``k`` the smallest ``measured / prior`` of the training runs (``prior_floor_``).
TPOT is also floored by the decode step's FLOPs at the GPU's peak (``compute_ms``: no
step can be faster), which grows linearly with the batch, so throughput saturates
below the peak-FLOPS bound; a maximum of monotone functions stays monotone. That floor
is applied last, after the family offsets and the blend below: a family offset of -0.36
once took Qwen3-32B's TPOT on H100 at 262,144 clients to 0.7x its FLOPs bound.

Intervals are split-conformal (:mod:`optimizer.surrogate.intervals`) on out-of-fold
residuals from a grouped K-fold inside :meth:`Surrogate.fit`: each residual comes from
a model that never saw the row's concurrency sweep, which is what the intervals are
for.

Rows of a deployment family with measured runs (one model, GPU, engine, format and KV
dtype) get that family's offset (:mod:`optimizer.surrogate.local`): the shrunk median of
the family's out-of-fold residuals, what the trees miss on its unseen sweeps; TPOT's is
refined per engine version where the rows record one (``version_targets``).

Rows of a model architecture or a GPU that the training runs did not hold lean on the
operator prior (:mod:`optimizer.surrogate.shift`): the log prediction is blended with
the prior's by a weight fitted inside :meth:`Surrogate.fit` on predictions for held-out
architectures and held-out GPUs together (one weight per target), and those rows get the
wider band calibrated on the same held-out residuals. So do rows of a known model on a
known GPU with an engine and weight format never measured for that pair (a new
*family*), with their own weight, chosen on measured families held out in grouped folds:
the learned correction alone was 49 % off in TTFT and 26 % in TPOT on such rows of the
reference runs, with 73 % of them inside their 90 % intervals; blended, 40 % and 19 %,
with 90 % and 88 % inside (five folds of families held out, 2,971 runs). On a new GPU or a
new family, the prior blended in is first scaled by what the row's model architecture,
engine and weight format measured against it on other GPUs
(:mod:`optimizer.surrogate.cross_gpu`; when the weights are chosen, each held-out unit's
prior is scaled by the other units' runs). Before
the blend, the learned prediction may be held within a quantile range of measured/prior
around the raw prior (the level chosen on the same held-out groups; on the reference
runs TTFT is clipped, and TPOT in some fits). TTFT's prior is first calibrated
on the training runs (``prior_calibration_``,
:mod:`optimizer.surrogate.prior_calibration`): the prior times the prefill of a request
next to the running decodes, and a closed-loop benchmark's TTFT is 3x (vLLM) to 12x
(SGLang) that, mostly waiting behind other requests' prefills and decode steps, which a
per-engine non-negative mix of the prior's prefill, burst and decode-step times
captures. Blended uncalibrated, the prior only dragged new models' TTFT down: 81 % of
them came out under-predicted, by 1.6x at the median.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import GroupKFold
from threadpoolctl import threadpool_limits

from optimizer.catalog import load_model_spec
from optimizer.domain.gpu import GPUSpec
from optimizer.domain.model_spec import ModelSpec
from optimizer.errors import InvalidInputError
from optimizer.surrogate.cross_gpu import (
    CROSS_GPU_SHRINK,
    cross_gpu_keys,
    fit_cross_gpu_offsets,
    measured_family_keys,
)
from optimizer.surrogate.features import (
    CATEGORICAL,
    FEATURES,
    MONOTONE_BY_TARGET,
    REQUIRED_COLUMNS,
    TARGETS,
    architecture_key,
    build_features,
    impossible_layouts,
    prior_frame,
    resolve_rows,
    row_field,
)
from optimizer.surrogate.intervals import LogBand, fit_log_band
from optimizer.surrogate.local import (
    DEFAULT_SHRINK,
    LocalOffsets,
    family_keys,
    fit_local_offsets,
    fit_version_offsets,
    version_keys,
)
from optimizer.surrogate.monotone import monotone_line_search
from optimizer.surrogate.prior_calibration import (
    TERMS_BY_TARGET,
    PriorCalibration,
    fit_prior_calibration,
)
from optimizer.surrogate.shift import (
    CLIP_LEVELS,
    ShiftCorrection,
    blend,
    clip_bounds,
    fit_shift_correction,
)

__all__ = [
    "PREDICTION_COLUMNS",
    "SWEEP_KEYS",
    "NotFittedError",
    "Surrogate",
    "baseline_ms",
    "dedupe_runs",
    "sweep_groups",
]

PREDICTION_COLUMNS: tuple[str, ...] = (
    "ttft_ms",
    "tpot_ms",
    "ttft_ms_lo",
    "ttft_ms_hi",
    "tpot_ms_lo",
    "tpot_ms_hi",
)

PRIOR_FLOOR_QUANTILE = 0.0
"""Quantile of ``measured / prior`` on the training runs that floors every prediction."""

SWEEP_KEYS: tuple[str, ...] = (
    "model",
    "gpu",
    "engine",
    "quantization",
    "tp",
    "dp",
    "ep",
    "isl",
    "osl",
)
"""A configuration whose concurrency sweep is held out together."""


class NotFittedError(InvalidInputError):
    """``predict`` was called on a surrogate that was not fitted."""

    def __init__(self) -> None:
        super().__init__("surrogate", "not fitted yet; call fit(runs) first")


class _HeldOut(NamedTuple):
    """One kind's held-out predictions in :meth:`Surrogate.fit`, every training run once."""

    learned: np.ndarray  # log prediction of a fit that did not see the run's unit
    prior: np.ndarray  # log prior blended in, calibrated and scaled without the unit
    labels: np.ndarray  # "<kind>:<group>": each group's error counts once
    lows: dict[float, np.ndarray]  # per clip level, the run's clip range from the
    highs: dict[float, np.ndarray]  # other units' runs


def dedupe_runs(runs: pd.DataFrame, models: ArrayLike | None = None) -> pd.DataFrame:
    """Drop rows repeating another row's configuration and measured TTFT/TPOT exactly
    (the same measurement imported from two source dumps).

    Args:
        runs: measured runs in the native schema.
        models: one label per row compared in place of ``model`` (architecture groups:
            the same measurement imported under two names of one architecture is a
            repeat too).
    """
    keys = [c for c in (*SWEEP_KEYS, "concurrency", "kv_cache_dtype", *TARGETS) if c in runs]
    compared = runs[keys].astype(str)
    if models is not None:
        compared = compared.assign(model=np.asarray(models).astype(str))
    return runs.loc[~compared.duplicated().to_numpy()]


def baseline_ms(prior: pd.DataFrame) -> np.ndarray:
    """The floor a learned factor multiplies: per-GPU weight read time plus the fixed
    per-step overhead (independent of the workload, non-increasing in bandwidth)."""
    return (prior["weight_read_ms"] + prior["decode_overhead_ms"]).to_numpy(np.float64)


def sweep_groups(runs: pd.DataFrame) -> np.ndarray:
    """Integer group of every row: one per configuration (:data:`SWEEP_KEYS`)."""
    keys = runs[list(SWEEP_KEYS)].astype(str)
    return keys.groupby(list(SWEEP_KEYS), sort=False).ngroup().to_numpy()


class Surrogate(BaseEstimator):
    """TTFT and TPOT of LLM-serving configurations, with 90 % intervals.

    Follows scikit-learn's estimator contract: ``__init__`` only stores parameters,
    :meth:`fit` returns ``self``, learned state ends in ``_``.

    Args:
        max_iter: boosting iterations per target.
        learning_rate: boosting learning rate.
        max_leaf_nodes: leaves per tree. 150 trees of 31 leaves predict in 0.63x the time
            of 300 of 15 (at learning rate 0.06), with held-out errors within a point:
            unseen configurations TTFT 25.6 -> 25.6 %, TPOT 12.3 -> 12.5 %; new models
            51.8 -> 52.6 %, 21.9 -> 21.6 %; new GPUs 48.6 -> 49.2 %, 21.3 -> 20.8 %; the
            aiconfigurator rows 43.8 -> 43.2 %, 16.1 -> 15.6 %.
        min_samples_leaf: minimum training rows per leaf.
        l2_regularization: L2 penalty on leaf values.
        coverage: nominal coverage of the intervals.
        cv_folds: grouped folds for the out-of-fold residuals that calibrate the
            intervals and the family offsets (0 or 1: neither; the bound columns are NaN).
        local_shrink: pseudo-count of the family offsets' shrinkage towards zero
            (``None``: no family offsets).
        version_targets: targets whose family offsets are refined per engine version,
            for rows recording ``engine_version`` (see :mod:`optimizer.surrogate.local`;
            on the unseen-configuration split it cut TPOT MAPE from 13.3 to 12.3 %
            and, replayed on the same folds, raised TTFT's from 25.6 to 26.6 %: TTFT's
            are not).
        calibrate_prior: targets whose prior is calibrated on the training runs before
            the blend for new models and GPUs (:mod:`optimizer.surrogate.prior_calibration`:
            TTFT's prior is 3-12x below a closed-loop benchmark's; TPOT's is within a few
            percent, and calibrated per engine it measured worse: new models 21.9 -> 22.3 %,
            the aiconfigurator rows 16.1 -> 19.0 %).
        outlier_mads: for a target fitted with squared error (sensitive to outliers),
            rows whose out-of-fold residual lies further than this many scaled median
            absolute deviations from the median are left out of the final trees and of
            the held-out fits that weigh the prior (``None``: keep all; needs
            ``cv_folds >= 2``).
        cross_gpu_shrink: pseudo-count (in sweeps) of the offsets that scale the prior
            blended in for a row of a new GPU or a new family, by what the row's model
            architecture, engine and format measured against it on other GPUs
            (:mod:`optimizer.surrogate.cross_gpu`; ``None``: no such offsets).
        ttft_loss, tpot_loss: loss of each target's trees (scikit-learn names).
        gpus: GPU specs by id overriding or extending the catalog (hypothetical GPUs).
        models: model specs by id overriding or extending the catalog.
        random_state: seed of the tree ensembles.

    Example:
        >>> from optimizer.profiles import load_reference_profiles
        >>> runs = load_reference_profiles()
        >>> runs = runs[runs["mode"] == "agg"]
        >>> model = Surrogate().fit(runs)                               # doctest: +SKIP
        >>> model.predict(runs.drop(columns=["ttft_ms", "tpot_ms"]))   # doctest: +SKIP
    """

    def __init__(
        self,
        max_iter: int = 150,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 10,
        l2_regularization: float = 1.0,
        coverage: float = 0.9,
        cv_folds: int = 5,
        local_shrink: float | None = DEFAULT_SHRINK,
        version_targets: tuple[str, ...] = ("tpot_ms",),
        calibrate_prior: tuple[str, ...] = ("ttft_ms",),
        outlier_mads: float | None = 3.0,
        cross_gpu_shrink: float | None = CROSS_GPU_SHRINK,
        ttft_loss: str = "absolute_error",
        tpot_loss: str = "squared_error",
        gpus: Mapping[str, GPUSpec] | None = None,
        models: Mapping[str, ModelSpec] | None = None,
        random_state: int | None = 0,
    ):
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.coverage = coverage
        self.cv_folds = cv_folds
        self.local_shrink = local_shrink
        self.version_targets = version_targets
        self.calibrate_prior = calibrate_prior
        self.outlier_mads = outlier_mads
        self.cross_gpu_shrink = cross_gpu_shrink
        self.ttft_loss = ttft_loss
        self.tpot_loss = tpot_loss
        self.gpus = gpus
        self.models = models
        self.random_state = random_state

    # --- fitting --------------------------------------------------------------------
    def _loss(self, target: str) -> str:
        return self.ttft_loss if target == "ttft_ms" else self.tpot_loss

    def _regressor(self, target: str) -> HistGradientBoostingRegressor:
        return HistGradientBoostingRegressor(
            loss=self._loss(target),
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            monotonic_cst=MONOTONE_BY_TARGET[target],
            categorical_features=list(CATEGORICAL),
            early_stopping=False,
            random_state=self.random_state,
        )

    def _design(self, rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        resolved = resolve_rows(rows, self.gpus, self.models)
        prior = prior_frame(resolved)
        return build_features(resolved, prior), prior

    def fit(self, runs: pd.DataFrame, y: object = None) -> Surrogate:
        """Learn the corrections and calibrate the intervals on measured runs.

        Args:
            runs: measured runs in the native schema (aggregated mode), with
                ``ttft_ms`` and ``tpot_ms``; exact duplicates are dropped first, and
                so are runs whose recorded layout no engine can serve
                (:func:`~optimizer.surrogate.features.impossible_layouts`), counted by
                reason in ``excluded_layouts_``.
            y: ignored (the targets are columns of ``runs``).

        Returns:
            ``self``.

        Raises:
            InvalidInputError: a missing target column, a non-positive target, or a
                row the prior cannot model (named by its index label).
        """
        for target in TARGETS:
            if target not in runs.columns:
                raise InvalidInputError("runs", f"missing target column {target!r}", TARGETS)
            bad = ~(pd.to_numeric(runs[target], errors="coerce") > 0)
            if bad.any():
                label = runs.index[bad.to_numpy()][0]
                raise InvalidInputError(row_field(label, target), "must be a positive number")
        runs = dedupe_runs(runs)
        reasons = impossible_layouts(runs, self.models)
        self.excluded_layouts_ = {
            str(k): int(v) for k, v in reasons[reasons != ""].value_counts().items()
        }
        runs = runs.loc[(reasons == "").to_numpy()]
        X, prior = self._design(runs)
        return self._fit_design(X, prior, runs)

    def _fit_design(self, X: pd.DataFrame, prior: pd.DataFrame, runs: pd.DataFrame) -> Surrogate:
        """Fit on precomputed features and prior (positionally aligned with ``runs``).

        One OpenMP thread: on a shared 2-core machine, HGB's spinning threads
        slow down by an order of magnitude when another process holds a core. The
        absolute-error trees are repaired as they grow so that they keep their
        monotonic constraints (:func:`~optimizer.surrogate.monotone.monotone_line_search`).
        """
        with threadpool_limits(limits=1, user_api="openmp"), monotone_line_search():
            return self._fit_design_threads(X, prior, runs)

    def _family_folds(self, families: np.ndarray) -> np.ndarray:
        """Every run's fold when the measured families (integer codes) are held out in
        ``cv_folds`` grouped folds: the unit each held-out prior is calibrated on (per
        family it would be ~60 calibrations per target)."""
        folds = np.zeros(len(families), dtype=np.int64)
        n_families = len(np.unique(families))
        if self.cv_folds >= 2 and n_families >= 2:
            splits = GroupKFold(n_splits=min(self.cv_folds, n_families))
            for fold, (_, test) in enumerate(splits.split(families, groups=families)):
                folds[test] = fold
        return folds

    def _fit_design_threads(
        self, X: pd.DataFrame, prior: pd.DataFrame, runs: pd.DataFrame
    ) -> Surrogate:
        groups = sweep_groups(runs)
        folds = min(self.cv_folds, len(np.unique(groups)))
        self.estimators_: dict[str, HistGradientBoostingRegressor] = {}
        self.bands_: dict[str, LogBand] = {}
        self.oof_residuals_: dict[str, np.ndarray] = {}
        self.prior_floor_: dict[str, float] = {}
        self.prior_calibration_: dict[str, PriorCalibration] = {}
        self.local_: dict[str, LocalOffsets] = {}
        self.version_local_: dict[str, LocalOffsets] = {}
        self.trimmed_: dict[str, int] = {}
        self.cross_gpu_: dict[str, LocalOffsets] = {}
        families = family_keys(runs)
        versions = version_keys(runs, families)
        architectures = self._architectures(runs["model"])
        gpus = runs["gpu"].astype(str).to_numpy()
        engines = runs["engine"].astype(str).to_numpy()
        cross_keys = cross_gpu_keys(architectures, runs)
        measured_families = measured_family_keys(cross_keys, gpus)
        # per kind: the group of every run (each group's error counts once when the
        # weight is chosen), and the unit held out together (the group itself, or for
        # families the fold)
        family_codes = pd.factorize(measured_families)[0]
        shift_groups = {
            "model": (architectures, architectures),
            "gpu": (gpus, gpus),
            "family": (family_codes, self._family_folds(family_codes)),
        }
        self.shift_: dict[str, dict[str, ShiftCorrection]] = {kind: {} for kind in shift_groups}
        log_base = np.log(baseline_ms(prior))
        for target in TARGETS:
            measured = runs[target].to_numpy(float)
            log_y = np.log(measured)
            log_prior = np.log(prior[target].to_numpy(float))
            log_ratio = log_y - log_prior  # log(measured / prior) of every training run
            self.prior_floor_[target] = float(np.exp(np.quantile(log_ratio, PRIOR_FLOOR_QUANTILE)))
            if target in self.calibrate_prior:
                self.prior_calibration_[target] = fit_prior_calibration(
                    prior, measured, engines, TERMS_BY_TARGET[target]
                )
            inliers = np.ones(len(log_y), dtype=bool)
            if folds >= 2:
                oof = self._out_of_fold(X, prior, log_y, target, groups, folds)
                residuals = log_y - oof
                if self._loss(target) == "squared_error":  # absolute error is robust already
                    inliers = self._inliers(residuals)
                if self.local_shrink is not None:
                    raw = residuals
                    self.local_[target], residuals = fit_local_offsets(
                        raw, families, groups, self.local_shrink
                    )
                    if target in self.version_targets:
                        self.version_local_[target], residuals = fit_version_offsets(
                            raw - self.local_[target].offset(families),
                            residuals,
                            versions,
                            groups,
                            self.local_shrink,
                        )
                self.oof_residuals_[target] = residuals
                self.bands_[target] = fit_log_band(residuals, self.coverage)
            # models, GPUs and (in folds) measured families held out in turn: one weight
            # on the prior for a row of a new model or GPU, whichever way it is new
            # (fitted per kind or per dense/MoE model, the weights moved with the few
            # groups each had), and one for a new family of a known model and GPU
            held_out: dict[str, _HeldOut] = {}
            for kind, (labels, units) in shift_groups.items():
                n_units = len(np.unique(units))
                if self.cv_folds >= 2 and n_units >= 2:
                    k = min(self.cv_folds, n_units)
                    oof = self._out_of_fold(X, prior, log_y, target, units, k, inliers)
                    # each unit's prior calibrated on the other units' runs
                    scaled = log_prior.copy()
                    lows = {level: np.empty(len(log_y)) for level in CLIP_LEVELS}
                    highs = {level: np.empty(len(log_y)) for level in CLIP_LEVELS}
                    for unit in np.unique(units):
                        own = units == unit
                        blended = log_prior
                        if target in self.calibrate_prior:
                            calibration = fit_prior_calibration(
                                prior[~own],
                                measured[~own],
                                engines[~own],
                                TERMS_BY_TARGET[target],
                            )
                            blended = np.log(calibration.predict(prior, engines))
                        scaled[own] = blended[own]
                        if kind != "model" and self.cross_gpu_shrink is not None:
                            # what the other units' runs measured against their prior
                            # (for a held-out GPU or family: its model, engine and
                            # format on other GPUs)
                            others = fit_cross_gpu_offsets(
                                (log_y - blended)[~own],
                                cross_keys[~own],
                                groups[~own],
                                self.cross_gpu_shrink,
                            )
                            scaled[own] += others.offset(cross_keys[own])
                        for level in CLIP_LEVELS:
                            lows[level][own], highs[level][own] = clip_bounds(
                                log_ratio[~own], level
                            )
                    labelled = np.char.add(f"{kind}:", labels.astype(str))
                    held_out[kind] = _HeldOut(oof, scaled, labelled, lows, highs)
            if self.cross_gpu_shrink is not None:
                self.cross_gpu_[target] = fit_cross_gpu_offsets(
                    log_y - np.log(self._blend_prior(target, prior, engines)),
                    cross_keys,
                    groups,
                    self.cross_gpu_shrink,
                )
            # new models and GPUs pooled, new families of known models and GPUs apart
            for kinds in (("model", "gpu"), ("family",)):
                pooled = [held_out[kind] for kind in kinds if kind in held_out]
                if not pooled:
                    continue
                correction = fit_shift_correction(
                    np.concatenate([h.learned for h in pooled]),
                    np.concatenate([h.prior for h in pooled]),
                    np.tile(log_y, len(pooled)),
                    np.concatenate([h.labels for h in pooled]),
                    self.coverage,
                    log_anchor=np.tile(log_prior, len(pooled)),
                    held_out_bounds={
                        level: (
                            np.concatenate([h.lows[level] for h in pooled]),
                            np.concatenate([h.highs[level] for h in pooled]),
                        )
                        for level in CLIP_LEVELS
                    },
                    train_log_ratio=log_ratio,
                )
                for kind in kinds:
                    self.shift_[kind][f"{target}/*"] = correction
            columns = list(MONOTONE_BY_TARGET[target])
            self.estimators_[target] = self._regressor(target).fit(
                X[columns][inliers], (log_y - log_base)[inliers]
            )
            self.trimmed_[target] = int((~inliers).sum())
        self.train_architectures_ = np.unique(architectures)
        self.train_gpus_ = np.unique(gpus)
        self.train_families_ = np.unique(measured_families)
        self.feature_names_in_ = np.array(FEATURES, dtype=object)
        self.n_features_in_ = len(FEATURES)
        self.n_train_rows_ = len(runs)
        return self

    def _out_of_fold(
        self,
        X: pd.DataFrame,
        prior: pd.DataFrame,
        log_y: np.ndarray,
        target: str,
        groups: np.ndarray,
        folds: int,
        rows: np.ndarray | None = None,
    ) -> np.ndarray:
        """Log predictions of every row by a fit that did not see the row's group (and
        was fitted on the ``rows`` mask only, when given)."""
        columns = list(MONOTONE_BY_TARGET[target])
        log_base = np.log(baseline_ms(prior))
        oof = np.full(len(X), np.nan)
        for train, test in GroupKFold(n_splits=folds).split(X, groups=groups):
            if rows is not None:  # left out, not zero-weighted: weighted binning is slow
                train = train[rows[train]]
            est = self._regressor(target).fit(
                X[columns].iloc[train], log_y[train] - log_base[train]
            )
            oof[test] = est.predict(X[columns].iloc[test])
        return np.log(self._floored(np.exp(oof) * baseline_ms(prior), prior, target))

    def _blend_prior(self, target: str, prior: pd.DataFrame, engines: np.ndarray) -> np.ndarray:
        """The prior blended in for new models and GPUs (ms): calibrated where fitted."""
        calibration = getattr(self, "prior_calibration_", {}).get(target)
        if calibration is None:
            return prior[target].to_numpy(np.float64)
        return calibration.predict(prior, engines)

    def _inliers(self, residuals: np.ndarray) -> np.ndarray:
        """True for rows whose held-out residual lies within ``outlier_mads`` scaled
        median absolute deviations of the median (all True when ``outlier_mads`` is None)."""
        if self.outlier_mads is None:
            return np.ones(len(residuals), dtype=bool)
        centred = np.abs(residuals - np.median(residuals))
        return centred <= self.outlier_mads * 1.4826 * np.median(centred)

    def _floored(self, prediction: np.ndarray, prior: pd.DataFrame, target: str) -> np.ndarray:
        """The learned prediction, floored by the scaled prior (and TPOT by the FLOPs)."""
        floor = prior[target].to_numpy(np.float64) * self.prior_floor_[target]
        if target == "tpot_ms":
            floor = np.maximum(floor, prior["compute_ms"].to_numpy(np.float64))
        return np.maximum(prediction, floor)

    def _architectures(self, model_ids: pd.Series) -> np.ndarray:
        """Architecture key of every row's model (see :func:`architecture_key`)."""
        keys = {m: architecture_key(self._model_spec(str(m))) for m in model_ids.unique()}
        return model_ids.map(keys).to_numpy(dtype=object).astype(str)

    def _model_spec(self, model_id: str) -> ModelSpec:
        if self.models and model_id in self.models:
            return self.models[model_id]
        return load_model_spec(model_id)

    # --- prediction -----------------------------------------------------------------
    def predict(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Mean TTFT and TPOT (ms) with interval bounds, one row per input row.

        Only the knob columns (:data:`~optimizer.surrogate.features.REQUIRED_COLUMNS`,
        ``kv_cache_dtype``, ``pp``, ``mode``, and ``engine_version`` when present) are
        read; target columns are ignored.

        Args:
            rows: configurations in the native schema.

        Returns:
            DataFrame with the same index and columns :data:`PREDICTION_COLUMNS`.

        Raises:
            NotFittedError: before :meth:`fit`.
            InvalidInputError: a row the surrogate cannot handle (named by index label).
        """
        if not hasattr(self, "estimators_"):
            raise NotFittedError()
        knobs = [c for c in (*REQUIRED_COLUMNS, "kv_cache_dtype", "pp", "mode") if c in rows]
        X, prior = self._design(rows[knobs])
        return self._predict_design(X, prior, rows)

    def _predict_design(
        self, X: pd.DataFrame, prior: pd.DataFrame, rows: pd.DataFrame
    ) -> pd.DataFrame:
        """Predict from precomputed features and prior (same index as ``rows``).

        Rows whose model architecture or GPU the training runs did not hold lean on the
        prior by the fitted :class:`~optimizer.surrogate.shift.ShiftCorrection` weight
        (the larger one when both are new) and get that correction's wider band.
        """
        # artifacts saved before the shift correction existed have no domain to compare
        # with: every row counts as in-domain for them
        shifts: dict[str, dict[str, ShiftCorrection]] = getattr(self, "shift_", {})
        # per distinct model, gathered to the rows: architecture keys are long texts (~1,200
        # characters), and comparing them row by row cost ~50 ms on 10,000 rows
        model_codes, model_ids = pd.factorize(rows["model"])
        architectures = self._architectures(pd.Series(model_ids))
        trained = getattr(self, "train_architectures_", architectures)
        gpus = rows["gpu"].astype(str).to_numpy()
        families = family_keys(rows)
        versions = version_keys(rows, families)
        # keys per distinct family, gathered to the rows (as for the architectures)
        family_codes = pd.factorize(families)[0]
        first = np.unique(family_codes, return_index=True)[1]
        cross_keys = cross_gpu_keys(architectures[model_codes[first]], rows.iloc[first])
        measured = getattr(self, "train_families_", None)  # None: stored before they were
        family_measured = (
            np.ones(len(first), dtype=bool)
            if measured is None
            else np.isin(measured_family_keys(cross_keys, gpus[first]), measured)
        )[family_codes]
        new_model = ~np.isin(architectures, trained)[model_codes]
        new_gpu = ~np.isin(gpus, getattr(self, "train_gpus_", gpus))
        unseen = {
            "model": new_model,
            "gpu": new_gpu,
            "family": ~new_model & ~new_gpu & ~family_measured,
        }
        # rows whose prior is scaled by what their model measured on other GPUs
        elsewhere = new_gpu | unseen["family"]
        elsewhere_keys = cross_keys[family_codes[elsewhere]]
        engines = rows["engine"].astype(str).to_numpy()
        out = pd.DataFrame(index=X.index)
        # the two targets' ensembles run side by side, one OpenMP thread each (see
        # _fit_design): their tree loops release the GIL, so with a second core free the
        # trees take half the time, and with it busy nothing spins
        with ThreadPoolExecutor(max_workers=len(TARGETS)) as pool:
            computed = pool.map(lambda target: self._factor(X, target), TARGETS)
            factors = dict(zip(TARGETS, computed, strict=True))
        for target in TARGETS:
            factor = factors[target]
            learned = self._floored(baseline_ms(prior) * factor, prior, target)
            local = getattr(self, "local_", {}).get(target)
            if local is not None:
                learned = learned * np.exp(local.offset(families))
            version_local = getattr(self, "version_local_", {}).get(target)
            if version_local is not None:
                learned = learned * np.exp(version_local.offset(versions))
            log_prior = np.log(self._blend_prior(target, prior, engines))
            cross_gpu = getattr(self, "cross_gpu_", {}).get(target)
            if cross_gpu is not None:
                log_prior[elsewhere] += cross_gpu.offset(elsewhere_keys)
            log_learned = np.log(learned)
            log_raw_prior = np.log(prior[target].to_numpy(np.float64))
            weight = np.zeros(len(learned))
            bands: list[LogBand | None] = [self.bands_.get(target)]
            choice = np.zeros(len(learned), dtype=np.int64)  # index into ``bands``
            for kind, unseen_rows in unseen.items():
                shift = shifts.get(kind, {}).get(f"{target}/*")
                if shift is None or not unseen_rows.any():
                    continue
                weight[unseen_rows] = np.maximum(weight[unseen_rows], shift.weight)
                # (one correction serves new models and GPUs: clipping twice is clipping
                # once; new families are neither)
                log_learned[unseen_rows] = shift.clipped(
                    log_learned[unseen_rows], log_raw_prior[unseen_rows]
                )
                width = np.array([np.inf if b is None else b.width for b in bands])
                wider = unseen_rows & (shift.band.width > width[choice])
                bands.append(shift.band)
                choice[wider] = len(bands) - 1
            pred = blend(log_learned, log_prior, weight)
            if target == "tpot_ms":  # no offset or blend may take a step below its FLOPs
                pred = np.maximum(pred, prior["compute_ms"].to_numpy(np.float64))
            lo, hi = np.full(len(pred), np.nan), np.full(len(pred), np.nan)
            for i, band in enumerate(bands):
                if band is not None and (choice == i).any():
                    lo[choice == i], hi[choice == i] = band.apply(pred[choice == i])
            out[target], out[f"{target}_lo"], out[f"{target}_hi"] = pred, lo, hi
        return out[list(PREDICTION_COLUMNS)]

    def _factor(self, X: pd.DataFrame, target: str) -> np.ndarray:
        """The learned factor over the baseline of every row, for one target."""
        estimator = self.estimators_[target]
        columns = list(estimator.feature_names_in_)  # the columns it was trained on
        with threadpool_limits(limits=1, user_api="openmp"):  # this thread's OpenMP team
            return np.exp(estimator.predict(X[columns]))

    def predict_prior(self, rows: pd.DataFrame) -> pd.DataFrame:
        """The operator prior alone (``ttft_ms``, ``tpot_ms`` and its terms); needs no fit."""
        knobs = [c for c in (*REQUIRED_COLUMNS, "kv_cache_dtype", "pp", "mode") if c in rows]
        return prior_frame(resolve_rows(rows[knobs], self.gpus, self.models))

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore a stored surrogate; a parameter added after it was stored takes its
        default, so ``get_params``/``set_params`` work on older artifacts too."""
        defaults = {
            name: p.default
            for name, p in inspect.signature(type(self).__init__).parameters.items()
            if p.default is not inspect.Parameter.empty
        }
        state = dict(state)
        if "prior_scale_" in state:  # stored before the calibration: one log factor per engine
            state["prior_calibration_"] = {
                target: PriorCalibration(
                    (target,), {engine: (float(np.exp(s)),) for engine, s in scales.items()}
                )
                for target, scales in state.pop("prior_scale_").items()
            }
        super().__setstate__({**defaults, **state})

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        return tags
