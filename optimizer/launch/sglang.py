"""``python -m sglang.launch_server`` command lines for an ``EndpointConfig``.

Flag names follow SGLang's server arguments, checked against:

* sgl-project/sglang ``docs/advanced_features/server_arguments.md`` (the generated list of
  ``ServerArgs``; https://docs.sglang.io/advanced_features/server_arguments.html):
  ``--model-path``, ``--host``, ``--port``, ``--tp-size``, ``--pp-size``, ``--dp-size``,
  ``--enable-dp-attention``, ``--ep-size``, ``--quantization`` (options include ``fp8``,
  ``awq_marlin``, ``gptq_marlin``, ``modelopt_fp4``, ``mxfp4``), ``--kv-cache-dtype``
  (``auto``, ``fp8_e5m2``, ``fp8_e4m3``, ``bf16`` ...), ``--max-running-requests``,
  ``--page-size``, ``--chunked-prefill-size``, ``--speculative-algorithm`` (``EAGLE``,
  ``EAGLE3``, ``NEXTN``, ``STANDALONE``, ``NGRAM``), ``--speculative-draft-model-path``,
  ``--speculative-num-steps``, ``--speculative-eagle-topk``,
  ``--speculative-num-draft-tokens``;
* sgl-project/sglang ``docs/advanced_features/speculative_decoding.md``
  (https://docs.sglang.io/advanced_features/speculative_decoding.html): NEXTN is an alias
  of EAGLE used for MTP; with ``--speculative-eagle-topk 1`` the draft-token count is
  ``num_steps + 1``; STANDALONE and NGRAM do not support ``--enable-dp-attention``.

Mapping of epopt's knobs:

=====================  =====================================================================
knob                   SGLang
=====================  =====================================================================
tp, pp                 ``--tp-size tp*dp`` (all GPUs of a pipeline stage), ``--pp-size``
dp                     ``--dp-size dp --enable-dp-attention`` (attention data parallelism;
                       SGLang's tp-size counts every GPU of the stage, attention runs
                       ``tp``-way inside each of the ``dp`` groups)
ep                     ``--ep-size``
quantization           bf16: none; fp8, fp8_block: ``fp8``; int4_wo: ``awq_marlin`` /
                       ``gptq_marlin``; nvfp4: ``modelopt_fp4``; mxfp4: ``mxfp4``
kv_cache_dtype         fp8: ``--kv-cache-dtype fp8_e4m3``
max_batch_size         ``--max-running-requests``
kv_block_size          ``--page-size``
max_num_batched_tokens ``--chunked-prefill-size``
spec_method, k         ``--speculative-algorithm`` NGRAM / EAGLE / EAGLE3 / NEXTN (mtp) /
                       STANDALONE (draft_model); a linear chain of k draft tokens:
                       ``--speculative-num-steps k --speculative-eagle-topk 1
                       --speculative-num-draft-tokens k+1`` (NGRAM: only the draft-token
                       count, which also counts the tree's root, the last accepted token)
=====================  =====================================================================
"""

from __future__ import annotations

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
    "SPEC_ALGORITHMS",
    "sglang_artifacts",
]

HEALTH_PATH = "/health"
"""SGLang's HTTP server answers ``GET /health`` with 200 once it serves."""

QUANTIZATION_VALUES: dict[Quantization, str | None] = {
    Quantization.BF16: None,
    Quantization.FP8: "fp8",
    Quantization.FP8_BLOCK: "fp8",
    Quantization.INT4_WO: None,  # awq_marlin or gptq_marlin, by int4_format
    Quantization.NVFP4: "modelopt_fp4",
    Quantization.MXFP4: "mxfp4",
}
"""``--quantization`` value per weight format."""

INT4_VALUES: dict[str, str] = {"awq": "awq_marlin", "gptq": "gptq_marlin"}

KV_CACHE_DTYPE_VALUES: dict[KVCacheDtype, str | None] = {
    KVCacheDtype.BF16: None,  # "auto": the model's dtype
    KVCacheDtype.FP8: "fp8_e4m3",
}

SPEC_ALGORITHMS: dict[SpecMethod, str] = {
    SpecMethod.NGRAM: "NGRAM",
    SpecMethod.EAGLE: "EAGLE",
    SpecMethod.EAGLE3: "EAGLE3",
    SpecMethod.MTP: "NEXTN",
    SpecMethod.DRAFT_MODEL: "STANDALONE",
}
"""``--speculative-algorithm`` per epopt method."""

_NO_DP_ATTENTION = (SpecMethod.NGRAM, SpecMethod.DRAFT_MODEL)


