"""`epopt recommend`: the cheapest serving configuration that meets an SLO, with its
Pareto front, capacity plan and launch command.

Exit codes: 0 a configuration meets the SLO; 4 no configuration meets it (the output
explains the closest ones and what they miss by); 2 bad input; 3 storage failure.

Heavy modules (pandas, the surrogate, optuna, Ray) are imported inside the command, so
that ``epopt --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

import typer

from optimizer.cli._database import UrlOption, database_url, open_engine

if TYPE_CHECKING:
    from optimizer.domain import Engine, Workload
    from optimizer.search.result import Recommendation

__all__ = ["NO_CONFIGURATION_EXIT", "recommend_command"]

NO_CONFIGURATION_EXIT = 4
"""Exit code when no configuration meets the SLO."""


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def _workload(
    workload_file: Path | None,
    isl: int | None,
    osl: int | None,
    rate: float | None,
    concurrency: int | None,
) -> Workload:
    from optimizer.domain import PoissonArrivals, Workload
    from optimizer.errors import InvalidInputError

    if rate is not None and concurrency is not None:
        raise InvalidInputError("--rate", "give --rate or --concurrency, not both")
    if workload_file is not None:
        if isl is not None or osl is not None:
            raise InvalidInputError("--isl", "lengths come from the --workload file")
        from optimizer.simulate.config import load_workload_file

        workload = load_workload_file(workload_file).workload
        if concurrency is not None:
            from optimizer.domain import ClosedLoop

            return workload.model_copy(update={"arrivals": ClosedLoop(concurrency=concurrency)})
        if rate is None:
            return workload
        arrivals = workload.arrivals
        if arrivals.kind in ("closed_loop", "trace"):
            return workload.model_copy(update={"arrivals": PoissonArrivals(rate=rate)})
        from optimizer.simulate.capacity import scale_arrivals

        return scale_arrivals(workload, rate)
    if isl is None or osl is None:
        raise InvalidInputError(
            "--workload", "give a workload file, or --isl and --osl with --rate or --concurrency"
        )
    if rate is None and concurrency is None:
        raise InvalidInputError("--rate", "give --rate (requests/s) or --concurrency (clients)")
    return Workload.simple(isl, osl, rate=rate, concurrency=concurrency)


def _engines(values: list[str] | None) -> tuple[Engine, ...]:
    from optimizer.domain import Engine
    from optimizer.errors import InvalidInputError

    names = _split(values) or [e.value for e in Engine]
    try:
        return tuple(Engine(name) for name in names)
    except ValueError as exc:
        raise InvalidInputError("--engine", str(exc), [e.value for e in Engine]) from exc


def _pins(values: list[str] | None) -> dict[str, tuple[Any, ...]]:
    from optimizer.errors import InvalidInputError
    from optimizer.space.knobs import ENUM_KNOBS, KNOBS

    pins: dict[str, tuple[Any, ...]] = {}
    for item in values or []:
        knob, sep, text = item.partition("=")
        knob = knob.strip()
        if not sep or knob not in KNOBS:
            raise InvalidInputError("--pin", f"expected KNOB=V1,V2, got {item!r}", KNOBS)
        raw = [v.strip() for v in text.split(",") if v.strip()]
        try:
            pins[knob] = tuple(raw if knob in ENUM_KNOBS else (int(v) for v in raw))
        except ValueError as exc:
            raise InvalidInputError(f"--pin {knob}", f"values must be integers: {text!r}") from exc
    return pins


def _progress(enabled: bool) -> tuple[Any, Any]:
    """A progress callback drawing a tqdm bar on stderr, and its closer."""
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm

    bars: list[Any] = []

    def update(done: int, total: int) -> None:
        if not bars:
            # no rate: a vectorised sweep reports all its evaluations in one update
            bars.append(
                tqdm(
                    total=total,
                    unit="eval",
                    file=sys.stderr,
                    leave=False,
                    bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}]",
                )
            )
        bars[0].total = total
        bars[0].update(done - bars[0].n)

    return update, lambda: bars[0].close() if bars else None


def _plot(rec: Recommendation, path: Path) -> Path:
    """Cost against the first latency objective: the 2-D front of those two axes, the
    chosen point and the SLO line."""
    from optimizer.errors import InvalidInputError
    from optimizer.report import plots
    from optimizer.search.objectives import OBJECTIVES
    from optimizer.search.pareto import pareto_front

    latency = next((o for o in rec.objectives if o.column.endswith("_ms")), OBJECTIVES["tpot_p95"])
    if rec.candidates.empty:
        raise InvalidInputError("--plot", "nothing was evaluated to plot")
    front = pareto_front(rec.candidates, (OBJECTIVES["usd_per_mtok"], latency))
    limits = [b.limit for b in rec.bounds if f"{b.metric}_ms" == latency.column]
    lines = {latency.column: min(limits)} if limits else {}
    draw = plots.pareto_html if path.suffix.lower() in (".html", ".htm") else plots.pareto_png
    return draw(
        rec.candidates,
        front,
        x="usd_per_mtok",
        y=latency.column,
        chosen=rec.chosen,
        slo_lines=lines,
        path=path,
        title=f"{rec.scenario.model.model_id}: cost vs {latency.label}",
    )


def _manifest(rec: Recommendation, path: Path) -> Path:
    from optimizer.errors import InvalidInputError
    from optimizer.launch import kubernetes_manifest

    if rec.deployment is None:
        raise InvalidInputError("--manifest", "no configuration meets the SLO")
    documents = []
    for pool in rec.deployment.pools:
        plan = pool.deployment
        if plan is None:
            continue
        documents.append(
            kubernetes_manifest(
                plan.launch,
                name=f"epopt-{pool.spec.name}".replace("_", "-"),
                replicas=plan.capacity.total_replicas,
                gpus_per_replica=plan.endpoint.gpus_per_replica,
                startup_seconds=max(600.0, 3 * plan.cold_start_s),
            )
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("---\n".join(documents), encoding="utf-8")
    return path


def recommend_command(
    model: Annotated[str, typer.Option(help="Hugging Face id or path to a config.json.")],
    gpu: Annotated[
        list[str] | None,
        typer.Option("--gpu", help="GPU catalog id (repeatable).", show_default=False),
    ] = None,
    gpus: Annotated[
        str | None,
        typer.Option("--gpus", help="Several GPUs to choose from: a,b,c.", show_default=False),
    ] = None,
    workload_file: Annotated[
        Path | None,
        typer.Option(
            "--workload", help="Workload YAML/JSON (as for `epopt simulate`).", show_default=False
        ),
    ] = None,
    isl: Annotated[int | None, typer.Option(min=1, help="Input tokens per request.")] = None,
    osl: Annotated[int | None, typer.Option(min=1, help="Output tokens per request.")] = None,
    rate: Annotated[
        float | None, typer.Option(help="Planned requests/s at peak.", show_default=False)
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Closed-loop clients instead of a rate.")
    ] = None,
    slo: Annotated[
        str, typer.Option(help='SLO, e.g. "ttft_p95<=2s,tpot_p95<=50ms,usd_per_mtok<=1".')
    ] = "",
    engine: Annotated[
        list[str] | None,
        typer.Option(
            "--engine", help="Engines to consider (repeatable) [default: all].", show_default=False
        ),
    ] = None,
    pin: Annotated[
        list[str] | None,
        typer.Option("--pin", help="Restrict a knob: KNOB=V1,V2 (repeatable).", show_default=False),
    ] = None,
    objectives: Annotated[
        str | None,
        typer.Option(
            help="Pareto objectives, e.g. usd_per_mtok,ttft_p95 [default: cost and "
            "the latencies the SLO bounds].",
            show_default=False,
        ),
    ] = None,
    choose: Annotated[
        str, typer.Option(help="Objective that picks the recommendation among SLO-feasible ones.")
    ] = "usd_per_mtok",
    search: Annotated[str, typer.Option(help="exhaustive, optuna or ray.")] = "exhaustive",
    sampler: Annotated[str, typer.Option(help="optuna sampler: tpe, nsga2, gp or random.")] = "tpe",
    trials: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Trials of an optuna/ray search [default: 10 % of the space].",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Sampler seed.")] = 0,
    study: Annotated[
        str | None,
        typer.Option(
            help="optuna study to create or resume [default: derived].", show_default=False
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address", help="Existing Ray cluster [default: local Ray].", show_default=False
        ),
    ] = None,
    evaluator: Annotated[
        str, typer.Option(help="fast (surrogate + queueing) or simulator (costly).")
    ] = "fast",
    confidence: Annotated[
        float, typer.Option(help="Probability (0-1) with which each SLO bound must hold.")
    ] = 0.5,
    headroom: Annotated[
        float, typer.Option(help="Share of capacity kept free at peak (0-1).")
    ] = 0.2,
    speculative_model: Annotated[
        str | None,
        typer.Option(
            help="Drafter weights (EAGLE head / draft model) to search and launch with.",
            show_default=False,
        ),
    ] = None,
    pools: Annotated[
        bool, typer.Option(help="Compare pools by prompt length and by tenant.")
    ] = True,
    plot: Annotated[
        Path | None,
        typer.Option(help="Write the Pareto plot: .png/.svg/.pdf or .html.", show_default=False),
    ] = None,
    candidates_out: Annotated[
        Path | None,
        typer.Option(
            "--candidates",
            help="Write every evaluated candidate: .csv or .parquet.",
            show_default=False,
        ),
    ] = None,
    manifest: Annotated[
        Path | None,
        typer.Option(help="Write a Kubernetes manifest of the deployment.", show_default=False),
    ] = None,
    url: UrlOption = None,
    store: Annotated[bool, typer.Option(help="Keep an audit record in the database.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (no progress bar).")] = False,
) -> None:
    """Recommend the cheapest serving configuration meeting an SLO (exit 4: none meets it)."""
    from optimizer.domain import SLO
    from optimizer.errors import InvalidInputError
    from optimizer.search.request import SEARCHES, RecommendRequest

    started = time.perf_counter()
    names = list(gpu or []) + _split([gpus] if gpus else None)
    if not names:
        raise InvalidInputError("--gpu", "name a GPU with --gpu or several with --gpus a,b,c")
    if search not in SEARCHES:
        raise InvalidInputError("--search", f"unknown search {search!r}", SEARCHES)
    if evaluator not in ("fast", "simulator"):
        raise InvalidInputError(
            "--evaluator", f"unknown evaluator {evaluator!r}", ["fast", "simulator"]
        )
    if trials is not None and search == "exhaustive":
        raise InvalidInputError("--trials", "only with --search optuna or ray")
    if ray_address is not None and search != "ray":
        raise InvalidInputError("--ray-address", "only with --search ray")
    from pydantic import ValidationError

    from optimizer.errors import format_validation_error

    try:
        request = RecommendRequest(
            model=model,
            gpus=tuple(names),
            workload=_workload(workload_file, isl, osl, rate, concurrency),
            slo=SLO.parse(slo),
            engines=_engines(engine),
            objectives=tuple(_split([objectives])) if objectives else None,
            choose=choose,
            search=cast(Literal["exhaustive", "optuna", "ray"], search),
            sampler=sampler,
            trials=trials,
            seed=seed,
            confidence=confidence,
            headroom=headroom,
            pins=_pins(pin),
            compare_pools=pools,
            speculative_model=speculative_model,
            study_name=study,
            ray_address=ray_address,
        )
    except ValidationError as exc:
        raise InvalidInputError("request", format_validation_error(exc)) from exc

    from optimizer.search.audit import load_or_train_surrogate, record
    from optimizer.search.recommend import Recommender

    db = open_engine(url, migrate=False)
    said: list[str] = []

    def say(line: str) -> None:
        said.append(line)
        if not as_json:
            typer.echo(line, err=True)

    loaded = load_or_train_surrogate(db, say=say)
    factory = None
    if evaluator == "simulator":
        from optimizer.search.factories import SimulatorEvaluatorFactory

        factory = SimulatorEvaluatorFactory(loaded.model, surrogate_version=loaded.version)
    storage = label = None
    if search != "exhaustive":
        from optimizer.search.study_storage import open_study_storage, study_storage_url
        from optimizer.storage import mask_url

        studies = study_storage_url(database_url(url))
        storage = open_study_storage(database_url(url))
        label = mask_url(studies) if studies else None
    recommender = Recommender(
        loaded.model,
        surrogate_version=loaded.version,
        evaluator_factory=factory,
        study_storage=storage,
        study_storage_label=label,
    )
    progress, close = _progress(not as_json)
    try:
        rec = recommender.recommend(request, progress=progress)
    finally:
        close()
    stored = record(db, rec) if store else None
    written = {}
    if plot is not None:
        written["plot"] = str(_plot(rec, plot))
    if candidates_out is not None:
        from optimizer.report.tables import write_candidates

        written["candidates"] = str(write_candidates(rec.candidates, candidates_out))
    if manifest is not None:
        written["manifest"] = str(_manifest(rec, manifest))
    elapsed = time.perf_counter() - started
    if as_json:
        payload = rec.to_dict()
        payload["recommendation_id"] = stored.id if stored else None
        payload["surrogate_trained"] = loaded.trained
        payload["files"] = written
        payload["seconds_total"] = round(elapsed, 3)
        typer.echo(json.dumps(payload, indent=2))
    else:
        from optimizer.search.render import render_text

        typer.echo(render_text(rec, seconds=elapsed))
        for kind, path in written.items():
            typer.echo(f"wrote {kind}: {path}")
        if rec.search.study_name:
            typer.echo(
                f"optuna study {rec.search.study_name} in {rec.search.study_storage} "
                f"(resume by rerunning; inspect with optuna-dashboard)"
            )
        if stored is not None:
            typer.echo(f"recorded as recommendation {stored.id}")
    if not rec.found:
        raise typer.Exit(NO_CONFIGURATION_EXIT)
