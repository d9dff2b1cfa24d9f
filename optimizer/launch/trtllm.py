"""``trtllm-serve`` command lines (PyTorch backend) and their extra LLM-API options YAML.

Flag and field names follow TensorRT-LLM's own sources, checked against:

* NVIDIA/TensorRT-LLM ``tensorrt_llm/commands/serve.py`` (the ``trtllm-serve`` click
  command): ``MODEL`` argument, ``--host``, ``--port``, ``--backend``, ``--tp_size``
  (alias ``--tensor_parallel_size``), ``--pp_size``, ``--ep_size`` (alias
  ``--moe_expert_parallel_size``), ``--max_batch_size``, ``--max_num_tokens``,
  ``--extra_llm_api_options`` (alias ``--config``: a YAML file of LLM-API arguments that
  overrides the flags) —
  https://github.com/NVIDIA/TensorRT-LLM/blob/main/tensorrt_llm/commands/serve.py;
* ``tensorrt_llm/llmapi/llm_args.py``: ``kv_cache_config.dtype`` ("auto" or "fp8"),
  ``kv_cache_config.tokens_per_block`` (default 32), ``enable_attention_dp``,
  ``enable_chunked_prefill``, ``disable_overlap_scheduler``, and the speculative configs
  (``max_draft_len``, ``speculative_model_dir``, ``num_nextn_predict_layers`` for MTP,
  ``max_matching_ngram_size`` for NGram, whose default of 0 matches nothing) —
  https://github.com/NVIDIA/TensorRT-LLM/blob/main/tensorrt_llm/llmapi/llm_args.py;
* ``docs/source/features/speculative-decoding.md``
  (https://nvidia.github.io/TensorRT-LLM/features/speculative-decoding.html):
  ``speculative_config.decoding_type`` is one of ``MTP``, ``Eagle3``, ``NGram``,
  ``DraftTarget``; the PyTorch backend runs EAGLE-3 only (EAGLE-1/2 checkpoints are
  incompatible); NGram and DraftTarget examples disable the overlap scheduler;
* TensorRT-LLM's quantization docs: "The PyTorch backend currently supports only models
  quantized using TensorRT Model Optimizer" (the checkpoint's ``hf_quant_config``); there
  is no flag to quantize at load time.

Mapping of epopt's knobs:

=====================  =====================================================================
knob                   TensorRT-LLM
=====================  =====================================================================
tp, pp                 ``--tp_size tp*dp``, ``--pp_size``
dp                     ``enable_attention_dp: true`` (YAML); attention then runs one rank
                       per GPU, i.e. ``tp*dp``-way data parallel
ep                     ``--ep_size``
quantization           from the checkpoint (a note names the format to obtain)
kv_cache_dtype         ``kv_cache_config.dtype``: ``fp8`` or ``auto``
max_batch_size         ``--max_batch_size``
kv_block_size          ``kv_cache_config.tokens_per_block``
max_num_batched_tokens ``--max_num_tokens`` and ``enable_chunked_prefill: true``
spec_method, k         ``speculative_config``: ``decoding_type`` NGram / Eagle3 / MTP /
                       DraftTarget, ``max_draft_len: k``
=====================  =====================================================================
"""

from __future__ import annotations

from typing import Any

import yaml

from optimizer.domain.endpoint import EndpointConfig
from optimizer.domain.enums import Engine, KVCacheDtype, Quantization, SpecMethod
from optimizer.domain.gpu import GPUSpec
from optimizer.errors import InvalidInputError
from optimizer.launch._common import (
    LaunchArtifacts,
    assemble_artifacts,
    check_common,
    checkpoint_format,
    checkpoint_notes,
    unused_draft_note,
)

__all__ = [
    "DECODING_TYPES",
    "EXTRA_OPTIONS_FILE",
    "HEALTH_PATH",
    "NGRAM_MATCH_SIZE",
    "extra_llm_api_options",
    "trtllm_artifacts",
]

HEALTH_PATH = "/health"
"""``trtllm-serve`` answers ``GET /health`` with 200 once the executor is up."""

EXTRA_OPTIONS_FILE = "extra_llm_api_options.yaml"
"""File name of the LLM-API options in ``LaunchArtifacts.files`` and in ``argv``."""

DECODING_TYPES: dict[SpecMethod, str] = {
    SpecMethod.NGRAM: "NGram",
    SpecMethod.EAGLE3: "Eagle3",
    SpecMethod.MTP: "MTP",
    SpecMethod.DRAFT_MODEL: "DraftTarget",
}
"""``speculative_config.decoding_type`` per epopt method (EAGLE-1/2 is not offered)."""

_CHECKPOINT_FORMATS = frozenset(q for q in Quantization if q is not Quantization.BF16)
"""Every non-16-bit format comes from the checkpoint on the PyTorch backend."""

_TWO_MODEL = (SpecMethod.NGRAM, SpecMethod.DRAFT_MODEL)

NGRAM_MATCH_SIZE = 4
"""``max_matching_ngram_size`` for NGram: the value of TensorRT-LLM's documented example."""


