"""The per-engine mix of prior terms: closed-form recovery, bounds, fallback, monotonicity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optimizer.surrogate.prior_calibration import (
    POOLED,
    PriorCalibration,
    fit_prior_calibration,
)

TERMS = ("ttft_ms", "burst_prefill_ms", "tpot_ms")


def _prior(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "ttft_ms": rng.uniform(10, 500, n),
            "burst_prefill_ms": rng.uniform(10, 5000, n),
            "tpot_ms": rng.uniform(5, 80, n),
        }
    )


def test_recovers_each_engines_coefficients_from_noiseless_runs():
    prior = _prior(300)
    engines = np.repeat(["vllm", "sglang"], 150)
    truth = {"vllm": np.array([2.0, 0.03, 4.0]), "sglang": np.array([1.5, 0.1, 17.0])}
    coefficients = np.array([truth[e] for e in engines])
    measured = (prior[list(TERMS)].to_numpy() * coefficients).sum(axis=1)
    fit = fit_prior_calibration(prior, measured, engines, TERMS)
    for engine, expected in truth.items():
        np.testing.assert_allclose(fit.coefficients[engine], expected, rtol=1e-4)
    np.testing.assert_allclose(fit.predict(prior, engines), measured, rtol=1e-4)


def test_is_median_unbiased_under_log_normal_noise():
    # a fit of relative squared error would sit below the median; the log fit does not
    prior = _prior(2000, seed=1)
    measured = 3.0 * prior["ttft_ms"] * np.exp(np.random.default_rng(2).normal(0, 0.4, 2000))
    fit = fit_prior_calibration(prior, measured, ["trtllm"] * 2000, TERMS)
    log_ratio = np.log(measured / fit.predict(prior, ["trtllm"] * 2000))
    assert abs(float(np.median(log_ratio))) < 0.03


def test_coefficients_stay_non_negative_when_a_term_hurts():
    # measured falls as the burst term grows: the best non-negative weight on it is 0
    prior = _prior(200, seed=3)
    measured = 2.0 * prior["ttft_ms"] * np.exp(-prior["burst_prefill_ms"] / 5000)
    fit = fit_prior_calibration(prior, measured, ["vllm"] * 200, TERMS)
    assert min(fit.coefficients["vllm"]) >= 0.0
    assert fit.coefficients["vllm"][1] == pytest.approx(0.0, abs=1e-6)


def test_an_engine_with_few_runs_and_an_unknown_engine_get_the_pooled_mix():
    prior = _prior(100, seed=4)
    engines = np.array(["vllm"] * 95 + ["sglang"] * 5)
    fit = fit_prior_calibration(prior, 2.0 * prior["ttft_ms"], engines, TERMS)
    assert set(fit.coefficients) == {POOLED, "vllm"}  # 5 sglang runs are too few for 3 terms
    pooled = fit.predict(prior.head(3), [POOLED] * 3)
    np.testing.assert_allclose(fit.predict(prior.head(3), ["sglang", "trt", "x"]), pooled)


def test_the_mix_never_falls_when_a_term_grows():
    calibration = PriorCalibration(TERMS, {POOLED: (1.2, 0.05, 8.0)})
    prior = _prior(50, seed=5)
    base = calibration.predict(prior, ["vllm"] * 50)
    for term in TERMS:
        grown = prior.assign(**{term: prior[term] * 1.5})
        assert (calibration.predict(grown, ["vllm"] * 50) >= base).all()
