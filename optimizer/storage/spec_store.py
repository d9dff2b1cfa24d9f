"""Model and GPU specs kept in the database (``model_specs`` and ``gpus`` tables).

A spec is a JSON object (``ModelSpec``/``GPUSpec`` dumped with ``model_dump(mode="json")``)
under its id; saving an id again replaces the spec (``created_at`` keeps the first save).

Example:
    >>> from optimizer.storage import open_database
    >>> engine = open_database("sqlite:///:memory:", auto_upgrade=True)
    >>> save_gpu_spec(engine, "h100_sxm", {"memory_gb": 80})
    >>> load_gpu_spec(engine, "h100_sxm")
    {'memory_gb': 80}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import InstrumentedAttribute, Session

from optimizer.errors import InvalidInputError, NotFoundError
from optimizer.storage.database import storage_error
from optimizer.storage.json_values import json_payload
from optimizer.storage.models import GPURecord, ModelSpecRecord

__all__ = ["load_gpu_spec", "load_model_spec", "save_gpu_spec", "save_model_spec"]

_Record = TypeVar("_Record", ModelSpecRecord, GPURecord)


def _save(
    engine: sa.Engine,
    record_type: type[_Record],
    id_column: InstrumentedAttribute[str],
    kind: str,
    key: str,
    spec: Mapping[str, Any],
) -> None:
    limit = id_column.type.length
    if not key or (limit is not None and len(key) > limit):
        raise InvalidInputError(f"{kind}_id", f"must be 1 to {limit} characters, got {key!r}")
    payload = json_payload(spec, "spec")
    try:
        with Session(engine) as session, session.begin():
            record = session.get(record_type, key, with_for_update=True)
            if record is None:
                session.add(record_type(**{id_column.key: key, "spec": payload}))
            else:
                record.spec = payload
    except SQLAlchemyError as exc:
        raise storage_error(f"saving {kind} spec {key!r}", exc) from exc


def _load(
    engine: sa.Engine,
    record_type: type[_Record],
    id_column: InstrumentedAttribute[str],
    kind: str,
    key: str,
) -> dict[str, Any]:
    try:
        with Session(engine) as session:
            record = session.get(record_type, key)
            if record is not None:
                return dict(record.spec)
            known = session.scalars(sa.select(id_column)).all()
    except SQLAlchemyError as exc:
        raise storage_error(f"loading {kind} spec {key!r}", exc) from exc
    raise NotFoundError(kind, key, known)


def save_model_spec(engine: sa.Engine, model_id: str, spec: Mapping[str, Any]) -> None:
    """Store (or replace) the spec of a model under its Hugging Face id.

    Raises:
        InvalidInputError: empty id or longer than 255 characters.
        StorageError: the database failed or the spec is not JSON.
    """
    _save(engine, ModelSpecRecord, ModelSpecRecord.model_id, "model", model_id, spec)


def load_model_spec(engine: sa.Engine, model_id: str) -> dict[str, Any]:
    """The stored spec of a model.

    Raises:
        NotFoundError: no spec stored under that id (the message lists the stored ones).
        StorageError: the database failed.
    """
    return _load(engine, ModelSpecRecord, ModelSpecRecord.model_id, "model", model_id)


def save_gpu_spec(engine: sa.Engine, gpu_id: str, spec: Mapping[str, Any]) -> None:
    """Store (or replace) the spec of a GPU under its catalog id.

    Raises:
        InvalidInputError: empty id or longer than 64 characters.
        StorageError: the database failed or the spec is not JSON.
    """
    _save(engine, GPURecord, GPURecord.gpu_id, "gpu", gpu_id, spec)


def load_gpu_spec(engine: sa.Engine, gpu_id: str) -> dict[str, Any]:
    """The stored spec of a GPU.

    Raises:
        NotFoundError: no spec stored under that id (the message lists the stored ones).
        StorageError: the database failed.
    """
    return _load(engine, GPURecord, GPURecord.gpu_id, "gpu", gpu_id)
