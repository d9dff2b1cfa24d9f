"""One measured run in the native profile schema (see shared DESIGN.md)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from optimizer.domain.enums import Engine, KVCacheDtype, Quantization, ServingMode, SpecMethod

__all__ = ["NATIVE_COLUMNS", "TARGET_COLUMNS", "ProfileRun"]

TARGET_COLUMNS = ("ttft_ms", "tpot_ms")


class ProfileRun(BaseModel):
    """A measured run. Targets are ``ttft_ms`` and ``tpot_ms`` (means); percentiles and
    throughputs are kept when the source has them. ``source`` + ``source_id`` say where the
    row came from; ``run_key`` (computed by the importer) makes imports idempotent.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(min_length=1, description="Hugging Face id")
    gpu: str = Field(min_length=1, description="catalog GPU id")
    engine: Engine
    engine_version: str | None = None
    mode: ServingMode = ServingMode.AGG
    quantization: Quantization
    kv_cache_dtype: KVCacheDtype | None = None
    tp: int = Field(ge=1)
    pp: int = Field(default=1, ge=1)
    dp: int = Field(default=1, ge=1)
    ep: int = Field(default=1, ge=1)
    concurrency: int | None = Field(default=None, ge=1)
    request_rate: float | None = Field(default=None, gt=0)
    max_batch_size: int | None = Field(default=None, ge=1)
    isl: int = Field(ge=1)
    osl: int = Field(ge=1)
    spec_method: SpecMethod = SpecMethod.NONE
    spec_draft_len: int = Field(default=0, ge=0)
    kv_block_size: int | None = Field(default=None, ge=1)
    ttft_ms: float = Field(gt=0)
    tpot_ms: float = Field(ge=0)
    ttft_p50_ms: float | None = Field(default=None, ge=0)
    ttft_p90_ms: float | None = Field(default=None, ge=0)
    ttft_p95_ms: float | None = Field(default=None, ge=0)
    ttft_p99_ms: float | None = Field(default=None, ge=0)
    tpot_p50_ms: float | None = Field(default=None, ge=0)
    tpot_p90_ms: float | None = Field(default=None, ge=0)
    tpot_p95_ms: float | None = Field(default=None, ge=0)
    tpot_p99_ms: float | None = Field(default=None, ge=0)
    e2e_p50_ms: float | None = Field(default=None, ge=0)
    e2e_p90_ms: float | None = Field(default=None, ge=0)
    e2e_p95_ms: float | None = Field(default=None, ge=0)
    e2e_p99_ms: float | None = Field(default=None, ge=0)
    output_tok_s: float | None = Field(default=None, ge=0)
    request_per_s: float | None = Field(default=None, ge=0)
    source: str = Field(min_length=1, description="provenance: file, dataset, tool")
    source_id: str | None = Field(default=None, description="id of the row in its source")
    measured_at: datetime | None = None
    extra: dict[str, object] | None = Field(
        default=None, description="source fields without a native column (e.g. disagg pools)"
    )

    @model_validator(mode="after")
    def _load_given(self) -> ProfileRun:
        if self.concurrency is None and self.request_rate is None:
            raise ValueError("one of concurrency or request_rate must be given")
        if self.spec_method is SpecMethod.NONE and self.spec_draft_len != 0:
            raise ValueError("spec_draft_len: must be 0 when spec_method is 'none'")
        return self


NATIVE_COLUMNS: tuple[str, ...] = tuple(ProfileRun.model_fields)
