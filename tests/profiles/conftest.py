"""Shared fixtures of the profile tests: the bundled sample files and small native frames."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from optimizer.resources import bundled_dir


@pytest.fixture(scope="session")
def samples() -> Path:
    """The repository's ``profiles/`` folder (sample files)."""
    return bundled_dir("profiles")


@pytest.fixture(scope="session")
def vllm_json(samples: Path) -> Path:
    """A ``vllm bench serve --save-result`` file with --metadata gpu/tp/quantization/engine."""
    return samples / "example_vllm_bench_llama-3.1-8b_h100_c64.json"


@pytest.fixture(scope="session")
def vllm_jsonl(samples: Path) -> Path:
    """Two ``--append-result`` lines without deployment metadata (one open loop, one EAGLE-3)."""
    return samples / "example_vllm_bench_qwen3-32b_append.jsonl"


@pytest.fixture(scope="session")
def native_csv(samples: Path) -> Path:
    """Seven native-schema rows as CSV."""
    return samples / "example_native.csv"


@pytest.fixture(scope="session")
def native_parquet(samples: Path) -> Path:
    """The same seven rows as Parquet."""
    return samples / "example_native.parquet"


@pytest.fixture
def qwen_overrides() -> dict[str, object]:
    """What the JSONL sample lacks."""
    return {"gpu": "h100_sxm", "tp": 2, "engine": "vllm", "quantization": "fp8"}


def _native_row(**changes: object) -> dict[str, object]:
    """A valid native-schema row; keyword arguments replace fields."""
    row: dict[str, object] = {
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "gpu": "h100_sxm",
        "engine": "vllm",
        "engine_version": "0.11.0",
        "mode": "agg",
        "quantization": "fp8",
        "tp": 1,
        "concurrency": 8,
        "isl": 1024,
        "osl": 128,
        "ttft_ms": 120.5,
        "tpot_ms": 9.25,
        "source": "unit-test",
        "source_id": "r1",
    }
    row.update(changes)
    return row


@pytest.fixture
def native_row() -> Callable[..., dict[str, object]]:
    """Factory of a valid native-schema row; keyword arguments replace fields."""
    return _native_row


@pytest.fixture
def native_frame() -> pd.DataFrame:
    """Five valid, distinct native rows."""
    return pd.DataFrame(
        [_native_row(source_id=f"r{i}", concurrency=2**i, ttft_ms=100.0 + i) for i in range(5)]
    )
