"""Surrogates, recommendation audit records, jobs and specs, on every backend."""

from __future__ import annotations

import hashlib

import pytest

from optimizer.errors import InvalidInputError, NotFoundError, StorageError
from optimizer.storage import (
    JobStatus,
    create_job,
    list_surrogate_versions,
    load_gpu_spec,
    load_job,
    load_model_spec,
    load_recommendation,
    load_surrogate,
    record_recommendation,
    save_gpu_spec,
    save_model_spec,
    save_surrogate,
    update_job,
)
from optimizer.storage.models import JOB_STATUSES


def _save(engine, version, **kwargs):
    defaults = {
        "training_data_hash": "ab" * 32,
        "features": ["isl", "osl", "tp"],
        "library_versions": {"scikit-learn": "1.5.2"},
        "metrics": {"ttft_mape": 0.21, "tpot_mape": float("nan")},
    }
    if "artifact_path" not in kwargs:
        defaults["artifact"] = f"model {version}".encode()
    return save_surrogate(engine, version=version, **defaults, **kwargs)


def test_surrogate_round_trip_and_newest(engine):
    first = _save(engine, "2025.01")
    assert first.artifact_sha256 == hashlib.sha256(b"model 2025.01").hexdigest()
    _save(engine, "2025.02")
    assert list_surrogate_versions(engine) == ["2025.01", "2025.02"]
    newest = load_surrogate(engine)
    assert newest.version == "2025.02"
    assert newest.artifact_bytes() == b"model 2025.02"
    old = load_surrogate(engine, "2025.01")
    assert old.features == ["isl", "osl", "tp"]
    assert old.metrics == {"ttft_mape": 0.21, "tpot_mape": None}
    assert old.created_at.tzinfo is not None


def test_surrogate_versions_are_immutable(engine):
    _save(engine, "v1")
    with pytest.raises(InvalidInputError, match=r"^version: surrogate 'v1' is already stored"):
        _save(engine, "v1")
    assert list_surrogate_versions(engine) == ["v1"]


def test_surrogate_artifact_by_path_is_hashed_and_checked(engine, tmp_path):
    artifact = tmp_path / "model.joblib"
    artifact.write_bytes(b"weights")
    saved = _save(engine, "p1", artifact_path=artifact)
    assert saved.artifact is None and saved.artifact_path == str(artifact.resolve())
    assert load_surrogate(engine, "p1").artifact_bytes() == b"weights"
    artifact.write_bytes(b"tampered")
    with pytest.raises(StorageError, match="checksum mismatch"):
        load_surrogate(engine, "p1").artifact_bytes()
    artifact.unlink()
    with pytest.raises(StorageError, match="cannot read artifact"):
        load_surrogate(engine, "p1").artifact_bytes()


def test_surrogate_input_errors(engine, tmp_path):
    with pytest.raises(InvalidInputError, match="exactly one of artifact"):
        save_surrogate(
            engine,
            version="x",
            training_data_hash="h",
            features=[],
            library_versions={},
            metrics={},
        )
    with pytest.raises(InvalidInputError, match=r"^artifact_path: cannot read"):
        _save(engine, "x", artifact_path=tmp_path / "missing.bin")
    with pytest.raises(InvalidInputError, match=r"^version: must be 1 to 64"):
        _save(engine, "")
    with pytest.raises(NotFoundError, match="unknown surrogate version '<newest>'"):
        load_surrogate(engine)
    _save(engine, "real")
    with pytest.raises(NotFoundError, match="'ghost'; known: real"):
        load_surrogate(engine, "ghost")


def test_recommendation_audit_record(engine):
    _save(engine, "s1")
    rec = record_recommendation(
        engine,
        inputs={"model": "meta-llama/Llama-3.1-8B", "slo": {"ttft_p95_ms": 500}},
        outputs={"front": [{"tp": 2, "cost": 1.5}]},
        surrogate_version="s1",
    )
    assert len(rec.id) == 32
    loaded = load_recommendation(engine, rec.id)
    assert loaded == rec
    assert loaded.surrogate_version == "s1"
    bare = record_recommendation(engine, inputs={}, outputs={})
    assert load_recommendation(engine, bare.id).surrogate_version is None


