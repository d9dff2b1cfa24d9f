"""Importer for the JSON that ``vllm bench serve --save-result`` writes.

Accepted files: one result object (``--save-result``), one result per line
(``--append-result``, JSONL), or a JSON array of results. The importer keys on field
presence (``model_id`` and ``mean_ttft_ms`` or ``median_ttft_ms``), not on a vLLM version.

Mapping (all latencies stay in ms, as the file has them):

- ``model`` = ``model_id``; ``ttft_ms``/``tpot_ms`` = ``mean_ttft_ms``/``mean_tpot_ms``;
  ``ttft_p50_ms`` = ``median_ttft_ms`` (or ``p50_ttft_ms``), ``ttft_p90/p95/p99_ms`` =
  ``p90/p95/p99_ttft_ms`` when the run asked for them; the same for ``tpot``, and ``e2e``
  from the ``e2el`` metric; ``output_tok_s`` = ``output_throughput``; ``request_per_s`` =
  ``request_throughput``.
- Load: ``request_rate`` ``"inf"`` is a closed loop: ``concurrency`` =
  ``max_concurrency`` (or ``num_prompts`` when there is no cap: every prompt is sent at
  once) and no request rate; a finite ``request_rate`` is an open loop at that rate, with
  ``concurrency`` = ``max_concurrency`` when a cap was set.
- ``isl``/``osl`` = ``total_input_tokens``/``total_output_tokens`` / ``completed``, rounded.
- ``measured_at`` = ``date`` (``%Y%m%d-%H%M%S``, written in the benchmark host's local
  time with no zone; read as UTC). ``source`` = the file name. ``source_id`` is null.
- Deployment fields the file lacks (``gpu``, ``engine``, ``quantization``, ``tp``, ...) come
  from top-level keys of the same name, which ``vllm bench serve --metadata gpu=h100_sxm
  tp=2 ...`` writes, or else from the caller's overrides (``--gpu``, ``--tp`` ...). ``gpu``,
  ``engine``, ``quantization`` and ``tp`` are required; ``pp``/``dp``/``ep`` default to 1,
  ``mode`` to ``agg``, ``spec_method`` to ``none``. An override that contradicts the file
  is an error, except ``model``, which replaces ``model_id`` (often a local path; the
  original is kept in ``extra["model_id"]``).
- Speculative decoding: a file with speculative-decoding counters (``spec_decode_*``) must
  say which method (``spec_method``); ``spec_draft_len`` defaults to the length of
  ``spec_decode_per_position_acceptance_rates``. The counters go to ``extra``.
- ``extra`` keeps every other top-level value (e.g. ``std_*``, ``*_itl_ms``, ``duration``,
  ``completed``, ``backend``, ``label``, unused metadata) except nulls and the per-request
  arrays (``latencies``, ``ttfts``, ``itls``, ...); non-finite numbers become null.

Row numbers in errors: 1 for a single-object file, the 1-based element index of a JSON
array, and the 1-based line number of a JSONL file.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from optimizer.domain.profile_run import NATIVE_COLUMNS
from optimizer.errors import ProfileImportError
from optimizer.profiles.importers.base import OVERRIDE_FIELDS, BaseImporter, option_for
from optimizer.profiles.schema import validate_profiles

__all__ = ["DEPLOYMENT_FIELDS", "REQUIRED_DEPLOYMENT_FIELDS", "VllmBenchImporter", "map_result"]

DEPLOYMENT_FIELDS: tuple[str, ...] = tuple(
    f for f in OVERRIDE_FIELDS if f not in ("model", "source")
)
"""Native fields read from top-level keys (``--metadata k=v``) or overrides."""

REQUIRED_DEPLOYMENT_FIELDS: tuple[str, ...] = ("gpu", "engine", "quantization", "tp")
"""Deployment fields without a sensible default: the file or the caller must give them."""

_PER_REQUEST = frozenset(
    {
        "latencies",
        "queue_times",
        "input_lens",
        "output_lens",
        "start_times",
        "ttfts",
        "itls",
        "generated_texts",
        "errors",
    }
)
_METRICS = (("ttft", "ttft"), ("tpot", "tpot"), ("e2el", "e2e"))
_DATE_FORMATS = ("%Y%m%d-%H%M%S", "%Y-%m-%d %H:%M:%S")


def _is_result(obj: object) -> bool:
    return (
        isinstance(obj, dict)
        and "model_id" in obj
        and ("mean_ttft_ms" in obj or "median_ttft_ms" in obj)
    )


def _results(path: Path, source: str) -> Iterator[tuple[int, Any]]:
    """(row number, parsed object) for each result in a JSON, JSON-array or JSONL file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileImportError(source, None, None, f"cannot read file: {exc}") from exc
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
        lines = True
    else:
        lines = False
    if not lines:
        if isinstance(whole, list):
            yield from enumerate(whole, start=1)
        else:
            yield 1, whole
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise ProfileImportError(source, number, None, f"not valid JSON: {exc}") from exc


