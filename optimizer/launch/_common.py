"""What every engine's launch builder shares: the result type and the checks before it.

The per-engine modules (``vllm``, ``sglang``, ``trtllm``) turn one ``EndpointConfig`` into
that engine's command line; this module holds ``LaunchArtifacts`` and the checks that do
not depend on the engine (hardware support, draft model present, checkpoint format).
"""

from __future__ import annotations

import shlex
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from optimizer.domain.endpoint import EndpointConfig
from optimizer.domain.enums import Engine, KVCacheDtype, Quantization, SpecMethod
from optimizer.domain.gpu import GPUSpec
from optimizer.errors import InvalidInputError

__all__ = [
    "DRAFT_MODEL_METHODS",
    "PREQUANTIZED_FORMATS",
    "Int4Format",
    "LaunchArtifacts",
    "assemble_artifacts",
    "check_common",
    "checkpoint_format",
    "checkpoint_notes",
    "shell_command",
    "unused_draft_note",
]

Int4Format = Literal["awq", "gptq"]
"""Checkpoint format behind ``int4_wo``: AWQ or GPTQ 4-bit weight-only."""

DRAFT_MODEL_METHODS: frozenset[SpecMethod] = frozenset(
    {SpecMethod.EAGLE, SpecMethod.EAGLE3, SpecMethod.DRAFT_MODEL}
)
"""Speculative methods that need separate drafter weights (an EAGLE head or a small LLM)."""

PREQUANTIZED_FORMATS: frozenset[Quantization] = frozenset(
    {Quantization.FP8_BLOCK, Quantization.INT4_WO, Quantization.NVFP4, Quantization.MXFP4}
)
"""Formats vLLM and SGLang only serve from a checkpoint already quantized that way.

Plain ``fp8`` is the exception: both engines quantize a 16-bit checkpoint to per-tensor
FP8 at load time (``--quantization fp8``).
"""


