"""`epopt gpus` subcommands: the GPU catalog, with the user's price overrides applied."""

from __future__ import annotations

import json
from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer(help="The GPU catalog: specs and $/GPU-hour prices.", no_args_is_help=True)

_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "id"),
    ("memory_gib", "mem GiB"),
    ("usable_memory_gib", "usable"),
    ("mem_bw_tb_s", "TB/s"),
    ("bf16_tflops", "bf16 TF"),
    ("fp8_tflops", "fp8 TF"),
    ("fp4_tflops", "fp4 TF"),
    ("sm", "sm"),
    ("interconnect_gb_s", "link GB/s"),
    ("gpus_per_node", "per node"),
    ("tdp_w", "TDP W"),
    ("price_usd_per_hour", "$/h"),
    ("price_date", "price date"),
)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (every field).")] = False,
) -> None:
    """List the catalog GPUs; prices include EPOPT_GPU_PRICES / EPOPT_PRICES_FILE overrides."""
    from optimizer.catalog.gpus import load_gpu_catalog

    catalog = load_gpu_catalog()
    if as_json:
        typer.echo(json.dumps([g.model_dump(mode="json") for g in catalog.values()], indent=2))
        return
    rows = [[header for _, header in _COLUMNS]]
    rows += [[_cell(getattr(g, field)) for field, _ in _COLUMNS] for g in catalog.values()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    missing = [g.id for g in catalog.values() if g.price_usd_per_hour is None]
    if missing:
        typer.echo(f"no price for {', '.join(missing)}: set one with EPOPT_GPU_PRICES")
