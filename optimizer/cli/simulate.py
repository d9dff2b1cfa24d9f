"""`epopt simulate`: serve a workload with an endpoint configuration in the simulator.

Reads an endpoint file (``--config``: model, GPU, engine knobs, simulator settings) and
a workload file (``--workload``: arrivals, tenants, sessions); see
:mod:`optimizer.simulate.config` for both formats. Prints per-tenant latency percentiles,
throughput, goodput and KV-cache figures, as text or ``--json``; ``--capacity`` bisects
for the highest arrival rate that still meets the SLO (``--slo`` or the tenants' own).

Step times come from the operator prior, calibrated on the newest surrogate stored in
the database when there is one (``--calibration auto``); ``surrogate`` requires one,
``prior`` skips it. numpy, pandas and the simulator are imported inside the command, so
that ``epopt --help`` stays fast.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from optimizer.cli._database import UrlOption

if TYPE_CHECKING:
    from optimizer.simulate import CapacityResult, SimulationReport

__all__ = ["CALIBRATIONS", "simulate_command"]

CALIBRATIONS = ("auto", "surrogate", "prior")


def _load_surrogate(mode: str, url: str | None, version: str | None) -> tuple[Any, str]:
    """The stored surrogate to calibrate on (or ``None``) and a line saying which."""
    if mode == "prior":
        return None, "operator prior (uncalibrated: --calibration prior)"
    from optimizer.cli._database import open_engine
    from optimizer.errors import NotFoundError, StorageError
    from optimizer.surrogate.registry import load_trained_surrogate

    try:
        model, stored = load_trained_surrogate(open_engine(url, migrate=False), version)
    except (NotFoundError, StorageError) as exc:
        if mode == "surrogate":
            raise
        return None, f"operator prior (uncalibrated: no stored surrogate -- {exc})"
    return model, f"calibrated on surrogate {stored.version}"


def _fmt(value: float, scale: float = 1.0, digits: int = 0) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value * scale:,.{digits}f}"


def _text(report: SimulationReport, header: list[str]) -> list[str]:
    lines = list(header)
    lines.append(
        f"{'tenant':12} {'requests':>8} {'TTFT p50/p95/p99 ms':>22} {'TPOT p50/p95/p99 ms':>22} "
        f"{'E2E p99 s':>9} {'queue p99 ms':>12} {'req/s':>7} {'goodput':>7}  SLO"
    )
    for row in (*report.tenants, report.overall) if len(report.tenants) > 1 else report.tenants:
        ttft = "/".join(_fmt(getattr(row.ttft, p)) for p in ("p50", "p95", "p99"))
        tpot = "/".join(_fmt(getattr(row.tpot, p), digits=1) for p in ("p50", "p95", "p99"))
        slo = "-" if row.slo_met is None else ("met" if row.slo_met else "MISSED")
        missed = [c.bound for c in row.checks if not c.met]
        if missed:
            slo += f" ({', '.join(missed)})"
        lines.append(
            f"{row.name[:12]:12} {row.requests:>8,} {ttft:>22} {tpot:>22} "
            f"{_fmt(row.e2e.p99, 1e-3, 2):>9} {_fmt(row.queue.p99):>12} "
            f"{_fmt(row.throughput_req_s, digits=2):>7} {_fmt(row.goodput_req_s, digits=2):>7}  "
            f"{slo}"
        )
    kv = report.kv
    itl = _fmt(report.itl_token_ms["p99"], digits=1)
    lines.append(
        f"throughput {report.overall.output_tok_s:,.0f} output tok/s over "
        f"{report.duration_s:,.1f} s; inter-token p99 {itl} ms"
    )
    lines.append(
        f"KV cache: {kv.total_blocks:,} blocks x {kv.block_size} tokens per rank, "
        f"{100 * kv.utilisation:.1f} % used on average (peak {100 * kv.peak_utilisation:.1f} %), "
        f"{100 * kv.waste_fraction:.1f} % of decode slots lost to paging, "
        f"prefix hits {100 * kv.prefix_hit_rate:.1f} %, {kv.preemptions:,} preemptions"
    )
    if report.spec is not None:
        spec = report.spec
        lines.append(
            f"speculative decoding ({spec.method}): {spec.mean_acceptance_length:.2f} tokens per "
            f"verification step (expected {spec.expected_tokens_per_step:.2f})"
        )
    if report.pp_bubble:
        lines.append(f"pipeline bubble: {100 * report.pp_bubble:.1f} % of stage time idle")
    return lines


def _capacity_payload(result: CapacityResult) -> dict[str, Any]:
    return {
        "max_rate_req_s": result.rate,
        "max_rate_per_replica_req_s": result.rate_per_replica,
        "probes": [{"rate_req_s": r, "slo_met": ok} for r, ok in result.probes],
    }


def simulate_command(
    config: Annotated[
        Path, typer.Option("--config", help="Endpoint file (YAML/JSON): model, gpu, endpoint.")
    ],
    workload: Annotated[
        Path, typer.Option("--workload", help="Workload file (YAML/JSON): arrivals, tenants.")
    ],
    model: Annotated[
        str | None,
        typer.Option(help="Hugging Face id or config.json path (overrides the file's model)."),
    ] = None,
    gpu: Annotated[
        str | None, typer.Option(help="GPU catalog id (overrides the file's gpu).")
    ] = None,
    requests: Annotated[
        int, typer.Option("--requests", min=1, help="Requests to simulate.")
    ] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the traffic and acceptance draws.")] = 0,
    capacity: Annotated[
        bool,
        typer.Option("--capacity", help="Find the highest arrival rate that meets the SLO."),
    ] = False,
    slo: Annotated[
        str | None,
        typer.Option(help="SLO for every tenant, e.g. 'ttft_p95<=2s,tpot_p95<=50ms'."),
    ] = None,
    calibration: Annotated[
        str,
        typer.Option(help="Step times: auto (surrogate if stored), surrogate, or prior."),
    ] = "auto",
    surrogate_version: Annotated[
        str | None, typer.Option(help="Stored surrogate version (default: newest).")
    ] = None,
    url: UrlOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Simulate an endpoint under a workload: tail latency, goodput, KV use, capacity."""
    from optimizer.domain.slo import SLO
    from optimizer.errors import InvalidInputError
    from optimizer.simulate import (
        load_endpoint_file,
        load_workload_file,
        max_rate_meeting_slo,
        simulate,
    )

    if calibration not in CALIBRATIONS:
        raise InvalidInputError("--calibration", f"unknown mode {calibration!r}", CALIBRATIONS)
    endpoint_file = load_endpoint_file(config)
    workload_file = load_workload_file(workload)
    model_id = model or endpoint_file.model
    gpu_id = gpu or endpoint_file.gpu
    if not model_id:
        raise InvalidInputError("--model", "give a model here or as 'model:' in the --config file")
    if not gpu_id:
        raise InvalidInputError("--gpu", "give a GPU here or as 'gpu:' in the --config file")
    bound = SLO.parse(slo) if slo else None
    options = endpoint_file.simulator
    if workload_file.sessions:
        options = options.model_copy(update={"sessions": workload_file.sessions})
    surrogate, step_source = _load_surrogate(calibration, url, surrogate_version)
    endpoint = endpoint_file.endpoint
    kwargs: dict[str, Any] = {
        "n_requests": requests,
        "seed": seed,
        "surrogate": surrogate,
        "options": options,
        "slo": bound,
    }
    capacity_result = None
    if capacity:
        capacity_result = max_rate_meeting_slo(
            endpoint, model_id, gpu_id, workload_file.workload, **kwargs
        )
        report = capacity_result.report
    else:
        report = simulate(endpoint, model_id, gpu_id, workload_file.workload, **kwargs)

    if as_json:
        payload: dict[str, Any] = {"step_times": step_source}
        if capacity_result is not None:
            payload["capacity"] = _capacity_payload(capacity_result)
        payload["report"] = report.to_dict() if report is not None else None
        typer.echo(json.dumps(payload, indent=2))
        return

    knobs = endpoint.model_dump(exclude_defaults=True, mode="json")
    header = [
        f"{model_id} on {gpu_id}: " + ", ".join(f"{k}={v}" for k, v in knobs.items()),
        f"step times: {step_source}",
    ]
    if capacity_result is not None:
        if report is None:
            typer.echo("\n".join(header))
            typer.echo("no probed rate meets the SLO (capacity 0)")
            return
        header.append(
            f"capacity: {capacity_result.rate:,.2f} req/s meets the SLO "
            f"({capacity_result.rate_per_replica:,.2f} per replica, "
            f"{len(capacity_result.probes)} simulations); at that rate:"
        )
    assert report is not None
    arrivals = workload_file.workload.arrivals
    header.append(
        f"{arrivals.kind} arrivals, {report.overall.requests:,} requests (seed {seed}), "
        f"{report.engines} engine rank(s)"
    )
    typer.echo("\n".join(_text(report, header)))
