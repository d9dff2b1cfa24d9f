"""Element types: aiconfigurator's kernel dtype names in epopt's vocabulary, and their sizes.

The measured kernel tables name their formats as the collectors did (``bfloat16``,
``fp8_block``, ``w4a16_mxfp4`` ...); epopt speaks :class:`~optimizer.domain.enums.Quantization`
and :class:`~optimizer.domain.enums.KVCacheDtype`. Formats epopt has no name for
(``int8_wo``, SmoothQuant ``sq``, ``w4afp8``) map to ``None`` and are left out of the
fitted models.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from optimizer.domain.enums import KVCacheDtype, Quantization
from optimizer.errors import InvalidInputError

__all__ = [
    "ACTIVATION_BYTES",
    "KERNEL_KV_DTYPE",
    "KERNEL_QUANTIZATION",
    "PEAK_FLOPS_FIELD",
    "collective_element_bytes",
    "format_values",
    "kv_dtype_from_kernel",
    "parse_kv_dtype",
    "parse_quantization",
    "quantization_from_kernel",
]

KERNEL_QUANTIZATION: dict[str, Quantization] = {
    "bfloat16": Quantization.BF16,
    "fp8": Quantization.FP8,
    "fp8_block": Quantization.FP8_BLOCK,
    "int4_wo": Quantization.INT4_WO,
    "nvfp4": Quantization.NVFP4,
    # MoE tables: MXFP4 weights with 16-bit or MXFP8 activations are both "mxfp4" to epopt
    "w4a16_mxfp4": Quantization.MXFP4,
    "w4a8_mxfp4_mxfp8": Quantization.MXFP4,
}
KERNEL_KV_DTYPE: dict[str, KVCacheDtype] = {"bfloat16": KVCacheDtype.BF16, "fp8": KVCacheDtype.FP8}
_COLLECTIVE_BYTES: dict[str, int] = {"half": 2, "bfloat16": 2, "float16": 2, "int8": 1, "fp8": 1}

# Bytes per activation element the GEMM reads: 8-bit formats quantize activations too,
# NVFP4 reads 4-bit activations with one fp8 scale per 16; weight-only formats (int4_wo,
# and MXFP4 as Hopper and vLLM's Marlin path run it) keep 16-bit activations.
ACTIVATION_BYTES: dict[Quantization, float] = {
    Quantization.BF16: 2.0,
    Quantization.FP8: 1.0,
    Quantization.FP8_BLOCK: 1.0,
    Quantization.INT4_WO: 2.0,
    Quantization.NVFP4: 0.5 + 1.0 / 16,
    Quantization.MXFP4: 2.0,
}

# Which tensor-core peak a format computes at, best first; a GPU lacking a peak
# (fp8 on Ampere, fp4 on Hopper) runs the format weight-only at the next one.
PEAK_FLOPS_FIELD: dict[Quantization, tuple[str, ...]] = {
    Quantization.BF16: ("bf16_tflops",),
    Quantization.INT4_WO: ("bf16_tflops",),
    Quantization.FP8: ("fp8_tflops", "bf16_tflops"),
    Quantization.FP8_BLOCK: ("fp8_tflops", "bf16_tflops"),
    Quantization.NVFP4: ("fp4_tflops", "bf16_tflops"),
    Quantization.MXFP4: ("fp4_tflops", "bf16_tflops"),
}


def quantization_from_kernel(name: str) -> Quantization | None:
    """epopt's name for a GEMM/MoE dtype of the kernel tables, ``None`` when it has none.

    Example:
        >>> quantization_from_kernel("bfloat16")
        <Quantization.BF16: 'bf16'>
        >>> quantization_from_kernel("sq") is None
        True
    """
    return KERNEL_QUANTIZATION.get(str(name))


def kv_dtype_from_kernel(name: str) -> KVCacheDtype | None:
    """epopt's name for a KV-cache dtype of the attention tables, ``None`` when it has none."""
    return KERNEL_KV_DTYPE.get(str(name))


def collective_element_bytes(name: str) -> int:
    """Bytes per element of a collective's dtype (``half``, ``int8`` ...)."""
    try:
        return _COLLECTIVE_BYTES[str(name)]
    except KeyError:
        raise InvalidInputError(
            "nccl_dtype", f"unknown collective dtype {name!r}", _COLLECTIVE_BYTES
        ) from None


def parse_quantization(value: Quantization | str, field: str = "quantization") -> Quantization:
    """A :class:`Quantization` from an enum member or its value, with a clear error."""
    try:
        return Quantization(value)
    except ValueError:
        raise InvalidInputError(
            field, f"unknown quantization {value!r}", [q.value for q in Quantization]
        ) from None


def parse_kv_dtype(value: KVCacheDtype | str, field: str = "kv_dtype") -> KVCacheDtype:
    """A :class:`KVCacheDtype` from an enum member or its value, with a clear error."""
    try:
        return KVCacheDtype(value)
    except ValueError:
        raise InvalidInputError(
            field, f"unknown KV-cache dtype {value!r}", [k.value for k in KVCacheDtype]
        ) from None


def format_values(
    values: ArrayLike, parse=parse_quantization, field: str = "quantization"
) -> np.ndarray:
    """Canonical value strings (``"bf16"`` ...) of a scalar or array of formats.

    Each distinct entry is parsed once, so this is cheap for large arrays.

    Args:
        values: enum members or their values.
        parse: :func:`parse_quantization` or :func:`parse_kv_dtype`.
        field: the argument name used in errors.

    Returns:
        An object array of the same shape.

    Example:
        >>> format_values(["fp8", Quantization.BF16]).tolist()
        ['fp8', 'bf16']
    """
    arr = np.asarray(values, dtype=object)
    if arr.ndim == 0 and isinstance(arr.item(), str):  # a single format: no factorising
        return np.asarray(parse(str(arr.item()), field).value, dtype=object)
    codes, unique = pd.factorize(arr.reshape(-1))
    canonical = np.asarray([parse(str(u), field).value for u in unique], dtype=object)
    if (codes < 0).any():
        raise InvalidInputError(field, "a value is missing (None or NaN)")
    return canonical[codes].reshape(arr.shape)
