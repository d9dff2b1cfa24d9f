"""The SQL schema of epopt as SQLAlchemy 2 declarative models.

Six tables, portable across SQLite and PostgreSQL (only generic types: ``String``,
``Integer``, ``Double``, ``JSON``, ``LargeBinary``, timezone-aware ``DateTime``):

============== ==================================================================
table          one row is
============== ==================================================================
profile_runs   a measured run in the native profile schema (``NATIVE_COLUMNS``)
model_specs    a model's architecture spec (JSON), keyed by Hugging Face id
gpus           a GPU's spec (JSON), keyed by catalog id
surrogates     a trained performance model: version, provenance, metrics, artifact
recommendations an audit record of one recommendation: inputs, surrogate, outputs
jobs           a background job (kind, status, params, result, error, timestamps)
============== ==================================================================

Enumerations (engine, quantization, ...) are stored as their string values without a
database check, so a new value in :mod:`optimizer.domain.enums` needs no migration; the
importers validate vocabularies. The database checks the invariants that never change
(positive degrees and lengths, non-negative times, a load given).

The migrations in the top-level ``storage/migrations`` folder create exactly this schema;
a test compares them with Alembic's autogenerate.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "JOB_STATUSES",
    "NAMING_CONVENTION",
    "Base",
    "GPURecord",
    "JobRecord",
    "JobStatus",
    "ModelSpecRecord",
    "ProfileRunRecord",
    "RecommendationRecord",
    "SurrogateRecord",
    "UTCDateTime",
    "new_id",
    "utc_now",
]

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Deterministic constraint names, so migrations can name what they drop on every backend."""


class JobStatus(StrEnum):
    """Where a job is: ``queued`` -> ``running`` -> ``succeeded``/``failed``/``cancelled``."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


JOB_STATUSES: tuple[str, ...] = tuple(status.value for status in JobStatus)
"""The values the ``jobs.status`` check constraint allows."""


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def new_id() -> str:
    """A fresh random identifier: 32 lowercase hex characters (UUID4)."""
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that always hands back aware UTC datetimes.

    SQLite keeps no zone, PostgreSQL answers in the session's zone; this stores UTC and
    returns UTC on both. Naive datetimes are taken as UTC (as ``run_key`` does).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every epopt table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UTCDateTime(),
        float: Double(),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
    }


class ProfileRunRecord(Base):
    """One measured run: every native column plus identity and import provenance."""

    __tablename__ = "profile_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_key: Mapped[str] = mapped_column(String(64), unique=True)
    model: Mapped[str] = mapped_column(String(255))
    gpu: Mapped[str] = mapped_column(String(64))
    engine: Mapped[str] = mapped_column(String(32))
    engine_version: Mapped[str | None] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(16))
    quantization: Mapped[str] = mapped_column(String(32))
    kv_cache_dtype: Mapped[str | None] = mapped_column(String(32))
    tp: Mapped[int]
    pp: Mapped[int]
    dp: Mapped[int]
    ep: Mapped[int]
    concurrency: Mapped[int | None]
    request_rate: Mapped[float | None]
    max_batch_size: Mapped[int | None]
    isl: Mapped[int]
    osl: Mapped[int]
    spec_method: Mapped[str] = mapped_column(String(32))
    spec_draft_len: Mapped[int]
    kv_block_size: Mapped[int | None]
    ttft_ms: Mapped[float]
    tpot_ms: Mapped[float]
    ttft_p50_ms: Mapped[float | None]
    ttft_p90_ms: Mapped[float | None]
    ttft_p95_ms: Mapped[float | None]
    ttft_p99_ms: Mapped[float | None]
    tpot_p50_ms: Mapped[float | None]
    tpot_p90_ms: Mapped[float | None]
    tpot_p95_ms: Mapped[float | None]
    tpot_p99_ms: Mapped[float | None]
    e2e_p50_ms: Mapped[float | None]
    e2e_p90_ms: Mapped[float | None]
    e2e_p95_ms: Mapped[float | None]
    e2e_p99_ms: Mapped[float | None]
    output_tok_s: Mapped[float | None]
    request_per_s: Mapped[float | None]
    source: Mapped[str] = mapped_column(Text)
    source_id: Mapped[str | None] = mapped_column(Text)
    measured_at: Mapped[datetime | None]
    extra: Mapped[dict[str, Any] | None]
    imported_at: Mapped[datetime]
    import_batch: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint("tp >= 1 AND pp >= 1 AND dp >= 1 AND ep >= 1", name="parallel_degrees"),
        CheckConstraint("isl >= 1 AND osl >= 1", name="sequence_lengths"),
        CheckConstraint("ttft_ms > 0 AND tpot_ms >= 0", name="targets"),
        CheckConstraint("spec_draft_len >= 0", name="spec_draft_len"),
        CheckConstraint("concurrency IS NOT NULL OR request_rate IS NOT NULL", name="load_given"),
        Index(None, "model", "gpu", "engine"),
        Index(None, "gpu"),
        Index(None, "engine"),
        Index(None, "import_batch"),
    )


class ModelSpecRecord(Base):
    """A model's architecture spec (``ModelSpec`` dumped to JSON), keyed by Hugging Face id."""

    __tablename__ = "model_specs"

    model_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    spec: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class GPURecord(Base):
    """A GPU's spec (``GPUSpec`` dumped to JSON), keyed by catalog id."""

    __tablename__ = "gpus"

    gpu_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    spec: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class SurrogateRecord(Base):
    """A trained surrogate: its version, what it was trained on and with, and its artifact.

    The artifact is stored inline (``artifact``) or referenced by ``artifact_path``; at least
    one is set, and ``artifact_sha256`` always names the bytes.
    """

    __tablename__ = "surrogates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    training_data_hash: Mapped[str] = mapped_column(String(64))
    features: Mapped[list[str]]
    library_versions: Mapped[dict[str, Any]]
    metrics: Mapped[dict[str, Any]]
    artifact: Mapped[bytes | None] = mapped_column(LargeBinary)
    artifact_path: Mapped[str | None] = mapped_column(Text)
    artifact_sha256: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint("artifact IS NOT NULL OR artifact_path IS NOT NULL", name="artifact_given"),
    )


class RecommendationRecord(Base):
    """An audit record of one recommendation: what was asked, by which surrogate, the answer."""

    __tablename__ = "recommendations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    inputs: Mapped[dict[str, Any]]
    surrogate_version: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("surrogates.version"), index=True
    )
    outputs: Mapped[dict[str, Any]]


_STATUS_LIST = ", ".join(f"'{status}'" for status in JOB_STATUSES)


class JobRecord(Base):
    """A background job (an evaluation, a search, an import) and its outcome."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), index=True)
    params: Mapped[dict[str, Any]]
    result: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    __table_args__ = (CheckConstraint(f"status IN ({_STATUS_LIST})", name="status"),)
