"""Constants and helpers shared by the search tests (imported by name: the module name
is unique in the test tree, unlike ``conftest``)."""

from __future__ import annotations

import numpy as np

__all__ = ["MODEL", "SMALL_PINS", "brute_force_nondominated"]

MODEL = "meta-llama/Llama-3.1-8B"
SMALL_PINS = {"kv_block_size": (16,), "max_num_batched_tokens": (8192,)}
"""Pins that keep test spaces small (knobs with little modelled effect)."""


def brute_force_nondominated(points) -> list[bool]:
    """O(n^2) reference: a row is kept unless another is <= everywhere and < somewhere."""
    values = np.asarray(points, dtype=float)
    keep = []
    for row in values:
        dominated = np.any(np.all(values <= row, axis=1) & np.any(values < row, axis=1))
        keep.append(not dominated)
    return keep
