"""`epopt space`: how many configurations an engine's search space holds for a model on a
GPU, how many fit, and why the others do not.

numpy and pandas are imported inside the command, so that ``epopt --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["space_command"]

_EXAMPLE_MEMORY = (
    "weights_gib",
    "activations_gib",
    "kv_gib",
    "overhead_gib",
    "budget_gib",
    "max_sequences",
)


def _records(examples: pd.DataFrame) -> list[dict[str, Any]]:
    from optimizer.space.knobs import KNOBS

    rows = examples[[*KNOBS, "gpus_per_replica", *_EXAMPLE_MEMORY]]
    records = []
    for row in rows.to_dict(orient="records"):
        records.append(
            {
                key: (round(float(value), 3) if key.endswith("_gib") else _plain(value))
                for key, value in row.items()
            }
        )
    return records


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def space_command(
    engine: Annotated[str, typer.Option(help="Serving engine: vllm, sglang or trtllm.")],
    model: Annotated[str, typer.Option(help="Hugging Face id or path to a config.json.")],
    gpu: Annotated[str, typer.Option(help="GPU catalog id or alias, e.g. h100_sxm.")],
    isl: Annotated[int, typer.Option(min=1, help="Input tokens per request.")] = 2048,
    osl: Annotated[int, typer.Option(min=0, help="Output tokens per request.")] = 0,
    max_batch_size: Annotated[
        int | None, typer.Option(min=1, help="Search only this batch cap.", show_default=False)
    ] = None,
    space_file: Annotated[
        Path | None,
        typer.Option("--space-file", help="Search-space YAML to use instead of the bundled one."),
    ] = None,
    examples: Annotated[int, typer.Option(min=0, help="Feasible examples to show.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Count the candidates of a search space and the feasible ones, and say why the rest fail."""
    import pandas as pd

    from optimizer.catalog.gpus import get_gpu
    from optimizer.catalog.models import load_model_spec
    from optimizer.space import (
        enumerate_candidates,
        example_candidates,
        load_search_space,
        summarize_candidates,
    )

    space = load_search_space(engine, space_file)
    if max_batch_size is not None:
        space = space.restrict(max_batch_size=max_batch_size)
    spec = load_model_spec(model)
    gpu_spec = get_gpu(gpu)
    tokens = isl + osl
    frame = enumerate_candidates(space, spec, gpu_spec, tokens)
    summary = summarize_candidates(frame, space, spec, gpu_spec)
    shown = example_candidates(frame, examples) if examples else frame.iloc[:0]

    if as_json:
        payload = {
            "engine": space.engine.value,
            "model": spec.model_id,
            "gpu": gpu_spec.id,
            "isl": isl,
            "osl": osl,
            "memory_fraction": {"flag": space.memory.flag, "default": space.memory.default},
            **summary.to_dict(),
            "examples": _records(shown),
        }
        typer.echo(json.dumps(payload, indent=2))
        return

    share = 100.0 * summary.feasible / summary.total if summary.total else 0.0
    typer.echo(
        f"{space.engine.value} | {spec.model_id} | {gpu_spec.id} | "
        f"{tokens} tokens per sequence (isl {isl} + osl {osl})"
    )
    typer.echo(f"{summary.total:,} candidates, {summary.feasible:,} feasible ({share:.2f} %)")
    if summary.rejected:
        typer.echo("rejected, by the first constraint that fails:")
        width = max(len(f"{n:,}") for n in summary.rejected.values())
        for name, count in summary.rejected.items():
            typer.echo(f"  {count:>{width},}  {name}: {summary.reasons[name]}")
    if not shown.empty:
        typer.echo(
            f"example feasible configurations (per-GPU memory in GiB, {space.memory.flag}"
            f" {space.memory.default:g}):"
        )
        table = pd.DataFrame(_records(shown)).rename(
            columns={
                "quantization": "quant",
                "kv_cache_dtype": "kv",
                "max_batch_size": "batch",
                "spec_method": "spec",
                "spec_draft_len": "k",
                "kv_block_size": "block",
                "max_num_batched_tokens": "chunk",
                "gpus_per_replica": "gpus",
                "weights_gib": "weights",
                "activations_gib": "act",
                "kv_gib": "kv_cache",
                "overhead_gib": "overhead",
                "budget_gib": "budget",
                "max_sequences": "max_seqs",
            }
        )
        typer.echo(table.to_string(index=False))
