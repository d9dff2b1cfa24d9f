"""Audit records of recommendations: what was asked, which surrogate answered, the answer.

Example:
    >>> from optimizer.storage import open_database
    >>> engine = open_database("sqlite:///:memory:", auto_upgrade=True)
    >>> rec = record_recommendation(engine, inputs={"model": "m"}, outputs={"front": []})
    >>> load_recommendation(engine, rec.id).outputs
    {'front': []}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from optimizer.errors import NotFoundError
from optimizer.storage.database import storage_error
from optimizer.storage.json_values import json_payload
from optimizer.storage.models import RecommendationRecord, SurrogateRecord

__all__ = ["StoredRecommendation", "load_recommendation", "record_recommendation"]


@dataclass(frozen=True)
class StoredRecommendation:
    """One audit record.

    Attributes:
        id: 32 hex characters.
        created_at: when it was recorded (UTC).
        inputs: the request (model, GPU, workload, SLO, search settings), as JSON.
        surrogate_version: the surrogate that made the predictions, if any.
        outputs: the answer (Pareto front, chosen configuration, predictions), as JSON.
    """

    id: str
    created_at: datetime
    inputs: dict[str, Any]
    surrogate_version: str | None
    outputs: dict[str, Any]


def _stored(record: RecommendationRecord) -> StoredRecommendation:
    return StoredRecommendation(
        id=record.id,
        created_at=record.created_at,
        inputs=dict(record.inputs),
        surrogate_version=record.surrogate_version,
        outputs=dict(record.outputs),
    )


def record_recommendation(
    engine: sa.Engine,
    *,
    inputs: Mapping[str, Any],
    outputs: Mapping[str, Any],
    surrogate_version: str | None = None,
) -> StoredRecommendation:
    """Store an audit record of one recommendation.

    Args:
        engine: an engine on a database at head.
        inputs: the request, as JSON values (``model_dump(mode="json")`` of pydantic models).
        outputs: the answer, as JSON values.
        surrogate_version: a stored surrogate version, or ``None`` (prior/roofline only).

    Returns:
        The stored record, with its new id.

    Raises:
        NotFoundError: ``surrogate_version`` is not stored.
        StorageError: the database failed or a value is not JSON.
    """
    try:
        with Session(engine) as session, session.begin():
            if surrogate_version is not None:
                known = session.scalar(
                    sa.select(SurrogateRecord.id).where(
                        SurrogateRecord.version == surrogate_version
                    )
                )
                if known is None:
                    versions = session.scalars(sa.select(SurrogateRecord.version)).all()
                    raise NotFoundError("surrogate version", surrogate_version, versions)
            record = RecommendationRecord(
                inputs=json_payload(inputs, "inputs"),
                outputs=json_payload(outputs, "outputs"),
                surrogate_version=surrogate_version,
            )
            session.add(record)
            session.flush()
            return _stored(record)
    except SQLAlchemyError as exc:
        raise storage_error("recording a recommendation", exc) from exc


def load_recommendation(engine: sa.Engine, recommendation_id: str) -> StoredRecommendation:
    """One audit record by id.

    Raises:
        NotFoundError: no record has that id.
        StorageError: the database failed.
    """
    try:
        with Session(engine) as session:
            record = session.get(RecommendationRecord, recommendation_id)
            if record is not None:
                return _stored(record)
    except SQLAlchemyError as exc:
        raise storage_error(f"loading recommendation {recommendation_id!r}", exc) from exc
    raise NotFoundError("recommendation", recommendation_id)
