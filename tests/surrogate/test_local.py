"""Family offsets: shrunk medians of held-out residuals, closed-form checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optimizer.surrogate.local import (
    family_keys,
    fit_local_offsets,
    fit_version_offsets,
    version_keys,
)


def test_offset_is_the_median_shrunk_by_the_pseudo_count():
    residuals = np.array([0.1, 0.3, 0.2, 5.0, 0.25])  # one wild run: the median ignores it
    offsets, _ = fit_local_offsets(residuals, ["f"] * 5, [0, 1, 2, 3, 4], shrink=5.0)
    assert offsets.offset(["f"])[0] == pytest.approx(0.25 * 5 / (5 + 5))
    assert offsets.counts == {"f": 5}


def test_unknown_family_gets_no_offset():
    offsets, _ = fit_local_offsets([0.5, 0.5], ["a", "a"], [0, 1], shrink=0.0)
    assert offsets.offset(["b", "a"]).tolist() == [0.0, 0.5]


def test_calibration_residuals_leave_the_rows_own_sweep_out():
    # family "a": sweep 0 has residuals 1.0, sweep 1 has 3.0; with no shrinkage a row of
    # sweep 0 is corrected by the other sweep's median only (3.0), and vice versa
    residuals = [1.0, 1.0, 3.0, 3.0]
    _, rest = fit_local_offsets(residuals, ["a"] * 4, [0, 0, 1, 1], shrink=0.0)
    assert rest.tolist() == pytest.approx([-2.0, -2.0, 2.0, 2.0])


def test_a_family_measured_in_one_sweep_only_gives_its_rows_no_correction():
    _, rest = fit_local_offsets([0.7, 0.9], ["a", "a"], [4, 4], shrink=5.0)
    assert rest.tolist() == pytest.approx([0.7, 0.9])


def test_family_keys_read_a_missing_kv_dtype_as_bf16():
    frame = pd.DataFrame(
        {
            "model": ["m", "m"],
            "gpu": ["g", "g"],
            "engine": ["vllm", "vllm"],
            "quantization": ["fp8", "fp8"],
            "kv_cache_dtype": [None, "bf16"],
        }
    )
    keys = family_keys(frame)
    assert keys[0] == keys[1] == "m|g|vllm|fp8|bf16"
    assert family_keys(frame.drop(columns="kv_cache_dtype"))[0] == keys[0]


def _family_frame(versions: list[object]) -> pd.DataFrame:
    n = len(versions)
    return pd.DataFrame(
        {
            "model": ["m"] * n,
            "gpu": ["g"] * n,
            "engine": ["trtllm"] * n,
            "quantization": ["fp8"] * n,
            "kv_cache_dtype": ["fp8"] * n,
            "engine_version": versions,
        }
    )


def test_version_keys_are_none_where_the_row_records_no_version():
    keys = version_keys(_family_frame(["1.2.0", None, "", float("nan")]))
    assert keys.tolist() == ["m|g|trtllm|fp8|fp8|1.2.0", None, None, None]
    assert version_keys(_family_frame(["1.2.0"]).drop(columns="engine_version")).tolist() == [None]


def test_version_offsets_are_shrunk_medians_of_what_the_family_offset_leaves():
    # two versions of one family, 0.4 apart in log; the family offset took their middle
    residuals = np.array([0.2, 0.2, 0.2, -0.2, -0.2, -0.2, 0.9])
    keys = ["f|1"] * 3 + ["f|2"] * 3 + [None]
    offsets, rest = fit_version_offsets(residuals, residuals, keys, [0, 1, 2, 3, 4, 5, 6], 3.0)
    assert offsets.offset(["f|1", "f|2"]).tolist() == pytest.approx([0.1, -0.1])
    assert offsets.offset([None, "f|9"]).tolist() == [0.0, 0.0]
    # each row's own sweep is left out of the offset that calibrates it: two others
    # at 0.2 with pseudo-count 3 give 0.2 * 2 / 5; the unversioned row keeps its residual
    assert rest[0] == pytest.approx(0.2 - 0.2 * 2 / 5)
    assert rest[3] == pytest.approx(-0.2 + 0.2 * 2 / 5)
    assert rest[6] == pytest.approx(0.9)
