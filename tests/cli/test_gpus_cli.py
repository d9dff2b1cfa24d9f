"""`epopt gpus list`, in process."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from optimizer.catalog.gpus import load_gpu_catalog
from optimizer.cli.main import app, main
from optimizer.settings import Settings

runner = CliRunner()


@pytest.fixture(autouse=True)
def _catalog_prices(monkeypatch):
    monkeypatch.delenv("EPOPT_GPU_PRICES", raising=False)
    monkeypatch.delenv("EPOPT_PRICES_FILE", raising=False)


def test_table_lists_every_gpu():
    result = runner.invoke(app, ["gpus", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["id", "mem", "GiB"]
    ids = [line.split()[0] for line in lines[1:] if not line.startswith("no price")]
    assert ids == list(load_gpu_catalog(Settings()))
    assert lines[-1].startswith("no price for gb300")


def test_json_carries_every_field_and_overrides(monkeypatch):
    monkeypatch.setenv("EPOPT_GPU_PRICES", '{"h100": 2.25}')
    result = runner.invoke(app, ["gpus", "list", "--json"])
    assert result.exit_code == 0, result.output
    by_id = {g["id"]: g for g in json.loads(result.output)}
    assert by_id["h100_sxm"]["price_usd_per_hour"] == 2.25
    assert by_id["h100_sxm"]["price_source"] == "user override (EPOPT_GPU_PRICES)"
    assert by_id["b200_sxm"]["fp4_tflops"] == 9000
    assert by_id["b200_sxm"]["price_date"] == "2025-12-21"


def test_bad_override_exits_2(monkeypatch, capsys):
    monkeypatch.setenv("EPOPT_GPU_PRICES", '{"h100_sxm": -3}')
    assert main(["gpus", "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: EPOPT_GPU_PRICES.h100_sxm") and "positive" in err
