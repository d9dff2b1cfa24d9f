"""`epopt models` subcommands: list the model catalog, show one model's shapes and sizes.

The catalog is imported inside the commands so that ``epopt --help`` stays fast.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from optimizer.domain.model_spec import ModelSpec

__all__ = ["app"]

app = typer.Typer(help="Model catalog: Hugging Face configs epopt can model.", no_args_is_help=True)

_GB = 1e9


def _billions(count: int) -> str:
    return f"{count / 1e9:.2f}"


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)


@app.command("list")
def list_models(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List every bundled model config: loaded, or the reason it is unsupported."""
    from optimizer.catalog.models import bundled_architecture, catalog_report

    entries = catalog_report()
    records: list[dict[str, Any]] = []
    rows: list[list[str]] = []
    for entry in entries:
        spec = entry.spec
        architecture = spec.architecture if spec else bundled_architecture(entry.model_id)
        records.append(
            {
                "model_id": entry.model_id,
                "architecture": architecture,
                "total_params": spec.total_params if spec else None,
                "active_params": spec.active_params if spec else None,
                "status": "ok" if spec else "unsupported",
                "reason": entry.reason,
            }
        )
        rows.append(
            [
                entry.model_id,
                architecture,
                _billions(spec.total_params) if spec else "-",
                _billions(spec.active_params) if spec else "-",
                "ok" if spec else f"unsupported: {entry.reason}",
            ]
        )
    loaded = sum(spec is not None for _, spec, _ in entries)
    counts = {"loaded": loaded, "unsupported": len(entries) - loaded, "total": len(entries)}
    if as_json:
        typer.echo(json.dumps({"models": records, "counts": counts}, indent=2))
        return
    typer.echo(_table(rows, ["MODEL", "ARCHITECTURE", "TOTAL(B)", "ACTIVE(B)", "STATUS"]))
    typer.echo(
        f"\n{counts['loaded']} loaded, {counts['unsupported']} unsupported "
        f"({counts['total']} bundled configs)"
    )


def _details(spec: ModelSpec, context: int) -> dict[str, Any]:
    from optimizer.domain.enums import KVCacheDtype, Quantization

    return {
        "spec": spec.model_dump(mode="json"),
        "total_params": spec.total_params,
        "active_params": spec.active_params,
        "linear_params": spec.linear_params,
        "weight_bytes": {q.value: spec.weight_bytes(q) for q in Quantization},
        "kv_bytes_per_token": {d.value: spec.kv_bytes_per_token(d) for d in KVCacheDtype},
        "recurrent_state_bytes_per_sequence": spec.recurrent_state_bytes_per_sequence,
        "flops_per_token": {
            "0": spec.flops_per_token(0),
            str(context): spec.flops_per_token(context),
        },
    }


_SHAPE_FIELDS = (
    "architecture",
    "num_layers",
    "hidden_size",
    "num_attention_heads",
    "num_kv_heads",
    "head_dim",
    "v_head_dim",
    "vocab_size",
    "intermediate_size",
    "tie_word_embeddings",
    "attention",
    "q_lora_rank",
    "kv_lora_rank",
    "qk_rope_head_dim",
    "index_n_heads",
    "index_head_dim",
    "index_topk",
    "num_experts",
    "experts_per_token",
    "num_shared_experts",
    "moe_intermediate_size",
    "shared_expert_intermediate_size",
    "num_moe_layers",
    "sliding_window",
    "num_sliding_layers",
    "num_linear_attention_layers",
    "linear_num_key_heads",
    "linear_num_value_heads",
    "linear_key_head_dim",
    "linear_value_head_dim",
    "linear_conv_kernel",
    "num_mtp_layers",
    "native_quantization",
)
_PARAM_FIELDS = (
    "embedding_params",
    "lm_head_params",
    "attention_params",
    "dense_mlp_params",
    "routed_expert_params",
    "shared_expert_params",
    "router_params",
    "other_params",
    "vision_params",
)


def _render(model: str, details: dict[str, Any]) -> str:
    spec = details["spec"]
    lines = [
        f"model: {spec['model_id']}" + (f"  (from {model})" if model != spec["model_id"] else "")
    ]
    lines.append("shape:")
    for name in _SHAPE_FIELDS:
        value = spec[name]
        if value is None or (value == 0 and name.startswith(("num_", "linear_", "index_"))):
            continue
        lines.append(f"  {name:34s} {value}")
    lines.append("parameters:")
    for name in _PARAM_FIELDS:
        if spec[name]:
            lines.append(f"  {name:34s} {spec[name]:>18,}")
    lines.append(f"  {'total':34s} {details['total_params']:>18,}")
    lines.append(f"  {'active per token':34s} {details['active_params']:>18,}")
    lines.append("weights (GB = 1e9 bytes; embeddings, router, norms, vision in 16-bit):")
    for quantization, size in details["weight_bytes"].items():
        lines.append(f"  {quantization:34s} {size / _GB:10.2f}")
    lines.append("KV cache bytes per token:")
    for dtype, size in details["kv_bytes_per_token"].items():
        lines.append(f"  {dtype:34s} {size:>10,}")
    if details["recurrent_state_bytes_per_sequence"]:
        state = details["recurrent_state_bytes_per_sequence"]
        lines.append(f"  {'+ recurrent state per sequence':34s} {state:>10,}")
    lines.append("FLOPs per token:")
    for ctx, flops in details["flops_per_token"].items():
        lines.append(f"  {'context ' + ctx:34s} {flops:10.4g}")
    return "\n".join(lines)


@app.command("show")
def show_model(
    model: Annotated[
        str, typer.Argument(help="Hugging Face id, config.json, or checkpoint directory.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    context: Annotated[
        int, typer.Option("--context", min=0, help="Context length for the FLOPs figure.")
    ] = 4096,
) -> None:
    """Show a model's shapes, parameters, weight size per quantization, KV bytes and FLOPs."""
    from optimizer.catalog.models import load_model_spec

    details = _details(load_model_spec(model), context)
    if as_json:
        typer.echo(json.dumps({"requested": model, **details}, indent=2))
        return
    typer.echo(_render(model, details))
