"""Service-level objectives: latency percentiles, throughput floor, cost ceiling."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from optimizer.errors import InvalidInputError

__all__ = ["SLO"]

_METRICS = ("ttft", "tpot", "e2e")
_PERCENTILES = ("p50", "p95", "p99")
_LATENCY_FIELDS = tuple(f"{m}_{p}_ms" for m in _METRICS for p in _PERCENTILES)
_UNIT_TO_MS = {"ms": 1.0, "s": 1000.0, "": 1.0}
_CLAUSE = re.compile(
    r"^\s*([a-z0-9_$/.]+)\s*(<=|>=|<|>)\s*([0-9.]+(?:e[+-]?\d+)?)\s*([a-z/$]*)\s*$"
)


class SLO(BaseModel):
    """Latency bounds (ms) at p50/p95/p99 for TTFT, TPOT and end-to-end, plus optional
    minimum output throughput per user and maximum cost. Unset means unconstrained.

    Example:
        >>> SLO.parse("ttft_p95<=2s,tpot_p95<=50ms").ttft_p95_ms
        2000.0
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ttft_p50_ms: float | None = Field(default=None, gt=0)
    ttft_p95_ms: float | None = Field(default=None, gt=0)
    ttft_p99_ms: float | None = Field(default=None, gt=0)
    tpot_p50_ms: float | None = Field(default=None, gt=0)
    tpot_p95_ms: float | None = Field(default=None, gt=0)
    tpot_p99_ms: float | None = Field(default=None, gt=0)
    e2e_p50_ms: float | None = Field(default=None, gt=0)
    e2e_p95_ms: float | None = Field(default=None, gt=0)
    e2e_p99_ms: float | None = Field(default=None, gt=0)
    min_output_tok_s_per_user: float | None = Field(default=None, gt=0)
    max_usd_per_mtok: float | None = Field(default=None, gt=0)

    def latency_bounds(self) -> dict[str, float]:
        """The latency fields that are set, e.g. ``{"ttft_p95_ms": 2000.0}``."""
        return {f: v for f in _LATENCY_FIELDS if (v := getattr(self, f)) is not None}

    @classmethod
    def parse(cls, text: str) -> SLO:
        """Parse ``"ttft_p95<=2s,tpot_p95<=50ms,usd_per_mtok<=0.5,tok_s_per_user>=20"``."""
        values: dict[str, float] = {}
        allowed = [f"{m}_{p}<=X[ms|s]" for m in _METRICS for p in _PERCENTILES]
        allowed += ["usd_per_mtok<=X", "tok_s_per_user>=X"]
        for clause in filter(None, (c.strip() for c in text.split(","))):
            match = _CLAUSE.match(clause.lower())
            if not match:
                raise InvalidInputError("slo", f"cannot parse clause {clause!r}", allowed)
            name, op, number, unit = match.groups()
            value = float(number)
            if name in ("usd_per_mtok", "$/mtok") and op in ("<=", "<"):
                values["max_usd_per_mtok"] = value
            elif name == "tok_s_per_user" and op in (">=", ">"):
                values["min_output_tok_s_per_user"] = value
            elif f"{name}_ms" in _LATENCY_FIELDS and op in ("<=", "<"):
                if unit not in _UNIT_TO_MS:
                    raise InvalidInputError(f"slo.{name}", f"unknown unit {unit!r}", ["ms", "s"])
                values[f"{name}_ms"] = value * _UNIT_TO_MS[unit]
            else:
                raise InvalidInputError("slo", f"unknown bound {clause!r}", allowed)
        return cls(**values)
