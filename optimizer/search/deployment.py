"""From a chosen candidate to a deployment: engine config, capacity plan, launch command.

The glue between the search and the capacity and launch packages: the candidate's
knobs become an :class:`~optimizer.domain.EndpointConfig`; its SLO capacity per replica
(``max_rate_per_replica``) and the scenario's planned load feed
:func:`optimizer.capacity.plan_capacity` together with the replica's cold start
(:func:`optimizer.capacity.cold_start_seconds`, assumptions overridable); and
:func:`optimizer.launch.launch_artifacts` writes the engine's command line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from optimizer.capacity import (
    CapacityPlan,
    ColdStartAssumptions,
    cold_start_seconds,
    plan_capacity,
)
from optimizer.domain.endpoint import EndpointConfig
from optimizer.domain.enums import Engine, KVCacheDtype, Quantization, SpecMethod
from optimizer.launch import LaunchArtifacts, launch_artifacts
from optimizer.search.scenario import Scenario

__all__ = ["PoolDeployment", "deploy", "endpoint_config"]


def endpoint_config(row: Mapping[str, Any], replicas: int = 1) -> EndpointConfig:
    """The engine configuration of a candidate row."""
    return EndpointConfig(
        engine=Engine(str(row["engine"])),
        tp=int(row["tp"]),
        pp=int(row["pp"]),
        dp=int(row["dp"]),
        ep=int(row["ep"]),
        quantization=Quantization(str(row["quantization"])),
        kv_cache_dtype=KVCacheDtype(str(row["kv_cache_dtype"])),
        max_batch_size=int(row["max_batch_size"]),
        spec_method=SpecMethod(str(row["spec_method"])),
        spec_draft_len=int(row["spec_draft_len"]),
        kv_block_size=int(row["kv_block_size"]),
        max_num_batched_tokens=int(row["max_num_batched_tokens"]),
        replicas=max(1, replicas),
    )


@dataclass(frozen=True)
class PoolDeployment:
    """How to run one pool: its config, capacity plan, cold start and launch command."""

    endpoint: EndpointConfig
    capacity: CapacityPlan
    cold_start_s: float
    launch: LaunchArtifacts

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "endpoint": self.endpoint.model_dump(mode="json"),
            "capacity": self.capacity.model_dump(mode="json"),
            "cold_start_s": round(self.cold_start_s, 1),
            "launch": self.launch.model_dump(mode="json"),
        }


def deploy(
    row: Mapping[str, Any],
    scenario: Scenario,
    *,
    cold_start: ColdStartAssumptions | None = None,
    burst_factor: float = 1.5,
    port: int = 8000,
    speculative_model: str | None = None,
) -> PoolDeployment:
    """Capacity plan and launch command for the candidate ``row`` in ``scenario``.

    The peak rate is the scenario's planned rate (for closed-loop clients, the rate
    they generate at the planned load).
    """
    gpu = scenario.gpu_by_id[str(row["gpu"])]
    config = endpoint_config(row)
    assumptions = cold_start or ColdStartAssumptions()
    startup = cold_start_seconds(
        scenario.model, config, assumptions, gpus_per_node=gpu.gpus_per_node
    )
    peak = scenario.planning_rate
    if peak is None:
        peak = float(row["rate_per_replica"]) * float(row["replicas"])
    plan = plan_capacity(
        peak_rps=peak,
        replica_capacity_rps=float(row["max_rate_per_replica"]),
        gpus_per_replica=config.gpus_per_replica,
        usd_per_hour_per_replica=float(row["usd_per_hour_replica"]),
        scale_up_seconds=startup,
        headroom=scenario.headroom,
        burst_factor=burst_factor,
        extra_assumptions=assumptions.describe(config.engine),
    )
    config = config.model_copy(update={"replicas": plan.total_replicas})
    launch = launch_artifacts(
        config,
        scenario.model.model_id,
        gpu,
        port=port,
        speculative_model=speculative_model,
        checkpoint_quantization=scenario.model.native_quantization,
    )
    return PoolDeployment(endpoint=config, capacity=plan, cold_start_s=startup, launch=launch)
