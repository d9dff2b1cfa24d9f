"""Importer for aiconfigurator's measured end-to-end runs (``systems/silicon_sample.csv``).

Data credit: NVIDIA aiconfigurator (Apache-2.0), PyPI ``aiconfigurator-core``. The
bundled file (0.12.0) holds 5,221 runs: 3,619 aggregated, 1,602 disaggregated. Every
row is kept; mapping to the native schema:

- ``model`` = ``model_path`` exactly as written (the model catalog resolves aliases),
  ``gpu`` = ``system``, ``engine`` = ``backend``, ``engine_version`` = ``backend_version``
  (null when blank; not guessed from image tags), ``mode`` = ``mode``, ``isl``/``osl``,
  ``ttft_ms`` = ``silicon_ttft_ms``, ``tpot_ms`` = ``silicon_tpot_ms`` (means; no
  percentiles in the file), ``source_id`` = ``id``.
- **Parallelism.** ``agg`` rows: ``tp``/``pp``/``dp``/``ep`` = ``tp_size``/``pp_size``/
  ``attention_dp_size``/``moe_ep_size``. ``disagg`` rows leave those blank and describe
  two pools; the main columns take the **decode** pool (``decode_tp_size`` ...), since
  decode sets TPOT and holds the KV cache; both pools' ``prefill_*``/``decode_*`` fields go
  to ``extra`` unchanged. A blank or 0 ``pp``/attention-DP/expert-parallel size means
  "not used" and becomes 1 (a 0 is also kept in ``extra`` under its source column).
- **Squared layouts** (``agg``). Some rows record ``N^2`` GPUs for a run on ``N``:
  either ``moe_tp_size = moe_ep_size = N`` with ``tp_size x attention_dp_size = N^2``
  (e.g. ``tp_size`` 64, ``moe_tp_size`` 8, ``moe_ep_size`` 8), or ``tp_size =
  attention_dp_size = N`` with ``moe_tp_size`` 1 and ``moe_ep_size = N^2``. 3,001 ``agg``
  ids name their layout (``..._tp<N>[_0]_ep<E>[_0]_...``, ``_epnone_``); on 234 of them
  the columns' GPU count is not the id's, those 234 are all of this pattern with the id's
  ``N``, and 4 rows of the pattern whose id names ``N^2`` GPUs are right as written. Of
  the 234, 68 repeat exactly the TTFT and TPOT of a row written at ``N`` GPUs (same model,
  GPU, engine, format, lengths and concurrency) and half are within 0.2 % of one
  (MiniMax-M2.5 on H100: 10.09 ms TPOT at 4 clients written as 16 GPUs, 10.12 ms written
  as the 4 its id names). 192 rows of the pattern have ``_cfg<K>`` ids that name no
  layout. 180 of them are taken as squared too: those of the second form (all 40
  id-named rows of it are squared) and those of the first with ``N >= 4`` (16 or more
  GPUs in one tensor- or data-parallel group). The 12 of the first form with ``N = 2``
  stay as written: 4 GPUs with MoE tensor and expert parallelism of 2 each is a layout
  the engines serve, and 4 of the 26 id-named rows of that form are right as written.
  Squared rows are mapped to ``N``-way expert parallelism on ``N`` GPUs, attention over
  ``tp = N`` (``dp = N`` where the file put ``N^2`` in ``attention_dp_size`` with
  ``tp_size`` 1), with ``extra["layout_from"] = "squared_layout"`` and the file's
  ``tp_size``, ``attention_dp_size`` and ``moe_ep_size`` kept in ``extra``
  (:func:`squared_layout`; 414 rows). ``disagg`` pools are mapped as written.
- **Concurrency** is the number of closed-loop clients one deployment (``tp x dp``
  GPUs) served: ``silicon_concurrency=`` inside ``silicon_data_source`` (5,202 rows; it
  equals the ``_c<N>_`` in the row id). ``batch_size`` is aiconfigurator's *per-worker*
  batch and is kept in ``extra``; it equals the client concurrency on 3,410 of the 3,607
  ``agg`` rows that carry both, and ``batch_size x attention_dp_size`` on 3,577. On 16
  ``agg`` rows that give the attention-DP size, the client count is a whole multiple
  ``k >= 2`` of ``batch_size x attention_dp_size``: the benchmark spread its clients over
  ``k`` copies of the deployment (e.g. the nvidia/Qwen3-32B-NVFP4 runs: 416 clients of
  15,500-token requests, 13 per copy -- 416 such sequences could not fit in two GPUs'
  memory, 13 give the measured 13.7 ms TPOT). Their concurrency is the per-copy count,
  ``extra["deployment_copies"] = k``. Where the file has no
  ``silicon_concurrency`` (12 ``agg``, 7 ``disagg`` rows) the concurrency is derived:
  ``batch_size x dp`` (``agg``), ``decode_batch_size x decode_num_workers x
  decode_attention_dp_size`` (``disagg``; that identity holds on all 267 ``disagg`` rows
  that carry both). ``extra["concurrency_from"]`` says which (and
  ``silicon_concurrency/deployment_copies`` for the 16 rows above).
- **Quantization** = ``gemm_quant_mode``; where blank (446 rows) from ``precision``
  (``fp8``->``fp8``, ``fp4``->``nvfp4``, ``int4``->``int4_wo``, ``bf16``->``bf16``); where
  both are blank (366 rows: Qwen/Qwen3-32B, meta-llama/Llama-3.1-8B-Instruct) from the
  checkpoint name (``NVFP4``/``FP4``, ``MXFP4``, ``FP8``, ``AWQ``/``GPTQ``/``INT4``), else
  ``bf16``, the dtype of an unquantised Hugging Face checkpoint. ``extra["quantization_from"]``
  records ``gemm_quant_mode``, ``precision``, ``model_name`` or ``default``. aiconfigurator
  labels every 4-bit float mode ``nvfp4``; on a checkpoint the model catalog knows to be
  MXFP4 (gpt-oss, 485 rows) the run is recorded as ``mxfp4``.
- **Provenance.** ``measured_at`` from ``measured=`` in ``silicon_data_source`` (UTC);
  the rest of ``silicon_data_source`` goes to ``extra["silicon_data_source"]`` as a dict
  (tokens without ``=``, e.g. ``db-dump/2026-04-27`` or an image name, under
  ``"unkeyed"``), ``silicon_concurrency`` to ``extra["silicon_concurrency"]``; every other
  non-blank source column without a native home (``precision``, ``moe_quant_mode``,
  ``moe_tp_size``, ``batch_size``, ``prefill_*``, ``decode_*``, and any column a later
  file adds) goes to ``extra`` under its own name, whole numbers as ints.
- ``source`` = ``aiconfigurator-core==<version>:systems/silicon_sample.csv`` for the
  installed package's file, else the file name.

Row numbers in errors count data rows after the header (row 1 = the first run).
"""

