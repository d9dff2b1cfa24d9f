"""`epopt recommend` end to end: output, JSON, exit codes, audit record, plots, files,
an optuna study, and training a surrogate when none is stored."""

from __future__ import annotations

import json

import pytest
from search_testing import MODEL

from optimizer.cli import main as cli
from optimizer.cli.recommend import NO_CONFIGURATION_EXIT, recommend_command
from optimizer.profiles import load_reference_profiles, write_native
from optimizer.storage import load_recommendation, open_database
from optimizer.storage.database import mask_url
from optimizer.surrogate.registry import save_trained_surrogate

BASE = [
    "recommend",
    "--model",
    MODEL,
    "--gpu",
    "h100_sxm",
    "--isl",
    "1024",
    "--osl",
    "256",
    "--rate",
    "4",
    "--engine",
    "vllm",
    "--pin",
    "kv_block_size=16",
    "--pin",
    "max_num_batched_tokens=8192",
    "--pin",
    "max_batch_size=16,64,256",
]


@pytest.fixture(scope="module", autouse=True)
def command():
    """Run through epopt's own entry point (its error-to-exit-code mapping); the
    command is registered there unless main.py already does."""
    if "recommend" not in [c.name for c in cli.app.registered_commands]:
        cli.app.command("recommend")(recommend_command)


@pytest.fixture(scope="module")
def database(tmp_path_factory, surrogate) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('recommend-cli') / 'epopt.sqlite3'}"
    engine = open_database(url, auto_upgrade=True)
    runs = load_reference_profiles().head(50)
    save_trained_surrogate(engine, surrogate, runs, {"training_rows": 50}, version="test-v1")
    return url


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main([*args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_recommends_prints_launch_and_records_the_surrogate_version(capsys, database, tmp_path):
    plot = tmp_path / "front.png"
    table = tmp_path / "candidates.csv"
    manifest = tmp_path / "deploy.yaml"
    code, out, _ = _run(
        capsys,
        *BASE,
        "--slo",
        "ttft_p95<=1s,tpot_p95<=40ms",
        "--url",
        database,
        "--plot",
        str(plot),
        "--candidates",
        str(table),
        "--manifest",
        str(manifest),
    )
    assert code == 0, out
    assert "Recommended configuration" in out
    assert "predicted p95: TTFT" in out and "launch: vllm serve" in out
    assert "capacity plan:" in out and "$" in out
    assert plot.stat().st_size > 1000 and table.stat().st_size > 100
    assert "kind: Deployment" in manifest.read_text()
    record_id = out.strip().splitlines()[-1].split()[-1]
    stored = load_recommendation(open_database(database), record_id)
    assert stored.surrogate_version == "test-v1"
    assert stored.inputs["model"] == MODEL and stored.outputs["found"] is True


def test_json_output_and_html_plot(capsys, database, tmp_path):
    plot = tmp_path / "front.html"
    code, out, err = _run(
        capsys, *BASE, "--slo", "ttft_p95<=1s", "--url", database, "--json", "--plot", str(plot)
    )
    assert code == 0
    payload = json.loads(out)
    assert payload["found"] and payload["chosen"]["engine"] == "vllm"
    assert payload["deployment"]["pools"][0]["deployment"]["launch"]["command"].startswith("vllm")
    assert payload["provenance"]["surrogate_version"] == "test-v1"
    assert payload["files"]["plot"].endswith("front.html") and "<html" in plot.read_text()[:500]
    assert err == ""  # no progress bar with --json


def test_an_slo_nothing_meets_exits_with_its_own_code(capsys, database):
    code, out, _ = _run(capsys, *BASE, "--slo", "ttft_p95<=5ms", "--url", database, "--no-store")
    assert code == NO_CONFIGURATION_EXIT == 4
    assert "No configuration meets the SLO" in out
    assert "Closest configurations" in out and "miss ttft_p95" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gpu", "h999", "--isl", "100", "--osl", "10", "--rate", "1"], "h999"),
        (
            ["--gpu", "h100_sxm", "--isl", "100", "--osl", "10", "--rate", "1", "--slo", "ttft<=2"],
            "slo",
        ),
        (["--gpu", "h100_sxm", "--isl", "100", "--osl", "10"], "--rate"),
        (
            ["--gpu", "h100_sxm", "--isl", "100", "--osl", "10", "--rate", "1", "--search", "grid"],
            "--search",
        ),
        (
            ["--gpu", "h100_sxm", "--isl", "100", "--osl", "10", "--rate", "1", "--pin", "tp=two"],
            "--pin",
        ),
        (
            [
                "--gpu",
                "h100_sxm",
                "--isl",
                "100",
                "--osl",
                "10",
                "--rate",
                "1",
                "--choose",
                "speed",
            ],
            "speed",
        ),
        (
            ["--gpu", "h100_sxm", "--isl", "100", "--osl", "10", "--rate", "1", "--trials", "5"],
            "--trials",
        ),
        (
            ["--gpu", "h100_sxm", "--isl", "100", "--osl", "10", "--rate", "1", "--engine", "tgi"],
            "--engine",
        ),
    ],
)
def test_bad_input_exits_2_naming_the_field(capsys, database, args, message):
    code, _, err = _run(capsys, "recommend", "--model", MODEL, *args, "--url", database)
    assert code == 2
    assert err.startswith("error:") and message in err


def test_optuna_search_keeps_a_study(capsys, database):
    code, out, _ = _run(
        capsys,
        *BASE,
        "--slo",
        "ttft_p95<=1s",
        "--url",
        database,
        "--search",
        "optuna",
        "--trials",
        "12",
        "--study",
        "cli-study",
        "--json",
        "--no-pools",
    )
    assert code == 0
    search = json.loads(out)["search"]
    assert search["backend"] == "optuna:tpe" and search["trials"] == 12
    # the study lives in epopt's own database file
    assert search["study_name"] == "cli-study"
    assert search["study_storage"] == mask_url(database)


@pytest.mark.slow
def test_trains_and_stores_a_surrogate_when_none_is_stored(capsys, tmp_path):
    runs = load_reference_profiles()
    subset = runs[
        (runs["mode"] == "agg")
        & (runs["model"] == "meta-llama/Llama-3.1-8B-Instruct")
        & (runs["gpu"] == "h100_sxm")
    ]
    path = tmp_path / "runs.csv"
    write_native(subset, path)
    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    assert cli.main(["profiles", "import", str(path), "--url", url]) == 0
    capsys.readouterr()
    code, _, err = _run(capsys, *BASE, "--slo", "ttft_p95<=1s", "--url", url, "--no-pools")
    assert code == 0, err
    assert "no surrogate stored: training one on" in err
    assert "trained and stored surrogate" in err
    assert cli.main(["surrogate", "list", "--url", url]) == 0
