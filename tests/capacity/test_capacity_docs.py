"""The examples in the capacity package's docstrings run and print what they claim."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import optimizer.capacity

MODULES = ["optimizer.capacity"] + [
    info.name
    for info in pkgutil.walk_packages(optimizer.capacity.__path__, prefix="optimizer.capacity.")
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