class LaunchArtifacts(BaseModel):
    """Everything needed to start one replica of a configuration on one engine.

    Attributes:
        engine: the engine the command starts.
        model_id: the checkpoint the command serves.
        command: ``argv`` as one shell-quoted line (``shlex.join``).
        argv: the command as a list of arguments, ready for ``subprocess`` or a pod spec.
        files: extra files the command reads, by the file name used in ``argv`` (for
            TensorRT-LLM, ``extra_llm_api_options.yaml``).
        notes: what the reader must know: knobs the engine cannot express exactly,
            checkpoints to obtain, version requirements.
        port: the HTTP port the server listens on.
        health_path: the engine's health endpoint (HTTP GET, 200 when serving).
        gpus_per_replica: GPUs one replica uses (``tp * pp * dp``).
        gpus_per_node: GPUs in one node of the target GPU; a replica larger than this
            spans nodes.

    Example:
        >>> from optimizer.catalog import get_gpu
        >>> from optimizer.launch import launch_artifacts
        >>> art = launch_artifacts(EndpointConfig(engine="vllm", tp=2), "org/model",
        ...                        get_gpu("h100_sxm"))
        >>> art.command
        'vllm serve org/model --host 0.0.0.0 --port 8000 --tensor-parallel-size 2'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    engine: Engine
    model_id: str
    command: str
    argv: list[str]
    files: dict[str, str] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    port: int = Field(ge=1, le=65535)
    health_path: str
    gpus_per_replica: int = Field(ge=1)
    gpus_per_node: int = Field(ge=1)


def assemble_artifacts(
    engine: Engine,
    config: EndpointConfig,
    model_id: str,
    gpu: GPUSpec,
    *,
    argv: list[str],
    notes: list[str],
    port: int,
    health_path: str,
    multi_node_hint: str,
    files: dict[str, str] | None = None,
) -> LaunchArtifacts:
    """The engine's :class:`LaunchArtifacts`, with a note when one replica spans nodes.

    Args:
        multi_node_hint: how to launch this engine across nodes, appended to the note.
    """
    notes = list(notes)
    if config.gpus_per_replica > gpu.gpus_per_node:
        notes.append(
            f"one replica uses {config.gpus_per_replica} GPUs, more than the "
            f"{gpu.gpus_per_node} of one {gpu.id} node: {multi_node_hint}"
        )
    return LaunchArtifacts(
        engine=engine,
        model_id=model_id,
        command=shell_command(argv),
        argv=argv,
        files=files or {},
        notes=notes,
        port=port,
        health_path=health_path,
        gpus_per_replica=config.gpus_per_replica,
        gpus_per_node=gpu.gpus_per_node,
    )


def shell_command(argv: list[str]) -> str:
    """``argv`` as one POSIX shell line, every argument quoted where it needs to be."""
    return shlex.join(argv)


def check_common(
    config: EndpointConfig,
    engine: Engine,
    gpu: GPUSpec,
    *,
    model_id: str,
    port: int,
    speculative_model: str | None,
) -> None:
    """Checks that hold whatever the engine.

    Raises:
        InvalidInputError: the config is for another engine, the model id is empty, the
            port is out of range, the GPU cannot run the weight format or an FP8 KV
            cache, or a speculative method that needs drafter weights has none.
    """
    if config.engine is not engine:
        raise InvalidInputError(
            "engine",
            f"this builder writes {engine.value} commands, the config is for {config.engine.value}",
            allowed=[engine.value],
        )
    if not model_id.strip():
        raise InvalidInputError("model_id", "must name a checkpoint (a Hugging Face id or path)")
    if not 1 <= port <= 65535:
        raise InvalidInputError("port", f"must be in 1..65535, got {port}")
    if not gpu.supports(config.quantization):
        supported = [q.value for q in Quantization if gpu.supports(q)]
        raise InvalidInputError(
            "quantization",
            f"{config.quantization.value} does not run on {gpu.id}",
            allowed=supported,
        )
    if config.kv_cache_dtype is KVCacheDtype.FP8 and not gpu.supports_fp8_kv():
        raise InvalidInputError(
            "kv_cache_dtype", f"an FP8 KV cache needs FP8 support, which {gpu.id} lacks", ["bf16"]
        )
    if config.spec_method in DRAFT_MODEL_METHODS and not speculative_model:
        raise InvalidInputError(
            "speculative_model",
            f"spec_method {config.spec_method.value!r} needs drafter weights: pass the "
            "Hugging Face id or path of the draft model / EAGLE head",
        )


def checkpoint_format(value: Quantization | str | None) -> Quantization | None:
    """``checkpoint_quantization`` as a ``Quantization`` (strings accepted), or ``None``.

    Raises:
        InvalidInputError: an unknown format, naming ``checkpoint_quantization``.
    """
    if value is None:
        return None
    try:
        return Quantization(value)
    except ValueError:
        raise InvalidInputError(
            "checkpoint_quantization",
            f"unknown format {value!r}",
            allowed=[q.value for q in Quantization],
        ) from None


def unused_draft_note(config: EndpointConfig, speculative_model: str | None) -> list[str]:
    """A note when a draft model is given but the method does not use one."""
    if speculative_model and config.spec_method in (SpecMethod.NONE, SpecMethod.NGRAM):
        return [
            f"speculative_model {speculative_model!r} is ignored: spec_method "
            f"{config.spec_method.value!r} uses no draft model"
        ]
    return []


def checkpoint_notes(
    config: EndpointConfig,
    model_id: str,
    checkpoint_quantization: Quantization | str | None,
    *,
    prequantized: frozenset[Quantization],
) -> list[str]:
    """Notes when the checkpoint at ``model_id`` is not in the format the config serves.

    Args:
        config: the configuration.
        model_id: the checkpoint named in the command.
        checkpoint_quantization: the checkpoint's own format (``ModelSpec.
            native_quantization``; ``None`` for a 16-bit checkpoint).
        prequantized: the formats this engine can only load pre-quantized.
    """
    wanted = config.quantization
    have = checkpoint_format(checkpoint_quantization) or Quantization.BF16
    if wanted is have:
        return []
    if wanted is Quantization.BF16:
        return [
            f"{model_id} is a {have.value} checkpoint; serving it in bf16 needs a 16-bit "
            "checkpoint of the same model"
        ]
    if wanted in prequantized:
        return [
            f"{wanted.value} is read from the checkpoint: serve a checkpoint of {model_id} "
            f"quantized to {wanted.value} (for example one exported by NVIDIA Model "
            "Optimizer, llm-compressor, AutoAWQ or GPTQModel) and put its id in place of "
            "the model"
        ]
    return []
