"""The Kubernetes manifest parses as YAML and has the structure a GPU deployment needs."""

from __future__ import annotations

import pytest
import yaml

from optimizer.domain import EndpointConfig
from optimizer.errors import InvalidInputError
from optimizer.launch import (
    CONFIG_MOUNT_PATH,
    DEFAULT_IMAGES,
    GPU_RESOURCE,
    kubernetes_manifest,
    kubernetes_objects,
    launch_artifacts,
)
from optimizer.launch.trtllm import EXTRA_OPTIONS_FILE

MODEL = "org/model"


def _documents(manifest: str) -> dict[str, dict]:
    docs = [d for d in yaml.safe_load_all(manifest) if d is not None]
    by_kind = {d["kind"]: d for d in docs}
    assert len(by_kind) == len(docs), "one object of each kind"
    return by_kind


@pytest.fixture()
def trtllm(h100):
    config = EndpointConfig(engine="trtllm", tp=2, kv_block_size=64, max_batch_size=32)
    return launch_artifacts(config, MODEL, h100)


@pytest.fixture()
def vllm(h100):
    return launch_artifacts(EndpointConfig(engine="vllm", tp=4), MODEL, h100)


def test_deployment_runs_the_command_on_the_gpus(vllm):
    manifest = kubernetes_manifest(
        vllm, name="llama", replicas=3, gpus_per_replica=4, namespace="serving"
    )
    docs = _documents(manifest)
    assert set(docs) == {"Deployment", "Service"}  # no files: no ConfigMap
    deployment = docs["Deployment"]
    assert deployment["apiVersion"] == "apps/v1"
    assert deployment["metadata"] == {
        "name": "llama",
        "namespace": "serving",
        "labels": deployment["metadata"]["labels"],
    }
    spec = deployment["spec"]
    assert spec["replicas"] == 3
    pod_labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= pod_labels.items()
    (container,) = spec["template"]["spec"]["containers"]
    assert container["image"] == DEFAULT_IMAGES[vllm.engine]
    assert [*container["command"], *container["args"]] == vllm.argv
    assert container["resources"]["limits"] == {GPU_RESOURCE: 4}
    assert container["resources"]["requests"] == {GPU_RESOURCE: 4}
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}


def test_shared_memory_is_memory_backed(vllm):
    docs = _documents(kubernetes_manifest(vllm, name="x", replicas=1, gpus_per_replica=4))
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["dshm"]["emptyDir"]["medium"] == "Memory"
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["dshm"] == "/dev/shm"


def test_service_selects_the_pods(vllm):
    docs = _documents(kubernetes_manifest(vllm, name="llama", replicas=1, gpus_per_replica=4))
    service = docs["Service"]
    pod_labels = docs["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["port"] == 8000
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_extra_files_come_from_a_config_map(trtllm):
    docs = _documents(kubernetes_manifest(trtllm, name="trt", replicas=2, gpus_per_replica=2))
    config_map = docs["ConfigMap"]
    assert config_map["metadata"]["name"] == "trt-config"
    assert config_map["data"] == trtllm.files
    assert yaml.safe_load(config_map["data"][EXTRA_OPTIONS_FILE])["kv_cache_config"] == {
        "dtype": "auto",
        "tokens_per_block": 64,
    }
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "trt-config"
    container = pod["containers"][0]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["config"]["mountPath"] == CONFIG_MOUNT_PATH and mounts["config"]["readOnly"]
    args = container["args"]
    assert args[args.index("--extra_llm_api_options") + 1] == (
        f"{CONFIG_MOUNT_PATH}/{EXTRA_OPTIONS_FILE}"
    )


def test_startup_probe_covers_the_cold_start(vllm):
    (deployment,) = [
        o
        for o in kubernetes_objects(
            vllm, name="x", replicas=1, gpus_per_replica=4, startup_seconds=605
        )
        if o["kind"] == "Deployment"
    ]
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["startupProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] >= 605


def test_options(vllm):
    docs = _documents(
        kubernetes_manifest(
            vllm,
            name="x",
            replicas=0,
            gpus_per_replica=4,
            image="registry.local/vllm:v0.11.0",
            hf_token_secret="hf-token",
            model_cache_claim="models",
        )
    )
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "registry.local/vllm:v0.11.0"
    assert container["env"][0]["valueFrom"]["secretKeyRef"] == {"name": "hf-token", "key": "token"}
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert claims == ["models"]
    assert docs["Deployment"]["spec"]["replicas"] == 0
    assert "metadata" in docs["Service"] and "namespace" not in docs["Service"]["metadata"]


def test_notes_travel_as_comments(b200):
    art = launch_artifacts(EndpointConfig(engine="vllm", quantization="nvfp4"), MODEL, b200)
    manifest = kubernetes_manifest(art, name="x", replicas=1, gpus_per_replica=1)
    assert manifest.startswith("# Generated by epopt")
    assert any(line.startswith("# note: nvfp4") for line in manifest.splitlines())


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "Llama_70B"}, "name"),
        ({"name": "x" * 60}, "name"),
        ({"namespace": "-bad"}, "namespace"),
        ({"replicas": -1}, "replicas"),
        ({"gpus_per_replica": 8}, "gpus_per_replica"),
        ({"startup_seconds": 0}, "startup_seconds"),
        ({"image": " "}, "image"),
    ],
)
def test_bad_input_names_the_field(vllm, kwargs, field):
    arguments = {"name": "ok", "replicas": 1, "gpus_per_replica": 4, **kwargs}
    with pytest.raises(InvalidInputError) as err:
        kubernetes_manifest(vllm, **arguments)
    assert err.value.field == field


def test_replica_larger_than_a_node_is_refused(gb200):
    art = launch_artifacts(EndpointConfig(engine="sglang", tp=4, pp=2), MODEL, gb200)
    with pytest.raises(InvalidInputError, match="LeaderWorkerSet") as err:
        kubernetes_manifest(art, name="big", replicas=1, gpus_per_replica=8)
    assert err.value.field == "gpus_per_replica"
