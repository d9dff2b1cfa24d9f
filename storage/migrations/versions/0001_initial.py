"""Initial schema: profile runs, model specs, GPUs, surrogates, recommendations, jobs.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Hand-written to match ``optimizer.storage.models`` (a test compares the two with Alembic's
autogenerate and the check constraints by name). Constraint names follow the metadata's
naming convention and are wrapped in ``op.f()`` (final: the convention is not applied
again), so later migrations can drop them by name on SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_JOB_STATUSES = "'queued', 'running', 'succeeded', 'failed', 'cancelled'"


def _timestamp(name: str, *, nullable: bool) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _measure(name: str, *, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.Double(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "profile_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_key", sa.String(64), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("gpu", sa.String(64), nullable=False),
        sa.Column("engine", sa.String(32), nullable=False),
        sa.Column("engine_version", sa.String(64), nullable=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("quantization", sa.String(32), nullable=False),
        sa.Column("kv_cache_dtype", sa.String(32), nullable=True),
        sa.Column("tp", sa.Integer(), nullable=False),
        sa.Column("pp", sa.Integer(), nullable=False),
        sa.Column("dp", sa.Integer(), nullable=False),
        sa.Column("ep", sa.Integer(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=True),
        _measure("request_rate"),
        sa.Column("max_batch_size", sa.Integer(), nullable=True),
        sa.Column("isl", sa.Integer(), nullable=False),
        sa.Column("osl", sa.Integer(), nullable=False),
        sa.Column("spec_method", sa.String(32), nullable=False),
        sa.Column("spec_draft_len", sa.Integer(), nullable=False),
        sa.Column("kv_block_size", sa.Integer(), nullable=True),
        _measure("ttft_ms", nullable=False),
        _measure("tpot_ms", nullable=False),
        _measure("ttft_p50_ms"),
        _measure("ttft_p90_ms"),
        _measure("ttft_p95_ms"),
        _measure("ttft_p99_ms"),
        _measure("tpot_p50_ms"),
        _measure("tpot_p90_ms"),
        _measure("tpot_p95_ms"),
        _measure("tpot_p99_ms"),
        _measure("e2e_p50_ms"),
        _measure("e2e_p90_ms"),
        _measure("e2e_p95_ms"),
        _measure("e2e_p99_ms"),
        _measure("output_tok_s"),
        _measure("request_per_s"),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=True),
        _timestamp("measured_at", nullable=True),
        sa.Column("extra", sa.JSON(), nullable=True),
        _timestamp("imported_at", nullable=False),
        sa.Column("import_batch", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profile_runs")),
        sa.UniqueConstraint("run_key", name=op.f("uq_profile_runs_run_key")),
        sa.CheckConstraint(
            "tp >= 1 AND pp >= 1 AND dp >= 1 AND ep >= 1",
            name=op.f("ck_profile_runs_parallel_degrees"),
        ),
        sa.CheckConstraint("isl >= 1 AND osl >= 1", name=op.f("ck_profile_runs_sequence_lengths")),
        sa.CheckConstraint("ttft_ms > 0 AND tpot_ms >= 0", name=op.f("ck_profile_runs_targets")),
        sa.CheckConstraint("spec_draft_len >= 0", name=op.f("ck_profile_runs_spec_draft_len")),
        sa.CheckConstraint(
            "concurrency IS NOT NULL OR request_rate IS NOT NULL",
            name=op.f("ck_profile_runs_load_given"),
        ),
    )
    op.create_index(
        op.f("ix_profile_runs_model_gpu_engine"), "profile_runs", ["model", "gpu", "engine"]
    )
    op.create_index(op.f("ix_profile_runs_gpu"), "profile_runs", ["gpu"])
    op.create_index(op.f("ix_profile_runs_engine"), "profile_runs", ["engine"])
    op.create_index(op.f("ix_profile_runs_import_batch"), "profile_runs", ["import_batch"])

    op.create_table(
        "model_specs",
        sa.Column("model_id", sa.String(255), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        _timestamp("created_at", nullable=False),
        sa.PrimaryKeyConstraint("model_id", name=op.f("pk_model_specs")),
    )

    op.create_table(
        "gpus",
        sa.Column("gpu_id", sa.String(64), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        _timestamp("created_at", nullable=False),
        sa.PrimaryKeyConstraint("gpu_id", name=op.f("pk_gpus")),
    )

    op.create_table(
        "surrogates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        _timestamp("created_at", nullable=False),
        sa.Column("training_data_hash", sa.String(64), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("library_versions", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("artifact", sa.LargeBinary(), nullable=True),
        sa.Column("artifact_path", sa.Text(), nullable=True),
        sa.Column("artifact_sha256", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_surrogates")),
        sa.UniqueConstraint("version", name=op.f("uq_surrogates_version")),
        sa.CheckConstraint(
            "artifact IS NOT NULL OR artifact_path IS NOT NULL",
            name=op.f("ck_surrogates_artifact_given"),
        ),
    )

    op.create_table(
        "recommendations",
        sa.Column("id", sa.String(32), nullable=False),
        _timestamp("created_at", nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("surrogate_version", sa.String(64), nullable=True),
        sa.Column("outputs", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recommendations")),
        sa.ForeignKeyConstraint(
            ["surrogate_version"],
            ["surrogates.version"],
            name=op.f("fk_recommendations_surrogate_version_surrogates"),
        ),
    )
    op.create_index(op.f("ix_recommendations_created_at"), "recommendations", ["created_at"])
    op.create_index(
        "ix_recommendations_surrogate_version", "recommendations", ["surrogate_version"]
    )

    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _timestamp("created_at", nullable=False),
        _timestamp("started_at", nullable=True),
        _timestamp("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.CheckConstraint(f"status IN ({_JOB_STATUSES})", name=op.f("ck_jobs_status")),
    )
    op.create_index(op.f("ix_jobs_status"), "jobs", ["status"])


def downgrade() -> None:
    op.drop_index(op.f("ix_jobs_status"), table_name="jobs")
    op.drop_table("jobs")
    op.drop_index(op.f("ix_recommendations_surrogate_version"), table_name="recommendations")
    op.drop_index(op.f("ix_recommendations_created_at"), table_name="recommendations")
    op.drop_table("recommendations")
    op.drop_table("surrogates")
    op.drop_table("gpus")
    op.drop_table("model_specs")
    op.drop_index(op.f("ix_profile_runs_import_batch"), table_name="profile_runs")
    op.drop_index(op.f("ix_profile_runs_engine"), table_name="profile_runs")
    op.drop_index(op.f("ix_profile_runs_gpu"), table_name="profile_runs")
    op.drop_index(op.f("ix_profile_runs_model_gpu_engine"), table_name="profile_runs")
    op.drop_table("profile_runs")
