"""`epopt simulate`, in process (on its own Typer app: main.py wires it in)."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from optimizer.cli.simulate import simulate_command
from optimizer.errors import InvalidInputError, NotFoundError, StorageError

runner = CliRunner()
app = typer.Typer()
app.command("simulate")(simulate_command)
app.command("noop")(lambda: None)  # keep "simulate" a subcommand, as in the real app

ENDPOINT = """\
model: meta-llama/Llama-3.1-8B-Instruct
gpu: h100_sxm
endpoint: {engine: vllm, max_batch_size: 64}
simulator: {prefix_caching: true}
"""
WORKLOAD = """\
arrivals: {kind: poisson, rate: 6.0}
tenants:
  - name: chat
    share: 0.8
    isl: {kind: lognormal, median: 800, sigma: 0.5, max_tokens: 4000}
    osl: {kind: lognormal, median: 150, sigma: 0.5, max_tokens: 1000}
    slo: {ttft_p95_ms: 2000, tpot_p95_ms: 80}
    shared_prefix_tokens: 256
    shared_prefix_fraction: 1.0
  - name: batch
    share: 0.2
    isl: {kind: uniform, low: 1000, high: 2000}
    osl: {kind: fixed, tokens: 50}
    priority: -1
"""


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.setenv("EPOPT_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    endpoint = tmp_path / "endpoint.yaml"
    workload = tmp_path / "workload.yaml"
    endpoint.write_text(ENDPOINT)
    workload.write_text(WORKLOAD)
    return endpoint, workload


def _run(*args: str):
    return runner.invoke(app, ["simulate", *args])


def test_text_report(files):
    endpoint, workload = files
    result = _run(
        "--config",
        str(endpoint),
        "--workload",
        str(workload),
        "--requests",
        "400",
        "--calibration",
        "prior",
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "meta-llama/Llama-3.1-8B-Instruct on h100_sxm" in out
    assert "operator prior (uncalibrated" in out
    for needle in ("chat", "batch", "all", "TTFT p50/p95/p99 ms", "KV cache:", "prefix hits"):
        assert needle in out


def test_json_report_and_auto_calibration_without_a_stored_surrogate(files):
    endpoint, workload = files
    result = _run(
        "--config", str(endpoint), "--workload", str(workload), "--requests", "300", "--json"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["step_times"].startswith("operator prior (uncalibrated: no stored surrogate")
    tenants = {t["name"]: t for t in data["report"]["tenants"]}
    assert tenants["chat"]["requests"] + tenants["batch"]["requests"] == 300
    assert tenants["chat"]["slo_met"] in (True, False) and tenants["batch"]["slo_met"] is None
    assert data["report"]["kv"]["prefix_hit_rate"] > 0


def test_capacity_mode(files):
    endpoint, workload = files
    result = _run(
        "--config",
        str(endpoint),
        "--workload",
        str(workload),
        "--requests",
        "400",
        "--calibration",
        "prior",
        "--capacity",
        "--slo",
        "ttft_p95<=1s",
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    capacity = data["capacity"]
    assert capacity["max_rate_req_s"] > 0 and len(capacity["probes"]) >= 3
    assert all(t["slo_met"] for t in data["report"]["tenants"])


def test_model_and_gpu_flags_override_the_file(files, tmp_path):
    _, workload = files
    bare = tmp_path / "bare.yaml"
    bare.write_text("endpoint: {engine: vllm}\n")
    result = _run(
        "--config",
        str(bare),
        "--workload",
        str(workload),
        "--requests",
        "100",
        "--calibration",
        "prior",
        "--model",
        "Qwen/Qwen3-32B",
        "--gpu",
        "h200_sxm",
    )
    assert result.exit_code == 0, result.output
    assert "Qwen/Qwen3-32B on h200_sxm" in result.output


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda e, w: (e.replace("engine: vllm", "engine: vllx"), w), "endpoint.engine"),
        (lambda e, w: (e, w.replace("rate: 6.0", "rate: -6.0")), "rate"),
        (lambda e, w: (e, w.replace("kind: uniform", "kind: pareto")), "tenants.1.isl"),
        (lambda e, w: (e.replace("model: meta-llama/Llama-3.1-8B-Instruct\n", ""), w), "--model"),
    ],
)
def test_bad_input_names_the_field(files, mutate, match):
    endpoint, workload = files
    text_e, text_w = mutate(endpoint.read_text(), workload.read_text())
    endpoint.write_text(text_e)
    workload.write_text(text_w)
    result = _run("--config", str(endpoint), "--workload", str(workload), "--calibration", "prior")
    assert isinstance(result.exception, InvalidInputError)
    assert match in str(result.exception)


def test_unknown_calibration_mode_and_required_surrogate(files):
    endpoint, workload = files
    result = _run("--config", str(endpoint), "--workload", str(workload), "--calibration", "magic")
    assert isinstance(result.exception, InvalidInputError)
    assert "auto, surrogate, prior" in str(result.exception)
    result = _run(
        "--config", str(endpoint), "--workload", str(workload), "--calibration", "surrogate"
    )
    # a required surrogate is an error when none is stored (exit code 3 via main)
    assert isinstance(result.exception, StorageError)
    assert "db upgrade" in str(result.exception)


def test_a_migrated_database_without_a_surrogate_is_not_found(files, tmp_path):
    from optimizer.cli._database import open_engine

    endpoint, workload = files
    url = f"sqlite:///{tmp_path / 'migrated.sqlite3'}"
    open_engine(url, migrate=True)
    result = _run(
        "--config",
        str(endpoint),
        "--workload",
        str(workload),
        "--url",
        url,
        "--calibration",
        "surrogate",
    )
    assert isinstance(result.exception, NotFoundError)
