"""The model catalog: ``ModelSpec`` by Hugging Face id (bundled configs) or by local path.

Bundled configs come from ``aiconfigurator-core`` (Apache-2.0, NVIDIA aiconfigurator,
``aiconfigurator_core/model_configs``); ``model_ids`` maps user spellings onto them.
A local path may be a ``config.json`` file or a checkpoint directory holding one; a
ModelOpt ``hf_quant_config.json`` beside it (or ``<name>_hf_quant_config.json`` beside
``<name>_config.json``) is read too. The translation itself is pure
(``hf_config.model_spec_from_config``); this module only reads files and caches.

Example:
    >>> from optimizer.catalog.models import load_model_spec
    >>> spec = load_model_spec("deepseek-ai/DeepSeek-V3")
    >>> round(spec.total_params / 1e9)
    671
"""

from __future__ import annotations

import json
import os
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from optimizer.catalog.hf_config import model_spec_from_config
from optimizer.catalog.model_ids import bundled_config_paths, bundled_model_ids, resolve_model_id
from optimizer.domain.model_spec import ModelSpec
from optimizer.errors import InvalidInputError, NotFoundError, UnsupportedModelError

__all__ = [
    "CatalogEntry",
    "bundled_architecture",
    "bundled_model_ids",
    "catalog_report",
    "load_model_spec",
    "model_spec_from_config",
    "resolve_model_id",
]


class CatalogEntry(NamedTuple):
    """One bundled config: its spec, or why it cannot be modelled."""

    model_id: str
    spec: ModelSpec | None
    reason: str | None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError(str(path), f"cannot be read: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise InvalidInputError(str(path), f"is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInputError(str(path), "must hold a JSON object")
    return data


def _quant_config_path(config_path: Path) -> Path:
    name = config_path.name
    if name.endswith("_config.json") and name != "config.json":
        return config_path.with_name(name[: -len("_config.json")] + "_hf_quant_config.json")
    return config_path.with_name("hf_quant_config.json")


def _load_files(config_path: Path, model_id: str) -> ModelSpec:
    config = _read_json(config_path)
    quant_path = _quant_config_path(config_path)
    quant = _read_json(quant_path) if quant_path.is_file() else None
    return model_spec_from_config(config, model_id, quant)


@cache
def _load_bundled(model_id: str) -> ModelSpec:
    return _load_files(bundled_config_paths()[model_id], model_id)


@lru_cache(maxsize=256)
def _load_path(path: str, mtime_ns: int, model_id: str) -> ModelSpec:
    del mtime_ns  # part of the cache key only: an edited file is read again
    return _load_files(Path(path), model_id)


def _looks_like_path(text: str) -> bool:
    return (
        text.endswith(".json")
        or text.startswith((".", "/", "~"))
        or text.count("/") > 1
        or (os.sep != "/" and os.sep in text)
    )


def load_model_spec(model: str | os.PathLike[str]) -> ModelSpec:
    """The spec of a model, by Hugging Face id or by local path.

    Args:
        model: a Hugging Face id (``"meta-llama/Llama-3.1-70B"``; resolved onto the
            bundled configs, see ``resolve_model_id``), a ``config.json`` file, or a
            directory holding one. An existing path wins over an id of the same spelling.

    Returns:
        The spec; cached per resolved id (and per path and modification time).
        ``spec.model_id`` is the resolved bundled id, or the path as given.

    Raises:
        NotFoundError: an unknown id, or a path that does not exist.
        UnsupportedModelError: the architecture cannot be modelled faithfully
            (message ``"<model>: unsupported: <reason>"``).
        InvalidInputError: the config is unreadable or misses a required field.
    """
    text = os.fspath(model)
    path = Path(text).expanduser()
    if isinstance(model, os.PathLike) or path.exists() or _looks_like_path(text):
        config_path = path / "config.json" if path.is_dir() else path
        if not config_path.is_file():
            raise NotFoundError("model config file", str(config_path))
        resolved = config_path.resolve()
        return _load_path(str(resolved), resolved.stat().st_mtime_ns, text)
    return _load_bundled(resolve_model_id(text))


def bundled_architecture(model_id: str) -> str:
    """The architecture class a bundled config names (``architectures[0]``, else
    ``model_type``), read without modelling it: for listing unsupported configs."""
    config = _read_json(bundled_config_paths()[model_id])
    archs = config.get("architectures")
    if isinstance(archs, list) and archs and isinstance(archs[0], str):
        return archs[0]
    return str(config.get("model_type", "?"))


def catalog_report() -> list[CatalogEntry]:
    """Every bundled config, loaded or with the reason it is unsupported, sorted by id.

    Configs that are malformed (``InvalidInputError``) are reported the same way, with
    the error as the reason; nothing is skipped silently.
    """
    entries = []
    for model_id in bundled_model_ids():
        try:
            entries.append(CatalogEntry(model_id, _load_bundled(model_id), None))
        except UnsupportedModelError as exc:
            entries.append(CatalogEntry(model_id, None, exc.reason))
        except InvalidInputError as exc:
            entries.append(CatalogEntry(model_id, None, f"invalid config: {exc}"))
    return entries
