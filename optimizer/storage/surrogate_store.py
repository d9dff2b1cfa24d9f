"""Versioned surrogates: save a trained model's artifact with its provenance, load it back.

A version is immutable: saving an existing version is refused. The artifact is kept inline
(``artifact`` bytes) or as a file path (``artifact_path``); either way its SHA-256 is
stored and checked when the bytes are read back.

Example:
    >>> from optimizer.storage import open_database
    >>> engine = open_database("sqlite:///:memory:", auto_upgrade=True)
    >>> saved = save_surrogate(engine, version="2025.1", training_data_hash="ab" * 32,
    ...     features=["isl", "osl"], library_versions={"sklearn": "1.5"},
    ...     metrics={"ttft_mape": 0.12}, artifact=b"model")
    >>> load_surrogate(engine).artifact_bytes()
    b'model'
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from optimizer.errors import InvalidInputError, NotFoundError, StorageError
from optimizer.storage.database import storage_error
from optimizer.storage.json_values import json_payload
from optimizer.storage.models import SurrogateRecord

__all__ = ["StoredSurrogate", "list_surrogate_versions", "load_surrogate", "save_surrogate"]

_MAX_VERSION = 64


@dataclass(frozen=True)
class StoredSurrogate:
    """A surrogate as stored: provenance, metrics and where its artifact is.

    Attributes:
        version: unique version string.
        created_at: when it was saved (UTC).
        training_data_hash: hash of the training data (e.g. of the sorted run keys).
        features: feature names, in model order.
        library_versions: library name -> version used for training.
        metrics: evaluation metrics.
        artifact_sha256: SHA-256 (hex) of the artifact bytes.
        artifact_path: file holding the artifact, when not stored inline.
        artifact: the inline artifact bytes, when stored inline.
    """

    version: str
    created_at: datetime
    training_data_hash: str
    features: list[str]
    library_versions: dict[str, Any]
    metrics: dict[str, Any]
    artifact_sha256: str
    artifact_path: str | None = None
    artifact: bytes | None = field(default=None, repr=False)

    def artifact_bytes(self) -> bytes:
        """The artifact's bytes (inline or read from its file), checked against the hash.

        Raises:
            StorageError: the file is missing or unreadable, or the bytes do not match
                ``artifact_sha256``.
        """
        if self.artifact is not None:
            data = self.artifact
        else:
            try:
                data = Path(str(self.artifact_path)).read_bytes()
            except OSError as exc:
                raise StorageError(
                    f"surrogate {self.version!r}: cannot read artifact {self.artifact_path}: {exc}"
                ) from exc
        digest = hashlib.sha256(data).hexdigest()
        if digest != self.artifact_sha256:
            raise StorageError(
                f"surrogate {self.version!r}: artifact checksum mismatch "
                f"(stored {self.artifact_sha256}, found {digest}); it was changed or corrupted"
            )
        return data


def _stored(record: SurrogateRecord) -> StoredSurrogate:
    return StoredSurrogate(
        version=record.version,
        created_at=record.created_at,
        training_data_hash=record.training_data_hash,
        features=list(record.features),
        library_versions=dict(record.library_versions),
        metrics=dict(record.metrics),
        artifact_sha256=record.artifact_sha256,
        artifact_path=record.artifact_path,
        artifact=record.artifact,
    )


def _artifact(
    artifact: bytes | None, artifact_path: str | os.PathLike[str] | None
) -> tuple[bytes | None, str | None, str]:
    if (artifact is None) == (artifact_path is None):
        raise InvalidInputError(
            "artifact", "give exactly one of artifact (bytes) or artifact_path (a file)"
        )
    if artifact is not None:
        return bytes(artifact), None, hashlib.sha256(artifact).hexdigest()
    path = Path(artifact_path).expanduser().resolve()  # type: ignore[arg-type]
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError("artifact_path", f"cannot read {path}: {exc}") from exc
    return None, str(path), hashlib.sha256(data).hexdigest()


def save_surrogate(
    engine: sa.Engine,
    *,
    version: str,
    training_data_hash: str,
    features: Sequence[str],
    library_versions: Mapping[str, Any],
    metrics: Mapping[str, Any],
    artifact: bytes | None = None,
    artifact_path: str | os.PathLike[str] | None = None,
) -> StoredSurrogate:
    """Store a new surrogate version.

    Args:
        engine: an engine on a database at head.
        version: a new version string (1-64 characters).
        training_data_hash: hash identifying the training data.
        features: feature names.
        library_versions: library -> version (scikit-learn, numpy, epopt, ...).
        metrics: evaluation metrics (JSON values; ``NaN`` is stored as null).
        artifact: the serialised model, stored inline; or
        artifact_path: a file holding it (stored as an absolute path, hashed now).

    Returns:
        The stored record.

    Raises:
        InvalidInputError: empty or too long version, a version already stored, both or
            neither of ``artifact``/``artifact_path``, an unreadable artifact file.
        StorageError: the database failed.
    """
    if not 1 <= len(version) <= _MAX_VERSION:
        raise InvalidInputError(
            "version", f"must be 1 to {_MAX_VERSION} characters, got {version!r}"
        )
    inline, path, digest = _artifact(artifact, artifact_path)
    record = SurrogateRecord(
        version=version,
        training_data_hash=training_data_hash,
        features=[str(name) for name in features],
        library_versions=json_payload(library_versions, "library_versions"),
        metrics=json_payload(metrics, "metrics"),
        artifact=inline,
        artifact_path=path,
        artifact_sha256=digest,
    )
    try:
        with Session(engine) as session, session.begin():
            taken = session.scalar(
                sa.select(SurrogateRecord.id).where(SurrogateRecord.version == version)
            )
            if taken is not None:
                raise InvalidInputError(
                    "version", f"surrogate {version!r} is already stored; versions are immutable"
                )
            session.add(record)
            session.flush()
            return _stored(record)
    except SQLAlchemyError as exc:
        raise storage_error(f"saving surrogate {version!r}", exc) from exc


def list_surrogate_versions(engine: sa.Engine) -> list[str]:
    """Every stored surrogate version, oldest first.

    Raises:
        StorageError: the database failed.
    """
    query = sa.select(SurrogateRecord.version).order_by(
        SurrogateRecord.created_at, SurrogateRecord.id
    )
    try:
        with engine.connect() as connection:
            return list(connection.scalars(query))
    except SQLAlchemyError as exc:
        raise storage_error("listing surrogates", exc) from exc


def load_surrogate(engine: sa.Engine, version: str | None = None) -> StoredSurrogate:
    """One stored surrogate: the given version, or the newest when ``version`` is ``None``.

    Raises:
        NotFoundError: no such version (or none stored at all).
        StorageError: the database failed.
    """
    query = sa.select(SurrogateRecord)
    if version is None:
        query = query.order_by(SurrogateRecord.created_at.desc(), SurrogateRecord.id.desc())
    else:
        query = query.where(SurrogateRecord.version == version)
    try:
        with Session(engine) as session:
            record = session.scalars(query.limit(1)).first()
            if record is not None:
                return _stored(record)
    except SQLAlchemyError as exc:
        raise storage_error("loading a surrogate", exc) from exc
    raise NotFoundError("surrogate version", version or "<newest>", list_surrogate_versions(engine))
