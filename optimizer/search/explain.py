"""Words for a recommendation: what binds, why this configuration, what misses and by
how much.

Pure functions of evaluated candidate tables (candidate columns plus the evaluator's
metrics) -- no I/O. Every sentence quotes the numbers it rests on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from optimizer.search.objectives import Bound, Objective
from optimizer.space import SpaceSummary

__all__ = [
    "LAYOUT",
    "Explanation",
    "binding_text",
    "describe_config",
    "explain_infeasible",
    "format_ms",
    "memory_note",
    "reason_paragraph",
]

LAYOUT: tuple[str, ...] = ("gpu", "engine", "tp", "pp", "dp", "ep", "quantization")
"""Columns that make two configurations different deployments (not just tunings)."""

_METRIC_NAMES = {"ttft": "TTFT", "tpot": "TPOT", "e2e": "end-to-end latency"}


def format_ms(value: float) -> str:
    """``850 ms`` or ``2.3 s``."""
    return (
        f"{value / 1000:.2f} s"
        if value >= 1000
        else f"{value:.0f} ms"
        if value >= 10
        else f"{value:.1f} ms"
    )


def _bound_label(bound: Bound) -> str:
    tenant = f"{bound.tenant}'s " if ":" in bound.name else ""
    if bound.metric == "tok_s_per_user":
        return f"{tenant}output speed (>= {bound.limit:g} tokens/s per user)"
    if bound.metric == "usd_per_mtok":
        return f"{tenant}cost (<= ${bound.limit:g} per million tokens)"
    metric, p = bound.metric.split("_")
    return f"{tenant}{_METRIC_NAMES[metric]} {p} (<= {format_ms(bound.limit)})"


def _value_text(bound: Bound, value: float) -> str:
    if bound.metric == "tok_s_per_user":
        return f"{value:.1f} tokens/s"
    if bound.metric == "usd_per_mtok":
        return f"${value:.3g}"
    return format_ms(value)


def describe_config(row: Mapping[str, Any]) -> str:
    """``vllm on 2x h100_sxm: TP2, fp8 weights, fp8 KV cache, batch <= 128, EAGLE-3 k=3``."""
    parallel = [f"TP{row['tp']}"]
    parallel += [f"{k.upper()}{row[k]}" for k in ("pp", "dp", "ep") if int(row[k]) > 1]
    spec = (
        "no speculative decoding"
        if str(row["spec_method"]) == "none"
        else f"{row['spec_method']} speculative decoding (k={row['spec_draft_len']})"
    )
    return (
        f"{row['engine']} on {row['gpus_per_replica']}x {row['gpu']}: {', '.join(parallel)}, "
        f"{row['quantization']} weights, {row['kv_cache_dtype']} KV cache, "
        f"at most {row['max_batch_size']} running requests, {spec}, "
        f"KV block {row['kv_block_size']}, prefill chunk {row['max_num_batched_tokens']}"
    )


def binding_text(row: Mapping[str, Any], bounds: Sequence[Bound]) -> str:
    """What limits the load one replica of ``row`` may carry."""
    name = str(row["binding"])
    rate = float(row["max_rate_per_replica"])
    if name == "batch_limit":
        return (
            f"the batch limit: {row['batch_limit']} running requests per replica "
            f"(max_batch_size x dp) caps each replica at {rate:.3g} req/s before any SLO "
            "bound is reached"
        )
    if name == "throughput_peak":
        return (
            f"throughput: it peaks at {rate:.3g} req/s per replica at "
            f"{row['max_concurrency_per_replica']:.3g} running requests; a larger batch slows "
            "every step more than it adds"
        )
    bound = next((b for b in bounds if b.name == name), None)
    label = _bound_label(bound) if bound is not None else name
    return f"{label} caps each replica at {rate:.3g} req/s"


@dataclass(frozen=True)
class Explanation:
    """Why no configuration meets the SLO, and how close the best ones come.

    Attributes:
        text: one paragraph.
        closest: the closest configurations (one per layout), with, per bound, the
            best value they reach (``best_<bound>``) and by how much they miss
            (``miss_<bound>``, a fraction over the limit; <= 0 meets it).
        relax: per bound, the smallest limit some configuration could meet.
    """

    text: str
    closest: pd.DataFrame = field(default_factory=pd.DataFrame)
    relax: dict[str, float] = field(default_factory=dict)


def memory_note(summaries: Mapping[tuple[str, str], SpaceSummary]) -> str | None:
    """A sentence on candidates rejected for memory, if any."""
    rejected = sum(s.rejected.get("fits_in_memory", 0) for s in summaries.values())
    if not rejected:
        return None
    total = sum(s.total for s in summaries.values())
    reason = next(
        (
            s.reasons.get("fits_in_memory")
            for s in summaries.values()
            if "fits_in_memory" in s.reasons
        ),
        "",
    )
    return f"{rejected:,} of {total:,} enumerated candidates do not fit in GPU memory ({reason})"


def _best_violation(frame: pd.DataFrame, bound: Bound) -> np.ndarray:
    best = frame[f"best_{bound.name}"].to_numpy(np.float64)
    return bound.violation(best)


def explain_infeasible(
    evaluated: pd.DataFrame,
    bounds: Sequence[Bound],
    summaries: Mapping[tuple[str, str], SpaceSummary],
    *,
    top: int = 5,
) -> Explanation:
    """Explain an SLO no candidate meets: the closest configurations and their misses.

    "Closest" ranks candidates by their worst miss at the lightest load (what a
    configuration achieves with enough replicas): ``max over bounds of best / limit``.
    """
    if evaluated.empty:
        parts = ["No configuration is feasible on these GPUs."]
        note = memory_note(summaries)
        if note:
            parts.append(note + ".")
        others: dict[str, int] = {}
        for summary in summaries.values():
            for name, count in summary.rejected.items():
                if name != "fits_in_memory":
                    others[name] = others.get(name, 0) + count
        if others:
            listed = ", ".join(
                f"{n} ({c:,})" for n, c in sorted(others.items(), key=lambda x: -x[1])[:4]
            )
            parts.append(f"Other rejections: {listed}.")
        return Explanation(" ".join(parts))
    load_bounds = [b for b in bounds if f"best_{b.name}" in evaluated]
    misses = {b.name: np.expm1(_best_violation(evaluated, b)) for b in load_bounds}
    worst = np.max(np.stack(list(misses.values())), axis=0) if misses else np.zeros(len(evaluated))
    ranked = evaluated.assign(_worst=worst, **{f"miss_{n}": v for n, v in misses.items()})
    ranked = ranked.sort_values(["_worst", "usd_per_mtok"], kind="stable")
    closest = ranked.drop_duplicates(list(LAYOUT)).head(top).drop(columns="_worst")
    relax = {
        b.name: float(np.min(evaluated[f"best_{b.name}"]))
        if b.upper
        else float(np.max(evaluated[f"best_{b.name}"]))
        for b in load_bounds
    }
    lines = []
    best = closest.iloc[0]
    missed = [b for b in load_bounds if best[f"miss_{b.name}"] > 0]
    detail = "; ".join(
        f"{_bound_label(b)}: {_value_text(b, best[f'best_{b.name}'])}, "
        f"{100 * best[f'miss_{b.name}']:.0f} % over"
        for b in missed
    )
    lines.append(
        f"No configuration meets the SLO, even at the lightest load. The closest, "
        f"{describe_config(best)}, misses {detail}."
    )
    feasible_alone = [b for b in load_bounds if relax[b.name] <= b.limit or not b.upper]
    needed = [b for b in load_bounds if b not in feasible_alone or not b.upper]
    if needed:
        lines.append(
            "The best any configuration reaches: "
            + "; ".join(f"{_bound_label(b)} -> {_value_text(b, relax[b.name])}" for b in needed)
            + "."
        )
    note = memory_note(summaries)
    if note:
        lines.append(f"Also, {note}.")
    return Explanation(" ".join(lines), closest=closest, relax=relax)


def reason_paragraph(
    chosen: pd.Series,
    feasible: pd.DataFrame,
    *,
    bounds: Sequence[Bound],
    choose: Objective,
    total_candidates: int,
    planned: str,
    cheaper_misses: pd.DataFrame | None = None,
) -> str:
    """One paragraph: what was chosen, by which rule, what it does, what binds.

    Args:
        chosen: the recommended candidate (row of candidate and metric columns).
        feasible: every evaluated candidate that meets the SLO.
        bounds: the SLO bounds.
        choose: the objective the choice optimises.
        total_candidates: feasible candidates in the search space.
        planned: the planned load, in words (``"5 req/s"``).
        cheaper_misses: cheaper evaluated candidates that miss the SLO (for the
            sentence on what a cheaper choice would violate).
    """
    rule = "cheapest" if choose.name == "usd_per_mtok" else f"best by {choose.label}"
    slo = ", ".join(_bound_label(b) for b in bounds) or "no SLO bound"
    parts = [
        f"Recommended: {describe_config(chosen)}. It is the {rule} of {len(feasible):,} "
        f"evaluated configurations meeting {slo} ({total_candidates:,} candidates in the "
        "space): "
        f"${chosen['usd_per_mtok']:.3g} per million output tokens at {planned} on "
        f"{int(chosen['replicas'])} replica(s), {int(chosen['gpus_total'])} GPU(s), "
        f"${chosen['usd_per_hour']:.2f}/hour.",
        f"Predicted p95 TTFT {format_ms(chosen['ttft_p95_ms'])} (90 % interval "
        f"{format_ms(chosen['ttft_p95_ms_lo'])}-{format_ms(chosen['ttft_p95_ms_hi'])}) and p95 "
        f"TPOT {format_ms(chosen['tpot_p95_ms'])} ({format_ms(chosen['tpot_p95_ms_lo'])}-"
        f"{format_ms(chosen['tpot_p95_ms_hi'])}); the SLO holds with probability "
        f"{chosen['p_slo']:.2f} given the model's uncertainty.",
        f"What binds: {binding_text(chosen, bounds)}.",
    ]
    if cheaper_misses is not None and not cheaper_misses.empty:
        nearest = cheaper_misses.iloc[0]
        misses = [
            b
            for b in bounds
            if f"violation_{b.name}" in nearest and nearest[f"violation_{b.name}"] > 0
        ]
        if misses:
            parts.append(
                f"A cheaper configuration ({nearest['engine']}, TP{nearest['tp']}, "
                f"{nearest['quantization']} on {nearest['gpu']}, "
                f"${nearest['usd_per_mtok']:.3g}) misses "
                + ", ".join(_bound_label(b) for b in misses)
                + "."
            )
    return " ".join(parts)