def _speculative_args(config: EndpointConfig, speculative_model: str | None) -> list[str]:
    k = config.spec_draft_len
    args = ["--speculative-algorithm", SPEC_ALGORITHMS[config.spec_method]]
    if config.spec_method is SpecMethod.NGRAM:
        return [*args, "--speculative-num-draft-tokens", str(k + 1)]
    if speculative_model:
        args += ["--speculative-draft-model-path", speculative_model]
    return [
        *args,
        "--speculative-num-steps",
        str(k),
        "--speculative-eagle-topk",
        "1",
        "--speculative-num-draft-tokens",
        str(k + 1),
    ]


def sglang_artifacts(
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
    """The ``python -m sglang.launch_server`` command for one replica of ``config``.

    Args:
        config: the configuration (``engine`` must be ``sglang``).
        model_id: Hugging Face id or local path of the checkpoint to serve.
        gpu: the GPU it runs on (checked for the weight format and FP8 KV cache).
        port: HTTP port (SGLang's own default is 30000; epopt uses one port everywhere).
        host: address to bind; ``0.0.0.0`` so a container is reachable.
        speculative_model: drafter weights for eagle, eagle3, draft_model (optional for
            mtp, whose NextN layers are in the checkpoint).
        checkpoint_quantization: format of the checkpoint at ``model_id``.
        int4_format: AWQ or GPTQ, for ``int4_wo``.

    Returns:
        The command; knobs left at ``None`` in the config are left to SGLang's defaults.

    Raises:
        InvalidInputError: another engine's config, a format the GPU cannot run, a
            missing draft model, or n-gram / draft-model speculation with attention data
            parallelism (SGLang supports neither with ``--enable-dp-attention``).
    """
    check_common(
        config,
        Engine.SGLANG,
        gpu,
        model_id=model_id,
        port=port,
        speculative_model=speculative_model,
    )
    checkpoint_quantization = checkpoint_format(checkpoint_quantization)
    if config.dp > 1 and config.spec_method in _NO_DP_ATTENTION:
        raise InvalidInputError(
            "spec_method",
            f"SGLang's {SPEC_ALGORITHMS[config.spec_method]} speculation does not support "
            f"attention data parallelism (dp={config.dp})",
            allowed=["none", "eagle", "eagle3", "mtp"],
        )
    if int4_format not in INT4_VALUES:
        raise InvalidInputError("int4_format", f"unknown {int4_format!r}", allowed=INT4_VALUES)

    argv = [
        "python",
        "-m",
        "sglang.launch_server",
        "--model-path",
        model_id,
        "--host",
        host,
        "--port",
        str(port),
    ]
    notes: list[str] = []
    stage_gpus = config.tp * config.dp
    if stage_gpus > 1:
        argv += ["--tp-size", str(stage_gpus)]
    if config.pp > 1:
        argv += ["--pp-size", str(config.pp)]
    if config.dp > 1:
        argv += ["--dp-size", str(config.dp), "--enable-dp-attention"]
    if config.ep > 1:
        argv += ["--ep-size", str(config.ep)]

    if config.quantization is Quantization.INT4_WO:
        quantization: str | None = INT4_VALUES[int4_format]
    else:
        quantization = QUANTIZATION_VALUES[config.quantization]
    if quantization is not None:
        argv += ["--quantization", quantization]
    kv_dtype = KV_CACHE_DTYPE_VALUES[config.kv_cache_dtype]
    if kv_dtype is not None:
        argv += ["--kv-cache-dtype", kv_dtype]
        notes.append(
            "fp8 KV cache: without --quantization-param-path SGLang uses KV scales of 1.0 "
            "unless the checkpoint carries them"
        )

    if config.max_batch_size is not None:
        argv += ["--max-running-requests", str(config.max_batch_size)]
    if config.kv_block_size is not None:
        argv += ["--page-size", str(config.kv_block_size)]
    if config.max_num_batched_tokens is not None:
        argv += ["--chunked-prefill-size", str(config.max_num_batched_tokens)]

    if config.spec_method is not SpecMethod.NONE:
        argv += _speculative_args(config, speculative_model)
    if config.spec_method is SpecMethod.NGRAM:
        notes.append("NGRAM speculation runs on CUDA only and disables the overlap scheduler")

    notes += unused_draft_note(config, speculative_model)
    notes += checkpoint_notes(
        config, model_id, checkpoint_quantization, prequantized=PREQUANTIZED_FORMATS
    )
    return assemble_artifacts(
        Engine.SGLANG,
        config,
        model_id,
        gpu,
        argv=argv,
        notes=notes,
        port=port,
        health_path=HEALTH_PATH,
        multi_node_hint=(
            "run this command on every node with --nnodes, --node-rank and --dist-init-addr added"
        ),
    )
