"""Simulator settings, and the endpoint and workload files of ``epopt simulate``.

:class:`SimulationOptions` holds what the simulator needs beyond the endpoint knobs:
routing, scheduling, prefix caching, speculative-decoding acceptance, memory fraction,
warm-up and multi-turn sessions. The two YAML (or JSON) files of the CLI:

Endpoint file (``--config``)::

    model: meta-llama/Llama-3.1-8B-Instruct   # or pass --model
    gpu: h100_sxm                              # or pass --gpu
    endpoint:                                  # EndpointConfig fields
      engine: vllm
      tp: 1
      max_batch_size: 128
      kv_block_size: 16
    simulator:                                 # SimulationOptions fields (optional)
      router: least_outstanding
      prefix_caching: true

Workload file (``--workload``): the :class:`~optimizer.domain.workload.Workload` fields
plus optional ``sessions`` (tenant name -> :class:`~optimizer.simulate.traffic.MultiTurn`)::

    arrivals: {kind: poisson, rate: 4.0}
    tenants:
      - name: chat
        share: 1.0
        isl: {kind: lognormal, median: 1000, sigma: 0.6, max_tokens: 8192}
        osl: {kind: lognormal, median: 250, sigma: 0.5, max_tokens: 2048}
        slo: {ttft_p95_ms: 2000, tpot_p95_ms: 50}
        shared_prefix_tokens: 512
        shared_prefix_fraction: 0.8
    sessions:
      chat: {turns: 4, think_time_s: 20}

A trace path (``arrivals: {kind: trace, path: ...}``) is read relative to the workload
file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from optimizer.domain.endpoint import EndpointConfig
from optimizer.domain.workload import TraceReplay, Workload
from optimizer.errors import InvalidInputError, format_validation_error
from optimizer.simulate.router import RoutingPolicy
from optimizer.simulate.traffic import MultiTurn

__all__ = [
    "EndpointFile",
    "SimulationOptions",
    "WorkloadFile",
    "load_endpoint_file",
    "load_workload_file",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class SimulationOptions(BaseModel):
    """Simulator settings that are not endpoint knobs.

    Attributes:
        router: how requests are spread over ``replicas x dp`` engine ranks.
        scheduling: ``fcfs`` or ``priority`` (tenant priority, then arrival).
        prefix_caching: reuse cached prefix blocks (on by default in vLLM V1 and SGLang).
        acceptance_rate: i.i.d. speculative acceptance rate (default: the method's
            published figure, :data:`~optimizer.simulate.speculative.PUBLISHED_ACCEPTANCE`).
        acceptance_per_position: per-position acceptance rates instead.
        draft_len_schedule: ``[[max_batch, k], ...]``: draft length by running batch
            (larger batches turn speculation off); default: the endpoint's
            ``spec_draft_len`` at every batch size.
        draft_cost_ratio: a separate draft model's pass relative to a target decode step.
        memory_fraction: the engine's memory fraction (default: the engine's own).
        watermark: share of KV blocks admission keeps free for running sequences.
        warmup_fraction: share of the requests, by arrival, left out of the statistics.
        closed_loop_start: ``burst``: all closed-loop clients send their first request
            at time 0, as benchmark harnesses do (and as the calibration assumes);
            ``steady``: they start spread over a request's life (steady state).
        sessions: multi-turn sessions by tenant name.
    """

    model_config = _FROZEN
    router: RoutingPolicy = RoutingPolicy.LEAST_OUTSTANDING
    scheduling: Literal["fcfs", "priority"] = "fcfs"
    prefix_caching: bool = True
    acceptance_rate: float | None = Field(default=None, ge=0, le=1)
    acceptance_per_position: tuple[float, ...] | None = None
    draft_len_schedule: tuple[tuple[int, int], ...] | None = None
    draft_cost_ratio: float = Field(default=0.1, ge=0)
    memory_fraction: float | None = Field(default=None, gt=0, le=1)
    watermark: float = Field(default=0.01, ge=0, lt=1)
    warmup_fraction: float = Field(default=0.0, ge=0, lt=1)
    closed_loop_start: Literal["burst", "steady"] = "burst"
    sessions: dict[str, MultiTurn] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _acceptance(self) -> SimulationOptions:
        if self.acceptance_rate is not None and self.acceptance_per_position is not None:
            raise ValueError("give acceptance_rate or acceptance_per_position, not both")
        return self


class EndpointFile(BaseModel):
    """The ``--config`` file: model, GPU, endpoint knobs and simulator settings."""

    model_config = _FROZEN
    model: str | None = None
    gpu: str | None = None
    endpoint: EndpointConfig
    simulator: SimulationOptions = Field(default_factory=SimulationOptions)


class WorkloadFile(BaseModel):
    """The ``--workload`` file: a workload and its optional sessions."""

    model_config = _FROZEN
    workload: Workload
    sessions: dict[str, MultiTurn] = Field(default_factory=dict)


def _read(path: Path, field: str) -> Any:
    import json

    import yaml

    if not path.is_file():
        raise InvalidInputError(field, f"no such file: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InvalidInputError(field, f"{path} is not valid YAML/JSON: {exc}") from exc


def _validate(model: type[BaseModel], data: Any, field: str) -> Any:
    if not isinstance(data, dict):
        raise InvalidInputError(field, "must be a mapping of fields")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError(field, format_validation_error(exc)) from exc


def load_endpoint_file(path: str | Path) -> EndpointFile:
    """Read and validate the ``--config`` file (YAML or JSON).

    Raises:
        InvalidInputError: a missing file, bad YAML, or an invalid field (named).
    """
    path = Path(path)
    return _validate(EndpointFile, _read(path, "--config"), "--config")


def load_workload_file(path: str | Path) -> WorkloadFile:
    """Read and validate the ``--workload`` file; a trace path is made absolute
    relative to the file.

    Raises:
        InvalidInputError: a missing file, bad YAML, or an invalid field (named).
    """
    path = Path(path)
    data = _read(path, "--workload")
    if not isinstance(data, dict):
        raise InvalidInputError("--workload", "must be a mapping with arrivals and tenants")
    data = dict(data)
    sessions = data.pop("sessions", None) or {}
    arrivals = data.get("arrivals")
    if isinstance(arrivals, dict) and arrivals.get("kind") == "trace" and "path" in arrivals:
        trace = Path(str(arrivals["path"]))
        if not trace.is_absolute():
            data["arrivals"] = {**arrivals, "path": str(path.parent / trace)}
    loaded = _validate(WorkloadFile, {"workload": data, "sessions": sessions}, "--workload")
    if (
        isinstance(loaded.workload.arrivals, TraceReplay)
        and not loaded.workload.arrivals.path.is_file()
    ):
        raise InvalidInputError(
            "arrivals.path", f"no such trace file: {loaded.workload.arrivals.path}"
        )
    return loaded
