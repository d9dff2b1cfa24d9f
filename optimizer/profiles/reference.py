"""The bundled reference runs: aiconfigurator's measured runs in the native schema."""

from __future__ import annotations

import functools
import json

import pandas as pd

from optimizer.profiles.importers.aiconfigurator import (
    AIConfiguratorImporter,
    bundled_silicon_csv,
)

__all__ = ["load_reference_profiles"]


@functools.cache
def _cached() -> tuple[pd.DataFrame, tuple[str | None, ...]]:
    frame = AIConfiguratorImporter().read(bundled_silicon_csv())
    extras = tuple(None if e is None else json.dumps(e) for e in frame["extra"])
    return frame.drop(columns=["extra"]), extras


def load_reference_profiles() -> pd.DataFrame:
    """The bundled measured runs, in the native schema, without a database.

    The 5,221 end-to-end runs of ``aiconfigurator-core==0.12.0``
    (``systems/silicon_sample.csv``; 3,619 aggregated, 1,602 disaggregated) read through
    :class:`~optimizer.profiles.importers.AIConfiguratorImporter` (its docstring gives the
    mapping). Read once per process; each call returns an independent copy, ``extra``
    dicts included, so callers may modify it freely.

    Returns:
        A frame with exactly ``NATIVE_COLUMNS`` + ``run_key`` (dtypes as
        :func:`~optimizer.profiles.validate_profiles` documents).

    Example:
        >>> runs = load_reference_profiles()
        >>> len(runs), sorted(runs["mode"].unique())
        (5221, ['agg', 'disagg'])
    """
    frame, extras = _cached()
    out = frame.copy(deep=True)
    out.insert(
        list(frame.columns).index("run_key"),
        "extra",
        pd.Series([None if e is None else json.loads(e) for e in extras], dtype=object),
    )
    return out
