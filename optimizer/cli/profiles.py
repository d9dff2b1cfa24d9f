"""`epopt profiles` subcommands: import measured runs, list them, count them.

Heavy libraries (pandas, SQLAlchemy) are imported inside the commands, so that
``epopt --help`` stays fast.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from optimizer.cli._database import UrlOption, open_engine

__all__ = ["FORMATS", "STATS_DIMENSIONS", "app"]

app = typer.Typer(
    help="Measured profile runs: import files into the database, list and count them.",
    no_args_is_help=True,
)

FORMATS: tuple[str, ...] = ("auto", "aiconfigurator", "vllm-bench", "native")
"""What ``--format`` accepts (a test checks it against the importer registry)."""

STATS_DIMENSIONS: tuple[str, ...] = ("model", "gpu", "engine", "mode")
"""Columns ``epopt profiles stats`` can count by."""

_LIST_COLUMNS = (
    "model",
    "gpu",
    "engine",
    "mode",
    "quantization",
    "tp",
    "dp",
    "ep",
    "concurrency",
    "request_rate",
    "isl",
    "osl",
    "ttft_ms",
    "tpot_ms",
    "source",
)


@app.command("import")
def import_command(
    file: Annotated[
        Path | None,
        typer.Argument(help="Profile file to import.", show_default=False),
    ] = None,
    reference: Annotated[
        bool,
        typer.Option("--reference", help="Import the bundled runs (aiconfigurator-core 0.12.0)."),
    ] = False,
    file_format: Annotated[
        str,
        typer.Option("--format", help=f"File format: {', '.join(FORMATS)}."),
    ] = "auto",
    model: Annotated[str | None, typer.Option(help="Model id (replaces the file's).")] = None,
    gpu: Annotated[str | None, typer.Option(help="GPU id, e.g. h100_sxm.")] = None,
    engine: Annotated[
        str | None, typer.Option(help="Serving engine: vllm, sglang, trtllm.")
    ] = None,
    engine_version: Annotated[str | None, typer.Option(help="Engine version.")] = None,
    mode: Annotated[str | None, typer.Option(help="agg or disagg.")] = None,
    quantization: Annotated[
        str | None, typer.Option(help="bf16, fp8, fp8_block, int4_wo, nvfp4, mxfp4.")
    ] = None,
    kv_cache_dtype: Annotated[str | None, typer.Option(help="bf16 or fp8.")] = None,
    tp: Annotated[int | None, typer.Option(help="Tensor-parallel degree.")] = None,
    pp: Annotated[int | None, typer.Option(help="Pipeline-parallel degree.")] = None,
    dp: Annotated[int | None, typer.Option(help="Attention data-parallel degree.")] = None,
    ep: Annotated[int | None, typer.Option(help="Expert-parallel degree.")] = None,
    max_batch_size: Annotated[int | None, typer.Option(help="Engine batch cap.")] = None,
    spec_method: Annotated[
        str | None, typer.Option(help="none, ngram, eagle, eagle3, mtp, draft_model.")
    ] = None,
    spec_draft_len: Annotated[int | None, typer.Option(help="Draft tokens per step.")] = None,
    kv_block_size: Annotated[int | None, typer.Option(help="KV-cache block size.")] = None,
    source: Annotated[str | None, typer.Option(help="Provenance label for the rows.")] = None,
    url: UrlOption = None,
) -> None:
    """Import a profile file (or --reference); bad rows are named and nothing is written.

    Facts the file lacks (vllm bench results carry no GPU or tp) come from the options.

    The database is migrated to the newest schema first.
    """
    from optimizer.errors import InvalidInputError
    from optimizer.profiles.ingest import REFERENCE, read_profiles, source_label

    if (file is None) == (not reference):
        raise InvalidInputError("FILE", "give a profile file or --reference (exactly one)")
    target = REFERENCE if reference else file
    assert target is not None
    overrides = {
        "model": model,
        "gpu": gpu,
        "engine": engine,
        "engine_version": engine_version,
        "mode": mode,
        "quantization": quantization,
        "kv_cache_dtype": kv_cache_dtype,
        "tp": tp,
        "pp": pp,
        "dp": dp,
        "ep": ep,
        "max_batch_size": max_batch_size,
        "spec_method": spec_method,
        "spec_draft_len": spec_draft_len,
        "kv_block_size": kv_block_size,
        "source": source,
    }
    start = time.perf_counter()
    runs = read_profiles(target, importer=file_format, **overrides)
    read_s = time.perf_counter() - start
    typer.echo(f"read {len(runs)} runs from {source_label(target)} in {read_s:.2f} s")

    from optimizer.storage.profile_store import insert_profile_runs

    start = time.perf_counter()
    db = open_engine(url, migrate=True)
    try:
        result = insert_profile_runs(db, runs)
    finally:
        db.dispose()
    typer.echo(
        f"added {result.added}, skipped {result.skipped} (already present) "
        f"in {time.perf_counter() - start:.2f} s; import batch {result.import_batch}"
    )


@app.command("list")
def list_command(
    model: Annotated[str | None, typer.Option(help="Only this model id.")] = None,
    gpu: Annotated[str | None, typer.Option(help="Only this GPU id.")] = None,
    engine: Annotated[str | None, typer.Option(help="Only this serving engine.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many runs.")] = 20,
    url: UrlOption = None,
) -> None:
    """List stored runs (oldest import first)."""
    import pandas as pd

    from optimizer.storage.profile_store import load_profile_runs

    filters = {k: v for k, v in {"model": model, "gpu": gpu, "engine": engine}.items() if v}
    db = open_engine(url, migrate=False)
    try:
        runs = load_profile_runs(db, **filters)
    finally:
        db.dispose()
    if runs.empty:
        typer.echo("no stored runs match" if filters else "no stored runs")
        return
    shown = runs.loc[: limit - 1, list(_LIST_COLUMNS)]
    with pd.option_context("display.width", 250, "display.max_colwidth", 48):
        typer.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    typer.echo(f"{len(shown)} of {len(runs)} runs")


@app.command("stats")
def stats_command(
    by: Annotated[
        str,
        typer.Option(help=f"Comma-separated columns to count by: {', '.join(STATS_DIMENSIONS)}."),
    ] = ",".join(STATS_DIMENSIONS),
    url: UrlOption = None,
) -> None:
    """Count stored runs by model, GPU, engine and mode."""
    from optimizer.errors import InvalidInputError
    from optimizer.storage.profile_store import load_profile_runs

    columns = [c.strip() for c in by.split(",") if c.strip()]
    unknown = [c for c in columns if c not in STATS_DIMENSIONS]
    if unknown or not columns:
        raise InvalidInputError(
            "by", f"cannot count by {', '.join(unknown) or 'nothing'}", STATS_DIMENSIONS
        )
    db = open_engine(url, migrate=False)
    try:
        runs = load_profile_runs(db)
    finally:
        db.dispose()
    typer.echo(f"{len(runs)} stored runs")
    if runs.empty:
        return
    counts = runs.groupby(columns).size().rename("runs").reset_index()
    counts = counts.sort_values(["runs", *columns], ascending=[False, *([True] * len(columns))])
    typer.echo(counts.to_string(index=False))
