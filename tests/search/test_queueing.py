"""Queueing formulas against textbook values and independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import poisson

from optimizer.search.queueing import (
    erlang_c,
    mean_wait,
    occupancy_quantile,
    priority_wait_factors,
    wait_quantile,
)


def _erlang_c_textbook(n: int, a: float) -> float:
    top = a**n / math.factorial(n) * n / (n - a)
    return top / (sum(a**k / math.factorial(k) for k in range(n)) + top)


@pytest.mark.parametrize(("n", "a"), [(1, 0.5), (2, 1.0), (8, 6.5), (16, 15.2), (64, 40.0)])
def test_erlang_c_matches_the_factorial_formula(n, a):
    assert erlang_c(n, a) == pytest.approx(_erlang_c_textbook(n, a), rel=1e-9)


def test_erlang_c_of_one_server_is_the_utilisation():
    rho = np.array([0.1, 0.5, 0.9])
    assert erlang_c(1, rho) == pytest.approx(rho)


def test_unstable_queue_always_waits():
    assert erlang_c(4, 4.0) == 1.0
    assert np.isinf(mean_wait(4, 5.0, 1.0, 1.0))
    assert np.isinf(wait_quantile(0.95, 4, 4.5, 1.0, 1.0))


def test_mm1_mean_wait_is_rho_over_mu_minus_lambda():
    # M/M/1 with service 1 s: Wq = rho / (1 - rho) seconds.
    rho = 0.8
    assert mean_wait(1, rho, 1.0, 1.0) == pytest.approx(rho / (1 - rho))


def test_wait_quantile_matches_the_exponential_tail():
    n, a, s = 4, 3.2, 2.0
    c = float(erlang_c(n, a))
    q = 0.95
    t = float(wait_quantile(q, n, a, s, 1.0))
    # P(W > t) = C exp(-t (n - a) / s) must equal 1 - q at the quantile.
    assert c * math.exp(-t * (n - a) / s) == pytest.approx(1 - q)


def test_wait_grows_with_load_and_with_variability():
    loads = np.linspace(1.0, 7.9, 20)
    waits = wait_quantile(0.99, 8, loads, 1.0, 1.0)
    assert np.all(np.diff(waits) >= 0)
    assert wait_quantile(0.99, 8, 7.5, 1.0, 1.0) > wait_quantile(0.99, 8, 7.5, 1.0, 0.5)
    assert wait_quantile(0.99, 8, 7.5, 1.0, 0.0) == 0.0


def test_priority_factors_conserve_the_mean_wait():
    # Kleinrock's conservation law: the share-weighted wait equals the FCFS wait.
    shares, priorities = [0.2, 0.5, 0.3], [2, 1, 0]
    for rho in (0.3, 0.7, 0.95):
        factors = priority_wait_factors(shares, priorities, rho)
        assert sum(s * float(f) for s, f in zip(shares, factors, strict=True)) == pytest.approx(1)
        assert float(factors[0]) < float(factors[1]) < float(factors[2])


def test_one_priority_level_is_first_come_first_served():
    factors = priority_wait_factors([0.5, 0.5], [0, 0], np.array([0.5, 0.9]))
    for factor in factors:
        assert factor == pytest.approx([1.0, 1.0])


def test_occupancy_quantile_is_close_to_the_poisson_quantile():
    means = np.array([2.0, 5.0, 20.0, 100.0, 400.0])
    for q in (0.5, 0.95, 0.99):
        exact = poisson.ppf(q, means)
        assert np.all(np.abs(occupancy_quantile(q, means, 1e9) - exact) <= 1.0)
    assert np.all(occupancy_quantile(0.99, means, 50) <= 50)
