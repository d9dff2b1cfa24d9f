"""Text rendering of a recommendation: what ``epopt recommend`` prints.

Pure: takes a :class:`~optimizer.search.result.Recommendation`, returns text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optimizer.search.explain import format_ms

if TYPE_CHECKING:
    import pandas as pd

    from optimizer.search.result import Recommendation

__all__ = ["render_text"]


def _table(out: list[str], frame: pd.DataFrame, columns: dict[str, str]) -> None:
    table = frame[[c for c in columns if c in frame.columns]].rename(columns=columns)
    for column in table.columns:
        if table[column].dtype.kind == "f":
            table[column] = table[column].map(lambda v: f"{v:.3g}")
    out.append(table.to_string(index=False))


_BRIEF = {
    "gpu": "gpu",
    "engine": "engine",
    "tp": "tp",
    "dp": "dp",
    "quantization": "quant",
    "kv_cache_dtype": "kv",
    "max_batch_size": "batch",
    "spec_method": "spec",
    "spec_draft_len": "k",
    "replicas": "replicas",
    "gpus_total": "gpus",
    "usd_per_mtok": "$/Mtok",
    "ttft_p95_ms": "ttft_p95_ms",
    "tpot_p95_ms": "tpot_p95_ms",
    "p_slo": "p_slo",
    "binding": "binds",
}


def _interval(row: pd.Series, column: str) -> str:
    """``688 ms (90 % interval 356 ms-1.33 s)``."""
    return (
        f"{format_ms(row[column])} (90 % interval {format_ms(row[f'{column}_lo'])}-"
        f"{format_ms(row[f'{column}_hi'])})"
    )


def render_text(rec: Recommendation, *, seconds: float | None = None) -> str:
    """The recommendation as the text ``epopt recommend`` prints.

    Args:
        rec: the recommendation.
        seconds: wall time to report (default: the recommendation's own).
    """
    out: list[str] = []
    elapsed = rec.seconds if seconds is None else seconds
    scenario = rec.scenario
    search = rec.search
    out.append(
        f"{scenario.model.model_id} on {', '.join(g.id for g in scenario.gpus)} | "
        f"{len(rec.candidates):,} configurations evaluated "
        f"({search.backend}, {rec.provenance.get('evaluator', '?')} evaluator, surrogate "
        f"{rec.surrogate_version}) in {elapsed:.1f} s"
    )
    if rec.chosen is None:
        out.append("\nNo configuration meets the SLO.")
        out.append(rec.reason)
        if rec.explanation is not None and not rec.explanation.closest.empty:
            out.append("\nClosest configurations (best values at the lightest load):")
            columns = dict(_BRIEF)
            for bound in rec.bounds:
                columns[f"best_{bound.name}"] = f"best {bound.name}"
                columns[f"miss_{bound.name}"] = f"miss {bound.name}"
            _table(out, rec.explanation.closest, columns)
        return "\n".join(out)
    chosen = rec.chosen
    out.append("\nRecommended configuration")
    out.append(
        f"  {chosen['engine']} on {chosen['gpu']}: tp={chosen['tp']} pp={chosen['pp']} "
        f"dp={chosen['dp']} ep={chosen['ep']} quantization={chosen['quantization']} "
        f"kv_cache_dtype={chosen['kv_cache_dtype']} max_batch_size={chosen['max_batch_size']} "
        f"spec={chosen['spec_method']}/{chosen['spec_draft_len']} "
        f"kv_block_size={chosen['kv_block_size']} "
        f"max_num_batched_tokens={chosen['max_num_batched_tokens']}"
    )
    out.append(
        f"  predicted p95: TTFT {_interval(chosen, 'ttft_p95_ms')}, "
        f"TPOT {_interval(chosen, 'tpot_p95_ms')}, "
        f"E2E {format_ms(chosen['e2e_p95_ms'])}; P(SLO holds) {chosen['p_slo']:.2f}"
    )
    out.append(
        f"  cost: ${chosen['usd_per_mtok']:.3g} per million output tokens, "
        f"${chosen['usd_per_hour']:.2f}/hour for {int(chosen['replicas'])} replica(s) x "
        f"{int(chosen['gpus_per_replica'])} GPU(s); "
        f"{chosen['tok_s_per_gpu']:.0f} output tokens/s per GPU, "
        f"{chosen['tok_s_per_user']:.0f} per user"
    )
    out.append(f"\nWhy: {rec.reason}")
    deployment = rec.deployment
    if deployment is not None:
        out.append(
            f"\nDeployment: {deployment.description} (${deployment.usd_per_hour:.2f}/hour at "
            "the planned load)"
        )
        for pool in deployment.pools:
            plan = pool.deployment
            if plan is None:
                continue
            cap = plan.capacity
            if len(deployment.pools) > 1:
                out.append(f"  pool {pool.spec.name}: {pool.spec.description}")
            out.append(
                f"  capacity plan: {cap.serving_replicas} serving + {cap.warm_pool_replicas} warm "
                f"replica(s) = {cap.total_gpus} GPUs, ${cap.usd_per_month:,.0f}/month; "
                f"peak {cap.peak_rps:g} req/s, {cap.replica_capacity_rps:.3g} req/s per replica, "
                f"cold start {plan.cold_start_s:.0f} s"
            )
            out.append(f"  launch: {plan.launch.command}")
            for name, text in plan.launch.files.items():
                out.append(f"  {name}:\n" + "\n".join(f"    {line}" for line in text.splitlines()))
            for note in plan.launch.notes:
                out.append(f"  note: {note}")
    if not rec.runners_up.empty:
        out.append("\nRunners-up:")
        _table(out, rec.runners_up, _BRIEF)
    if len(rec.by_gpu) > 1:
        out.append("\nBest per GPU:")
        _table(out, rec.by_gpu, _BRIEF)
    if len(rec.options) > 1:
        out.append("\nDeployment options compared:")
        for option in rec.options:
            cost = f"${option.usd_per_hour:.2f}/hour" if option.feasible else "misses the SLO"
            out.append(f"  {option.kind:10} {option.description}: {cost}")
    objectives = ", ".join(o.name for o in rec.objectives)
    out.append(f"\nPareto front ({objectives}): {len(rec.front)} configurations")
    _table(out, rec.front.head(10), _BRIEF)
    for note in rec.notes:
        out.append(f"note: {note}")
    return "\n".join(out)