from __future__ import annotations

import csv
import math
import os
import re
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from optimizer.domain.profile_run import NATIVE_COLUMNS
from optimizer.errors import ProfileImportError
from optimizer.profiles.columns import is_missing
from optimizer.profiles.importers.base import BaseImporter
from optimizer.profiles.schema import validate_profiles
from optimizer.resources import aiconfigurator_dir

__all__ = [
    "PRECISION_TO_QUANTIZATION",
    "AIConfiguratorImporter",
    "bundled_silicon_csv",
    "bundled_silicon_source",
    "id_gpus",
    "map_row",
    "parse_data_source",
    "squared_layout",
]

PRECISION_TO_QUANTIZATION: dict[str, str] = {
    "fp8": "fp8",
    "fp4": "nvfp4",
    "int4": "int4_wo",
    "bf16": "bf16",
}
"""aiconfigurator ``precision`` -> native ``quantization`` (used where gemm_quant_mode is blank)."""

DEFAULT_QUANTIZATION = "bf16"
"""Quantization of a checkpoint whose name names none: the Hugging Face default dtype."""

_NAME_HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"mxfp4", re.IGNORECASE), "mxfp4"),
    (re.compile(r"nvfp4|fp4", re.IGNORECASE), "nvfp4"),
    (re.compile(r"fp8", re.IGNORECASE), "fp8"),
    (re.compile(r"awq|gptq|int4|w4a16", re.IGNORECASE), "int4_wo"),
)

_SIGNATURE = frozenset({"model_path", "system", "backend", "silicon_ttft_ms", "silicon_tpot_ms"})
_REQUIRED = (
    "id",
    "silicon_data_source",
    "backend",
    "model_path",
    "system",
    "mode",
    "isl",
    "osl",
    "silicon_ttft_ms",
    "silicon_tpot_ms",
)
_POOL_FIELDS = {"tp": "tp_size", "pp": "pp_size", "dp": "attention_dp_size", "ep": "moe_ep_size"}
# Source columns whose value lands in a native column (agg pool sizes are added per row).
_NATIVE_HOME = frozenset(
    {
        "id",
        "silicon_data_source",
        "backend",
        "backend_version",
        "model_path",
        "system",
        "mode",
        "isl",
        "osl",
        "gemm_quant_mode",
        "silicon_ttft_ms",
        "silicon_tpot_ms",
    }
)


