"""``launch_artifacts``: the launch command of a configuration on whichever engine it names."""

from __future__ import annotations

from optimizer.domain.endpoint import EndpointConfig
from optimizer.domain.enums import Engine, Quantization
from optimizer.domain.gpu import GPUSpec
from optimizer.launch._common import Int4Format, LaunchArtifacts
from optimizer.launch.sglang import sglang_artifacts
from optimizer.launch.trtllm import trtllm_artifacts
from optimizer.launch.vllm import vllm_artifacts

__all__ = ["launch_artifacts"]


def launch_artifacts(
    config: EndpointConfig,
    model_id: str,
    gpu: GPUSpec,
    *,
    port: int = 8000,
    speculative_model: str | None = None,
    host: str = "0.0.0.0",
    checkpoint_quantization: Quantization | str | None = None,
    int4_format: Int4Format = "awq",
) -> LaunchArtifacts:
    """The command line (and extra files) that start one replica of ``config``.

    Args:
        config: the chosen configuration; ``config.engine`` picks the builder.
        model_id: Hugging Face id or local path of the checkpoint to serve.
        gpu: the GPU SKU (weight format and FP8 KV support are checked against it).
        port: HTTP port of the OpenAI-compatible server.
        speculative_model: drafter weights (EAGLE head or draft LLM) when the method
            needs them.
        host: address to bind.
        checkpoint_quantization: the checkpoint's own format (``ModelSpec.
            native_quantization``); notes say when another checkpoint is needed.
        int4_format: ``awq`` or ``gptq`` for ``int4_wo`` (vLLM and SGLang; TensorRT-LLM
            reads it from the checkpoint).

    Returns:
        ``LaunchArtifacts``: ``argv``, the shell-quoted ``command``, extra ``files`` and
        ``notes``.

    Raises:
        InvalidInputError: a combination the engine cannot run (the message names the
            knob and what is allowed).

    Example:
        >>> from optimizer.catalog import get_gpu
        >>> config = EndpointConfig(engine="sglang", tp=4, max_batch_size=64)
        >>> launch_artifacts(config, "org/model", get_gpu("h100_sxm")).command
        'python -m sglang.launch_server --model-path org/model --host 0.0.0.0 --port 8000 \
--tp-size 4 --max-running-requests 64'
    """
    if config.engine is Engine.TRTLLM:
        return trtllm_artifacts(
            config,
            model_id,
            gpu,
            port=port,
            host=host,
            speculative_model=speculative_model,
            checkpoint_quantization=checkpoint_quantization,
        )
    build = vllm_artifacts if config.engine is Engine.VLLM else sglang_artifacts
    return build(
        config,
        model_id,
        gpu,
        port=port,
        host=host,
        speculative_model=speculative_model,
        checkpoint_quantization=checkpoint_quantization,
        int4_format=int4_format,
    )
