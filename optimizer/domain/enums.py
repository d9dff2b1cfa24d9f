"""Closed vocabularies shared by every layer (engine, quantization, KV dtype, ...)."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Engine", "KVCacheDtype", "Quantization", "ServingMode", "SpecMethod"]


class Engine(StrEnum):
    """Serving engine."""

    VLLM = "vllm"
    SGLANG = "sglang"
    TRTLLM = "trtllm"


class Quantization(StrEnum):
    """Weight / GEMM format of the linear layers."""

    BF16 = "bf16"
    FP8 = "fp8"
    FP8_BLOCK = "fp8_block"
    INT4_WO = "int4_wo"
    NVFP4 = "nvfp4"
    MXFP4 = "mxfp4"


class KVCacheDtype(StrEnum):
    """Element type of the KV cache."""

    BF16 = "bf16"
    FP8 = "fp8"


class SpecMethod(StrEnum):
    """Speculative-decoding method; ``none`` means off (draft length 0)."""

    NONE = "none"
    NGRAM = "ngram"
    EAGLE = "eagle"
    EAGLE3 = "eagle3"
    MTP = "mtp"
    DRAFT_MODEL = "draft_model"


class ServingMode(StrEnum):
    """``agg``: one pool does prefill and decode; ``disagg``: separate prefill/decode pools."""

    AGG = "agg"
    DISAGG = "disagg"