def bundled_silicon_csv() -> Path:
    """Path of ``silicon_sample.csv`` inside the installed ``aiconfigurator_core`` package."""
    return aiconfigurator_dir() / "systems" / "silicon_sample.csv"


def bundled_silicon_source() -> str:
    """Provenance label of the bundled file, e.g. ``aiconfigurator-core==0.12.0:systems/...``."""
    version = metadata.version("aiconfigurator-core")
    return f"aiconfigurator-core=={version}:systems/silicon_sample.csv"


def parse_data_source(text: str) -> tuple[dict[str, str], list[str]]:
    """Split a ``silicon_data_source`` cell into ``key=value`` pairs and bare tokens.

    Example:
        >>> parse_data_source("db-dump/2026-04-27; config_id=733; silicon_concurrency=128")
        ({'config_id': '733', 'silicon_concurrency': '128'}, ['db-dump/2026-04-27'])
    """
    pairs: dict[str, str] = {}
    bare: list[str] = []
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        if sep and key.strip():
            pairs[key.strip()] = value.strip()
        else:
            bare.append(part)
    return pairs, bare


class _Row:
    """One source row being mapped; errors name the source column and the row number."""

    def __init__(self, record: dict[str, Any], source: str, row: int):
        self.record = record
        self.source = source
        self.row = row

    def error(self, column: str, reason: str) -> ProfileImportError:
        return ProfileImportError(self.source, self.row, column, reason)

    def text(self, column: str) -> str | None:
        value = self.record.get(column)
        return None if is_missing(value) or str(value).strip() == "" else str(value).strip()

    def number(self, column: str) -> float | None:
        value = self.text(column)
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            raise self.error(column, f"not a number (got {value!r})") from None

    def whole(self, column: str, value: Any = None) -> int | None:
        number = self.number(column) if value is None else float(value)
        if number is None:
            return None
        if not number.is_integer():
            raise self.error(column, f"not a whole number (got {number!r})")
        return int(number)


def _checkpoint_is_mxfp4(model: str) -> bool:
    """Whether the model's published checkpoint is MXFP4 (gpt-oss), per the model catalog."""
    from optimizer.catalog.models import load_model_spec
    from optimizer.errors import EpoptError

    try:
        return load_model_spec(model).native_quantization == "mxfp4"
    except EpoptError:
        return False


def _quantization(row: _Row) -> tuple[str | None, str]:
    gemm = row.text("gemm_quant_mode")
    if gemm == "nvfp4" and _checkpoint_is_mxfp4(row.text("model_path") or ""):
        # aiconfigurator labels every 4-bit float mode "nvfp4"; a checkpoint published in
        # MXFP4 (gpt-oss) runs as MXFP4 -- on Hopper as weight-only W4A16 MoE kernels.
        return "mxfp4", "gemm_quant_mode nvfp4 on an MXFP4 checkpoint"
    if gemm is not None:
        return gemm, "gemm_quant_mode"
    precision = row.text("precision")
    if precision is not None:
        if precision not in PRECISION_TO_QUANTIZATION:
            allowed = ", ".join(PRECISION_TO_QUANTIZATION)
            raise row.error(
                "precision",
                f"unknown precision {precision!r} and gemm_quant_mode is blank "
                f"(allowed: {allowed})",
            )
        return PRECISION_TO_QUANTIZATION[precision], "precision"
    model = row.text("model_path") or ""
    for pattern, quantization in _NAME_HINTS:
        if pattern.search(model):
            return quantization, "model_name"
    return DEFAULT_QUANTIZATION, "default"


