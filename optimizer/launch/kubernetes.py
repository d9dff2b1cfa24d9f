"""A Kubernetes Deployment (+ Service, + ConfigMap for extra files) for ``LaunchArtifacts``.

One pod is one replica: it requests ``nvidia.com/gpu`` (the NVIDIA device plugin's
resource) for all of the replica's GPUs, runs the engine command, mounts a memory-backed
``/dev/shm`` (the engines' worker processes exchange tensors through shared memory, and
the container runtime's 64 MiB default is far too small; see the vLLM and SGLang
Kubernetes docs), and probes the engine's health endpoint: a startup probe long enough
for a cold start, then readiness and liveness probes. Files the command reads (the
TensorRT-LLM options YAML) come from a ConfigMap mounted at ``CONFIG_MOUNT_PATH``; their
names in the command are rewritten to that path. A ClusterIP Service exposes the port.

Replicas that span nodes need a multi-node controller (e.g. LeaderWorkerSet); this module
generates single-pod replicas and says so when that is not enough.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

from optimizer.domain.enums import Engine
from optimizer.errors import InvalidInputError
from optimizer.launch._common import LaunchArtifacts

__all__ = [
    "CONFIG_MOUNT_PATH",
    "DEFAULT_IMAGES",
    "GPU_RESOURCE",
    "kubernetes_manifest",
    "kubernetes_objects",
]

GPU_RESOURCE = "nvidia.com/gpu"
"""Extended resource of the NVIDIA Kubernetes device plugin."""

CONFIG_MOUNT_PATH = "/etc/epopt"
"""Where the ConfigMap with ``LaunchArtifacts.files`` is mounted."""

DEFAULT_IMAGES: dict[Engine, str] = {
    Engine.VLLM: "vllm/vllm-openai:latest",
    Engine.SGLANG: "lmsysorg/sglang:latest",
    Engine.TRTLLM: "nvcr.io/nvidia/tensorrt-llm/release:1.2.1",
}
"""The engines' published serving images; pin the tag of the version you validated."""

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_PROBE_PERIOD_S = 10


