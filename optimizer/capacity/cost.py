"""Cost arithmetic: $/hour of a replica, $ per million output tokens, monthly cost.

Prices are $/GPU-hour from the GPU catalog, with the user's overrides already applied
(``optimizer.catalog.gpus``: ``EPOPT_GPU_PRICES`` or a prices file). The array functions
take numpy arrays (or anything ``np.asarray`` accepts) and broadcast, so a search prices
thousands of candidates in one call.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from optimizer.catalog.gpus import PRICES_ENV_VAR
from optimizer.domain.gpu import GPUSpec
from optimizer.errors import InvalidInputError

__all__ = [
    "HOURS_PER_MONTH",
    "SECONDS_PER_HOUR",
    "TOKENS_PER_MILLION",
    "monthly_usd",
    "replica_usd_per_hour",
    "usd_per_million_tokens",
    "usd_per_million_tokens_array",
]

HOURS_PER_MONTH = 730.0
"""Hours in an average month (8,760 h / 12), the figure cloud price sheets use."""

SECONDS_PER_HOUR = 3600.0
TOKENS_PER_MILLION = 1e6


def replica_usd_per_hour(gpu: GPUSpec, gpus_per_replica: int) -> float:
    """What one replica costs per hour: the GPU's $/GPU-hour times its GPU count.

    Args:
        gpu: the GPU, its price already overridden by the user's prices if any.
        gpus_per_replica: GPUs one replica uses (``tp * pp * dp``).

    Raises:
        InvalidInputError: the GPU has no price (names it and how to set one), or the GPU
            count is below 1.

    Example:
        >>> from optimizer.catalog import get_gpu
        >>> from optimizer.settings import Settings
        >>> replica_usd_per_hour(get_gpu("h100_sxm", Settings(gpu_prices={"h100_sxm": 2.5})), 8)
        20.0
    """
    if isinstance(gpus_per_replica, bool) or gpus_per_replica < 1:
        raise InvalidInputError("gpus_per_replica", f"must be >= 1, got {gpus_per_replica}")
    price = gpu.price_usd_per_hour
    if price is None:
        raise InvalidInputError(
            f"price of {gpu.id}",
            f"the catalog has no $/GPU-hour price for {gpu.name}; set one with "
            f"{PRICES_ENV_VAR}='{{\"{gpu.id}\": <usd per GPU-hour>}}' or a YAML/JSON prices "
            "file named by EPOPT_PRICES_FILE",
        )
    return price * gpus_per_replica


def _positive(value: float, field: str) -> float:
    if isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise InvalidInputError(field, f"must be a positive finite number, got {value!r}")
    return float(value)


def usd_per_million_tokens(usd_per_hour: float, output_tok_s: float) -> float:
    """Dollars per million output tokens at a sustained output rate.

    ``usd_per_hour / (output_tok_s * 3600) * 1e6``.

    Args:
        usd_per_hour: what the serving capacity costs per hour (replica or fleet).
        output_tok_s: output tokens per second that capacity produces.

    Raises:
        InvalidInputError: a negative or non-finite price, or a rate that is not positive.

    Example:
        >>> usd_per_million_tokens(36.0, 1000.0)
        10.0
    """
    if isinstance(usd_per_hour, bool) or not math.isfinite(usd_per_hour) or usd_per_hour < 0:
        raise InvalidInputError("usd_per_hour", f"must be >= 0 and finite, got {usd_per_hour!r}")
    rate = _positive(output_tok_s, "output_tok_s")
    return usd_per_hour / (rate * SECONDS_PER_HOUR) * TOKENS_PER_MILLION


def usd_per_million_tokens_array(
    usd_per_hour: npt.ArrayLike, output_tok_s: npt.ArrayLike
) -> np.ndarray:
    """``usd_per_million_tokens`` over arrays, for a whole sweep of candidates.

    A rate of 0 (a candidate that produces nothing) costs ``inf``; NaN in either input
    gives NaN (an unknown prediction stays unknown).

    Raises:
        InvalidInputError: a negative price or rate.

    Example:
        >>> usd_per_million_tokens_array([36.0, 36.0], [1000.0, 0.0]).tolist()
        [10.0, inf]
    """
    price = np.asarray(usd_per_hour, dtype=np.float64)
    rate = np.asarray(output_tok_s, dtype=np.float64)
    if np.any(price < 0):
        raise InvalidInputError("usd_per_hour", "must be >= 0 everywhere")
    if np.any(rate < 0):
        raise InvalidInputError("output_tok_s", "must be >= 0 everywhere")
    with np.errstate(divide="ignore", invalid="ignore"):
        cost = price / (rate * SECONDS_PER_HOUR) * TOKENS_PER_MILLION
    return np.where((rate == 0) & ~np.isnan(price), np.inf, cost)


def monthly_usd(usd_per_hour: float, hours_per_month: float = HOURS_PER_MONTH) -> float:
    """Cost of running ``usd_per_hour`` worth of capacity for a month (730 h by default)."""
    if isinstance(usd_per_hour, bool) or not math.isfinite(usd_per_hour) or usd_per_hour < 0:
        raise InvalidInputError("usd_per_hour", f"must be >= 0 and finite, got {usd_per_hour!r}")
    return usd_per_hour * _positive(hours_per_month, "hours_per_month")
