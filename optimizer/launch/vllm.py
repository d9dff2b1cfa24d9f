"""``vllm serve`` command lines for an ``EndpointConfig``.

Flag names follow vLLM's own argument parser, checked against:

* ``vllm/engine/arg_utils.py`` (``EngineArgs.add_cli_args``), vllm-project/vllm at commit
  99d7eb5d6a512cfcc5a2b104f24ebf2d6cda772b —
  https://github.com/vllm-project/vllm/blob/main/vllm/engine/arg_utils.py :
  ``--tensor-parallel-size``, ``--pipeline-parallel-size``, ``--data-parallel-size``,
  ``--enable-expert-parallel``, ``--quantization``, ``--kv-cache-dtype``, ``--block-size``,
  ``--max-num-seqs``, ``--max-num-batched-tokens``, ``--speculative-config`` (a JSON string);
* ``vllm/entrypoints/openai/cli_args.py`` (``FrontendArgs``): ``--host``, ``--port``;
* ``vllm/model_executor/layers/quantization/__init__.py`` (``QuantizationMethods``): the
  ``--quantization`` values ``fp8``, ``awq_marlin``, ``gptq_marlin``, ``modelopt_fp4``,
  ``mxfp4``;
* ``vllm/config/speculative.py`` (``SpeculativeConfig``): ``method`` (``ngram``,
  ``eagle``, ``eagle3``, ``mtp``, ``draft_model``), ``num_speculative_tokens``, ``model``;
* docs https://docs.vllm.ai/en/latest/configuration/engine_args.html and
  https://docs.vllm.ai/en/latest/features/spec_decode.html ("speculative decoding in
  vLLM is not compatible with pipeline parallelism").

Mapping of epopt's knobs:

=====================  =====================================================================
knob                   vLLM
=====================  =====================================================================
tp, pp, dp             ``--tensor-parallel-size``, ``--pipeline-parallel-size``,
                       ``--data-parallel-size``
ep                     ``--enable-expert-parallel`` (a switch: the expert group is ``tp*dp``)
quantization           bf16: none; fp8 and fp8_block: ``fp8`` (block scales come from the
                       checkpoint); int4_wo: ``awq_marlin`` / ``gptq_marlin``; nvfp4:
                       ``modelopt_fp4``; mxfp4: ``mxfp4``
kv_cache_dtype         fp8: ``--kv-cache-dtype fp8`` (bf16 is the default ``auto``)
max_batch_size         ``--max-num-seqs``
kv_block_size          ``--block-size``
max_num_batched_tokens ``--max-num-batched-tokens``
spec_method, k         ``--speculative-config '{"method": ..., "num_speculative_tokens": k}'``
=====================  =====================================================================

``awq_marlin``/``gptq_marlin`` are named rather than ``awq``/``gptq`` because an explicit
``awq`` makes vLLM keep the slower non-Marlin kernel.
"""

from __future__ import annotations

import json

from optimizer.domain.endpoint import EndpointConfig
from optimizer.domain.enums import Engine, KVCacheDtype, Quantization, SpecMethod
from optimizer.domain.gpu import GPUSpec
from optimizer.errors import InvalidInputError
from optimizer.launch._common import (
    PREQUANTIZED_FORMATS,
    Int4Format,
    LaunchArtifacts,
    assemble_artifacts,
    check_common,
    checkpoint_format,
    checkpoint_notes,
    unused_draft_note,
)

__all__ = [
    "HEALTH_PATH",
    "KV_CACHE_DTYPE_VALUES",
    "QUANTIZATION_VALUES",
    "SPEC_METHOD_VALUES",
    "vllm_artifacts",
]

HEALTH_PATH = "/health"
"""vLLM's OpenAI server answers ``GET /health`` with 200 once the engine is up."""

QUANTIZATION_VALUES: dict[Quantization, str | None] = {
    Quantization.BF16: None,
    Quantization.FP8: "fp8",
    Quantization.FP8_BLOCK: "fp8",
    Quantization.INT4_WO: None,  # awq_marlin or gptq_marlin, by int4_format
    Quantization.NVFP4: "modelopt_fp4",
    Quantization.MXFP4: "mxfp4",
}
"""``--quantization`` value per weight format (``None``: no flag, or chosen by format)."""

INT4_VALUES: dict[str, str] = {"awq": "awq_marlin", "gptq": "gptq_marlin"}

KV_CACHE_DTYPE_VALUES: dict[KVCacheDtype, str | None] = {
    KVCacheDtype.BF16: None,  # "auto": the model's dtype
    KVCacheDtype.FP8: "fp8",
}

SPEC_METHOD_VALUES: dict[SpecMethod, str] = {
    SpecMethod.NGRAM: "ngram",
    SpecMethod.EAGLE: "eagle",
    SpecMethod.EAGLE3: "eagle3",
    SpecMethod.MTP: "mtp",
    SpecMethod.DRAFT_MODEL: "draft_model",
}
"""``SpeculativeConfig.method`` per epopt method."""


