"""load_reference_profiles: the public entry point researchers use."""

from __future__ import annotations

import time

import optimizer.profiles as profiles
from optimizer.profiles import OUTPUT_COLUMNS, REFERENCE, load_reference_profiles, read_profiles


def test_public_exports():
    assert "load_reference_profiles" in profiles.__all__
    assert set(profiles.__all__) <= set(dir(profiles))


def test_reference_runs_in_native_schema():
    runs = load_reference_profiles()
    assert tuple(runs.columns) == OUTPUT_COLUMNS
    assert len(runs) == 5221
    assert runs["ttft_ms"].gt(0).all() and runs["tpot_ms"].gt(0).all()


def test_each_call_returns_an_independent_copy():
    first = load_reference_profiles()
    first.loc[0, "ttft_ms"] = -1.0
    first.loc[0, "extra"]["batch_size"] = -1
    first["extra"].iloc[1].clear()
    second = load_reference_profiles()
    assert second.loc[0, "ttft_ms"] > 0
    assert second.loc[0, "extra"]["batch_size"] != -1
    assert second["extra"].iloc[1]


def test_cached_calls_are_cheap():
    load_reference_profiles()
    start = time.perf_counter()
    load_reference_profiles()
    assert time.perf_counter() - start < 1.0  # ~0.05 s: a copy, not a re-read


def test_read_profiles_reference_sentinel():
    assert len(read_profiles(REFERENCE)) == 5221
    assert repr(REFERENCE) == "REFERENCE"
