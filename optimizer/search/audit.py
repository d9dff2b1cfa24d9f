"""The I/O edge of recommendations: the surrogate they use and the record they leave.

* :func:`load_or_train_surrogate` -- the newest stored surrogate; when none is stored,
  fit one on the stored runs, store it as a new version and say so.
* :func:`record` -- store the request, the answer and the surrogate version as an
  audit record (``optimizer.storage.record_recommendation``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from optimizer.errors import NotFoundError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from optimizer.search.result import Recommendation
    from optimizer.storage import StoredRecommendation
    from optimizer.surrogate import Surrogate

__all__ = ["LoadedSurrogate", "load_or_train_surrogate", "record"]


@dataclass(frozen=True)
class LoadedSurrogate:
    """A surrogate ready to predict, where it came from, and whether it was just trained."""

    model: Surrogate
    version: str
    trained: bool
    training_rows: int | None = None
    fit_seconds: float | None = None


def load_or_train_surrogate(
    engine: sa.Engine, *, say: Callable[[str], None] | None = None
) -> LoadedSurrogate:
    """The newest stored surrogate, or a new one trained on the stored runs and stored.

    Args:
        engine: an open epopt database.
        say: receives one line when a surrogate is trained (what, on how many runs).

    Raises:
        InvalidInputError: no surrogate and no aggregated runs to train one on.
        StorageError: the database failed.
    """
    from optimizer.surrogate.registry import (
        load_trained_surrogate,
        save_trained_surrogate,
        stored_training_runs,
    )

    try:
        model, stored = load_trained_surrogate(engine)
        return LoadedSurrogate(model, stored.version, trained=False)
    except NotFoundError:
        pass
    from optimizer.surrogate import Surrogate

    runs = stored_training_runs(engine)
    if say is not None:
        say(f"no surrogate stored: training one on {len(runs):,} stored runs ...")
    started = time.perf_counter()
    model = Surrogate(random_state=0).fit(runs)
    seconds = time.perf_counter() - started
    metrics = {"fit_seconds": round(seconds, 3), "training_rows": int(model.n_train_rows_)}
    stored = save_trained_surrogate(engine, model, runs, metrics)
    if say is not None:
        say(f"trained and stored surrogate {stored.version} ({seconds:.0f} s)")
    return LoadedSurrogate(model, stored.version, True, int(model.n_train_rows_), seconds)


def record(engine: sa.Engine, recommendation: Recommendation) -> StoredRecommendation:
    """Store the audit record of ``recommendation`` with its surrogate version.

    Raises:
        NotFoundError: the surrogate version is not stored.
        StorageError: the database failed.
    """
    from optimizer.storage import record_recommendation

    return record_recommendation(
        engine,
        inputs=recommendation.request.model_dump(mode="json"),
        outputs=recommendation.to_dict(),
        surrogate_version=recommendation.surrogate_version,
    )
