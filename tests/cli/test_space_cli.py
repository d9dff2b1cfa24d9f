"""`epopt space`, in process."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from optimizer.cli.main import app, main
from optimizer.space import bundled_space_path

runner = CliRunner()
BASE = ["space", "--engine", "vllm", "--model", "meta-llama/Llama-3.1-70B", "--gpu", "h100_sxm"]


@pytest.fixture(autouse=True)
def _catalog_prices(monkeypatch):
    monkeypatch.delenv("EPOPT_GPU_PRICES", raising=False)
    monkeypatch.delenv("EPOPT_PRICES_FILE", raising=False)


def test_json_counts_reasons_and_examples():
    result = runner.invoke(
        app, [*BASE, "--isl", "1024", "--osl", "1024", "--max-batch-size", "8", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["engine"], data["gpu"], data["isl"], data["osl"]) == (
        "vllm",
        "h100_sxm",
        1024,
        1024,
    )
    assert data["memory_fraction"] == {"flag": "gpu_memory_utilization", "default": 0.9}
    assert 0 < data["feasible"] < data["total"]
    rejected = {r["constraint"]: r for r in data["rejected"]}
    assert data["feasible"] + sum(r["count"] for r in data["rejected"]) == data["total"]
    assert "fits_in_memory" in rejected and rejected["fits_in_memory"]["reason"]
    assert data["examples"]
    for example in data["examples"]:
        assert example["max_batch_size"] == 8
        assert example["weights_gib"] > 0 and example["budget_gib"] == pytest.approx(
            71.682, abs=1e-3
        )
        assert example["max_sequences"] >= 8


def test_text_report():
    result = runner.invoke(app, [*BASE, "--max-batch-size", "8", "--examples", "3"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("vllm | ") and "2048 tokens per sequence" in lines[0]
    assert "candidates" in lines[1] and "feasible" in lines[1]
    assert any("fits_in_memory:" in line for line in lines)
    header = next(i for i, line in enumerate(lines) if line.startswith("example feasible"))
    assert lines[header + 1].split()[:4] == ["tp", "pp", "dp", "ep"]
    assert len(lines) - header - 2 == 3


def test_broken_space_file_exits_2_naming_file_and_knob(tmp_path, capsys):
    data = yaml.safe_load(bundled_space_path("vllm").read_text())
    data["knobs"]["tp"]["values"] = []
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data))
    code = main([*BASE, "--space-file", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and str(path) in err and "knob 'tp'" in err


@pytest.mark.parametrize(
    ("flag", "value", "fragment"),
    [
        ("--engine", "tgi", "unknown engine"),
        ("--gpu", "h900", "unknown gpu"),
        ("--model", "acme/none-1B", "acme/none-1B"),
    ],
)
def test_bad_ids_exit_2(capsys, flag, value, fragment):
    argv = list(BASE)
    argv[argv.index(flag) + 1] = value
    code = main(argv)
    assert code == 2
    assert fragment in capsys.readouterr().err
