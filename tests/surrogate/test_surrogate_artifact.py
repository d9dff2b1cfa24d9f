"""Surrogate artifacts: no pickle, hash checked, only trusted types instantiated."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from optimizer.errors import InvalidInputError
from optimizer.surrogate.artifact import (
    dumps,
    library_versions,
    loads,
    sha256_hex,
    training_data_hash,
    untrusted_types,
)


class _Foreign:
    """A type outside the trusted prefixes (this test module)."""

    def __init__(self) -> None:
        self.payload = 1


def _fitted() -> LinearRegression:
    x = np.arange(10, dtype=float).reshape(-1, 1)
    return LinearRegression().fit(x, 3 * x.ravel() + 1)


def test_round_trip_preserves_predictions():
    model = _fitted()
    data = dumps(model)
    loaded = loads(data, sha256_hex(data))
    probe = np.array([[2.5], [7.0]])
    assert np.allclose(loaded.predict(probe), model.predict(probe))


def test_tampered_artifact_is_refused():
    data = bytearray(dumps(_fitted()))
    expected = sha256_hex(bytes(data))
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(InvalidInputError, match="does not match"):
        loads(bytes(data), expected)


def test_artifact_naming_an_untrusted_type_is_refused_before_loading():
    data = dumps({"model": _fitted(), "extra": _Foreign()})
    refused = untrusted_types(data)
    assert any("_Foreign" in name for name in refused)
    with pytest.raises(InvalidInputError, match="does not trust"):
        loads(data, sha256_hex(data))


def test_training_data_hash_ignores_row_order_and_sees_changes():
    runs = pd.DataFrame({"run_key": ["a" * 64, "b" * 64, "c" * 64]})
    shuffled = runs.iloc[[2, 0, 1]]
    assert training_data_hash(runs) == training_data_hash(shuffled)
    assert training_data_hash(runs) != training_data_hash(runs.iloc[:2])


def test_library_versions_name_the_stack():
    versions = library_versions()
    for name in ("python", "numpy", "scikit-learn", "skops", "aiconfigurator-core"):
        assert versions[name]
