"""Search backends behind one interface: exhaustive, optuna and Ray Tune.

optuna and Ray are imported on first use of their backends, so importing this package
stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from optimizer.search.backends.base import Progress, SearchBackend, SearchResult
from optimizer.search.backends.exhaustive import ExhaustiveBackend

if TYPE_CHECKING:
    from optimizer.search.backends.optuna_backend import SAMPLERS, OptunaBackend
    from optimizer.search.backends.ray_backend import RayTuneBackend

__all__ = [
    "SAMPLERS",
    "ExhaustiveBackend",
    "OptunaBackend",
    "Progress",
    "RayTuneBackend",
    "SearchBackend",
    "SearchResult",
]

_LAZY = {
    "OptunaBackend": "optuna_backend",
    "SAMPLERS": "optuna_backend",
    "RayTuneBackend": "ray_backend",
}


def __getattr__(name: str) -> Any:
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