def _speculative_config(config: EndpointConfig, speculative_model: str | None) -> dict[str, Any]:
    k = config.spec_draft_len
    spec: dict[str, Any] = {"decoding_type": DECODING_TYPES[config.spec_method], "max_draft_len": k}
    if config.spec_method is SpecMethod.NGRAM:
        spec["max_matching_ngram_size"] = NGRAM_MATCH_SIZE
    elif config.spec_method is SpecMethod.MTP:
        spec["num_nextn_predict_layers"] = k
        if speculative_model:
            spec["speculative_model_dir"] = speculative_model
    else:
        spec["speculative_model_dir"] = speculative_model
    return spec


def extra_llm_api_options(
    config: EndpointConfig, speculative_model: str | None = None
) -> dict[str, Any]:
    """The LLM-API arguments of ``config`` that ``trtllm-serve`` takes only from YAML.

    Pure: returns the mapping; ``trtllm_artifacts`` renders it to the file.
    """
    kv_cache: dict[str, Any] = {
        "dtype": "fp8" if config.kv_cache_dtype is KVCacheDtype.FP8 else "auto"
    }
    if config.kv_block_size is not None:
        kv_cache["tokens_per_block"] = config.kv_block_size
    options: dict[str, Any] = {"kv_cache_config": kv_cache}
    if config.dp > 1:
        options["enable_attention_dp"] = True
    if config.max_num_batched_tokens is not None:
        options["enable_chunked_prefill"] = True
    if config.spec_method is not SpecMethod.NONE:
        options["speculative_config"] = _speculative_config(config, speculative_model)
        if config.spec_method in _TWO_MODEL:
            options["disable_overlap_scheduler"] = True
    return options


def trtllm_artifacts(
    config: EndpointConfig,
    model_id: str,
    gpu: GPUSpec,
    *,
    port: int = 8000,
    host: str = "0.0.0.0",
    speculative_model: str | None = None,
    checkpoint_quantization: Quantization | str | None = None,
) -> LaunchArtifacts:
    """The ``trtllm-serve`` command for one replica of ``config``, plus its YAML.

    Args:
        config: the configuration (``engine`` must be ``trtllm``).
        model_id: Hugging Face id or local path of the checkpoint to serve.
        gpu: the GPU it runs on (checked for the weight format and FP8 KV cache).
        port: HTTP port.
        host: address to bind; ``0.0.0.0`` so a container is reachable.
        speculative_model: drafter weights for eagle3 and draft_model (optional for mtp).
        checkpoint_quantization: format of the checkpoint at ``model_id``; the PyTorch
            backend serves the checkpoint's format, so a note says which to obtain.

    Returns:
        The command, with ``files[EXTRA_OPTIONS_FILE]`` holding the YAML it reads.

    Raises:
        InvalidInputError: another engine's config, a format the GPU cannot run, a
            missing draft model, or EAGLE-1/2 speculation (the PyTorch backend runs
            EAGLE-3 only).
    """
    check_common(
        config,
        Engine.TRTLLM,
        gpu,
        model_id=model_id,
        port=port,
        speculative_model=speculative_model,
    )
    checkpoint_quantization = checkpoint_format(checkpoint_quantization)
    if config.spec_method is SpecMethod.EAGLE:
        raise InvalidInputError(
            "spec_method",
            "TensorRT-LLM's PyTorch backend runs EAGLE-3 only; EAGLE-1/2 heads are incompatible",
            allowed=["none", *sorted(m.value for m in DECODING_TYPES)],
        )

    argv = [
        "trtllm-serve",
        model_id,
        "--host",
        host,
        "--port",
        str(port),
        "--backend",
        "pytorch",
    ]
    notes: list[str] = []
    stage_gpus = config.tp * config.dp
    if stage_gpus > 1:
        argv += ["--tp_size", str(stage_gpus)]
    if config.pp > 1:
        argv += ["--pp_size", str(config.pp)]
    if config.ep > 1:
        argv += ["--ep_size", str(config.ep)]
    if config.dp > 1 and config.tp > 1:
        notes.append(
            f"TensorRT-LLM's attention data parallelism runs attention on one GPU per rank: "
            f"the {stage_gpus} GPUs form {stage_gpus} attention ranks, not {config.dp} groups "
            f"of tp={config.tp}"
        )
    if config.max_batch_size is not None:
        argv += ["--max_batch_size", str(config.max_batch_size)]
    if config.max_num_batched_tokens is not None:
        argv += ["--max_num_tokens", str(config.max_num_batched_tokens)]
    argv += ["--extra_llm_api_options", EXTRA_OPTIONS_FILE]

    options = extra_llm_api_options(config, speculative_model)
    files = {EXTRA_OPTIONS_FILE: yaml.safe_dump(options, sort_keys=False)}

    notes += unused_draft_note(config, speculative_model)
    notes += checkpoint_notes(
        config, model_id, checkpoint_quantization, prequantized=_CHECKPOINT_FORMATS
    )
    return assemble_artifacts(
        Engine.TRTLLM,
        config,
        model_id,
        gpu,
        argv=argv,
        notes=notes,
        port=port,
        health_path=HEALTH_PATH,
        files=files,
        multi_node_hint=("launch it across nodes with mpirun/srun and trtllm-llmapi-launch"),
    )
