"""A search problem: candidates, the evaluator, objectives and SLO constraints.

Backends see the candidate table as a product of knob domains (each knob's distinct
values among the feasible candidates) and propose points in that product, as
optuna's samplers do. Most points of the product are not feasible (a knob value that
the engine does not support with another, a layout that does not fit in memory), so
:meth:`SearchProblem.repair` maps a proposed point to the nearest feasible candidate
-- a standard way to handle hard constraints in black-box search: the backend's
objective becomes "repair, then evaluate", which is deterministic. Distances count
each categorical knob that differs as 1 and each ordered knob by its rank difference
over the number of its values; ties go to the earlier (preferred) candidate.

Evaluations are cached per candidate: :attr:`SearchProblem.evaluations` counts the
distinct candidates the evaluator has scored, the budget a costly evaluator spends.

Example:
    >>> problem = SearchProblem(candidate_set.frame, evaluator, objectives)  # doctest: +SKIP
    >>> index = problem.repair({"tp": 2, "quantization": "fp8"})            # doctest: +SKIP
    >>> problem.evaluate([index])                                           # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from optimizer.errors import InvalidInputError
from optimizer.search.evaluator import CANDIDATE_COLUMNS, Evaluator
from optimizer.search.objectives import Bound, Objective, slo_bounds
from optimizer.space.knobs import ENUM_KNOBS

__all__ = ["SearchProblem"]

_CATEGORICAL = ("gpu", "engine", *ENUM_KNOBS)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


class SearchProblem:
    """What a backend searches: feasible candidates, their evaluator and the goals.

    Args:
        candidates: feasible candidates, index ``0..n-1``, in preference order.
        evaluator: scores candidates for the scenario.
        objectives: what to optimise (minimised or maximised each).
        precomputed: metrics already known for some candidates (same index), e.g. from
            an earlier exhaustive pass; they are served from the cache and not counted.

    Raises:
        InvalidInputError: no candidates, or a candidate index that is not ``0..n-1``.
    """

    def __init__(
        self,
        candidates: pd.DataFrame,
        evaluator: Evaluator,
        objectives: Sequence[Objective],
        *,
        precomputed: pd.DataFrame | None = None,
    ):
        if candidates.empty:
            raise InvalidInputError("candidates", "no feasible configuration to search")
        if not candidates.index.equals(pd.RangeIndex(len(candidates))):
            raise InvalidInputError("candidates", "index must be 0..n-1 (reset_index first)")
        self.candidates = candidates
        self.evaluator = evaluator
        self.objectives = tuple(objectives)
        self.bounds: tuple[Bound, ...] = tuple(slo_bounds(evaluator.scenario))
        self.domains: dict[str, tuple[Any, ...]] = {}
        codes, scales = [], []
        for knob in CANDIDATE_COLUMNS:
            column = candidates[knob]
            if knob in _CATEGORICAL:
                values = tuple(sorted(map(str, column.astype(str).unique())))
            else:
                values = tuple(sorted(_plain(v) for v in column.unique()))
            if len(values) < 2:
                continue
            self.domains[knob] = values
            position = {v: i for i, v in enumerate(values)}
            raw = column.astype(str) if knob in _CATEGORICAL else column
            codes.append(raw.map(lambda v, p=position: p[_plain(v)]).to_numpy(np.int64))
            scales.append(0.0 if knob in _CATEGORICAL else 1.0 / (len(values) - 1))
        self._codes = np.column_stack(codes) if codes else np.zeros((len(candidates), 0), int)
        self._ordinal_scale = np.array(scales)
        self._exact = {tuple(row): i for i, row in reversed(list(enumerate(self._codes)))}
        self._metrics: dict[str, np.ndarray] | None = None
        self._scored = np.zeros(len(candidates), dtype=bool)
        self._precomputed = precomputed
        self.evaluations = 0

    # --- the space --------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Number of feasible candidates."""
        return len(self.candidates)

    def repair(self, params: Mapping[str, Any]) -> int:
        """Index of the feasible candidate nearest to a proposed point.

        Args:
            params: knob -> value for (a subset of) :attr:`domains`; missing knobs do
                not count in the distance.

        Raises:
            InvalidInputError: a knob or value outside the domains.
        """
        target = np.full(len(self.domains), -1, dtype=np.int64)
        for i, (knob, values) in enumerate(self.domains.items()):
            if knob not in params:
                continue
            value = _plain(params[knob])
            value = str(value) if knob in _CATEGORICAL else value
            if value not in values:
                raise InvalidInputError(knob, f"value {value!r} is not searched", values)
            target[i] = values.index(value)
        if (target >= 0).all():
            exact = self._exact.get(tuple(target))
            if exact is not None:
                return exact
        known = target >= 0
        diff = np.abs(self._codes[:, known] - target[known])
        scale = self._ordinal_scale[known]
        distance = np.where(scale > 0, diff * scale, diff > 0).sum(axis=1)
        return int(np.argmin(distance))

    def params_of(self, index: int) -> dict[str, Any]:
        """The knob values of candidate ``index`` over :attr:`domains`."""
        row = self.candidates.iloc[index]
        return {k: str(row[k]) if k in _CATEGORICAL else _plain(row[k]) for k in self.domains}

    # --- evaluation -------------------------------------------------------------------
    @property
    def scored(self) -> np.ndarray:
        """Indices of the candidates evaluated so far (precomputed ones included)."""
        return np.flatnonzero(self._scored)

    def _store(self, indices: list[int], metrics: pd.DataFrame) -> None:
        if self._metrics is None:
            self._metrics = {}
            for column in metrics.columns:
                kind = metrics[column].dtype.kind
                if kind == "b":
                    self._metrics[column] = np.zeros(self.size, dtype=bool)
                elif kind in "iuf":
                    self._metrics[column] = np.full(self.size, np.nan)
                else:
                    self._metrics[column] = np.full(self.size, None, dtype=object)
        for column, store in self._metrics.items():
            store[indices] = metrics[column].to_numpy() if column in metrics else np.nan
        self._scored[indices] = True

    def evaluate(self, indices: Iterable[int]) -> pd.DataFrame:
        """Metrics of candidates, in the order given (cached; the new ones are scored in
        one evaluator call and counted in :attr:`evaluations`)."""
        wanted = [int(i) for i in indices]
        new = list(dict.fromkeys(i for i in wanted if not self._scored[i]))
        if new and self._precomputed is not None:
            known = [i for i in new if i in self._precomputed.index]
            if known:
                self._store(known, self._precomputed.loc[known])
            new = [i for i in new if not self._scored[i]]
        if new:
            scored = self.evaluator.evaluate(self.candidates.loc[new])
            self.evaluations += len(new)
            self._store(new, scored)
        assert self._metrics is not None
        return pd.DataFrame({c: v[wanted] for c, v in self._metrics.items()}, index=wanted)

    def record(self, index: int, metrics: Mapping[str, Any]) -> None:
        """Store metrics computed elsewhere (a Ray worker, a resumed study) for
        candidate ``index``; they count as an evaluation unless already known."""
        if self._scored[index]:
            return
        self._store([int(index)], pd.DataFrame([dict(metrics)]))
        self.evaluations += 1

    @staticmethod
    def metrics_record(metrics: pd.Series | Mapping[str, Any]) -> dict[str, Any]:
        """One candidate's metrics as plain JSON values (for trial attributes)."""
        return {str(k): _plain(v) for k, v in dict(metrics).items()}

    def objective_values(self, metrics: pd.Series | Mapping[str, Any]) -> list[float]:
        """The objectives of one evaluated candidate, in their own directions."""
        return [float(metrics[o.column]) for o in self.objectives]

    def constraint_values(self, metrics: pd.Series | Mapping[str, Any]) -> dict[str, float]:
        """Per SLO bound, ``violation`` (<= 0 holds), finite."""
        out = {}
        for bound in self.bounds:
            value = float(metrics[f"violation_{bound.name}"])
            out[bound.name] = value if np.isfinite(value) else 1e6
        return out

    def fingerprint(self) -> str:
        """Hash of everything that defines the problem (scenario, objectives, space):
        a stored study may only resume the same problem."""
        scenario = self.evaluator.scenario
        payload = {
            "model": scenario.model.model_dump(mode="json"),
            "gpus": [g.model_dump(mode="json") for g in scenario.gpus],
            "workload": scenario.workload.model_dump(mode="json"),
            "slo": scenario.slo.model_dump(mode="json"),
            "confidence": scenario.confidence,
            "utilization": scenario.max_batch_utilization,
            "objectives": [o.name for o in self.objectives],
            "domains": {k: list(v) for k, v in self.domains.items()},
            "size": self.size,
            "evaluator": self.evaluator.provenance(),
        }
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()
