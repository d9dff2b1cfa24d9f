"""Typed access to the fields of a Hugging Face ``config.json``, with errors that name them.

A config is plain JSON; a missing or ill-typed field must fail with the dotted name of
the field (``text_config.num_hidden_layers``) and the model it came from, not with a
``KeyError`` deep inside a formula.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optimizer.errors import InvalidInputError

__all__ = ["ConfigReader"]

_MISSING: Any = object()


class ConfigReader:
    """Read fields of one (possibly nested) config object.

    Args:
        config: the JSON object.
        model_id: the model the config belongs to, quoted in error messages.
        prefix: dotted path of ``config`` inside the file (``"text_config."``).
    """

    def __init__(self, config: Mapping[str, Any], model_id: str, prefix: str = "") -> None:
        if not isinstance(config, Mapping):
            raise InvalidInputError(
                prefix.rstrip(".") or "config", f"must be a JSON object (model {model_id})"
            )
        self.config = config
        self.model_id = model_id
        self.prefix = prefix

    def __contains__(self, key: str) -> bool:
        return self.config.get(key) is not None

    def field(self, key: str) -> str:
        """Dotted name of ``key`` for messages."""
        return f"{self.prefix}{key}"

    def error(self, key: str, message: str, allowed: Any = None) -> InvalidInputError:
        """An ``InvalidInputError`` about ``key`` of this config."""
        return InvalidInputError(self.field(key), f"{message} (model {self.model_id})", allowed)

    def raw(self, key: str, default: Any = None) -> Any:
        """The value as stored, ``default`` when absent or null."""
        value = self.config.get(key)
        return default if value is None else value

    def integer(self, key: str, default: int = _MISSING, *, minimum: int = 1) -> int:
        """An integer field that must be ``>= minimum``; required unless ``default`` is given."""
        value = self.config.get(key)
        if value is None:
            if default is _MISSING:
                raise self.error(key, "required field is missing")
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be an integer, got {value!r}")
        if value < minimum:
            raise self.error(key, f"must be >= {minimum}, got {value}")
        return value

    def optional_integer(self, key: str, *, minimum: int = 1) -> int | None:
        """An integer field that may be absent or null."""
        if self.config.get(key) is None:
            return None
        return self.integer(key, minimum=minimum)

    def flag(self, key: str, default: bool) -> bool:
        """A boolean field; ``default`` when absent or null."""
        value = self.config.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, got {value!r}")
        return value

    def text(self, key: str) -> str:
        """A required string field."""
        value = self.optional_text(key)
        if value is None:
            raise self.error(key, "required field is missing")
        return value

    def optional_text(self, key: str) -> str | None:
        """A string field that may be absent or null."""
        value = self.config.get(key)
        if value is not None and not isinstance(value, str):
            raise self.error(key, f"must be a string, got {value!r}")
        return value

    def integers(self, key: str, default: list[int] | None = None) -> list[int]:
        """A list of non-negative integers; ``default`` (or empty) when absent."""
        value = self.config.get(key)
        if value is None:
            return list(default or [])
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
        ):
            raise self.error(key, f"must be a list of non-negative integers, got {value!r}")
        return value

    def layer_types(self, key: str, num_layers: int, allowed: tuple[str, ...]) -> list[str] | None:
        """A per-layer list of layer kinds, checked for length and vocabulary; None if absent."""
        value = self.config.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or len(value) != num_layers:
            raise self.error(key, f"must list one kind per layer ({num_layers} layers)")
        unknown = sorted({v for v in value if v not in allowed}, key=repr)
        if unknown:
            raise self.error(key, f"unknown layer kinds {unknown}", allowed=allowed)
        return value

    def sub(self, key: str) -> ConfigReader:
        """The nested object ``key`` (e.g. ``text_config``); required."""
        value = self.config.get(key)
        if value is None:
            raise self.error(key, "required section is missing")
        if not isinstance(value, Mapping):
            raise self.error(key, "must be a JSON object")
        return ConfigReader(value, self.model_id, prefix=f"{self.prefix}{key}.")
