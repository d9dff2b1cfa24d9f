"""Launch artifacts: the exact engine command lines and a Kubernetes manifest for a config.

Example:
    >>> from optimizer.catalog import get_gpu
    >>> from optimizer.domain import EndpointConfig
    >>> from optimizer.launch import kubernetes_manifest, launch_artifacts
    >>> config = EndpointConfig(engine="vllm", tp=2, quantization="fp8", max_batch_size=128)
    >>> art = launch_artifacts(config, "meta-llama/Llama-3.1-70B", get_gpu("h100_sxm"))
    >>> art.argv[:3]
    ['vllm', 'serve', 'meta-llama/Llama-3.1-70B']
    >>> manifest = kubernetes_manifest(art, name="llama", replicas=2, gpus_per_replica=2)
"""

from __future__ import annotations

from optimizer.launch._common import DRAFT_MODEL_METHODS, Int4Format, LaunchArtifacts
from optimizer.launch.artifacts import launch_artifacts
from optimizer.launch.kubernetes import (
    CONFIG_MOUNT_PATH,
    DEFAULT_IMAGES,
    GPU_RESOURCE,
    kubernetes_manifest,
    kubernetes_objects,
)
from optimizer.launch.sglang import sglang_artifacts
from optimizer.launch.trtllm import extra_llm_api_options, trtllm_artifacts
from optimizer.launch.vllm import vllm_artifacts

__all__ = [
    "CONFIG_MOUNT_PATH",
    "DEFAULT_IMAGES",
    "DRAFT_MODEL_METHODS",
    "GPU_RESOURCE",
    "Int4Format",
    "LaunchArtifacts",
    "extra_llm_api_options",
    "kubernetes_manifest",
    "kubernetes_objects",
    "launch_artifacts",
    "sglang_artifacts",
    "trtllm_artifacts",
    "vllm_artifacts",
]