class _Dumper(yaml.SafeDumper):
    """Safe YAML, with multi-line strings (the ConfigMap's files) as literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _dns_label(value: str, field: str, max_len: int = 63) -> str:
    if len(value) > max_len or not _DNS_LABEL.match(value):
        raise InvalidInputError(
            field,
            f"{value!r} is not a DNS-1123 label",
            allowed=f"lowercase letters, digits and '-', starting and ending alphanumeric, "
            f"at most {max_len} characters",
        )
    return value


def _http_probe(path: str, *, period: int, failures: int, delay: int = 0) -> dict[str, Any]:
    probe: dict[str, Any] = {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "failureThreshold": failures,
    }
    if delay:
        probe["initialDelaySeconds"] = delay
    return probe


def kubernetes_objects(
    artifacts: LaunchArtifacts,
    *,
    name: str,
    replicas: int,
    gpus_per_replica: int,
    image: str | None = None,
    namespace: str | None = None,
    shm_size: str = "16Gi",
    startup_seconds: float = 1800.0,
    hf_token_secret: str | None = None,
    model_cache_claim: str | None = None,
) -> list[dict[str, Any]]:
    """The manifest as Kubernetes objects (ConfigMap if files, Deployment, Service).

    Pure: returns plain dicts; ``kubernetes_manifest`` renders them to YAML. Arguments
    are those of ``kubernetes_manifest``.
    """
    _dns_label(name, "name", max_len=63 - len("-config"))
    if namespace is not None:
        _dns_label(namespace, "namespace")
    if replicas < 0:
        raise InvalidInputError("replicas", f"must be >= 0, got {replicas}")
    if gpus_per_replica != artifacts.gpus_per_replica:
        raise InvalidInputError(
            "gpus_per_replica",
            f"{gpus_per_replica} differs from the {artifacts.gpus_per_replica} GPUs the "
            "launch command uses (tp * pp * dp)",
            allowed=[artifacts.gpus_per_replica],
        )
    if gpus_per_replica > artifacts.gpus_per_node:
        raise InvalidInputError(
            "gpus_per_replica",
            f"one replica needs {gpus_per_replica} GPUs but a node has "
            f"{artifacts.gpus_per_node}; a replica spanning nodes needs a multi-node "
            "controller such as LeaderWorkerSet, which epopt does not generate",
        )
    if not math.isfinite(startup_seconds) or startup_seconds <= 0:
        raise InvalidInputError(
            "startup_seconds", f"must be a positive number, got {startup_seconds}"
        )
    if image is not None and not image.strip():
        raise InvalidInputError("image", "must name a container image")

    labels = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": "llm-server",
        "app.kubernetes.io/managed-by": "epopt",
        "epopt/engine": artifacts.engine.value,
    }
    selector = {"app.kubernetes.io/name": name}

    def metadata(object_name: str) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": object_name, "labels": dict(labels)}
        if namespace is not None:
            meta["namespace"] = namespace
        return meta

    objects: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = [
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": shm_size}}
    ]
    mounts: list[dict[str, Any]] = [{"name": "dshm", "mountPath": "/dev/shm"}]
    argv = list(artifacts.argv)
    if artifacts.files:
        config_map = f"{name}-config"
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": metadata(config_map),
                "data": dict(artifacts.files),
            }
        )
        volumes.append({"name": "config", "configMap": {"name": config_map}})
        mounts.append({"name": "config", "mountPath": CONFIG_MOUNT_PATH, "readOnly": True})
        argv = [f"{CONFIG_MOUNT_PATH}/{a}" if a in artifacts.files else a for a in argv]
    if model_cache_claim is not None:
        _dns_label(model_cache_claim, "model_cache_claim", max_len=253)
        volumes.append(
            {"name": "model-cache", "persistentVolumeClaim": {"claimName": model_cache_claim}}
        )
        mounts.append({"name": "model-cache", "mountPath": "/root/.cache/huggingface"})

    container: dict[str, Any] = {
        "name": artifacts.engine.value,
        "image": image or DEFAULT_IMAGES[artifacts.engine],
        "command": argv[:1],
        "args": argv[1:],
        "ports": [{"name": "http", "containerPort": artifacts.port, "protocol": "TCP"}],
        "resources": {
            "limits": {GPU_RESOURCE: gpus_per_replica},
            "requests": {GPU_RESOURCE: gpus_per_replica},
        },
        "startupProbe": _http_probe(
            artifacts.health_path,
            period=_PROBE_PERIOD_S,
            failures=max(1, math.ceil(startup_seconds / _PROBE_PERIOD_S)),
        ),
        "readinessProbe": _http_probe(artifacts.health_path, period=_PROBE_PERIOD_S, failures=3),
        "livenessProbe": _http_probe(artifacts.health_path, period=30, failures=3),
        "volumeMounts": mounts,
    }
    if hf_token_secret is not None:
        _dns_label(hf_token_secret, "hf_token_secret", max_len=253)
        container["env"] = [
            {
                "name": "HF_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": hf_token_secret, "key": "token"}},
            }
        ]

    objects.append(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata(name),
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": dict(selector)},
                "template": {
                    "metadata": {"labels": dict(labels)},
                    "spec": {"containers": [container], "volumes": volumes},
                },
            },
        }
    )
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(name),
            "spec": {
                "type": "ClusterIP",
                "selector": dict(selector),
                "ports": [
                    {
                        "name": "http",
                        "port": artifacts.port,
                        "targetPort": "http",
                        "protocol": "TCP",
                    }
                ],
            },
        }
    )
    return objects


def kubernetes_manifest(
    artifacts: LaunchArtifacts,
    *,
    name: str,
    replicas: int,
    gpus_per_replica: int,
    image: str | None = None,
    namespace: str | None = None,
    shm_size: str = "16Gi",
    startup_seconds: float = 1800.0,
    hf_token_secret: str | None = None,
    model_cache_claim: str | None = None,
) -> str:
    """A multi-document YAML manifest that runs ``replicas`` copies of ``artifacts``.

    Args:
        artifacts: the launch command (from ``launch_artifacts``).
        name: Deployment and Service name (a DNS-1123 label); the ConfigMap is
            ``<name>-config``.
        replicas: pods to run (0 is allowed: a scaled-down Deployment).
        gpus_per_replica: GPUs each pod requests; must equal the command's
            ``tp * pp * dp`` and fit on one node.
        image: container image; default ``DEFAULT_IMAGES[engine]``.
        namespace: namespace of every object; ``None`` leaves it to ``kubectl``.
        shm_size: size limit of the memory-backed ``/dev/shm``.
        startup_seconds: how long the startup probe lets the server come up before
            Kubernetes restarts it; use a margin over the cold start
            (``optimizer.capacity.cold_start_seconds``).
        hf_token_secret: Secret whose ``token`` key becomes ``HF_TOKEN`` (gated models).
        model_cache_claim: PersistentVolumeClaim mounted as the Hugging Face cache, so a
            restarted pod does not download the weights again.

    Returns:
        YAML documents separated by ``---``, after a comment header.

    Raises:
        InvalidInputError: an invalid name, namespace or count, a GPU count that does not
            match the command, or a replica larger than one node.
    """
    objects = kubernetes_objects(
        artifacts,
        name=name,
        replicas=replicas,
        gpus_per_replica=gpus_per_replica,
        image=image,
        namespace=namespace,
        shm_size=shm_size,
        startup_seconds=startup_seconds,
        hf_token_secret=hf_token_secret,
        model_cache_claim=model_cache_claim,
    )
    header = (
        f"# Generated by epopt: {artifacts.engine.value} serving {artifacts.model_id}, "
        f"{replicas} replica(s) x {gpus_per_replica} GPU(s).\n"
        "# Pin the image tag to the engine version you validated.\n"
    )
    header += "".join(f"# note: {note}\n" for note in artifacts.notes)
    return header + yaml.dump_all(objects, Dumper=_Dumper, sort_keys=False)
