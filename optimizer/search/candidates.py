"""The candidate configurations of a scenario: every engine's space on every GPU, checked.

Each engine's search space (``search_spaces/<engine>.yaml``) is enumerated for the
model on each candidate GPU (:func:`optimizer.space.enumerate_candidates`) and only
the feasible candidates are kept, with a ``gpu`` column. Knobs are pinned first where
that cannot change the answer or the evaluator cannot model them:

* the evaluator's :meth:`~optimizer.search.evaluator.Evaluator.restrictions`
  (``pp = 1`` for the surrogate);
* ``dp = ep = 1`` for a dense model when the space lists ``dp_needs_moe`` /
  ``ep_needs_moe`` (every other value is rejected by them anyway);
* whatever the user pins (``pins``, e.g. ``{"max_batch_size": [64, 128]}``).

Rows are ordered so that, among candidates the evaluator cannot tell apart (the KV
block size has no modelled effect), the engine's defaults come first: searches and
the Pareto front keep the first of equal points.

Example:
    >>> cs = build_candidates(scenario, engines=["vllm"])     # doctest: +SKIP
    >>> len(cs.frame), cs.summaries[("h100_sxm", "vllm")].feasible  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from optimizer.domain.enums import Engine
from optimizer.errors import InvalidInputError
from optimizer.search.scenario import Scenario
from optimizer.space import (
    SearchSpace,
    SpaceSummary,
    enumerate_candidates,
    load_search_space,
    summarize_candidates,
)

__all__ = ["CandidateSet", "build_candidates"]

_ENGINES = tuple(e.value for e in Engine)


@dataclass(frozen=True)
class CandidateSet:
    """Feasible candidates of a scenario and how each space was cut down.

    Attributes:
        frame: one row per feasible candidate (index ``0..n-1``): ``gpu``, ``engine``,
            the knobs, ``gpus_per_replica`` and the per-GPU memory columns.
        summaries: per ``(gpu, engine)``, the enumeration's totals and rejections.
        pinned: knob -> values every space was restricted to.
    """

    frame: pd.DataFrame
    summaries: dict[tuple[str, str], SpaceSummary] = field(default_factory=dict)
    pinned: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Candidates enumerated (after pinning), feasible or not."""
        return sum(s.total for s in self.summaries.values())


def _preference(frame: pd.DataFrame, spaces: Mapping[str, SearchSpace]) -> np.ndarray:
    """Sort key: 0 for the engine's default block size and chunk budget, more for
    each knob off its default, then distance of the batch limit from its default."""
    penalty = np.zeros(len(frame))
    engine = frame["engine"].astype(str).to_numpy()
    for name in ("kv_block_size", "max_num_batched_tokens", "max_batch_size"):
        default = np.array([spaces[e].knobs.get(name).default for e in engine], dtype=np.float64)
        value = frame[name].to_numpy(np.float64)
        known = np.isfinite(default)
        if name == "max_batch_size":
            off = np.abs(np.log2(value / np.where(known, default, 1.0)))
            penalty += np.where(known, off, 0.0) / 100.0
        else:
            penalty += np.where(known, value != default, 0.0)
    return penalty


def build_candidates(
    scenario: Scenario,
    *,
    engines: Sequence[str] | None = None,
    spaces: Mapping[str, SearchSpace] | None = None,
    restrictions: Mapping[str, Sequence[Any]] | None = None,
    pins: Mapping[str, Sequence[Any]] | None = None,
    exclude: Mapping[str, Sequence[Any]] | None = None,
) -> CandidateSet:
    """Enumerate and check every engine's space on every GPU of the scenario.

    Args:
        scenario: model, GPUs and workload (the workload sizes the KV cache).
        engines: engines to consider (default all three).
        spaces: search space per engine (default the bundled files).
        restrictions: knob values the evaluator can model.
        pins: knob values the user restricts the search to.
        exclude: knob values to leave out of every space that searches them (an engine
            left with no value of a knob is skipped).

    Raises:
        InvalidInputError: an unknown engine, or a pinned value an engine does not
            support (names the knob).
    """
    engines = list(dict.fromkeys(engines or _ENGINES))
    for engine in engines:
        if engine not in _ENGINES:
            raise InvalidInputError("engines", f"unknown engine {engine!r}", _ENGINES)
    loaded = {e: (spaces or {}).get(e) or load_search_space(e) for e in engines}
    used: dict[str, SearchSpace] = {}
    pinned: dict[str, tuple[Any, ...]] = {k: tuple(v) for k, v in (restrictions or {}).items()}
    for knob, values in (pins or {}).items():
        pinned[knob] = tuple(values)
    model = scenario.model
    parts = []
    summaries: dict[tuple[str, str], SpaceSummary] = {}
    for engine, space in loaded.items():
        cut = dict(pinned)
        for knob, values in (exclude or {}).items():
            if knob in cut:
                continue
            dropped = {str(v) for v in values}
            kept = [v for v in space.values(knob) if str(v) not in dropped]
            if len(kept) < len(space.values(knob)):
                cut[knob] = tuple(kept)
        if any(not v for v in cut.values()):
            continue
        if not model.is_moe:
            for knob, rule in (("dp", "dp_needs_moe"), ("ep", "ep_needs_moe")):
                if rule in space.constraints and knob not in cut:
                    cut[knob] = (1,)
        restricted = space.restrict(**{k: list(v) for k, v in cut.items()}) if cut else space
        used[engine] = restricted
        for gpu in scenario.gpus:
            frame = enumerate_candidates(restricted, model, gpu, scenario.workload)
            summaries[(gpu.id, engine)] = summarize_candidates(frame, restricted, model, gpu)
            feasible = frame[frame["feasible"]].drop(columns=["feasible", "reason"])
            parts.append(feasible.assign(gpu=gpu.id))
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if not frame.empty:
        for column in ("gpu", "engine", "quantization", "kv_cache_dtype", "spec_method"):
            frame[column] = frame[column].astype(str).astype("category")
        order = np.argsort(_preference(frame, used), kind="stable")
        frame = frame.iloc[order].reset_index(drop=True)
    return CandidateSet(frame=frame, summaries=summaries, pinned=pinned)
