"""`epopt models list | show`, in process."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from optimizer.catalog.models import bundled_model_ids
from optimizer.cli.main import app, main
from optimizer.domain.enums import KVCacheDtype, Quantization
from optimizer.errors import NotFoundError, UnsupportedModelError

runner = CliRunner()


def test_list_json_covers_every_bundled_config():
    result = runner.invoke(app, ["models", "list", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    ids = [record["model_id"] for record in data["models"]]
    assert ids == bundled_model_ids()
    counts = data["counts"]
    assert counts["loaded"] + counts["unsupported"] == counts["total"] == len(ids)
    by_id = {record["model_id"]: record for record in data["models"]}
    llama = by_id["meta-llama/Meta-Llama-3.1-70B"]
    assert llama["status"] == "ok" and llama["architecture"] == "LlamaForCausalLM"
    assert abs(llama["total_params"] / 70.6e9 - 1) < 0.02
    nemotron = by_id["nvidia/Nemotron-H-56B-Base-8K"]
    assert nemotron["status"] == "unsupported" and "Mamba" in nemotron["reason"]
    assert nemotron["architecture"] == "NemotronHForCausalLM"
    assert nemotron["total_params"] is None


def test_list_table_ends_with_counts():
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].split() == ["MODEL", "ARCHITECTURE", "TOTAL(B)", "ACTIVE(B)", "STATUS"]
    assert lines[-1].endswith(f"({len(bundled_model_ids())} bundled configs)")
    assert "loaded" in lines[-1] and "unsupported" in lines[-1]
    assert any(line.startswith("openai/gpt-oss-120b") and "116.83" in line for line in lines)


def test_show_json_has_every_size():
    result = runner.invoke(app, ["models", "show", "meta-llama/Llama-3.1-70B", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["requested"] == "meta-llama/Llama-3.1-70B"
    assert data["spec"]["model_id"] == "meta-llama/Meta-Llama-3.1-70B"
    assert data["spec"]["num_layers"] == 80 and data["spec"]["num_kv_heads"] == 8
    assert data["kv_bytes_per_token"] == {"bf16": 327_680, "fp8": 163_840}
    assert set(data["weight_bytes"]) == {q.value for q in Quantization}
    assert set(data["kv_bytes_per_token"]) == {d.value for d in KVCacheDtype}
    assert data["weight_bytes"]["fp8"] < data["weight_bytes"]["bf16"]
    assert (
        data["flops_per_token"]["4096"] > data["flops_per_token"]["0"] == 2 * data["active_params"]
    )


def test_show_text_lists_shapes_and_sizes():
    result = runner.invoke(app, ["models", "show", "zhipuai/GLM-5", "--context", "1024"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith("model: zai-org/GLM-5  (from zhipuai/GLM-5)")
    for expected in ("kv_lora_rank", "index_topk", "num_moe_layers", "nvfp4", "context 1024"):
        assert expected in out
    assert "100,152" in out  # KV bytes per token, bf16


def test_show_unknown_and_unsupported_models_fail_cleanly(capsys):
    unknown = runner.invoke(app, ["models", "show", "acme/NoSuchModel"])
    assert isinstance(unknown.exception, NotFoundError)
    unsupported = runner.invoke(app, ["models", "show", "nvidia/Nemotron-H-56B-Base-8K"])
    assert isinstance(unsupported.exception, UnsupportedModelError)

    assert main(["models", "show", "nvidia/Nemotron-H-56B-Base-8K"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: nvidia/Nemotron-H-56B-Base-8K: unsupported: hybrid Mamba-2")
