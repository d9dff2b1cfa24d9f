"""Calibration: the closed-loop linear fit recovers known scales, and calibrated on the
surrogate the simulator agrees with it on reference configurations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from simhelpers import limits

from optimizer.domain import EndpointConfig
from optimizer.errors import InvalidInputError
from optimizer.profiles import load_reference_profiles
from optimizer.simulate import (
    CalibrationPoint,
    anchor_concurrencies,
    build_replica,
    calibrate,
    calibrated_replica,
    closed_loop_means,
    surrogate_targets,
)
from optimizer.simulate.calibration import CalibrationCache
from optimizer.surrogate import Surrogate

ISL, OSL = 1024, 256


def test_anchor_concurrencies_avoid_powers_of_two():
    assert anchor_concurrencies(256) == (1, 3, 6, 12, 24, 48, 96, 192, 256)
    assert anchor_concurrencies(1) == (1,)
    assert anchor_concurrencies(5) == (1, 3, 5)


def test_calibration_recovers_known_scales_and_frontend(prior_step):
    pool = limits(max_batch=64)
    truth = prior_step.with_scales(1.3, 0.7, frontend_s=0.04)
    anchors = (1, 6, 24, 64)
    points = [
        CalibrationPoint(c, ISL, OSL, *closed_loop_means(truth, pool, c, ISL, OSL)) for c in anchors
    ]
    fitted, summary = calibrate(prior_step, pool, points)
    assert np.allclose(summary.decode_scale, 1.3, rtol=1e-3)
    assert np.allclose(summary.prefill_scale, 0.7, rtol=1e-3)
    assert summary.frontend_ms == pytest.approx(40.0, rel=1e-3)
    for c in (2, 12, 48):  # between anchors too: the scales are constant
        expected = closed_loop_means(truth, pool, c, ISL, OSL)
        assert np.allclose(closed_loop_means(fitted, pool, c, ISL, OSL), expected, rtol=1e-6)
    record = summary.as_dict()
    assert record["frontend_ms"] == pytest.approx(40.0, rel=1e-3)
    assert all(abs(a["ttft_error_pct"]) < 0.1 for a in record["anchors"])


def test_calibration_input_errors(prior_step):
    with pytest.raises(InvalidInputError, match="at least one"):
        calibrate(prior_step, limits(), [])
    bad = CalibrationPoint(4, ISL, OSL, 0.0, 10.0)
    with pytest.raises(InvalidInputError, match="positive"):
        calibrate(prior_step, limits(), [bad])


def test_calibration_cache_drops_the_oldest():
    cache = CalibrationCache(size=2)
    for key in "abc":
        cache.put((key,), key)  # type: ignore[arg-type]
    assert cache.get(("a",)) is None and cache.get(("c",)) == "c"


# --- against the learned surrogate ----------------------------------------------------------
AGREEMENT_MODELS = ("meta-llama/Llama-3.1-70B", "Qwen/Qwen3-32B", "openai/gpt-oss-120b")
AGREEMENT_GPUS = ("h100_sxm", "h200_sxm")
SWEEP = ["model", "gpu", "engine", "quantization", "tp", "dp", "ep", "isl", "osl"]


@pytest.fixture(scope="module")
def agreement_runs() -> pd.DataFrame:
    runs = load_reference_profiles()
    keep = (
        (runs["mode"] == "agg")
        & runs["model"].isin(AGREEMENT_MODELS)
        & runs["gpu"].isin(AGREEMENT_GPUS)
    )
    return runs[keep].reset_index(drop=True)


@pytest.fixture(scope="module")
def surrogate(agreement_runs) -> Surrogate:
    return Surrogate(max_iter=120, cv_folds=0).fit(agreement_runs)


def _handful(runs: pd.DataFrame, count: int = 5) -> list[tuple[tuple, pd.DataFrame]]:
    """Every k-th sweep with at least four concurrencies, in key order (no picking)."""
    sweeps = [(k, g) for k, g in runs.groupby(SWEEP) if g["concurrency"].nunique() >= 4]
    step = max(len(sweeps) // count, 1)
    return sweeps[::step][:count]


@pytest.mark.slow
def test_closed_loop_agrees_with_the_surrogate_on_reference_configs(agreement_runs, surrogate):
    ttft, tpot = [], []
    for key, group in _handful(agreement_runs):
        knobs = dict(zip(SWEEP, key, strict=True))
        endpoint = EndpointConfig(
            engine=knobs["engine"],
            tp=int(knobs["tp"]),
            dp=int(knobs["dp"]),
            ep=int(knobs["ep"]),
            quantization=knobs["quantization"],
        )
        isl, osl = int(knobs["isl"]), int(knobs["osl"])
        replica = build_replica(endpoint, knobs["model"], knobs["gpu"], mean_tokens=isl + osl)
        replica = calibrated_replica(replica, surrogate, isl=isl, osl=osl)
        concurrencies = sorted({int(c) // int(knobs["dp"]) for c in group["concurrency"]})
        targets = surrogate_targets(
            surrogate, replica.model, replica.gpu, endpoint, concurrencies, isl, osl
        )
        for point in targets:
            sim_ttft, sim_tpot = closed_loop_means(
                replica.step, replica.limits, point.concurrency, isl, osl
            )
            ttft.append(sim_ttft / point.ttft_ms - 1)
            tpot.append(sim_tpot / point.tpot_ms - 1)
    assert len(ttft) >= 15
    assert np.median(np.abs(ttft)) <= 0.10
    assert np.median(np.abs(tpot)) <= 0.10
