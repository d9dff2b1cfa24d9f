"""Enumerate a search space for one model, GPU and workload; say which candidates are feasible.

The grid is the product of every knob's searched values (speculative decoding counts as
one axis of (method, draft length) pairs: ``none`` only with 0). Checks run on one small
array per knob, laid along its own axis, and broadcast; only the final table has one row
per candidate, with compact dtypes, so a grid of millions of candidates takes about a
second.

Each rejected candidate carries the first constraint, in the file's order, that rejects
it (``reason``); feasible candidates have no reason. Memory figures are per GPU, in GiB.

Example:
    >>> from optimizer.catalog.gpus import get_gpu
    >>> from optimizer.catalog.models import load_model_spec
    >>> from optimizer.domain import Workload
    >>> from optimizer.space import load_search_space
    >>> space = load_search_space("vllm").restrict(max_batch_size=8)
    >>> model, gpu = load_model_spec("meta-llama/Llama-3.1-70B"), get_gpu("h100_sxm")
    >>> frame = enumerate_candidates(space, model, gpu, Workload.simple(1024, 1024, concurrency=8))
    >>> summarize_candidates(frame, space, model, gpu).feasible > 0
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from optimizer.domain.gpu import GPUSpec
from optimizer.domain.model_spec import ModelSpec
from optimizer.domain.workload import Workload
from optimizer.errors import InvalidInputError
from optimizer.space.constraints import CONSTRAINTS, CheckContext, describe_constraint
from optimizer.space.knobs import ENUM_KNOBS, KNOBS
from optimizer.space.schema import SearchSpace

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MEMORY_COLUMNS",
    "SpaceSummary",
    "check_candidates",
    "enumerate_candidates",
    "example_candidates",
    "sequence_tokens",
    "summarize_candidates",
]

MEMORY_COLUMNS: tuple[str, ...] = (
    "weights_gib",
    "activations_gib",
    "kv_gib",
    "overhead_gib",
    "kv_budget_gib",
    "budget_gib",
    "max_sequences",
)
"""Per-GPU memory columns added to every candidate (``max_sequences`` is a count)."""

_AXES: tuple[str, ...] = (
    "tp",
    "pp",
    "dp",
    "ep",
    "quantization",
    "kv_cache_dtype",
    "max_batch_size",
    "spec",
    "kv_block_size",
    "max_num_batched_tokens",
)
_GIB = float(2**30)
_INT_DTYPES: dict[str, type[np.generic]] = {
    "max_batch_size": np.int32,
    "max_num_batched_tokens": np.int32,
}


def sequence_tokens(workload: Workload | int) -> int:
    """Tokens one sequence holds in the KV cache: mean prompt plus mean output, rounded up.

    Args:
        workload: a ``Workload`` (sized for its mean request; the simulator handles the
            tails), or the token count itself.
    """
    if isinstance(workload, Workload):
        return max(1, math.ceil(workload.mean_isl() + workload.mean_osl()))
    if isinstance(workload, bool) or not isinstance(workload, int) or workload < 1:
        raise InvalidInputError("workload", f"must be a Workload or tokens >= 1, got {workload!r}")
    return workload


def _grid(space: SearchSpace) -> tuple[dict[str, np.ndarray], tuple[int, ...]]:
    """One array per knob, each along its own axis of the grid."""
    pairs = space.spec_pairs()
    sizes = [len(pairs) if a == "spec" else len(space.values(a)) for a in _AXES]
    knobs: dict[str, np.ndarray] = {}
    for axis, name in enumerate(_AXES):
        shape = [1] * len(_AXES)
        shape[axis] = sizes[axis]
        if name == "spec":
            knobs["spec_method"] = np.array([m for m, _ in pairs], dtype=object).reshape(shape)
            knobs["spec_draft_len"] = np.array([k for _, k in pairs]).reshape(shape)
        elif name in ENUM_KNOBS:
            knobs[name] = np.array(space.values(name), dtype=object).reshape(shape)
        else:
            knobs[name] = np.array(space.values(name)).reshape(shape)
    return knobs, tuple(sizes)


def _rejections(ctx: CheckContext, shape: tuple[int, ...]) -> np.ndarray:
    """Code of the first failing constraint (1-based, file order), 0 where feasible."""
    codes = np.zeros(shape, dtype=np.uint8)
    for position, name in enumerate(ctx.space.constraints, start=1):
        constraint = CONSTRAINTS.get(name)
        if constraint is not None:
            rejected = constraint.check(ctx)
        else:
            rule = ctx.space.rule(name)
            assert rule is not None  # SearchSpace validates every listed name
            rejected = rule.mask(ctx.knobs)
        mask = np.broadcast_to(np.asarray(rejected, dtype=bool), shape)
        if mask.any():
            np.copyto(codes, position, where=mask & (codes == 0))
    return codes


def _filled(values: Any, shape: tuple[int, ...], dtype: type[np.generic]) -> np.ndarray:
    """``values`` broadcast over the grid, as one flat array of ``dtype`` (a single copy)."""
    out = np.empty(shape, dtype=dtype)
    np.copyto(out, values, casting="unsafe")
    return out.ravel()


def _table(
    ctx: CheckContext, knobs: Mapping[str, np.ndarray], shape: tuple[int, ...], codes: np.ndarray
) -> pd.DataFrame:
    import pandas as pd

    space = ctx.space
    columns: dict[str, Any] = {
        "engine": pd.Categorical.from_codes(
            np.zeros(math.prod(shape), dtype=np.int8), categories=[space.engine.value]
        )
    }
    for name in KNOBS:
        if name in ENUM_KNOBS:
            small = np.asarray(knobs[name]).astype(str)
            categories, inverse = np.unique(small, return_inverse=True)
            columns[name] = pd.Categorical.from_codes(
                _filled(inverse.reshape(small.shape), shape, np.int16), categories
            )
        else:
            columns[name] = _filled(knobs[name], shape, _INT_DTYPES.get(name, np.int16))
    gpus = knobs["tp"] * knobs["pp"] * knobs["dp"]
    columns["gpus_per_replica"] = _filled(gpus, shape, np.int32)
    memory = ctx.memory
    for column in MEMORY_COLUMNS:
        if column == "max_sequences":
            capped = np.minimum(memory.max_sequences, np.iinfo(np.int32).max)
            columns[column] = _filled(capped, shape, np.int32)
        else:
            out = np.empty(shape, dtype=np.float32)
            np.divide(getattr(memory, column.removesuffix("_gib")), _GIB, out=out, casting="unsafe")
            columns[column] = out.ravel()
    flat = codes.ravel()
    columns["feasible"] = flat == 0
    columns["reason"] = pd.Categorical.from_codes(
        flat.astype(np.int16) - 1, categories=list(space.constraints)
    )
    return pd.DataFrame(columns)


def enumerate_candidates(
    space: SearchSpace, model: ModelSpec, gpu: GPUSpec, workload: Workload | int
) -> pd.DataFrame:
    """Every candidate of ``space`` for this model, GPU and workload, checked.

    Args:
        space: the engine's search space (``load_search_space``; ``restrict`` it to pin
            knobs).
        model: the model's shapes.
        gpu: the GPU every replica runs on.
        workload: sizes the KV cache (``sequence_tokens``).

    Returns:
        One row per candidate: ``engine``, the knobs, ``gpus_per_replica``, the per-GPU
        ``MEMORY_COLUMNS``, ``feasible`` and ``reason`` (the first constraint that
        rejects it, NaN when feasible).
    """
    knobs, shape = _grid(space)
    ctx = CheckContext(knobs, model, gpu, space, sequence_tokens(workload))
    return _table(ctx, knobs, shape, _rejections(ctx, shape))


def check_candidates(
    space: SearchSpace,
    model: ModelSpec,
    gpu: GPUSpec,
    workload: Workload | int,
    candidates: pd.DataFrame | Mapping[str, Any],
) -> pd.DataFrame:
    """Check given configurations (one per row) against ``space``'s constraints.

    Columns may hold any value, on the grid or not; a missing knob column takes the
    engine default the space file declares.

    Raises:
        InvalidInputError: an unknown knob column, or a knob without a value or default.
    """
    import pandas as pd

    frame = pd.DataFrame(candidates)
    unknown = [c for c in frame.columns if c not in KNOBS and c != "engine"]
    if unknown:
        raise InvalidInputError(unknown[0], "unknown knob column", allowed=KNOBS)
    knobs: dict[str, np.ndarray] = {}
    for name in KNOBS:
        if name in frame.columns:
            column = frame[name].to_numpy()
            knobs[name] = column.astype(str).astype(object) if name in ENUM_KNOBS else column
            continue
        default = space.knobs.get(name).default
        if default is None:
            raise InvalidInputError(name, f"no value given and {space.engine.value} has no default")
        knobs[name] = np.full(len(frame), default, dtype=object if name in ENUM_KNOBS else None)
    for name in KNOBS:
        if name not in ENUM_KNOBS and knobs[name].dtype.kind not in "iu":
            raise InvalidInputError(name, "must hold integers")
    shape = (len(frame),)
    ctx = CheckContext(knobs, model, gpu, space, sequence_tokens(workload))
    return _table(ctx, knobs, shape, _rejections(ctx, shape))


@dataclass(frozen=True)
class SpaceSummary:
    """How many candidates a space holds, how many are feasible, and why the rest are not.

    Attributes:
        rejected: constraint name -> candidates it rejects first, largest first.
        reasons: constraint name -> one-line explanation for this model and GPU.
    """

    total: int
    feasible: int
    rejected: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "total": self.total,
            "feasible": self.feasible,
            "rejected": [
                {"constraint": name, "count": count, "reason": self.reasons.get(name, "")}
                for name, count in self.rejected.items()
            ],
        }


def summarize_candidates(
    frame: pd.DataFrame, space: SearchSpace, model: ModelSpec, gpu: GPUSpec
) -> SpaceSummary:
    """Totals and rejection counts of an ``enumerate_candidates`` / ``check_candidates`` table."""
    counts = frame["reason"].value_counts(sort=False)
    rejected = {str(name): int(n) for name, n in counts.items() if n}
    rejected = dict(sorted(rejected.items(), key=lambda item: -item[1]))
    reasons = {name: describe_constraint(name, model, gpu, space) for name in space.constraints}
    return SpaceSummary(
        total=len(frame), feasible=int(frame["feasible"].sum()), rejected=rejected, reasons=reasons
    )


def example_candidates(frame: pd.DataFrame, n: int = 5) -> pd.DataFrame:
    """A few feasible candidates that differ in layout or format, smallest replicas first.

    Prefers configurations without speculative decoding and with a 16-bit KV cache, and
    for each (tp, pp, dp, ep, quantization) keeps the one with the largest batch.
    """
    feasible = frame[frame["feasible"]]
    if feasible.empty:
        return feasible
    order = feasible.assign(
        _spec=feasible["spec_method"].astype(str) != "none",
        _kv=feasible["kv_cache_dtype"].astype(str) != "bf16",
    ).sort_values(
        ["_spec", "_kv", "gpus_per_replica", "max_batch_size"],
        ascending=[True, True, True, False],
        kind="stable",
    )
    layout = ["tp", "pp", "dp", "ep", "quantization"]
    return order.drop_duplicates(layout).head(n).drop(columns=["_spec", "_kv"])
