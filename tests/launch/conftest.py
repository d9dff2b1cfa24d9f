"""Shared fixtures: catalog GPUs (with prices isolated from the environment) and a parser
built from an engine's documented options, to check every flag we emit."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

import pytest

from optimizer.catalog.gpus import get_gpu
from optimizer.domain.gpu import GPUSpec
from optimizer.settings import Settings

_NO_OVERRIDES = Settings(prices_file=None, gpu_prices={})


@pytest.fixture(scope="session")
def h100() -> GPUSpec:
    return get_gpu("h100_sxm", _NO_OVERRIDES)


@pytest.fixture(scope="session")
def b200() -> GPUSpec:
    return get_gpu("b200_sxm", _NO_OVERRIDES)


@pytest.fixture(scope="session")
def a100() -> GPUSpec:
    return get_gpu("a100_sxm", _NO_OVERRIDES)


@pytest.fixture(scope="session")
def gb200() -> GPUSpec:
    return get_gpu("gb200", _NO_OVERRIDES)


class _StrictParser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, and never abbreviates flags."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise AssertionError(f"not a valid command line for the documented options: {message}")


def _documented_parser(
    options: Mapping[str, object], *, positional: tuple[str, ...] = ()
) -> argparse.ArgumentParser:
    """A parser accepting exactly the documented ``options``.

    ``options`` maps a flag to ``"flag"`` (takes no value), ``int``, ``str``, or a
    tuple of allowed string values.
    """
    parser = _StrictParser(add_help=False, allow_abbrev=False)
    for name in positional:
        parser.add_argument(name)
    for flag, kind in options.items():
        dest = flag.lstrip("-").replace("-", "_")
        if kind == "flag":
            parser.add_argument(flag, dest=dest, action="store_true")
        elif kind is int:
            parser.add_argument(flag, dest=dest, type=int)
        elif kind is str:
            parser.add_argument(flag, dest=dest, type=str)
        elif isinstance(kind, tuple):
            parser.add_argument(flag, dest=dest, choices=kind)
        else:
            raise TypeError(f"bad documented kind for {flag}: {kind!r}")
    return parser


def _value_of(argv: list[str], flag: str) -> str:
    """The value following ``flag`` (which must occur exactly once)."""
    assert argv.count(flag) == 1, f"{flag} occurs {argv.count(flag)} times in {argv}"
    return argv[argv.index(flag) + 1]


@pytest.fixture(scope="session")
def documented_parser():
    """Build a parser accepting exactly an engine's documented options."""
    return _documented_parser


@pytest.fixture(scope="session")
def value_of():
    """The value following a flag in an argv (the flag must occur exactly once)."""
    return _value_of
