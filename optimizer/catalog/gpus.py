"""The GPU catalog: ``GPUSpec`` by id, with the user's own prices laid over the defaults.

The bundled figures live in ``gpus.yaml`` beside this module (each entry names its
sources). Prices are on-demand list prices with a source and a date; users replace them
with their contract rates:

* a prices file (``Settings.prices_file``, env ``EPOPT_PRICES_FILE``): YAML or JSON
  mapping GPU id to $/GPU-hour, e.g. ``{"h100_sxm": 2.10}``;
* the ``EPOPT_GPU_PRICES`` environment variable (``Settings.gpu_prices``), a JSON object.

The environment wins over the file, the file over the catalog. An override names a GPU
id or alias; an unknown id or a price that is not a positive number is an
``InvalidInputError`` naming the key.

Example:
    >>> from optimizer.catalog.gpus import get_gpu
    >>> get_gpu("H100").id
    'h100_sxm'
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from optimizer.domain.gpu import GPUSpec
from optimizer.errors import InvalidInputError, NotFoundError, format_validation_error
from optimizer.settings import Settings

__all__ = [
    "PRICES_ENV_VAR",
    "apply_price_overrides",
    "get_gpu",
    "gpu_aliases",
    "load_gpu_catalog",
    "load_prices_file",
    "resolve_gpu_id",
]

PRICES_ENV_VAR = "EPOPT_GPU_PRICES"
"""Environment variable holding price overrides as a JSON object (``Settings.gpu_prices``)."""

_CATALOG_FILE = "gpus.yaml"


def _normalised(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


@cache
def _bundled() -> tuple[dict[str, GPUSpec], dict[str, str]]:
    """Parse and validate ``gpus.yaml`` once: specs by id, and alias -> id."""
    text = resources.files("optimizer.catalog").joinpath(_CATALOG_FILE).read_text("utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not isinstance(data.get("gpus"), dict):
        raise InvalidInputError(_CATALOG_FILE, "must hold a 'gpus' mapping of id -> spec")
    specs: dict[str, GPUSpec] = {}
    for gpu_id, fields in data["gpus"].items():
        if not isinstance(fields, dict):
            raise InvalidInputError(f"{_CATALOG_FILE}: {gpu_id}", "must be a mapping of fields")
        try:
            specs[gpu_id] = GPUSpec(id=gpu_id, **fields)
        except ValidationError as exc:
            raise InvalidInputError(
                f"{_CATALOG_FILE}: {gpu_id}", format_validation_error(exc)
            ) from exc
    aliases: dict[str, str] = {}
    for alias, target in (data.get("aliases") or {}).items():
        if target not in specs:
            raise InvalidInputError(f"{_CATALOG_FILE}: aliases.{alias}", f"unknown id {target!r}")
        if alias in specs:
            raise InvalidInputError(f"{_CATALOG_FILE}: aliases.{alias}", "shadows a catalog id")
        aliases[_normalised(alias)] = target
    return specs, aliases


def gpu_aliases() -> dict[str, str]:
    """Accepted alternative spellings (normalised) and the catalog id each one means."""
    return dict(_bundled()[1])


def resolve_gpu_id(name: str) -> str:
    """The catalog id for ``name``: an id or alias, any case, dashes or spaces for ``_``.

    Raises:
        NotFoundError: no GPU of that name; the message lists the known ids.

    Example:
        >>> resolve_gpu_id("h100-sxm"), resolve_gpu_id("B200")
        ('h100_sxm', 'b200_sxm')
    """
    specs, aliases = _bundled()
    key = _normalised(name)
    if key in specs:
        return key
    if key in aliases:
        return aliases[key]
    raise NotFoundError("gpu", name, known=specs)


def _price(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(field, f"price must be a number of $/GPU-hour, got {value!r}")
    price = float(value)
    if not math.isfinite(price) or price <= 0:
        raise InvalidInputError(field, f"price must be a positive $/GPU-hour, got {value!r}")
    return price


def apply_price_overrides(
    catalog: Mapping[str, GPUSpec], prices: Mapping[str, Any], where: str
) -> dict[str, GPUSpec]:
    """A copy of ``catalog`` with the given $/GPU-hour prices (pure; nothing is read).

    Args:
        catalog: specs by id.
        prices: GPU id or alias -> price in $/GPU-hour.
        where: where the prices came from; quoted in errors and in ``price_source``.

    Raises:
        InvalidInputError: an unknown GPU id, a key given twice, or a price that is not a
            positive number; the error names ``<where>.<key>``.
    """
    updated = dict(catalog)
    seen: dict[str, str] = {}
    for key, value in prices.items():
        field = f"{where}.{key}"
        try:
            gpu_id = resolve_gpu_id(str(key))
        except NotFoundError:
            raise InvalidInputError(field, "unknown GPU id", allowed=sorted(catalog)) from None
        if gpu_id not in catalog:
            raise InvalidInputError(field, "unknown GPU id", allowed=sorted(catalog))
        if gpu_id in seen:
            raise InvalidInputError(field, f"sets the price of {gpu_id} again (see {seen[gpu_id]})")
        seen[gpu_id] = str(key)
        updated[gpu_id] = catalog[gpu_id].model_copy(
            update={
                "price_usd_per_hour": _price(value, field),
                "price_source": f"user override ({where})",
                "price_date": None,
            }
        )
    return updated


def load_prices_file(path: str | Path) -> dict[str, float]:
    """Read a prices file: a YAML or JSON mapping of GPU id to $/GPU-hour.

    Raises:
        InvalidInputError: the file is missing, unreadable, not YAML/JSON, or not a
            mapping of names to numbers (keys are checked later, against the catalog).
    """
    path = Path(path)
    field = f"prices file {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(field, f"cannot be read: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InvalidInputError(field, f"is not valid {path.suffix or 'YAML'}: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInputError(field, "must hold a mapping of GPU id to $/GPU-hour")
    return {str(key): _price(value, f"{field}.{key}") for key, value in data.items()}


def _settings(settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    try:
        return Settings()
    except ValidationError as exc:
        raise InvalidInputError("EPOPT_* settings", format_validation_error(exc)) from exc


def load_gpu_catalog(settings: Settings | None = None) -> dict[str, GPUSpec]:
    """Every catalog GPU by id, with the user's price overrides applied.

    Args:
        settings: where overrides come from; ``None`` reads the ``EPOPT_*`` environment.

    Returns:
        A new dict on every call (the parsed YAML is cached; the specs are frozen).

    Example:
        >>> catalog = load_gpu_catalog(Settings(gpu_prices={"h100_sxm": 2.1}))
        >>> catalog["h100_sxm"].price_usd_per_hour, catalog["h100_sxm"].price_source
        (2.1, 'user override (EPOPT_GPU_PRICES)')
    """
    settings = _settings(settings)
    catalog = dict(_bundled()[0])
    if settings.prices_file is not None:
        prices = load_prices_file(settings.prices_file)
        catalog = apply_price_overrides(catalog, prices, f"prices file {settings.prices_file}")
    if settings.gpu_prices:
        catalog = apply_price_overrides(catalog, settings.gpu_prices, PRICES_ENV_VAR)
    return catalog


def get_gpu(gpu_id: str, settings: Settings | None = None) -> GPUSpec:
    """One GPU by id or alias (``"H100"``, ``"h100-sxm"``, ``"B200"`` ...), prices overridden.

    Raises:
        NotFoundError: unknown GPU; the message lists the known ids.
    """
    return load_gpu_catalog(settings)[resolve_gpu_id(gpu_id)]
