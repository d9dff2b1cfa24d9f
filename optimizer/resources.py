"""Where the bundled data folders live: inside an installed wheel, or in a checkout.

The wheel carries ``search_spaces/``, ``profiles/`` and ``storage/`` under
``optimizer/_bundled/``; an editable install or a plain checkout reads them from the
repository root. Callers never care which.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["aiconfigurator_dir", "bundled_dir"]

_FOLDERS = ("search_spaces", "profiles", "storage")


def bundled_dir(name: str) -> Path:
    """Path of one of the top-level data folders (``search_spaces``, ``profiles``, ``storage``)."""
    if name not in _FOLDERS:
        raise ValueError(f"unknown bundled folder {name!r}; allowed: {', '.join(_FOLDERS)}")
    package_root = Path(str(resources.files("optimizer")))
    wheel_copy = package_root / "_bundled" / name
    if wheel_copy.is_dir():
        return wheel_copy
    checkout_copy = package_root.parent / name
    if checkout_copy.is_dir():
        return checkout_copy
    raise FileNotFoundError(f"bundled folder {name!r} not found beside the optimizer package")


def aiconfigurator_dir() -> Path:
    """Root of the installed ``aiconfigurator_core`` package (measured runs, configs, kernels).

    Data credit: NVIDIA aiconfigurator (Apache-2.0), PyPI ``aiconfigurator-core==0.12.0``.
    """
    return Path(str(resources.files("aiconfigurator_core")))