def _measured_at(row: _Row, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise row.error(
            "silicon_data_source", f"measured={text!r} is not an ISO-8601 date or time"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _extra_value(row: _Row, column: str) -> Any:
    text = row.text(column)
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() else number


def _deployment_copies(r: _Row, clients: int) -> int:
    """How many copies of the deployment an ``agg`` run spread its clients over: the
    client count over the sequences one copy runs (``batch_size x attention_dp_size``)
    where that is a whole number of at least 2 and the attention-DP size is given; else 1."""
    batch, attention_dp = r.whole("batch_size"), r.whole("attention_dp_size")
    if batch is None or attention_dp is None:
        return 1
    per_copy = batch * max(attention_dp, 1)
    return clients // per_copy if clients % per_copy == 0 and clients >= 2 * per_copy else 1


_ID_LAYOUT = re.compile(r"_tp(\d+)(?:_0)?_(?:dp(\d+)(?:_0)?_)?ep(?:\d+|none)(?:_0)?_")
"""The layout a row id names (``_tp4_0_ep4_0_``, ``_tp4_ep4_``, ``_tp4_epnone_``)."""


def id_gpus(row_id: str | None) -> int | None:
    """GPUs of the layout the row id names (``tp x dp``), or ``None`` where it names none.

    Example:
        >>> id_gpus("x_agg_1024x1024_c4_tp4_0_ep4_0_234"), id_gpus("x_tp1_dp8_ep8_3")
        (4, 8)
        >>> id_gpus("dsr1_b200_sglang_fp4_agg_1024x8192_c4_cfg201") is None
        True
    """
    match = _ID_LAYOUT.search(row_id or "")
    if match is None:
        return None
    return int(match.group(1)) * int(match.group(2) or 1)


def squared_layout(
    tp: int, dp: int, moe_tp: int, moe_ep: int, named_gpus: int | None = None
) -> tuple[int, int, int] | None:
    """The ``(tp, dp, ep)`` of an ``agg`` run the file records on ``N^2`` GPUs instead of
    its ``N``, or ``None`` where the row is taken as written (see the module doc).

    Args:
        tp, dp, moe_tp, moe_ep: the file's ``tp_size``, ``attention_dp_size``,
            ``moe_tp_size`` and ``moe_ep_size`` (blank or 0 as 1).
        named_gpus: GPUs of the layout the row id names (:func:`id_gpus`), if it names
            one: the row is squared only where that is ``N``. Without it, the MoE-TP
            pattern only from ``N = 4`` on: 4 GPUs with MoE tensor and expert
            parallelism of 2 each is a layout the engines serve (4 of the 26 id-named
            rows of it are right as written), while 16 or more in one tensor- or
            data-parallel group span several 8-GPU servers. The DP pattern is squared at
            any ``N`` (all 40 id-named rows of it are).

    Example:
        >>> squared_layout(64, 1, 8, 8), squared_layout(1, 16, 4, 4), squared_layout(4, 4, 1, 16)
        ((8, 1, 8), (1, 4, 4), (4, 1, 4))
        >>> squared_layout(4, 1, 2, 2, named_gpus=2), squared_layout(4, 1, 2, 2, 4)
        ((2, 1, 2), None)
        >>> squared_layout(4, 1, 2, 2) is None, squared_layout(8, 1, 1, 8) is None
        (True, True)
        >>> squared_layout(2, 2, 1, 4)
        (2, 1, 2)
    """
    gpus = tp * dp
    n = math.isqrt(gpus)
    if n < 2 or n * n != gpus or (named_gpus is not None and named_gpus != n):
        return None
    if tp == dp == n and moe_tp == 1 and moe_ep == gpus:
        return n, 1, n
    if moe_tp == moe_ep == n and (named_gpus is not None or n >= 4):
        if dp == 1:
            return n, 1, n
        if tp == 1:
            return 1, n, n
    return None


def map_row(record: dict[str, Any], source: str, row: int) -> dict[str, Any]:
    """Map one source row (``column -> cell text``) to native fields; see the module doc."""
    r = _Row(record, source, row)
    mode = r.text("mode")
    if mode not in ("agg", "disagg"):
        raise r.error("mode", f"Input should be 'agg' or 'disagg' (got {mode!r})")
    prefix = "decode_" if mode == "disagg" else ""
    sizes: dict[str, int] = {}
    extra: dict[str, Any] = {}
    for field, column in _POOL_FIELDS.items():
        value = r.whole(prefix + column)
        if field == "tp" and value is None:
            raise r.error(prefix + column, f"blank; {mode} rows need {prefix + column}")
        if value == 0 and mode == "agg":
            extra[column] = 0
        sizes[field] = 1 if value in (None, 0) else value
    if mode == "agg":
        moe_tp = r.whole("moe_tp_size")
        layout = squared_layout(
            sizes["tp"],
            sizes["dp"],
            1 if moe_tp in (None, 0) else moe_tp,
            sizes["ep"],
            id_gpus(r.text("id")),
        )
        if layout is not None:
            for column in ("tp_size", "attention_dp_size", "moe_ep_size"):
                if (recorded := r.whole(column)) is not None:
                    extra[column] = recorded
            sizes["tp"], sizes["dp"], sizes["ep"] = layout
            extra["layout_from"] = "squared_layout"

    pairs, bare = parse_data_source(r.text("silicon_data_source") or "")
    measured_at = _measured_at(r, pairs.pop("measured", None))
    client_count = pairs.pop("silicon_concurrency", None)
    if client_count is not None:
        concurrency = r.whole("silicon_data_source", client_count)
        extra["silicon_concurrency"] = concurrency
        extra["concurrency_from"] = "silicon_concurrency"
        copies = _deployment_copies(r, concurrency) if mode == "agg" else 1
        if copies > 1:
            concurrency //= copies
            extra["deployment_copies"] = copies
            extra["concurrency_from"] = "silicon_concurrency/deployment_copies"
    elif mode == "agg":
        batch = r.whole("batch_size")
        if batch is None:
            raise r.error("batch_size", "blank and no silicon_concurrency= to take it from")
        concurrency = batch * sizes["dp"]
        extra["concurrency_from"] = "batch_size*attention_dp_size"
    else:
        factors = [
            r.whole(c)
            for c in ("decode_batch_size", "decode_num_workers", "decode_attention_dp_size")
        ]
        if None in factors:
            raise r.error(
                "decode_batch_size",
                "no silicon_concurrency= and the decode pool's batch size, worker count "
                "or attention-DP size is blank",
            )
        batch, workers, attention_dp = (int(f or 0) for f in factors)
        concurrency = batch * workers * max(attention_dp, 1)
        extra["concurrency_from"] = "decode_batch_size*decode_num_workers*decode_attention_dp"
    quantization, quantization_from = _quantization(r)
    extra["quantization_from"] = quantization_from
    if pairs or bare:
        extra["silicon_data_source"] = {**pairs, **({"unkeyed": bare} if bare else {})}

    home = _NATIVE_HOME | (set(_POOL_FIELDS.values()) if mode == "agg" else set())
    for column in record:
        if column not in home:
            value = _extra_value(r, column)
            if value is not None:
                extra[column] = value

    return {
        "model": r.text("model_path"),
        "gpu": r.text("system"),
        "engine": r.text("backend"),
        "engine_version": r.text("backend_version"),
        "mode": mode,
        "quantization": quantization,
        **sizes,
        "concurrency": concurrency,
        "isl": r.whole("isl"),
        "osl": r.whole("osl"),
        "ttft_ms": r.number("silicon_ttft_ms"),
        "tpot_ms": r.number("silicon_tpot_ms"),
        "source": source,
        "source_id": r.text("id"),
        "measured_at": measured_at,
        "extra": dict(sorted(extra.items())),
    }


def _header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle), [])


