"""Cross-GPU offsets: the shrunk median over sweeps, closed form."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optimizer.surrogate.cross_gpu import cross_gpu_keys, fit_cross_gpu_offsets


def test_offset_is_the_shrunk_median_of_the_sweep_medians():
    # key "a": three sweeps with medians log sqrt(2), log 2, log 3; "b": one sweep
    ratios = np.log([1.0, 2.0, 2.0, 3.0, 3.0, 0.5])
    keys = ["a", "a", "a", "a", "a", "b"]
    sweeps = [0, 0, 1, 2, 2, 3]
    fit = fit_cross_gpu_offsets(ratios, keys, sweeps, shrink=1.0)
    expected_a = np.log(2.0) * 3 / (3 + 1)
    expected_b = np.log(0.5) * 1 / (1 + 1)
    got = fit.offset(["a", "b", "never measured"])
    np.testing.assert_allclose(got, [expected_a, expected_b, 0.0], rtol=1e-12)
    assert fit.counts == {"a": 3, "b": 1}


def test_one_outlying_run_does_not_move_a_key_measured_in_many_sweeps():
    ratios = np.log([1.2] * 9 + [50.0])
    fit = fit_cross_gpu_offsets(ratios, ["k"] * 10, np.arange(10), shrink=0.0)
    assert fit.offset(["k"])[0] == pytest.approx(np.log(1.2))


def test_keys_name_architecture_engine_and_format():
    frame = pd.DataFrame({"engine": ["vllm", "sglang"], "quantization": ["fp8", "bf16"]})
    keys = cross_gpu_keys(["arch-1", "arch-1"], frame)
    assert list(keys) == ["arch-1|vllm|fp8", "arch-1|sglang|bf16"]