def _speculative_config(config: EndpointConfig, speculative_model: str | None) -> str:
    spec: dict[str, object] = {
        "method": SPEC_METHOD_VALUES[config.spec_method],
        "num_speculative_tokens": config.spec_draft_len,
    }
    if speculative_model and config.spec_method is not SpecMethod.NGRAM:
        spec["model"] = speculative_model
    return json.dumps(spec, separators=(",", ":"))


def vllm_artifacts(
    config: EndpointConfig,
    model_id: str,
    gpu: GPUSpec,
    *,
    port: int = 8000,
    host: str = "0.0.0.0",
    speculative_model: str | None = None,
    checkpoint_quantization: Quantization | str | None = None,
    int4_format: Int4Format = "awq",
) -> LaunchArtifacts:
    """The ``vllm serve`` command for one replica of ``config``.

    Args:
        config: the configuration (``engine`` must be ``vllm``).
        model_id: Hugging Face id or local path of the checkpoint to serve.
        gpu: the GPU it runs on (checked for the weight format and FP8 KV cache).
        port: HTTP port.
        host: address to bind; ``0.0.0.0`` so a container is reachable.
        speculative_model: drafter weights for eagle, eagle3, draft_model (optional for
            mtp, whose heads are in the checkpoint).
        checkpoint_quantization: format of the checkpoint at ``model_id``
            (``ModelSpec.native_quantization``); a note says when it is not the config's.
        int4_format: AWQ or GPTQ, for ``int4_wo``.

    Returns:
        The command; knobs left at ``None`` in the config are left to vLLM's defaults.

    Raises:
        InvalidInputError: another engine's config, a format the GPU cannot run, a
            missing draft model, pipeline parallelism with speculative decoding, or an
            expert-parallel degree other than ``tp * dp``.
    """
    check_common(
        config,
        Engine.VLLM,
        gpu,
        model_id=model_id,
        port=port,
        speculative_model=speculative_model,
    )
    checkpoint_quantization = checkpoint_format(checkpoint_quantization)
    if config.pp > 1 and config.spec_method is not SpecMethod.NONE:
        raise InvalidInputError(
            "spec_method",
            f"vLLM cannot combine pipeline parallelism (pp={config.pp}) with speculative decoding",
            allowed=["none"],
        )
    group = config.tp * config.dp
    if config.ep not in (1, group):
        raise InvalidInputError(
            "ep",
            f"vLLM's --enable-expert-parallel spreads experts over all tp*dp = {group} GPUs; "
            f"ep={config.ep} cannot be expressed",
            allowed=sorted({1, group}),
        )
    if int4_format not in INT4_VALUES:
        raise InvalidInputError("int4_format", f"unknown {int4_format!r}", allowed=INT4_VALUES)

    argv = ["vllm", "serve", model_id, "--host", host, "--port", str(port)]
    notes: list[str] = []
    if config.tp > 1:
        argv += ["--tensor-parallel-size", str(config.tp)]
    if config.pp > 1:
        argv += ["--pipeline-parallel-size", str(config.pp)]
    if config.dp > 1:
        argv += ["--data-parallel-size", str(config.dp)]
    if config.ep > 1:
        argv.append("--enable-expert-parallel")

    if config.quantization is Quantization.INT4_WO:
        quantization: str | None = INT4_VALUES[int4_format]
    else:
        quantization = QUANTIZATION_VALUES[config.quantization]
    if quantization is not None:
        argv += ["--quantization", quantization]
    if config.quantization is Quantization.FP8 and checkpoint_quantization is None:
        notes.append("fp8: vLLM quantizes the 16-bit checkpoint to per-tensor FP8 while loading")
    kv_dtype = KV_CACHE_DTYPE_VALUES[config.kv_cache_dtype]
    if kv_dtype is not None:
        argv += ["--kv-cache-dtype", kv_dtype]

    if config.max_batch_size is not None:
        argv += ["--max-num-seqs", str(config.max_batch_size)]
    if config.kv_block_size is not None:
        argv += ["--block-size", str(config.kv_block_size)]
    if config.max_num_batched_tokens is not None:
        argv += ["--max-num-batched-tokens", str(config.max_num_batched_tokens)]

    if config.spec_method is not SpecMethod.NONE:
        argv += ["--speculative-config", _speculative_config(config, speculative_model)]
    if config.spec_method is SpecMethod.DRAFT_MODEL:
        notes.append(
            "draft_model speculation needs a vLLM release whose V1 engine supports it "
            "(0.10.0 does not)"
        )
    if config.spec_method is SpecMethod.MTP:
        notes.append(
            "mtp uses the checkpoint's multi-token-prediction layers; older vLLM releases "
            "name the method after the model (e.g. deepseek_mtp)"
        )

    notes += unused_draft_note(config, speculative_model)
    notes += checkpoint_notes(
        config, model_id, checkpoint_quantization, prequantized=PREQUANTIZED_FORMATS
    )
    return assemble_artifacts(
        Engine.VLLM,
        config,
        model_id,
        gpu,
        argv=argv,
        notes=notes,
        port=port,
        health_path=HEALTH_PATH,
        multi_node_hint=(
            "start vLLM on a Ray cluster spanning the nodes "
            "(--distributed-executor-backend ray); this command is for the head node"
        ),
    )
