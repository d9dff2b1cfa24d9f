"""Queueing approximations for one replica under open-loop arrivals (vectorised).

A replica with continuous batching runs at most ``n`` requests at once (its batch
limit); a request that arrives when all ``n`` slots are busy waits. The fast evaluator
treats the slots as the servers of a multi-server queue whose service time is a
request's end-to-end latency at the current load:

* **Erlang C** -- the probability that an arrival waits in an M/M/n queue with offered
  load ``a = rate * service`` (the mean number of running requests), computed from
  Poisson terms: ``C = P(N=n) * n/(n-a) / (P(N<n) + P(N=n) * n/(n-a))`` with
  ``N ~ Poisson(a)``.
* **Allen-Cunneen** -- for general arrivals and service times the M/M/n wait is scaled
  by ``(ca2 + cs2) / 2``, the mean of the squared coefficients of variation of the
  inter-arrival and service times (1 for Poisson and exponential; 0 for constant).
  Deterministic service (fixed output lengths) halves the Poisson wait.
* **Wait quantiles** -- the conditional wait of a queued request is exponential in
  M/M/n, so ``P(W > t) = C * exp(-t / theta)`` with ``theta`` the mean conditional
  wait; the q-quantile is ``theta * ln(C / (1 - q))`` when ``C > 1 - q``, else 0.
* **Priorities** -- with non-preemptive priority classes (Cobham's formula for equal
  service rates) class ``k`` waits ``W_fcfs * (1 - rho) / ((1 - s_{k-1}) (1 - s_k))``
  on average, ``s_k`` the load of classes at or above its priority.
* **Occupancy** -- the number of requests running at a random instant is Poisson with
  mean ``a`` (M/G/infinity below the batch limit), capped at ``n``; its quantiles size
  the batch a request's decode steps see in the tail. The quantile is the continuous
  Cornish-Fisher expansion ``a + z sqrt(a) + (z^2 - 1) / 6`` (normal plus the skewness
  term), which the evaluator interpolates anyway; it is within one request of the
  exact discrete quantile.

References: Kleinrock, *Queueing Systems* vol. 1 (Erlang C, M/G/infinity); Allen,
*Probability, Statistics and Queueing Theory* (the Allen-Cunneen approximation);
Cobham (1954), "Priority assignment in waiting line problems".

Example:
    >>> round(float(erlang_c(2, 1.0)), 4)
    0.3333
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtri
from scipy.stats import poisson

__all__ = [
    "erlang_c",
    "mean_wait",
    "occupancy_quantile",
    "priority_wait_factors",
    "wait_quantile",
]


def erlang_c(servers: ArrayLike, offered_load: ArrayLike) -> np.ndarray:
    """Probability that an arrival must wait (M/M/n); 1 where ``load >= servers``."""
    n = np.asarray(servers, dtype=np.float64)
    a = np.asarray(offered_load, dtype=np.float64)
    n, a = np.broadcast_arrays(n, a)
    stable = a < n
    safe_a = np.where(stable, np.maximum(a, 1e-12), 0.5)
    safe_n = np.where(stable, n, 1.0)
    top = poisson.pmf(safe_n, safe_a) * safe_n / (safe_n - safe_a)
    below = poisson.cdf(safe_n - 1, safe_a)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(top > 0, top / (below + top), 0.0)
    return np.where(stable, np.clip(c, 0.0, 1.0), 1.0)


def _theta(
    servers: np.ndarray, offered_load: np.ndarray, service_s: np.ndarray, variability: ArrayLike
) -> np.ndarray:
    """Mean conditional wait of a queued request (s): ``service / (n - a)`` scaled."""
    gap = np.maximum(servers - offered_load, 1e-12)
    return np.asarray(variability) * service_s / gap


def mean_wait(
    servers: ArrayLike, offered_load: ArrayLike, service_s: ArrayLike, variability: ArrayLike
) -> np.ndarray:
    """Mean queueing delay (s) of all arrivals; ``inf`` where the queue is unstable.

    Args:
        servers: batch limit ``n`` of each replica.
        offered_load: mean running requests ``a = rate * service``.
        service_s: mean service (end-to-end) time in seconds.
        variability: Allen-Cunneen factor ``(ca2 + cs2) / 2``.
    """
    n = np.asarray(servers, dtype=np.float64)
    a = np.asarray(offered_load, dtype=np.float64)
    s = np.asarray(service_s, dtype=np.float64)
    wait = erlang_c(n, a) * _theta(n, a, s, variability)
    return np.where(a < n, wait, np.inf)


def wait_quantile(
    q: float,
    servers: ArrayLike,
    offered_load: ArrayLike,
    service_s: ArrayLike,
    variability: ArrayLike,
    factor: ArrayLike = 1.0,
) -> np.ndarray:
    """The ``q``-quantile of the queueing delay (s); ``inf`` where unstable.

    Args:
        q: quantile in (0, 1).
        servers, offered_load, service_s, variability: as in :func:`mean_wait`.
        factor: multiplies the mean conditional wait (a priority class's
            :func:`priority_wait_factors` entry; 1 for first come, first served).
    """
    n = np.asarray(servers, dtype=np.float64)
    a = np.asarray(offered_load, dtype=np.float64)
    s = np.asarray(service_s, dtype=np.float64)
    c = erlang_c(n, a)
    theta = _theta(n, a, s, variability) * np.asarray(factor, dtype=np.float64)
    tail = 1.0 - q
    with np.errstate(divide="ignore"):
        t = np.where(c > tail, theta * np.log(np.maximum(c, tail) / tail), 0.0)
    return np.where(a < n, t, np.inf)


def priority_wait_factors(
    shares: Sequence[float], priorities: Sequence[int], utilization: ArrayLike
) -> list[np.ndarray]:
    """Per class, the factor its mean wait is of the first-come-first-served wait.

    Non-preemptive priorities with equal service rates (Cobham): a class of load
    share ``p_k`` with ``s_k`` the total share at or above its priority waits
    ``(1 - rho) / ((1 - rho * s_{k-1}) (1 - rho * s_k))`` times the FCFS wait. Classes of
    equal priority share one level. With one level every factor is 1.

    Args:
        shares: request share of each class (sums to 1).
        priorities: priority of each class (higher is served first).
        utilization: ``rho = a / n`` (array).
    """
    rho = np.asarray(utilization, dtype=np.float64)
    levels = sorted(set(priorities), reverse=True)
    above: dict[int, float] = {}
    cumulative = 0.0
    for level in levels:
        above[level] = cumulative
        cumulative += sum(s for s, p in zip(shares, priorities, strict=True) if p == level)
    factors = []
    for priority in priorities:
        start = above[priority]
        end = start + sum(s for s, p in zip(shares, priorities, strict=True) if p == priority)
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = (1.0 - rho) / ((1.0 - rho * start) * (1.0 - rho * end))
        factors.append(np.where(np.isfinite(factor), np.maximum(factor, 0.0), np.inf))
    return factors


def occupancy_quantile(q: float, mean: ArrayLike, cap: ArrayLike) -> np.ndarray:
    """``q``-quantile of the running requests, Poisson(``mean``) by the Cornish-Fisher
    expansion, kept within ``[mean, cap]`` for ``q >= 0.5``."""
    m = np.maximum(np.asarray(mean, dtype=np.float64), 0.0)
    z = float(ndtri(q))
    value = m + z * np.sqrt(m) + (z * z - 1.0) / 6.0
    return np.clip(np.maximum(value, m), 0.0, np.asarray(cap, dtype=np.float64))
