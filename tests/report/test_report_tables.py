"""Candidate tables: CSV and Parquet by suffix, round trips, clear errors."""

from __future__ import annotations

import pandas as pd
import pytest

from optimizer.domain import Engine, Quantization
from optimizer.errors import InvalidInputError
from optimizer.report import read_candidates, write_candidates


@pytest.fixture()
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "engine": [Engine.VLLM, Engine.SGLANG, Engine.TRTLLM],
            "quantization": [Quantization.FP8, Quantization.BF16, Quantization.NVFP4],
            "tp": [1, 2, 4],
            "max_batch_size": [64, None, 256],
            "usd_per_mtok": [0.42, 1.5, float("inf")],
            "feasible": [True, True, False],
        }
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".pq"])
def test_round_trip(tmp_path, frame, suffix):
    path = write_candidates(frame, tmp_path / "out" / f"candidates{suffix}")
    assert path.is_file()
    back = read_candidates(path)
    assert list(back.columns) == list(frame.columns)
    assert back["engine"].tolist() == ["vllm", "sglang", "trtllm"]  # enum values as strings
    assert back["quantization"].tolist() == ["fp8", "bf16", "nvfp4"]
    assert back["tp"].tolist() == [1, 2, 4]
    assert back["usd_per_mtok"].tolist() == [0.42, 1.5, float("inf")]
    assert back["feasible"].tolist() == [True, True, False]
    assert pd.isna(back["max_batch_size"][1])


def test_csv_is_plain_text_without_the_default_index(tmp_path, frame):
    path = write_candidates(frame, tmp_path / "c.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "engine,quantization,tp,max_batch_size,usd_per_mtok,feasible"
    assert lines[1].startswith("vllm,fp8,1,")


def test_parquet_file_has_the_magic_bytes(tmp_path, frame):
    data = write_candidates(frame, tmp_path / "c.parquet").read_bytes()
    assert data[:4] == b"PAR1" and data[-4:] == b"PAR1"


def test_named_index_is_kept_as_a_column(tmp_path, frame):
    indexed = frame.set_index(pd.Index(["a", "b", "c"], name="candidate_id"))
    back = read_candidates(write_candidates(indexed, tmp_path / "c.parquet"))
    assert back["candidate_id"].tolist() == ["a", "b", "c"]


def test_unsupported_suffix_names_the_allowed_ones(tmp_path, frame):
    with pytest.raises(InvalidInputError) as err:
        write_candidates(frame, tmp_path / "c.xlsx")
    assert err.value.field == "path"
    assert ".csv" in str(err.value) and ".parquet" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_unstorable_column_is_a_clear_error_and_leaves_no_file(tmp_path):
    bad = pd.DataFrame({"mixed": [1, "two", {"three": 3}]})
    with pytest.raises(InvalidInputError) as err:
        write_candidates(bad, tmp_path / "c.parquet")
    assert err.value.field == "frame"
    assert list(tmp_path.iterdir()) == []


def test_overwrite_replaces_the_file(tmp_path, frame):
    path = tmp_path / "c.csv"
    write_candidates(frame, path)
    write_candidates(frame.iloc[:1], path)
    assert len(read_candidates(path)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.csv"]  # no temporary left behind


def test_reading_a_missing_file(tmp_path):
    with pytest.raises(InvalidInputError) as err:
        read_candidates(tmp_path / "none.csv")
    assert err.value.field == "path"
