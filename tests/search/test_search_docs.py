"""The search package's docstring examples run, and its modules export what they list."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import optimizer.search

MODULES = ["optimizer.search"] + [
    info.name
    for info in pkgutil.walk_packages(optimizer.search.__path__, prefix="optimizer.search.")
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


@pytest.mark.parametrize("name", MODULES)
def test_every_module_exports_its_names(name):
    module = importlib.import_module(name)
    assert [n for n in module.__all__ if not hasattr(module, n)] == []


def test_importing_the_backends_does_not_load_optuna_or_ray():
    import subprocess
    import sys

    code = (
        "import sys, optimizer.search.backends; "
        "print(sorted(m for m in ('optuna', 'ray') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
