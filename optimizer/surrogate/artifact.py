"""Versioned surrogate artifacts: serialise without pickle, verify before loading.

A trained :class:`~optimizer.surrogate.model.Surrogate` is written with ``skops.io``,
a format that stores objects as a tree of typed JSON nodes and never runs code on load.
Loading checks, in this order:

1. the artifact's SHA-256 equals the one recorded when it was saved (the storage layer
   refuses a mismatch, for inline bytes and for files);
2. every type the artifact names is one epopt trusts — numpy, scikit-learn and epopt's
   own surrogate classes — so a crafted artifact cannot instantiate anything else.

Provenance saved with each version: the training-data hash (SHA-256 of the sorted run
keys, which cover every native field of a run, targets included), the feature list, the
library versions and the evaluation metrics.

Example:
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> model = LinearRegression().fit(np.array([[0.0], [1.0]]), np.array([0.0, 2.0]))
    >>> data = dumps(model)
    >>> round(float(loads(data, sha256_hex(data)).coef_[0]), 6)
    2.0
"""

from __future__ import annotations

import hashlib
import platform
from collections.abc import Iterable
from importlib import metadata
from typing import TYPE_CHECKING, Any

from optimizer.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "TRUSTED_TYPES",
    "TRUSTED_TYPE_PREFIXES",
    "dumps",
    "library_versions",
    "loads",
    "sha256_hex",
    "training_data_hash",
    "untrusted_types",
]

TRUSTED_TYPE_PREFIXES: tuple[str, ...] = (
    "builtins.",
    "collections.",
    "numpy.",
    "scipy.",
    "sklearn.",
    "optimizer.surrogate.",
)
"""Module prefixes of the types an artifact may contain."""

TRUSTED_TYPES: frozenset[str] = frozenset({"functools.partial"})
"""Single types trusted outright: scikit-learn stores ``partial(check_array, ...)``; the
function a partial wraps is named (and checked) on its own."""

_LIBRARIES = ("epopt", "numpy", "pandas", "scipy", "scikit-learn", "skops", "aiconfigurator-core")


def sha256_hex(data: bytes) -> str:
    """SHA-256 of ``data`` as 64 hex characters."""
    return hashlib.sha256(data).hexdigest()


def training_data_hash(runs: pd.DataFrame) -> str:
    """Order-independent hash of a training set: SHA-256 over its sorted run keys.

    Rows without a ``run_key`` column get keys computed from their native fields.
    """
    if "run_key" in runs.columns and runs["run_key"].notna().all():
        keys: Iterable[str] = runs["run_key"].astype(str)
    else:
        from optimizer.profiles import compute_run_keys

        keys = compute_run_keys(runs).astype(str)
    digest = hashlib.sha256()
    for key in sorted(keys):
        digest.update(key.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of Python and of the libraries a surrogate depends on."""
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def dumps(model: Any) -> bytes:
    """Serialise a fitted model with ``skops.io`` (no pickle)."""
    import skops.io

    return bytes(skops.io.dumps(model))


def untrusted_types(data: bytes) -> list[str]:
    """Types named in the artifact that are outside :data:`TRUSTED_TYPE_PREFIXES`."""
    import skops.io

    named = skops.io.get_untrusted_types(data=data)
    return sorted(
        t for t in named if t not in TRUSTED_TYPES and not t.startswith(TRUSTED_TYPE_PREFIXES)
    )


def loads(data: bytes, expected_sha256: str) -> Any:
    """Load an artifact after checking its hash and the types it contains.

    Raises:
        InvalidInputError: the hash differs from ``expected_sha256``, or the artifact
            names a type epopt does not trust; nothing is instantiated in either case.
    """
    import skops.io

    actual = sha256_hex(data)
    if actual != expected_sha256:
        raise InvalidInputError(
            "artifact", f"SHA-256 {actual} does not match the recorded {expected_sha256}"
        )
    refused = untrusted_types(data)
    if refused:
        raise InvalidInputError(
            "artifact",
            f"names types epopt does not trust: {', '.join(refused)}",
            allowed=[p + "*" for p in TRUSTED_TYPE_PREFIXES] + sorted(TRUSTED_TYPES),
        )
    return skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))
