"""`epopt profiles import | list | stats` against a SQLite file in tmp_path."""

from __future__ import annotations

import pandas as pd
import pytest

from optimizer.cli.main import main
from optimizer.cli.profiles import FORMATS, STATS_DIMENSIONS
from optimizer.profiles import importer_names
from optimizer.resources import bundled_dir
from optimizer.storage.database import open_database
from optimizer.storage.profile_store import count_profile_runs

SAMPLES = bundled_dir("profiles")
QWEN = ["--gpu", "h100_sxm", "--tp", "2", "--engine", "vllm", "--quantization", "fp8"]


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'epopt.sqlite3'}"


def _count(url: str, **filters: object) -> int:
    engine = open_database(url, auto_upgrade=True)
    try:
        return count_profile_runs(engine, **filters)
    finally:
        engine.dispose()


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_format_choices_match_the_importer_registry():
    assert list(FORMATS) == ["auto", *importer_names()]


def test_import_vllm_bench_file_twice(capsys, url):
    path = str(SAMPLES / "example_vllm_bench_qwen3-32b_append.jsonl")
    code, out, _ = _run(capsys, "profiles", "import", path, *QWEN, "--url", url)
    assert code == 0
    assert "read 2 runs from example_vllm_bench_qwen3-32b_append.jsonl" in out
    assert "added 2, skipped 0 (already present)" in out
    code, out, _ = _run(capsys, "profiles", "import", path, *QWEN, "--url", url)
    assert code == 0 and "added 0, skipped 2 (already present)" in out
    assert _count(url, gpu="h100_sxm", tp=2) == 2


def test_missing_deployment_field_names_the_option(capsys, url):
    path = str(SAMPLES / "example_vllm_bench_qwen3-32b_append.jsonl")
    code, _, err = _run(capsys, "profiles", "import", path, "--gpu", "h100_sxm", "--url", url)
    assert code == 2
    assert err.startswith("error: example_vllm_bench_qwen3-32b_append.jsonl: row 1: field 'engine'")
    assert "--engine" in err
    assert _count(url) == 0


def test_bad_native_row_is_named_and_nothing_is_written(capsys, url, tmp_path):
    runs = pd.read_csv(SAMPLES / "example_native.csv", dtype=str)
    runs.loc[2, "engine"] = "tensorrt"
    path = tmp_path / "runs.csv"
    runs.to_csv(path, index=False)
    code, _, err = _run(capsys, "profiles", "import", str(path), "--url", url)
    assert code == 2
    assert "runs.csv: row 3: field 'engine'" in err
    assert "'vllm', 'sglang' or 'trtllm'" in err
    assert _count(url) == 0


def test_format_option(capsys, url):
    path = str(SAMPLES / "example_native.parquet")
    code, out, _ = _run(capsys, "profiles", "import", path, "--format", "native", "--url", url)
    assert code == 0 and "added 7" in out
    code, _, err = _run(capsys, "profiles", "import", path, "--format", "csv", "--url", url)
    assert code == 2 and "auto, aiconfigurator, vllm-bench, native" in err


def test_file_or_reference_exactly_one(capsys, url):
    code, _, err = _run(capsys, "profiles", "import", "--url", url)
    assert code == 2 and "--reference" in err
    path = str(SAMPLES / "example_native.csv")
    code, _, err = _run(capsys, "profiles", "import", path, "--reference", "--url", url)
    assert code == 2


def test_reference_import_uses_the_configured_database(capsys, url, monkeypatch):
    monkeypatch.setenv("EPOPT_DATABASE_URL", url)
    code, out, _ = _run(capsys, "profiles", "import", "--reference")
    assert code == 0
    assert "read 5221 runs from aiconfigurator-core==0.12.0:systems/silicon_sample.csv" in out
    assert "added 5221, skipped 0" in out
    code, out, _ = _run(capsys, "profiles", "import", "--reference")
    assert "added 0, skipped 5221" in out

    code, out, _ = _run(capsys, "profiles", "stats")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "5221 stored runs"
    assert lines[1].split() == [*STATS_DIMENSIONS, "runs"]
    assert sum(int(line.split()[-1]) for line in lines[2:]) == 5221

    code, out, _ = _run(capsys, "profiles", "stats", "--by", "mode")
    assert out.splitlines()[2:] == ["   agg  3619", "disagg  1602"]

    code, out, _ = _run(
        capsys, "profiles", "list", "--gpu", "h100_sxm", "--engine", "vllm", "--limit", "4"
    )
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 1 + 4 + 1
    assert all("h100_sxm" in line and "vllm" in line for line in lines[1:5])
    assert lines[-1] == f"4 of {_count(url, gpu='h100_sxm', engine='vllm')} runs"


def test_list_and_stats_on_an_empty_database(capsys, url):
    _count(url)  # create the schema
    code, out, _ = _run(capsys, "profiles", "list", "--model", "nobody/none", "--url", url)
    assert code == 0 and out.strip() == "no stored runs match"
    code, out, _ = _run(capsys, "profiles", "stats", "--url", url)
    assert out.strip() == "0 stored runs"
    code, _, err = _run(capsys, "profiles", "stats", "--by", "colour", "--url", url)
    assert code == 2 and "model, gpu, engine, mode" in err


def test_every_override_field_has_an_import_option():
    import typer.main

    from optimizer.cli.profiles import app
    from optimizer.profiles.importers import OVERRIDE_FIELDS, option_for

    command = typer.main.get_command(app).commands["import"]  # type: ignore[attr-defined]
    options = {opt for param in command.params for opt in param.opts}
    assert {option_for(field) for field in OVERRIDE_FIELDS} <= options
