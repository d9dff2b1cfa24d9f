"""Train a surrogate on stored runs and keep it as a versioned, verifiable artifact.

The I/O edge of the surrogate: reads runs from storage, writes the artifact with its
provenance (training-data hash, features, library versions, metrics) through
``optimizer.storage``, and loads a version back after the hash and type checks of
:mod:`optimizer.surrogate.artifact`. Recommendations record the version they used.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from optimizer.errors import InvalidInputError
from optimizer.surrogate.artifact import (
    dumps,
    library_versions,
    loads,
    training_data_hash,
)

if TYPE_CHECKING:
    import pandas as pd
    import sqlalchemy as sa

    from optimizer.storage import StoredSurrogate
    from optimizer.surrogate.model import Surrogate

__all__ = ["load_trained_surrogate", "save_trained_surrogate", "stored_training_runs"]


def stored_training_runs(engine: sa.Engine) -> pd.DataFrame:
    """The aggregated runs in storage, the surrogate's training set.

    Raises:
        InvalidInputError: storage holds no aggregated runs yet.
    """
    from optimizer.storage import load_profile_runs

    runs = load_profile_runs(engine, mode="agg")
    if runs.empty:
        raise InvalidInputError(
            "profile_runs",
            "no aggregated runs stored; import some first "
            "(`epopt profiles import --reference` or a profile file)",
        )
    return runs


def save_trained_surrogate(
    engine: sa.Engine,
    model: Surrogate,
    runs: pd.DataFrame,
    metrics: dict[str, Any],
    *,
    version: str | None = None,
) -> StoredSurrogate:
    """Store a fitted surrogate with its provenance; the version defaults to
    ``<UTC timestamp>-<first 8 hex of the training-data hash>``."""
    from optimizer.storage import save_surrogate

    data_hash = training_data_hash(runs)
    version = version or f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{data_hash[:8]}"
    return save_surrogate(
        engine,
        version=version,
        training_data_hash=data_hash,
        features=[str(name) for name in model.feature_names_in_],
        library_versions=library_versions(),
        metrics=metrics,
        artifact=dumps(model),
    )


def load_trained_surrogate(
    engine: sa.Engine, version: str | None = None
) -> tuple[Surrogate, StoredSurrogate]:
    """Load a stored surrogate (the newest when ``version`` is None), verified.

    Raises:
        NotFoundError: no such version (or none stored).
        StorageError / InvalidInputError: the artifact's hash does not match its record,
            or it names a type epopt does not trust.
    """
    from optimizer.storage import load_surrogate

    stored = load_surrogate(engine, version)
    model = loads(stored.artifact_bytes(), stored.artifact_sha256)
    return model, stored
