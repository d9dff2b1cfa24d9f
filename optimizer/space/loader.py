"""Read a search-space YAML file into a validated ``SearchSpace``.

Every problem — bad YAML syntax, an unknown or missing knob, an empty or ill-typed value
list, an unknown constraint or engine — becomes one ``SearchSpaceError`` naming the file,
the knob (or section) and the problem. YAML text is only parsed (``yaml.safe_load``),
never executed.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from optimizer.domain.enums import Engine
from optimizer.errors import InvalidInputError, SearchSpaceError
from optimizer.resources import bundled_dir
from optimizer.space.knobs import KNOBS
from optimizer.space.schema import SearchSpace

__all__ = ["bundled_space_path", "load_search_space", "parse_search_space"]


def bundled_space_path(engine: Engine | str) -> Path:
    """Path of the bundled ``search_spaces/<engine>.yaml``."""
    return bundled_dir("search_spaces") / f"{_engine(engine).value}.yaml"


def _engine(engine: Engine | str) -> Engine:
    try:
        return Engine(engine)
    except ValueError:
        raise InvalidInputError(
            "engine", f"unknown engine {engine!r}", allowed=[e.value for e in Engine]
        ) from None


def _knob_and_problem(err: Mapping[str, Any]) -> tuple[str | None, str]:
    """Which knob (or section) a pydantic error is about, and what is wrong."""
    ctx: dict[str, Any] = err.get("ctx") or {}
    if err.get("type") == "search_space":
        return ctx.get("knob"), str(ctx.get("problem", err.get("msg", "")))
    loc: list[str] = [str(part) for part in err.get("loc", ())]
    message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    if len(loc) >= 4 and loc[0] == "rules" and loc[2] == "forbid":
        inner = ".".join(loc[4:])
        return loc[3], f"rule {int(loc[1]) + 1}: {inner + ': ' if inner else ''}{message}"
    if loc and loc[0] == "knobs" and len(loc) >= 2:
        knob, rest = loc[1], loc[2:]
        if err.get("type") == "extra_forbidden" and not rest:
            return knob, f"unknown knob (known: {', '.join(KNOBS)})"
        if err.get("type") == "missing" and not rest:
            return knob, "missing: every knob must be declared"
        return knob, f"{'.'.join(rest)}: {message}" if rest else message
    if not loc:
        return None, message
    if err.get("type") == "extra_forbidden" and len(loc) == 1:
        return loc[0], "unknown section"
    section = loc[0]
    where = ".".join(loc[1:])
    return section, f"{where}: {message}" if where else message


def parse_search_space(data: Any, source: str = "<search space>") -> SearchSpace:
    """Validate parsed YAML (a mapping) into a ``SearchSpace``.

    Raises:
        SearchSpaceError: the first problem, naming ``source``, the knob and the problem.
    """
    if not isinstance(data, dict):
        raise SearchSpaceError(source, None, "must be a mapping with engine, memory, knobs, ...")
    try:
        return SearchSpace.model_validate(data)
    except ValidationError as exc:
        knob, problem = _knob_and_problem(dict(exc.errors()[0]))
        raise SearchSpaceError(source, knob, problem) from exc


@lru_cache(maxsize=16)
def _load(path: str, mtime_ns: int) -> SearchSpace:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SearchSpaceError(path, None, f"cannot be read: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SearchSpaceError(path, None, f"invalid YAML{where}: {problem}") from exc
    return parse_search_space(data, path)


def load_search_space(engine: Engine | str, path: str | Path | None = None) -> SearchSpace:
    """The search space of ``engine``: the bundled file, or ``path``.

    Args:
        engine: ``vllm``, ``sglang`` or ``trtllm``.
        path: a search-space YAML file to use instead of the bundled one; its ``engine``
            must match.

    Raises:
        InvalidInputError: unknown engine.
        SearchSpaceError: the file is missing, not YAML, or invalid (names file, knob,
            problem).

    Example:
        >>> load_search_space("sglang").knobs.max_batch_size.flag
        'max_running_requests'
    """
    wanted = _engine(engine)
    file = Path(path) if path is not None else bundled_space_path(wanted)
    try:
        mtime_ns = file.stat().st_mtime_ns
    except OSError as exc:
        raise SearchSpaceError(str(file), None, f"cannot be read: {exc.strerror or exc}") from exc
    space = _load(str(file), mtime_ns)
    if space.engine is not wanted:
        raise SearchSpaceError(
            str(file), "engine", f"file describes {space.engine.value}, expected {wanted.value}"
        )
    return space