class AIConfiguratorImporter(BaseImporter):
    """aiconfigurator ``silicon_sample.csv``-style CSV (``silicon_ttft_ms``, ``system``, ...).

    Example:
        >>> runs = AIConfiguratorImporter().read(bundled_silicon_csv())
        >>> len(runs), int((runs["mode"] == "disagg").sum())
        (5221, 1602)
    """

    name = "aiconfigurator"
    description = "aiconfigurator measured runs CSV (silicon_sample.csv columns)"
    overridable = frozenset({"source"})

    def can_read(self, path: Path) -> bool:
        """True for a CSV whose header has aiconfigurator's model/system/silicon_* columns."""
        try:
            return set(_header(Path(path))) >= _SIGNATURE
        except (OSError, UnicodeDecodeError, csv.Error):
            return False

    def read(self, path: str | os.PathLike[str], /, **overrides: Any) -> pd.DataFrame:
        """Read every row of the CSV; see the module docstring for the mapping."""
        path = Path(path)
        given = self._overrides(overrides)
        source = given.get("source") or self._default_source(path)
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise ProfileImportError(source, None, None, f"cannot read CSV: {exc}") from exc
        missing = [c for c in _REQUIRED if c not in frame.columns]
        if missing:
            raise ProfileImportError(
                source, None, ", ".join(missing), f"missing column(s): {', '.join(missing)}"
            )
        records = frame.to_dict("records")
        mapped = [map_row(rec, source, i) for i, rec in enumerate(records, start=1)]
        native = pd.DataFrame(mapped) if mapped else pd.DataFrame(columns=list(NATIVE_COLUMNS))
        return validate_profiles(native, source)

    @staticmethod
    def _default_source(path: Path) -> str:
        try:
            if path.resolve() == bundled_silicon_csv().resolve():
                return bundled_silicon_source()
        except (OSError, ModuleNotFoundError):  # pragma: no cover - package always installed
            pass
        return path.name
