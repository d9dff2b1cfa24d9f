"""Background jobs: create one, move it through its statuses, read it back.

Allowed moves::

    queued  -> running | failed | cancelled
    running -> succeeded | failed | cancelled

``started_at`` is set on entering ``running``; ``finished_at`` on entering a final status.
A status update locks the row (``SELECT ... FOR UPDATE`` where the database has it), so two
workers cannot both start the same job.

Example:
    >>> from optimizer.storage import open_database
    >>> engine = open_database("sqlite:///:memory:", auto_upgrade=True)
    >>> job = create_job(engine, "search", {"model": "m"})
    >>> update_job(engine, job.id, status="running").status
    <JobStatus.RUNNING: 'running'>
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from optimizer.errors import InvalidInputError, NotFoundError
from optimizer.storage.database import storage_error
from optimizer.storage.json_values import json_payload
from optimizer.storage.models import JobRecord, JobStatus, utc_now

__all__ = [
    "FINAL_STATUSES",
    "TRANSITIONS",
    "Job",
    "JobStatus",
    "create_job",
    "load_job",
    "update_job",
]

TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELLED}),
    JobStatus.RUNNING: frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}
"""Status -> the statuses a job may move to from it."""

FINAL_STATUSES: frozenset[JobStatus] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
"""Statuses a job never leaves."""

_MAX_KIND = 64


@dataclass(frozen=True)
class Job:
    """A job as stored.

    Attributes:
        id: 32 hex characters.
        kind: what the job does (``"search"``, ``"import"``, ...).
        status: where it is.
        params: its inputs (JSON).
        result: its output (JSON) once it has one.
        error: why it failed, when it did.
        created_at: when it was queued (UTC).
        started_at: when it started running.
        finished_at: when it reached a final status.
    """

    id: str
    kind: str
    status: JobStatus
    params: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def _job(record: JobRecord) -> Job:
    return Job(
        id=record.id,
        kind=record.kind,
        status=JobStatus(record.status),
        params=dict(record.params),
        result=None if record.result is None else dict(record.result),
        error=record.error,
        created_at=record.created_at,
        started_at=record.started_at,
        finished_at=record.finished_at,
    )


def _status(value: JobStatus | str) -> JobStatus:
    try:
        return JobStatus(value)
    except ValueError:
        raise InvalidInputError(
            "status", f"unknown job status {value!r}", list(JobStatus)
        ) from None


def create_job(engine: sa.Engine, kind: str, params: Mapping[str, Any] | None = None) -> Job:
    """Queue a new job.

    Args:
        engine: an engine on a database at head.
        kind: what the job does (1-64 characters).
        params: its inputs, as JSON values.

    Returns:
        The job, status ``queued``.

    Raises:
        InvalidInputError: empty or too long ``kind``.
        StorageError: the database failed or ``params`` is not JSON.
    """
    if not 1 <= len(kind) <= _MAX_KIND:
        raise InvalidInputError("kind", f"must be 1 to {_MAX_KIND} characters, got {kind!r}")
    record = JobRecord(
        kind=kind, status=JobStatus.QUEUED.value, params=json_payload(params or {}, "params")
    )
    try:
        with Session(engine) as session, session.begin():
            session.add(record)
            session.flush()
            return _job(record)
    except SQLAlchemyError as exc:
        raise storage_error(f"creating a {kind!r} job", exc) from exc


def update_job(
    engine: sa.Engine,
    job_id: str,
    *,
    status: JobStatus | str,
    result: Mapping[str, Any] | None = None,
    error: str | None = None,
) -> Job:
    """Move a job to a new status, optionally recording its result or error.

    Args:
        engine: an engine on a database at head.
        job_id: the job's id.
        status: the new status (see :data:`TRANSITIONS`).
        result: output to store (JSON values); ``None`` keeps the stored one.
        error: failure text to store; ``None`` keeps the stored one.

    Returns:
        The updated job.

    Raises:
        NotFoundError: no job has that id.
        InvalidInputError: unknown status, or a move :data:`TRANSITIONS` does not allow
            (the message lists the allowed next statuses).
        StorageError: the database failed.
    """
    new = _status(status)
    try:
        with Session(engine) as session, session.begin():
            record = session.get(JobRecord, job_id, with_for_update=True)
            if record is None:
                raise NotFoundError("job", job_id)
            current = JobStatus(record.status)
            allowed = TRANSITIONS[current]
            if new not in allowed:
                raise InvalidInputError(
                    "status",
                    f"job {job_id} cannot move from {current.value!r} to {new.value!r}",
                    sorted(s.value for s in allowed) or "none, it is final",
                )
            now = utc_now()
            record.status = new.value
            if new is JobStatus.RUNNING:
                record.started_at = now
            if new in FINAL_STATUSES:
                record.finished_at = now
            if result is not None:
                record.result = json_payload(result, "result")
            if error is not None:
                record.error = error
            session.flush()
            return _job(record)
    except SQLAlchemyError as exc:
        raise storage_error(f"updating job {job_id!r}", exc) from exc


def load_job(engine: sa.Engine, job_id: str) -> Job:
    """One job by id.

    Raises:
        NotFoundError: no job has that id.
        StorageError: the database failed.
    """
    try:
        with Session(engine) as session:
            record = session.get(JobRecord, job_id)
            if record is not None:
                return _job(record)
    except SQLAlchemyError as exc:
        raise storage_error(f"loading job {job_id!r}", exc) from exc
    raise NotFoundError("job", job_id)