def test_recommendation_refuses_an_unknown_surrogate(engine):
    with pytest.raises(NotFoundError, match="unknown surrogate version 'nope'"):
        record_recommendation(engine, inputs={}, outputs={}, surrogate_version="nope")
    with pytest.raises(NotFoundError, match="unknown recommendation 'missing'"):
        load_recommendation(engine, "missing")


def test_values_without_a_json_form_are_refused_naming_the_field(engine):
    with pytest.raises(InvalidInputError, match=r"^inputs: not storable as JSON"):
        record_recommendation(engine, inputs={"when": object()}, outputs={})
    with pytest.raises(InvalidInputError, match=r"^params: not storable as JSON"):
        create_job(engine, "search", {"x": {1, object()}})
    with pytest.raises(InvalidInputError, match=r"^spec: not storable as JSON"):
        save_gpu_spec(engine, "h100_sxm", {"x": object()})


def test_job_lifecycle_sets_timestamps(engine):
    job = create_job(engine, "search", {"model": "m", "budget": 100})
    assert job.status is JobStatus.QUEUED and job.started_at is None
    running = update_job(engine, job.id, status="running")
    assert running.started_at is not None and running.finished_at is None
    done = update_job(engine, job.id, status=JobStatus.SUCCEEDED, result={"best": {"tp": 2}})
    assert done.finished_at is not None and done.finished_at >= done.started_at
    assert load_job(engine, job.id) == done
    assert done.params == {"model": "m", "budget": 100}
    assert done.result == {"best": {"tp": 2}}


def test_job_failure_keeps_the_error(engine):
    job = create_job(engine, "import")
    failed = update_job(engine, job.id, status="failed", error="row 3: bad tp")
    assert failed.error == "row 3: bad tp" and failed.started_at is None
    assert failed.finished_at is not None


def test_job_transitions_are_checked(engine):
    job = create_job(engine, "search")
    with pytest.raises(InvalidInputError, match=r"from 'queued' to 'succeeded' \(allowed: "):
        update_job(engine, job.id, status="succeeded")
    update_job(engine, job.id, status="cancelled")
    with pytest.raises(InvalidInputError, match="allowed: none, it is final"):
        update_job(engine, job.id, status="running")
    with pytest.raises(InvalidInputError, match="unknown job status 'paused'"):
        update_job(engine, job.id, status="paused")
    with pytest.raises(NotFoundError, match="unknown job 'nope'"):
        update_job(engine, "nope", status="running")
    with pytest.raises(InvalidInputError, match=r"^kind: must be 1 to 64"):
        create_job(engine, "")


def test_job_status_check_constraint_guards_the_table(engine):
    import sqlalchemy as sa

    job = create_job(engine, "search")
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE jobs SET status = 'paused' WHERE id = :id"), {"id": job.id}
        )
    assert load_job(engine, job.id).status is JobStatus.QUEUED
    assert tuple(JobStatus) == JOB_STATUSES


def test_model_and_gpu_specs_round_trip_and_replace(engine):
    save_model_spec(engine, "meta-llama/Llama-3.1-8B", {"layers": 32, "heads": 32})
    save_gpu_spec(engine, "h100_sxm", {"memory_gb": 80})
    assert load_model_spec(engine, "meta-llama/Llama-3.1-8B") == {"layers": 32, "heads": 32}
    save_gpu_spec(engine, "h100_sxm", {"memory_gb": 80, "bandwidth_tb_s": 3.35})
    assert load_gpu_spec(engine, "h100_sxm") == {"memory_gb": 80, "bandwidth_tb_s": 3.35}
    with pytest.raises(NotFoundError, match="unknown gpu 'b200_sxm'; known: h100_sxm"):
        load_gpu_spec(engine, "b200_sxm")
    with pytest.raises(InvalidInputError, match=r"^model_id: must be 1 to 255"):
        save_model_spec(engine, "", {})
