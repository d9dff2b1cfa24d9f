"""What a model's runs on other GPUs say about the prior on a GPU it was never run on.

The operator prior's error has a part that belongs to the model and the engine rather
than to the GPU: an engine build's scheduling of that model, a kernel the tables time
badly for its shapes, a setting the runs do not record (speculative decoding, a
chunked-prefill budget). On the reference runs that part carries across GPUs: TensorRT-LLM
serves Llama-3.1-70B in FP8 at 0.76x the prior's TPOT on B200 and 0.77x on H200 (median
of each GPU's runs); vLLM serves Kimi-K2.5 in int4 at 0.87x and 0.88x; gpt-oss-120b on
TensorRT-LLM in MXFP4 at 0.79x and 0.82x.

So for a row on a GPU the training runs do not hold -- or a known model on a known GPU
with an engine and format never measured for that pair (a new family) -- the prior
blended in for it (:mod:`optimizer.surrogate.shift`) is first scaled by what the same
model architecture, engine and weight format measured against the prior on other GPUs::

    offset(key) = median over its sweeps of (each sweep's median log(measured / prior))
                  * n / (n + shrink)

with ``n`` the number of concurrency sweeps behind the key: sweeps, not runs, are the
independent evidence (the runs of one sweep share its error), and a key measured in one
or two sweeps is shrunk most of the way to zero. A key nobody measured (a new model
too, or a new engine or format for it) gets no offset. The offset is a constant per key,
so it keeps every monotonicity of the prior in concurrency, lengths and hardware speed.

Measured with each of H100, H200 and B200 held out in turn on the evaluated reference
runs (2,971; blends replayed on the held-out fits of 9158387): the prior alone is 21.0 %
TPOT MAPE on the held-out GPU, scaled by these offsets 18.8 % (shrink 2: 19.1 %, 10:
18.7 %); TTFT's calibrated prior 45.8 -> 41.1 %. In the surrogate, blended with the
learned prediction by a weight chosen with the offsets in place, the leave-one-GPU-out
split of ``benchmarks/surrogate_accuracy.py`` went from 44.4 to 39.9 % TTFT and from 22.6
to 20.7 % TPOT.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from optimizer.surrogate.local import LocalOffsets

__all__ = [
    "CROSS_GPU_SHRINK",
    "cross_gpu_keys",
    "fit_cross_gpu_offsets",
    "measured_family_keys",
]

CROSS_GPU_SHRINK = 5.0
"""Pseudo-count of the shrinkage towards zero, in concurrency sweeps."""


def cross_gpu_keys(architectures: ArrayLike, frame: pd.DataFrame) -> np.ndarray:
    """One key per row: its model architecture, engine and weight format.

    Args:
        architectures: the architecture label of every row (any text naming the
            architecture, the same for checkpoints that share its shapes).
        frame: the rows, with ``engine`` and ``quantization``.
    """
    parts = (
        np.asarray(architectures, dtype=object).astype(str),
        frame["engine"].astype(str).to_numpy(dtype=object),
        frame["quantization"].astype(str).to_numpy(dtype=object),
    )
    return np.array(["|".join(row) for row in zip(*parts, strict=True)], dtype=object)


def measured_family_keys(cross_keys: ArrayLike, gpus: ArrayLike) -> np.ndarray:
    """One key per row: its :func:`cross_gpu_keys` key and its GPU (a model architecture
    served by one engine in one format on one GPU).

    Example:
        >>> measured_family_keys(["arch-1|vllm|fp8"], ["h100_sxm"]).tolist()
        ['arch-1|vllm|fp8|h100_sxm']
    """
    keys = np.asarray(cross_keys, dtype=object).astype(str)
    return np.char.add(np.char.add(keys, "|"), np.asarray(gpus).astype(str)).astype(object)


def fit_cross_gpu_offsets(
    log_ratio: ArrayLike, keys: ArrayLike, sweeps: ArrayLike, shrink: float = CROSS_GPU_SHRINK
) -> LocalOffsets:
    """The shrunk median log(measured / prior) of every key, over its sweeps.

    Args:
        log_ratio: ``log(measured / prior)`` of every training run.
        keys: :func:`cross_gpu_keys` of every run.
        sweeps: the concurrency sweep of every run (runs measured together).
        shrink: pseudo-count of the shrinkage, in sweeps.

    Returns:
        Offsets by key (``counts``: the number of sweeps behind each).

    Example:
        >>> fit = fit_cross_gpu_offsets(
        ...     np.log([2.0, 8.0, 4.0, 1.0, 0.5]), ["a", "a", "a", "a", "b"],
        ...     [0, 0, 1, 2, 3], shrink=0.0)
        >>> [round(float(np.exp(x)), 6) for x in fit.offset(["a", "b", "c"])]
        [4.0, 0.5, 1.0]
        >>> fit.counts
        {'a': 3, 'b': 1}
    """
    table = pd.DataFrame(
        {
            "ratio": np.asarray(log_ratio, dtype=np.float64),
            "key": np.asarray(keys, dtype=object),
            "sweep": np.asarray(sweeps),
        }
    )
    per_sweep = table.groupby(["key", "sweep"], sort=False)["ratio"].median()
    per_key = per_sweep.groupby(level="key", sort=False).agg(["median", "size"])
    n = per_key["size"].to_numpy(np.float64)
    shrunk = per_key["median"].to_numpy(np.float64) * n / (n + shrink)
    return LocalOffsets(
        offsets={str(k): float(v) for k, v in zip(per_key.index, shrunk, strict=True)},
        counts={str(k): int(c) for k, c in zip(per_key.index, per_key["size"], strict=True)},
        shrink=float(shrink),
    )
