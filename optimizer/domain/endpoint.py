"""An endpoint configuration: the knobs a deployment team sets on one engine."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from optimizer.domain.enums import Engine, KVCacheDtype, Quantization, SpecMethod

__all__ = ["EndpointConfig"]


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


class EndpointConfig(BaseModel):
    """Engine settings of one replica, plus the replica count.

    ``tp * pp * dp`` GPUs serve one replica (``ep`` re-partitions the experts over the
    same GPUs and must divide ``tp * dp``). ``None`` for ``max_batch_size``,
    ``kv_block_size`` or ``max_num_batched_tokens`` means the engine default.

    Example:
        >>> EndpointConfig(engine="vllm", tp=2, quantization="fp8").gpus_per_replica
        2
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    engine: Engine
    tp: int = Field(default=1, ge=1, le=64)
    pp: int = Field(default=1, ge=1, le=16)
    dp: int = Field(default=1, ge=1, le=64, description="attention data parallel")
    ep: int = Field(default=1, ge=1, le=64, description="expert parallel")
    quantization: Quantization = Quantization.BF16
    kv_cache_dtype: KVCacheDtype = KVCacheDtype.BF16
    max_batch_size: int | None = Field(default=None, ge=1, le=16384)
    spec_method: SpecMethod = SpecMethod.NONE
    spec_draft_len: int = Field(default=0, ge=0, le=8)
    kv_block_size: int | None = Field(default=None, ge=1, le=1024)
    max_num_batched_tokens: int | None = Field(
        default=None, ge=16, description="chunked-prefill token budget per step"
    )
    replicas: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> EndpointConfig:
        if self.spec_method is SpecMethod.NONE and self.spec_draft_len != 0:
            raise ValueError("spec_draft_len: must be 0 when spec_method is 'none'")
        if self.spec_method is not SpecMethod.NONE and self.spec_draft_len == 0:
            raise ValueError(
                f"spec_draft_len: must be 1..8 when spec_method is {self.spec_method.value!r}"
            )
        if (self.tp * self.dp) % self.ep != 0:
            raise ValueError(f"ep: {self.ep} must divide tp*dp = {self.tp * self.dp}")
        if self.kv_block_size is not None and not _is_power_of_two(self.kv_block_size):
            raise ValueError(f"kv_block_size: {self.kv_block_size} is not a power of two")
        return self

    @property
    def gpus_per_replica(self) -> int:
        return self.tp * self.pp * self.dp

    @property
    def total_gpus(self) -> int:
        return self.gpus_per_replica * self.replicas