def _first_object(path: Path) -> object:
    with path.open(encoding="utf-8") as handle:
        head = handle.read(1)
        handle.seek(0)
        if head == "[":
            whole = json.load(handle)
            return whole[0] if isinstance(whole, list) and whole else None
        for line in handle:
            if line.strip():
                try:
                    return json.loads(line)
                except json.JSONDecodeError:
                    break
        handle.seek(0)
        return json.load(handle)


def _same(a: object, b: object) -> bool:
    return str(a).strip().lower() == str(b).strip().lower()


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def _measured_at(text: object, source: str, row: int) -> datetime | None:
    if text is None:
        return None
    for layout in _DATE_FORMATS:
        try:
            return datetime.strptime(str(text), layout).replace(tzinfo=UTC)
        except ValueError:
            continue
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        raise ProfileImportError(
            source, row, "date", f"unrecognised date {text!r} (expected YYYYMMDD-HHMMSS)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _number(result: dict[str, Any], key: str, source: str, row: int) -> float | None:
    value = result.get(key)
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ProfileImportError(source, row, key, f"not a number (got {value!r})") from None


def _load(result: dict[str, Any], source: str, row: int) -> dict[str, Any]:
    """concurrency / request_rate, plus ``concurrency_from`` when it is not max_concurrency."""
    cap = result.get("max_concurrency")
    value = result.get("request_rate")
    if value is None:
        return {"concurrency": cap, "request_rate": None}
    rate: float | None = math.inf
    if not (isinstance(value, str) and value.strip().lower() == "inf"):
        rate = _number(result, "request_rate", source, row)
    if rate is not None and math.isfinite(rate):
        return {"concurrency": cap, "request_rate": rate}
    if cap is None:  # no rate limit and no cap: every prompt is in flight at once
        return {"concurrency": result.get("num_prompts"), "concurrency_from": "num_prompts"}
    return {"concurrency": cap, "request_rate": None}


def _mean_length(result: dict[str, Any], total_key: str, source: str, row: int) -> int:
    completed = _number(result, "completed", source, row)
    if not completed:
        raise ProfileImportError(
            source, row, "completed", "no completed requests; cannot derive isl/osl"
        )
    total = _number(result, total_key, source, row)
    if total is None:
        raise ProfileImportError(source, row, total_key, "missing; needed for isl/osl")
    return round(total / completed)


def _deployment(
    result: dict[str, Any], overrides: dict[str, Any], source: str, row: int
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for field in DEPLOYMENT_FIELDS:
        in_file = result.get(field)
        given = overrides.get(field)
        if in_file is not None and given is not None and not _same(in_file, given):
            raise ProfileImportError(
                source,
                row,
                field,
                f"the file says {in_file!r} but {option_for(field)} says {given!r}; "
                "drop one of them",
            )
        value = in_file if in_file is not None else given
        if value is not None:
            fields[field] = value
    for field in REQUIRED_DEPLOYMENT_FIELDS:
        if field not in fields:
            raise ProfileImportError(
                source,
                row,
                field,
                f"missing: the file has no {field!r} key; pass {option_for(field)} "
                f"(or run vllm bench serve with --metadata {field}=...)",
            )
    return fields


def _speculative(result: dict[str, Any], fields: dict[str, Any], source: str, row: int) -> None:
    counters = [k for k, v in result.items() if k.startswith("spec_decode_") and v is not None]
    drafted = any(
        result.get(k) for k in ("spec_decode_num_drafts", "spec_decode_acceptance_length")
    )
    method = str(fields.get("spec_method", "none")).strip().lower()
    if method == "none":
        if counters and drafted:
            raise ProfileImportError(
                source,
                row,
                "spec_method",
                "the file has speculative-decoding counters but no spec_method; pass "
                f"{option_for('spec_method')} (and {option_for('spec_draft_len')})",
            )
        return
    if "spec_draft_len" not in fields:
        positions = result.get("spec_decode_per_position_acceptance_rates")
        if not isinstance(positions, list) or not positions:
            raise ProfileImportError(
                source,
                row,
                "spec_draft_len",
                f"missing for spec_method {method!r}; pass {option_for('spec_draft_len')}",
            )
        fields["spec_draft_len"] = len(positions)


def map_result(
    result: object, source: str, row: int, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Map one ``vllm bench serve`` result object to native fields (see the module doc)."""
    if not _is_result(result):
        raise ProfileImportError(
            source,
            row,
            None,
            "not a vllm bench serve result (needs model_id and mean_ttft_ms)",
        )
    assert isinstance(result, dict)
    overrides = dict(overrides or {})
    model_override = overrides.pop("model", None)
    fields = _deployment(result, overrides, source, row)
    _speculative(result, fields, source, row)
    load = _load(result, source, row)
    concurrency_from = load.pop("concurrency_from", None)
    native: dict[str, Any] = {
        "model": model_override or result.get("model_id"),
        **fields,
        **load,
        "isl": _mean_length(result, "total_input_tokens", source, row),
        "osl": _mean_length(result, "total_output_tokens", source, row),
        "ttft_ms": result.get("mean_ttft_ms"),
        "tpot_ms": result.get("mean_tpot_ms"),
        "output_tok_s": result.get("output_throughput"),
        "request_per_s": result.get("request_throughput"),
        "source": overrides.get("source") or source,
        "measured_at": _measured_at(result.get("date"), source, row),
    }
    used = {"mean_ttft_ms", "mean_tpot_ms", "output_throughput", "request_throughput"}
    used |= {"date", "request_rate", "max_concurrency"} | set(fields)
    for metric, native_name in _METRICS:
        for percentile in (50, 90, 95, 99):
            keys = [f"p{percentile}_{metric}_ms"]
            if percentile == 50:
                keys.insert(0, f"median_{metric}_ms")
            found = [k for k in keys if result.get(k) is not None]
            if found:  # median and p50 are the same statistic
                native[f"{native_name}_p{percentile}_ms"] = result[found[0]]
                used.update(found)
    if model_override is None:
        used.add("model_id")
    extra = {
        k: _finite(v)
        for k, v in result.items()
        if k not in used and k not in _PER_REQUEST and k not in NATIVE_COLUMNS and v is not None
    }
    if concurrency_from is not None:
        extra["concurrency_from"] = concurrency_from
    native["extra"] = dict(sorted(extra.items())) or None
    return native


class VllmBenchImporter(BaseImporter):
    """``vllm bench serve --save-result`` JSON, or ``--append-result`` JSONL.

    Example:
        >>> VllmBenchImporter().name
        'vllm-bench'
    """

    name = "vllm-bench"
    description = "vllm bench serve --save-result JSON (or --append-result JSONL)"
    overridable = frozenset(OVERRIDE_FIELDS)

    def can_read(self, path: Path) -> bool:
        """True when the first JSON object has ``model_id`` and ``mean_ttft_ms``."""
        try:
            return _is_result(_first_object(Path(path)))
        except (OSError, UnicodeDecodeError, ValueError):
            return False

    def read(self, path: str | os.PathLike[str], /, **overrides: Any) -> pd.DataFrame:
        """Read every result in the file; see the module docstring for the mapping."""
        path = Path(path)
        given = self._overrides(overrides)
        source = str(given.get("source") or path.name)
        rows: list[int] = []
        mapped: list[dict[str, Any]] = []
        for row, result in _results(path, source):
            mapped.append(map_result(result, source, row, given))
            rows.append(row)
        if not mapped:
            raise ProfileImportError(source, None, None, "the file holds no results")
        return validate_profiles(pd.DataFrame.from_records(mapped), source, rows=rows)
