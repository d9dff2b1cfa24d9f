"""`epopt surrogate`: train a versioned surrogate on stored runs, evaluate, list versions.

pandas, scikit-learn and the storage layer are imported inside the commands, so that
``epopt --help`` stays fast.
"""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from optimizer.cli._database import UrlOption, open_engine

__all__ = ["SPLITS", "app"]

app = typer.Typer(
    help="Learned TTFT/TPOT surrogate: train on stored runs, evaluate on held-out splits.",
    no_args_is_help=True,
)

SPLITS: dict[str, str] = {
    "unseen": "unseen configuration (5-fold, whole concurrency sweeps held out)",
    "family": "unseen engine/format of a measured model and GPU (5-fold by family)",
    "lomo": "leave-one-model-out (by architecture)",
    "logo": "leave-one-GPU-out (h100_sxm, h200_sxm, b200_sxm)",
    "prior": "the operator prior alone",
    "aiconfigurator": "aiconfigurator's H100/H200 comparison rows, model held out",
}


def _check_splits(splits: list[str]) -> tuple[str, ...]:
    from optimizer.errors import InvalidInputError

    for split in splits:
        if split not in SPLITS:
            raise InvalidInputError("--split", f"unknown split {split!r}", list(SPLITS))
    return tuple(splits)


@app.command()
def train(
    url: UrlOption = None,
    evaluate: Annotated[
        bool,
        typer.Option(help="Measure the unseen-configuration split and store it as metrics."),
    ] = True,
    version: Annotated[str | None, typer.Option(help="Version name (default: derived).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Fit the surrogate on every aggregated run in storage and store it as a new version."""
    from optimizer.surrogate import Surrogate
    from optimizer.surrogate import evaluate as evaluate_splits
    from optimizer.surrogate.registry import save_trained_surrogate, stored_training_runs

    db = open_engine(url, migrate=False)
    runs = stored_training_runs(db)
    started = time.perf_counter()
    model = Surrogate(random_state=0).fit(runs)
    metrics: dict[str, float | int] = {
        "fit_seconds": round(time.perf_counter() - started, 3),
        "training_rows": int(model.n_train_rows_),
        "excluded_layout_rows": sum(model.excluded_layouts_.values()),
    }
    if evaluate:
        (unseen,) = evaluate_splits(runs, Surrogate(random_state=0), splits=("unseen",))
        metrics.update({f"unseen_{k}": round(v, 5) for k, v in unseen.figures.items()})
    stored = save_trained_surrogate(db, model, runs, metrics, version=version)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "version": stored.version,
                    "training_data_hash": stored.training_data_hash,
                    "metrics": metrics,
                    "excluded_layouts": model.excluded_layouts_,
                    "features": stored.features,
                    "library_versions": stored.library_versions,
                },
                indent=2,
            )
        )
        return
    typer.echo(f"stored surrogate {stored.version}")
    typer.echo(f"  trained on {metrics['training_rows']} runs in {metrics['fit_seconds']} s")
    for reason, count in model.excluded_layouts_.items():
        typer.echo(f"  left out {count} run(s) whose layout cannot be served: {reason}")
    typer.echo(f"  training-data hash {stored.training_data_hash}")
    for key, value in metrics.items():
        if key.startswith("unseen_"):
            typer.echo(f"  {key:28} {value:.4f}")


@app.command("evaluate")
def evaluate_command(
    split: Annotated[
        list[str] | None,
        typer.Option(
            "--split",
            help=f"Split to measure, repeatable: {', '.join(SPLITS)} [default: all]",
            show_default=False,
        ),
    ] = None,
    from_db: Annotated[
        bool,
        typer.Option(
            "--from-db",
            help="Evaluate on the runs in storage instead of the bundled reference runs.",
        ),
    ] = False,
    url: UrlOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print MAPE, median APE, median signed error and 90 % interval coverage of TTFT and
    TPOT on held-out splits."""
    from optimizer.surrogate import evaluate, format_table

    splits = _check_splits(split or list(SPLITS))
    if from_db:
        from optimizer.surrogate.registry import stored_training_runs

        runs = stored_training_runs(open_engine(url, migrate=False))
    else:
        from optimizer.profiles import load_reference_profiles

        runs = load_reference_profiles()
        runs = runs[runs["mode"] == "agg"]
    started = time.perf_counter()
    results = evaluate(
        runs, splits=splits, progress=None if as_json else lambda m: typer.echo(m, err=True)
    )
    elapsed = time.perf_counter() - started
    if as_json:
        payload = [
            {"split": r.split, "rows": r.rows, "folds": r.folds, **r.figures} for r in results
        ]
        typer.echo(json.dumps({"results": payload, "seconds": round(elapsed, 1)}, indent=2))
        return
    typer.echo(format_table(results))
    typer.echo(f"({len(runs)} aggregated runs, {elapsed:.0f} s)")


@app.command("list")
def list_versions(url: UrlOption = None) -> None:
    """List stored surrogate versions, newest last, with their unseen-split metrics."""
    from optimizer.storage import list_surrogate_versions, load_surrogate

    db = open_engine(url, migrate=False)
    versions = list_surrogate_versions(db)
    if not versions:
        typer.echo("no surrogate stored; run `epopt surrogate train`")
        return
    for version in versions:
        stored = load_surrogate(db, version)
        m = stored.metrics
        figures = ", ".join(
            f"{k.removeprefix('unseen_')} {100 * float(m[k]):.1f}%"
            for k in ("unseen_ttft_mape", "unseen_tpot_mape")
            if k in m
        )
        created = f"{stored.created_at:%Y-%m-%d %H:%M}"
        typer.echo(f"{version}  {created}  {m.get('training_rows', '?')} runs  {figures}")
