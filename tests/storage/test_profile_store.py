"""The profile-run store on every backend: bulk, idempotent, all-or-nothing imports."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from optimizer.domain.enums import Engine
from optimizer.domain.profile_run import NATIVE_COLUMNS
from optimizer.errors import InvalidInputError, StorageError
from optimizer.storage import count_profile_runs, insert_profile_runs, load_profile_runs
from optimizer.storage.profile_store import RUN_COLUMNS


def test_insert_then_reinsert_adds_nothing(engine, make_runs):
    runs = make_runs(50)
    first = insert_profile_runs(engine, runs, import_batch="batch-1")
    assert (first.added, first.skipped, first.import_batch) == (50, 0, "batch-1")
    again = insert_profile_runs(engine, runs)
    assert (again.added, again.skipped) == (0, 50)
    assert count_profile_runs(engine) == 50
    assert count_profile_runs(engine, import_batch="batch-1") == 50


def test_partly_new_frame_adds_only_the_new_runs(engine, make_runs):
    runs = make_runs(30)
    insert_profile_runs(engine, runs.iloc[:20])
    result = insert_profile_runs(engine, runs)
    assert (result.added, result.skipped) == (10, 20)
    assert load_profile_runs(engine)["run_key"].tolist() == runs["run_key"].tolist()


def test_duplicates_inside_one_frame_are_inserted_once(engine, make_runs):
    runs = make_runs(5)
    doubled = pd.concat([runs, runs.iloc[[1, 3, 1]]], ignore_index=True)
    result = insert_profile_runs(engine, doubled)
    assert (result.added, result.skipped) == (5, 3)
    assert count_profile_runs(engine) == 5


def test_generated_import_batch_ids_differ(engine, make_runs):
    a = insert_profile_runs(engine, make_runs(2))
    b = insert_profile_runs(engine, make_runs(3))
    assert a.import_batch != b.import_batch and len(a.import_batch) == 32
    assert count_profile_runs(engine, import_batch=a.import_batch) == 2


@pytest.mark.parametrize(
    ("column", "bad_value", "constraint"),
    [
        ("tp", 0, "parallel_degrees"),
        ("ttft_ms", -1.0, "targets"),
        ("model", None, "model"),
        ("concurrency", None, "load_given"),
    ],
)
def test_a_bad_row_in_the_middle_writes_nothing(engine, make_runs, column, bad_value, constraint):
    # 2,500 rows: more than one insert batch, so earlier batches really are rolled back
    runs = make_runs(2500)
    runs[column] = runs[column].astype(object)
    runs.at[1500, column] = bad_value
    with pytest.raises(StorageError, match="rolled back, nothing written") as caught:
        insert_profile_runs(engine, runs)
    assert constraint in str(caught.value).lower()
    assert count_profile_runs(engine) == 0


def test_a_failed_batch_leaves_earlier_imports_intact(engine, make_runs):
    runs = make_runs(10)
    insert_profile_runs(engine, runs.iloc[:4])
    bad = runs.copy()
    bad.at[7, "isl"] = 0
    with pytest.raises(StorageError):
        insert_profile_runs(engine, bad)
    assert count_profile_runs(engine) == 4


def test_round_trip_keeps_values_and_dtypes(engine, make_runs):
    measured = datetime(2025, 3, 1, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    runs = make_runs(
        3,
        kv_cache_dtype=["fp8", None, "bf16"],
        request_rate=[None, 2.5, None],
        ttft_p99_ms=[120.0, None, 99.5],
        kv_block_size=[16, None, 32],
        measured_at=[measured, None, datetime(2025, 1, 1)],
        extra=[{"pool": {"prefill": 2}}, None, {"note": "x"}],
        source_id=["a", None, "c"],
    )
    insert_profile_runs(engine, runs)
    loaded = load_profile_runs(engine)
    assert list(loaded.columns) == [*NATIVE_COLUMNS, "run_key"]
    assert loaded["tp"].dtype == np.int64
    assert loaded["kv_block_size"].dtype == "Int64"
    assert loaded["ttft_ms"].dtype == np.float64
    assert str(loaded["measured_at"].dtype) == "datetime64[us, UTC]"
    assert loaded["kv_block_size"].tolist() == [16, pd.NA, 32]
    assert loaded["kv_cache_dtype"].tolist() == ["fp8", None, "bf16"]
    assert np.isnan(loaded.at[0, "request_rate"]) and loaded.at[1, "request_rate"] == 2.5
    assert loaded.at[0, "measured_at"] == pd.Timestamp("2025-03-01 10:30", tz="UTC")
    assert pd.isna(loaded.at[1, "measured_at"])
    assert loaded.at[2, "measured_at"] == pd.Timestamp("2025-01-01", tz="UTC")  # naive = UTC
    assert loaded["extra"].tolist() == [{"pool": {"prefill": 2}}, None, {"note": "x"}]
    assert loaded["run_key"].tolist() == runs["run_key"].tolist()
    pd.testing.assert_frame_equal(
        loaded[["model", "gpu", "engine", "isl", "osl", "ttft_ms", "tpot_ms"]],
        runs[["model", "gpu", "engine", "isl", "osl", "ttft_ms", "tpot_ms"]],
        check_dtype=False,  # the test frame holds pandas strings, the store gives str objects
    )


def test_extra_with_numpy_values_and_nan_is_stored_as_plain_json(engine, make_runs):
    runs = make_runs(1)
    runs["extra"] = [{"n": np.int64(3), "x": np.float64("nan"), "v": np.array([1.5, 2.0])}]
    insert_profile_runs(engine, runs)
    assert load_profile_runs(engine).at[0, "extra"] == {"n": 3, "x": None, "v": [1.5, 2.0]}


def test_load_and_count_filter_by_value_list_and_null(engine, make_runs):
    runs = make_runs(
        6,
        model=["m/a", "m/a", "m/b", "m/b", "m/c", "m/a"],
        gpu=["h100_sxm", "h200_sxm", "h100_sxm", "h200_sxm", "h100_sxm", "h100_sxm"],
        engine=["vllm", "sglang", "vllm", "trtllm", "sglang", "vllm"],
        kv_cache_dtype=[None, "fp8", None, None, "fp8", "bf16"],
    )
    insert_profile_runs(engine, runs)
    assert count_profile_runs(engine, model="m/a") == 3
    assert count_profile_runs(engine, model="m/a", gpu="h100_sxm", engine="vllm") == 2
    assert count_profile_runs(engine, engine=Engine.SGLANG) == 2
    assert count_profile_runs(engine, gpu=["h200_sxm"], engine=["sglang", "trtllm"]) == 2
    assert count_profile_runs(engine, kv_cache_dtype=None) == 3
    assert count_profile_runs(engine, tp=1.0, isl=[100, 101]) == 2
    subset = load_profile_runs(engine, model=["m/b", "m/c"])
    assert subset["model"].tolist() == ["m/b", "m/b", "m/c"]
    assert subset.index.tolist() == [0, 1, 2]
    empty = load_profile_runs(engine, model="nobody")
    assert empty.empty and list(empty.columns) == list(RUN_COLUMNS)
    assert empty["tp"].dtype == np.int64


def test_unknown_filter_names_the_allowed_columns(engine):
    with pytest.raises(InvalidInputError, match=r"^colour: .*\(allowed: model, gpu, engine"):
        count_profile_runs(engine, colour="red")
    with pytest.raises(InvalidInputError, match=r"^extra: not a profile-run column"):
        load_profile_runs(engine, extra={})


def test_wrong_columns_are_refused_before_touching_the_database(engine, make_runs):
    runs = make_runs(2)
    with pytest.raises(InvalidInputError, match="missing column\\(s\\) run_key"):
        insert_profile_runs(engine, runs.drop(columns=["run_key"]))
    with pytest.raises(InvalidInputError, match="unknown column\\(s\\) colour"):
        insert_profile_runs(engine, runs.assign(colour="red"))
    runs.at[1, "run_key"] = None
    with pytest.raises(InvalidInputError, match="run_key: missing in row 2"):
        insert_profile_runs(engine, runs)
    runs.at[1, "run_key"] = "ABC"
    with pytest.raises(InvalidInputError, match="run_key: row 2 of the frame: 'ABC' is not a SHA"):
        insert_profile_runs(engine, runs)
    runs = make_runs(1)
    runs["tp"] = [1.5]
    with pytest.raises(InvalidInputError, match=r"tp: row 1 of the frame: 1\.5 is not an integer"):
        insert_profile_runs(engine, runs)
    runs = make_runs(2)
    runs["extra"] = [None, {"when": object()}]
    with pytest.raises(InvalidInputError, match="extra: row 2 of the frame: not storable as JSON"):
        insert_profile_runs(engine, runs)
    assert count_profile_runs(engine) == 0


def test_import_batch_ids_longer_than_the_column_are_refused(engine, make_runs):
    with pytest.raises(InvalidInputError, match=r"^import_batch: must be 1 to 64"):
        insert_profile_runs(engine, make_runs(1), import_batch="b" * 65)


def test_empty_frame_adds_nothing(engine, make_runs):
    result = insert_profile_runs(engine, make_runs(0))
    assert (result.added, result.skipped) == (0, 0)


def test_a_full_reference_sized_import_is_fast(engine, make_runs):
    runs = make_runs(5221, measured_at=datetime(2025, 1, 1, tzinfo=UTC), extra={"k": 1})
    start = time.perf_counter()
    result = insert_profile_runs(engine, runs)
    elapsed = time.perf_counter() - start
    assert result.added == 5221
    again = insert_profile_runs(engine, runs)
    assert again.skipped == 5221
    assert len(load_profile_runs(engine)) == 5221
    # measured ~0.5 s on SQLite and ~1 s on PostgreSQL; one round trip per row would be far slower
    assert elapsed < 5.0, f"5,221 rows took {elapsed:.2f} s"
