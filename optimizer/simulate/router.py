"""N engine ranks behind a router: round-robin, least-outstanding, prefix or session affinity.

* ``round_robin`` -- request ``i`` goes to rank ``i mod N``;
* ``least_outstanding`` -- to the rank with the fewest requests queued or running at
  its arrival (ties: the next rank after the previous choice);
* ``prefix_affinity`` -- requests of one session, or else of one shared prefix, always
  go to the same rank (a hash of the key), the rest by least-outstanding;
* ``session_affinity`` -- requests of one session go to the same rank, the rest by
  least-outstanding.

Static policies assign every request up front and simulate each rank on its own;
dynamic ones advance all ranks to each arrival before choosing. In closed loop the
clients are spread evenly over the ranks and each client keeps its rank.

Ranks are the ``replicas x dp`` attention data-parallel schedulers of the endpoint: the
router balances over all of them (as vLLM's data-parallel load balancer does inside a
replica). Ranks of one replica are simulated independently (the synchronisation of
their MoE layers is not modelled).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import numpy as np

from optimizer.simulate.engine import Engine
from optimizer.simulate.traffic import RequestSet

__all__ = ["RoutingPolicy", "route"]

_GOLDEN = 0x9E3779B97F4A7C15


class RoutingPolicy(StrEnum):
    """How requests are spread over engine ranks."""

    ROUND_ROBIN = "round_robin"
    LEAST_OUTSTANDING = "least_outstanding"
    PREFIX_AFFINITY = "prefix_affinity"
    SESSION_AFFINITY = "session_affinity"


def _hash_rank(keys: np.ndarray, n: int) -> np.ndarray:
    mixed = (keys.astype(np.uint64) * np.uint64(_GOLDEN)) >> np.uint64(33)
    return (mixed % np.uint64(n)).astype(np.int64)


def _affinity(requests: RequestSet, policy: RoutingPolicy, n: int) -> np.ndarray:
    """Fixed rank per request, -1 where the policy decides at arrival."""
    keys = requests.affinity_key if policy is RoutingPolicy.PREFIX_AFFINITY else requests.session
    ranks = np.full(len(requests), -1, dtype=np.int64)
    keyed = keys >= 0
    ranks[keyed] = _hash_rank(keys[keyed], n)
    return ranks


def route(
    requests: RequestSet,
    engines: Sequence[Engine],
    policy: RoutingPolicy | str,
    *,
    warm: tuple[int, int] | None = None,
) -> None:
    """Feed the requests to the engines under ``policy`` and run them to completion.

    Args:
        requests: the requests (sorted by arrival; closed loop when ``clients`` is set).
        engines: the engine ranks, sharing one request log.
        policy: the routing policy.
        warm: closed loop only: start in steady state with requests of these
            ``(input, output)`` tokens in flight (see :meth:`Engine.start_closed_loop`);
            ``None``: all clients send at time 0.
    """
    policy = RoutingPolicy(policy)
    n = len(engines)
    total = len(requests)
    if requests.clients is not None:
        clients = requests.clients
        for index, engine in enumerate(engines):
            pool = list(range(index, total, n))
            share = clients // n + (1 if index < clients % n else 0)
            engine.start_closed_loop(share, pool, warm=warm)
        for engine in engines:
            engine.run_until()
        return
    if n == 1:
        engines[0].submit_many(list(range(total)))
        engines[0].run_until()
        return
    if policy is RoutingPolicy.ROUND_ROBIN:
        for index, engine in enumerate(engines):
            engine.submit_many(list(range(index, total, n)))
            engine.run_until()
        return
    fixed = (
        _affinity(requests, policy, n)
        if policy is not RoutingPolicy.LEAST_OUTSTANDING
        else np.full(total, -1, dtype=np.int64)
    )
    if (fixed >= 0).all():
        for index, engine in enumerate(engines):
            engine.submit_many(np.flatnonzero(fixed == index).tolist())
            engine.run_until()
        return
    arrival = requests.arrival.tolist()
    ranks = fixed.tolist()
    last = n - 1
    for rid in range(total):
        t = arrival[rid]
        rank = ranks[rid]
        if rank < 0:
            best = None
            for step in range(1, n + 1):
                candidate = (last + step) % n
                engine = engines[candidate]
                engine.run_until(t)
                load = engine.outstanding
                if best is None or load < best:
                    best, rank = load, candidate
            last = rank
        else:
            engines[rank].run_until(t)
        engines[rank].submit(rid)
    for engine in engines:
        engine.run_until()
