"""Stored surrogates: train on stored runs, save with provenance, load back verified."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from optimizer.errors import EpoptError, InvalidInputError
from optimizer.profiles import REFERENCE, import_profiles, load_reference_profiles
from optimizer.storage import create_engine_for, upgrade
from optimizer.surrogate.artifact import training_data_hash
from optimizer.surrogate.model import Surrogate
from optimizer.surrogate.registry import (
    load_trained_surrogate,
    save_trained_surrogate,
    stored_training_runs,
)


@pytest.fixture
def db_engine(tmp_path):
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    upgrade(url)
    engine = create_engine_for(url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def small_runs() -> pd.DataFrame:
    runs = load_reference_profiles()
    keep = (
        (runs["mode"] == "agg") & (runs["model"] == "Qwen/Qwen3-32B") & (runs["gpu"] == "h100_sxm")
    )
    return runs[keep]


@pytest.fixture(scope="module")
def small_model(small_runs) -> Surrogate:
    return Surrogate(max_iter=30, cv_folds=2, random_state=0).fit(small_runs)


def test_empty_storage_has_no_training_runs(db_engine):
    with pytest.raises(InvalidInputError, match="epopt profiles import"):
        stored_training_runs(db_engine)


def test_stored_training_runs_are_the_aggregated_ones(db_engine):
    import_profiles(REFERENCE, db_engine)
    runs = stored_training_runs(db_engine)
    assert len(runs) == 3_619
    assert set(runs["mode"]) == {"agg"}


def test_saved_surrogate_loads_back_with_provenance_and_same_predictions(
    db_engine, small_runs, small_model
):
    model = small_model
    stored = save_trained_surrogate(db_engine, model, small_runs, {"ttft_mape": 0.1})
    assert stored.training_data_hash == training_data_hash(small_runs)
    assert stored.version.endswith(stored.training_data_hash[:8])
    assert stored.features == [str(f) for f in model.feature_names_in_]
    assert stored.library_versions["scikit-learn"]

    loaded, record = load_trained_surrogate(db_engine)
    assert record.version == stored.version
    rows = small_runs.drop(columns=["ttft_ms", "tpot_ms"]).head(50)
    pd.testing.assert_frame_equal(loaded.predict(rows), model.predict(rows))


def test_tampered_artifact_is_refused(db_engine, small_runs, small_model):
    stored = save_trained_surrogate(db_engine, small_model, small_runs, {}, version="v-tampered")
    with db_engine.begin() as conn:
        blob = conn.execute(
            sa.text("SELECT artifact FROM surrogates WHERE version = :v"), {"v": stored.version}
        ).scalar_one()
        damaged = bytearray(blob)
        damaged[-10] ^= 0xFF
        conn.execute(
            sa.text("UPDATE surrogates SET artifact = :a WHERE version = :v"),
            {"a": bytes(damaged), "v": stored.version},
        )
    with pytest.raises(EpoptError, match="checksum mismatch"):
        load_trained_surrogate(db_engine, "v-tampered")
