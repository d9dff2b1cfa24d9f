"""What the performance model says about one configuration under one load."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Prediction"]


class Prediction(BaseModel):
    """Predicted mean TTFT/TPOT with a 90 % interval, and derived throughput.

    Example:
        >>> p = Prediction(ttft_ms=200, tpot_ms=20, ttft_ms_lo=150, ttft_ms_hi=260,
        ...                tpot_ms_lo=18, tpot_ms_hi=23)
        >>> round(p.e2e_ms(osl=100))
        2180
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ttft_ms: float = Field(gt=0)
    tpot_ms: float = Field(gt=0)
    ttft_ms_lo: float = Field(gt=0)
    ttft_ms_hi: float = Field(gt=0)
    tpot_ms_lo: float = Field(gt=0)
    tpot_ms_hi: float = Field(gt=0)
    interval: float = Field(default=0.9, gt=0, lt=1, description="coverage of lo..hi")
    surrogate_version: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Prediction:
        for name in ("ttft_ms", "tpot_ms"):
            lo, mid, hi = (getattr(self, f"{name}{s}") for s in ("_lo", "", "_hi"))
            if not lo <= mid <= hi:
                raise ValueError(f"{name}: need {name}_lo <= {name} <= {name}_hi")
        return self

    def e2e_ms(self, osl: int) -> float:
        """Mean end-to-end latency of a request with ``osl`` output tokens."""
        return self.ttft_ms + (osl - 1) * self.tpot_ms

    def output_tok_s_per_user(self) -> float:
        return 1000.0 / self.tpot_ms
