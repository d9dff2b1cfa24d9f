"""SQL storage: SQLite by default, PostgreSQL by URL; schema managed by Alembic.

Open a database with :func:`open_database` (refuses one that is not at the newest schema
revision and says to run ``epopt db upgrade``), then use the stores:

- profile runs: :func:`insert_profile_runs`, :func:`load_profile_runs`,
  :func:`count_profile_runs`;
- surrogates: :func:`save_surrogate`, :func:`load_surrogate`, :func:`list_surrogate_versions`;
- recommendation audit records: :func:`record_recommendation`, :func:`load_recommendation`;
- jobs: :func:`create_job`, :func:`update_job`, :func:`load_job`;
- model and GPU specs: :func:`save_model_spec`, :func:`load_model_spec`,
  :func:`save_gpu_spec`, :func:`load_gpu_spec`.

Every database failure surfaces as :class:`optimizer.errors.StorageError`.

The names below are imported on first use, so ``import optimizer.storage.database`` (what
``epopt db`` needs) does not load pandas.

Example:
    >>> from optimizer.storage import count_profile_runs, open_database
    >>> engine = open_database("sqlite:///:memory:", auto_upgrade=True)
    >>> count_profile_runs(engine)
    0
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optimizer.storage.database import (
        create_engine_for,
        current_revision,
        downgrade,
        head_revision,
        mask_url,
        open_database,
        require_head,
        upgrade,
    )
    from optimizer.storage.job_store import Job, JobStatus, create_job, load_job, update_job
    from optimizer.storage.profile_store import (
        InsertResult,
        count_profile_runs,
        insert_profile_runs,
        load_profile_runs,
    )
    from optimizer.storage.recommendation_store import (
        StoredRecommendation,
        load_recommendation,
        record_recommendation,
    )
    from optimizer.storage.spec_store import (
        load_gpu_spec,
        load_model_spec,
        save_gpu_spec,
        save_model_spec,
    )
    from optimizer.storage.surrogate_store import (
        StoredSurrogate,
        list_surrogate_versions,
        load_surrogate,
        save_surrogate,
    )

__all__ = [
    "InsertResult",
    "Job",
    "JobStatus",
    "StoredRecommendation",
    "StoredSurrogate",
    "count_profile_runs",
    "create_engine_for",
    "create_job",
    "current_revision",
    "downgrade",
    "head_revision",
    "insert_profile_runs",
    "list_surrogate_versions",
    "load_gpu_spec",
    "load_job",
    "load_model_spec",
    "load_profile_runs",
    "load_recommendation",
    "load_surrogate",
    "mask_url",
    "open_database",
    "record_recommendation",
    "require_head",
    "save_gpu_spec",
    "save_model_spec",
    "save_surrogate",
    "update_job",
    "upgrade",
]

_HOME: dict[str, str] = {
    **dict.fromkeys(
        (
            "create_engine_for",
            "current_revision",
            "downgrade",
            "head_revision",
            "mask_url",
            "open_database",
            "require_head",
            "upgrade",
        ),
        "database",
    ),
    **dict.fromkeys(("Job", "JobStatus", "create_job", "load_job", "update_job"), "job_store"),
    **dict.fromkeys(
        ("InsertResult", "count_profile_runs", "insert_profile_runs", "load_profile_runs"),
        "profile_store",
    ),
    **dict.fromkeys(
        ("StoredRecommendation", "load_recommendation", "record_recommendation"),
        "recommendation_store",
    ),
    **dict.fromkeys(
        ("load_gpu_spec", "load_model_spec", "save_gpu_spec", "save_model_spec"), "spec_store"
    ),
    **dict.fromkeys(
        ("StoredSurrogate", "list_surrogate_versions", "load_surrogate", "save_surrogate"),
        "surrogate_store",
    ),
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
