"""How long a new replica takes from "scale up" to serving its first request.

``cold start = node provisioning + image pull + weight loading + engine start-up +
CUDA-graph capture``, each term an assumption the user can override
(``ColdStartAssumptions``). Weight loading is the only term computed from the model:
each GPU reads its shard of the checkpoint, and the GPUs of one node share that node's
read bandwidth, so

``weight_load_s = bytes per GPU * GPUs of the replica on one node / weight_read_gb_s``.

Bytes per GPU follow the replica's parallel layout: attention, dense-MLP, embedding and
other non-expert weights are split ``tp``-way (and copied in each of the ``dp`` attention
groups), routed experts are split over all ``tp * dp`` GPUs, and pipeline stages split
everything ``pp``-way. Drafter weights of speculative decoding are not counted.

Default figures (stated assumptions, from public vLLM start-up logs; override them with
your own measurements):

* ``weight_read_gb_s = 2.0`` — between cold reads seen in vLLM logs (12.66 GiB in 24.8 s,
  about 0.55 GB/s, vllm-project/vllm#38820; 21.8 GiB in 18 s, about 1.3 GB/s,
  vllm-project/vllm#44881) and a hot page cache (about 70 GB in ~10 s on 8 GPUs,
  vllm-project/vllm#19824).
* vLLM: 45 s engine start-up plus 20 s CUDA-graph capture — vllm-project/vllm#20264
  measured 59 s from start to first response for a small model with the torch.compile
  cache reused, of which 17 s graph capture; a cold torch.compile cache adds about a
  minute more (vllm-project/vllm#19824: ~15 s Dynamo plus ~70 s compile for a 70B model).
* SGLang: 40 s start-up plus 20 s CUDA-graph capture; TensorRT-LLM (PyTorch backend):
  60 s start-up plus 30 s CUDA-graph capture and autotuning — stated assumptions, no
  measurement in the sources above; replace them with your engines' logs.
* ``image_pull_seconds = 0`` and ``node_provision_seconds = 0`` — the engine image is
  already on the node (pre-pulled) and the GPU node exists; add your registry pull time
  and your cloud's VM boot time when the autoscaler must add nodes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    computed_field,
    field_validator,
)

from optimizer.domain.endpoint import EndpointConfig
from optimizer.domain.enums import Engine
from optimizer.domain.model_spec import BYTES_PER_PARAM, ModelSpec
from optimizer.errors import InvalidInputError, format_validation_error

__all__ = [
    "ColdStartAssumptions",
    "ColdStartBreakdown",
    "PerEngineSeconds",
    "cold_start_breakdown",
    "cold_start_seconds",
]


class PerEngineSeconds(BaseModel):
    """A duration in seconds for each engine.

    In ``ColdStartAssumptions`` a mapping that names only some engines keeps the
    defaults of the others.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    vllm: float = Field(ge=0)
    sglang: float = Field(ge=0)
    trtllm: float = Field(ge=0)

    def of(self, engine: Engine) -> float:
        """The figure for ``engine``."""
        return float(getattr(self, Engine(engine).value))


def _engine_startup_default() -> PerEngineSeconds:
    return PerEngineSeconds(vllm=45.0, sglang=40.0, trtllm=60.0)


def _graph_capture_default() -> PerEngineSeconds:
    return PerEngineSeconds(vllm=20.0, sglang=20.0, trtllm=30.0)


