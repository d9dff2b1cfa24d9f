"""`epopt surrogate`: train on stored runs, list versions, evaluate, reject bad splits."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from optimizer.cli.main import app, main
from optimizer.profiles import load_reference_profiles, write_native

runner = CliRunner()


@pytest.fixture(scope="module")
def stored_db(tmp_path_factory) -> str:
    """A database holding one model's aggregated H100 runs (small, so training is quick)."""
    tmp = tmp_path_factory.mktemp("surrogate-cli")
    runs = load_reference_profiles()
    subset = runs[
        (runs["mode"] == "agg") & (runs["model"] == "Qwen/Qwen3-32B") & (runs["gpu"] == "h100_sxm")
    ]
    path = tmp / "qwen_h100.csv"
    write_native(subset, path)
    url = f"sqlite:///{tmp / 'cli.sqlite3'}"
    result = runner.invoke(app, ["profiles", "import", str(path), "--url", url])
    assert result.exit_code == 0, result.output
    return url


def test_train_stores_a_version_that_list_shows(stored_db):
    result = runner.invoke(
        app, ["surrogate", "train", "--url", stored_db, "--no-evaluate", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["metrics"]["training_rows"] > 100
    assert len(payload["training_data_hash"]) == 64
    listed = runner.invoke(app, ["surrogate", "list", "--url", stored_db])
    assert listed.exit_code == 0
    assert payload["version"] in listed.output


def test_train_says_which_runs_it_left_out_for_their_layout(tmp_path):
    runs = load_reference_profiles()
    subset = runs[
        (runs["mode"] == "agg") & (runs["model"] == "Qwen/Qwen3-32B") & (runs["gpu"] == "h100_sxm")
    ]
    impossible = subset.head(2).assign(tp=3, source_id=["bad-1", "bad-2"])  # 64 heads
    path = tmp_path / "with_bad_layouts.csv"
    write_native(pd.concat([subset, impossible]), path)
    url = f"sqlite:///{tmp_path / 'bad.sqlite3'}"
    assert runner.invoke(app, ["profiles", "import", str(path), "--url", url]).exit_code == 0
    result = runner.invoke(app, ["surrogate", "train", "--url", url, "--no-evaluate", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["metrics"]["excluded_layout_rows"] == 2
    (reason,) = payload["excluded_layouts"]
    assert "tp 3 does not divide Qwen/Qwen3-32B's 64 attention heads" in reason


def test_evaluate_prior_split_on_stored_runs(stored_db):
    result = runner.invoke(
        app,
        ["surrogate", "evaluate", "--from-db", "--url", stored_db, "--split", "prior", "--json"],
    )
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)["results"]
    assert row["split"] == "prior only"
    assert 0 < row["tpot_mape"] < 10


def test_train_on_an_empty_database_says_what_to_do(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    assert main(["db", "upgrade", "--url", url]) == 0
    assert main(["surrogate", "train", "--url", url]) == 2
    assert "epopt profiles import" in capsys.readouterr().err


def test_unknown_split_is_rejected_with_the_allowed_names(capsys):
    assert main(["surrogate", "evaluate", "--split", "random"]) == 2
    err = capsys.readouterr().err
    assert "--split" in err and "unseen" in err and "aiconfigurator" in err
