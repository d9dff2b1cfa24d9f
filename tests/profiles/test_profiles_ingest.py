"""import_profiles: validate the whole file first, then insert idempotently (SQLite file)."""

from __future__ import annotations

import time

import pytest

from optimizer.errors import ProfileImportError
from optimizer.profiles import REFERENCE, import_profiles, read_profiles, write_native
from optimizer.storage.database import open_database
from optimizer.storage.profile_store import count_profile_runs, load_profile_runs


@pytest.fixture
def db(tmp_path):
    engine = open_database(f"sqlite:///{tmp_path / 'epopt.sqlite3'}", auto_upgrade=True)
    yield engine
    engine.dispose()


def test_importing_the_same_file_twice_adds_nothing_the_second_time(db, native_csv):
    first = import_profiles(native_csv, db)
    assert (first.added, first.skipped) == (7, 0)
    second = import_profiles(native_csv, db)
    assert (second.added, second.skipped) == (0, 7)
    assert count_profile_runs(db) == 7


def test_the_same_runs_from_parquet_are_already_present(db, native_csv, native_parquet):
    import_profiles(native_csv, db)
    assert import_profiles(native_parquet, db).added == 0


def test_stored_runs_read_back_equal(db, vllm_json):
    runs = read_profiles(vllm_json)
    import_profiles(vllm_json, db)
    stored = load_profile_runs(db)
    assert stored["run_key"].tolist() == runs["run_key"].tolist()
    assert stored.loc[0, "extra"] == runs.loc[0, "extra"]
    assert stored.loc[0, "measured_at"] == runs.loc[0, "measured_at"]


def test_a_bad_row_writes_nothing(db, native_frame, tmp_path):
    native_frame.loc[2, "engine"] = "tensorrt"
    path = tmp_path / "runs.csv"
    native_frame.to_csv(path, index=False)
    with pytest.raises(ProfileImportError) as info:
        import_profiles(path, db)
    assert (info.value.row, info.value.field) == (3, "engine")
    assert count_profile_runs(db) == 0


def test_overrides_include_the_serving_engine(db, vllm_jsonl, qwen_overrides):
    result = import_profiles(vllm_jsonl, db, model="Qwen/Qwen3-32B", **qwen_overrides)
    assert result.added == 2
    assert count_profile_runs(db, engine="vllm", gpu="h100_sxm") == 2


def test_a_partly_known_file_adds_only_the_new_runs(db, native_frame, tmp_path):
    runs = read_profiles(write_native(native_frame, tmp_path / "all.csv"))
    write_native(runs.head(2), tmp_path / "first.csv")
    assert import_profiles(tmp_path / "first.csv", db).added == 2
    result = import_profiles(tmp_path / "all.csv", db)
    assert (result.added, result.skipped) == (3, 2)


def test_reference_set_into_sqlite(db):
    start = time.perf_counter()
    first = import_profiles(REFERENCE, db)
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    second = import_profiles(REFERENCE, db)
    second_s = time.perf_counter() - start
    assert (first.added, first.skipped) == (5221, 0)
    assert (second.added, second.skipped) == (0, 5221)
    assert count_profile_runs(db) == 5221
    assert count_profile_runs(db, mode="disagg") == 1602
    assert first_s < 30 and second_s < 30  # ~1.5 s and ~0.4 s on 2 shared cores