class ColdStartAssumptions(BaseModel):
    """What a cold start is made of; every figure is an assumption the user can override.

    Defaults and their sources are in this module's docstring.

    Example:
        >>> ColdStartAssumptions(weight_read_gb_s=5.0, image_pull_seconds=90).weight_read_gb_s
        5.0
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    weight_read_gb_s: float = Field(
        default=2.0,
        gt=0,
        description="GB/s at which one node reads checkpoint weights (local disk, network "
        "file system or object store), shared by the replica's GPUs on that node",
    )
    engine_startup_seconds: PerEngineSeconds = Field(
        default_factory=_engine_startup_default,
        description="process start, distributed init, memory profiling and compilation "
        "(warm compile cache), excluding weight loading and CUDA-graph capture",
    )
    cuda_graph_capture_seconds: PerEngineSeconds = Field(
        default_factory=_graph_capture_default,
        description="CUDA-graph capture (and kernel autotuning) before the first request",
    )
    image_pull_seconds: float = Field(
        default=0.0, ge=0, description="pulling the engine image; 0 = pre-pulled on the node"
    )
    node_provision_seconds: float = Field(
        default=0.0, ge=0, description="adding a GPU node; 0 = the node already exists"
    )

    @field_validator("engine_startup_seconds", "cuda_graph_capture_seconds", mode="before")
    @classmethod
    def _merge_defaults(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, dict):
            default = (
                _engine_startup_default()
                if info.field_name == "engine_startup_seconds"
                else _graph_capture_default()
            )
            return {**default.model_dump(), **value}
        return value

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ColdStartAssumptions:
        """Assumptions from user input (a parsed YAML/JSON mapping), defaults elsewhere.

        Raises:
            InvalidInputError: an unknown key or a value out of range, named.
        """
        try:
            return cls.model_validate(dict(values))
        except ValidationError as exc:
            raise InvalidInputError("cold-start assumptions", format_validation_error(exc)) from exc

    def describe(self, engine: Engine) -> list[str]:
        """The assumptions as sentences, for a capacity plan's list of assumptions."""
        engine = Engine(engine)
        return [
            f"weights load at {self.weight_read_gb_s:g} GB/s per node",
            f"{engine.value} starts in {self.engine_startup_seconds.of(engine):g} s plus "
            f"{self.cuda_graph_capture_seconds.of(engine):g} s of CUDA-graph capture",
            f"image pull {self.image_pull_seconds:g} s, node provisioning "
            f"{self.node_provision_seconds:g} s",
        ]


class ColdStartBreakdown(BaseModel):
    """The terms of one replica's cold start, in seconds (bytes for the weight sizes)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    node_provision_s: float
    image_pull_s: float
    weight_bytes_per_gpu: float
    weight_bytes_per_node: float
    weight_load_s: float
    engine_startup_s: float
    cuda_graph_capture_s: float

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_s(self) -> float:
        """Seconds from scale-up to the first request served."""
        return (
            self.node_provision_s
            + self.image_pull_s
            + self.weight_load_s
            + self.engine_startup_s
            + self.cuda_graph_capture_s
        )


def cold_start_breakdown(
    model: ModelSpec,
    config: EndpointConfig,
    assumptions: ColdStartAssumptions | None = None,
    *,
    gpus_per_node: int = 8,
) -> ColdStartBreakdown:
    """Each term of the cold start of one replica of ``config`` serving ``model``.

    Args:
        model: the model (its weight bytes in ``config.quantization``).
        config: the replica's layout (``tp``, ``pp``, ``dp``) and engine.
        assumptions: bandwidth and start-up figures; ``None`` uses the defaults.
        gpus_per_node: GPUs per node sharing one node's read bandwidth
            (``GPUSpec.gpus_per_node``).

    Raises:
        InvalidInputError: ``gpus_per_node`` below 1.
    """
    if gpus_per_node < 1:
        raise InvalidInputError("gpus_per_node", f"must be >= 1, got {gpus_per_node}")
    assumptions = assumptions or ColdStartAssumptions()
    total = float(model.weight_bytes(config.quantization))
    routed = model.routed_expert_params * BYTES_PER_PARAM[config.quantization]
    per_gpu = ((total - routed) / config.tp + routed / (config.tp * config.dp)) / config.pp
    per_node = per_gpu * min(config.gpus_per_replica, gpus_per_node)
    return ColdStartBreakdown(
        node_provision_s=assumptions.node_provision_seconds,
        image_pull_s=assumptions.image_pull_seconds,
        weight_bytes_per_gpu=per_gpu,
        weight_bytes_per_node=per_node,
        weight_load_s=per_node / (assumptions.weight_read_gb_s * 1e9),
        engine_startup_s=assumptions.engine_startup_seconds.of(config.engine),
        cuda_graph_capture_s=assumptions.cuda_graph_capture_seconds.of(config.engine),
    )


def cold_start_seconds(
    model: ModelSpec,
    config: EndpointConfig,
    assumptions: ColdStartAssumptions | None = None,
    *,
    gpus_per_node: int = 8,
) -> float:
    """Seconds from scale-up until a new replica serves (``cold_start_breakdown().total_s``).

    Example:
        >>> from optimizer.catalog import load_model_spec
        >>> spec = load_model_spec("meta-llama/Llama-3.1-8B")
        >>> round(cold_start_seconds(spec, EndpointConfig(engine="vllm")))
        73
    """
    return cold_start_breakdown(model, config, assumptions, gpus_per_node=gpus_per_node).total_s
