"""Simulator speed: 10,000 and 1,000,000 requests at 0.8 of a replica's capacity.

Workload: Poisson arrivals, log-normal lengths (median 1,000 input and 250 output tokens,
sigma 0.5, capped at 8,192 and 2,048), on Llama-3.1-8B-Instruct, vLLM defaults, one H100
SXM (operator-prior step times; the event loop's cost does not depend on calibration).
Capacity is the closed-loop throughput with every batch slot the KV cache allows busy.

Prints the wall times (best of ``--repeat`` for the small runs), the time per request,
and the state the loop carried (requests, steps, stretches, running batch, KV blocks).

Usage::

    python benchmarks/simulator_speed.py [--large 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import time

from optimizer.domain import (
    ClosedLoop,
    EndpointConfig,
    LogNormalLength,
    PoissonArrivals,
    TenantClass,
    Workload,
)
from optimizer.simulate import SimulationReport, build_replica, simulate, simulate_replica

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
GPU = "h100_sxm"


def tenant() -> TenantClass:
    return TenantClass(
        name="chat",
        share=1.0,
        isl=LogNormalLength(median=1000, sigma=0.5, max_tokens=8192),
        osl=LogNormalLength(median=250, sigma=0.5, max_tokens=2048),
    )


def figures(report: SimulationReport, seconds: float, n: int) -> dict[str, float | int]:
    return {
        "requests": n,
        "seconds": round(seconds, 3),
        "us_per_request": round(1e6 * seconds / n, 1),
        "completed": report.overall.completed,
        "mean_running": round(report.kv.mean_running, 1),
        "kv_blocks": report.kv.total_blocks,
        "kv_utilisation": round(report.kv.utilisation, 3),
        "engine_steps": report.loop["steps"],
        "mixed_steps": report.loop["mixed_steps"],
        "stretches": report.loop["stretches"],
        "max_running": report.loop["max_running"],
        "ttft_p99_ms": round(report.overall.ttft.p99, 1),
        "tpot_p50_ms": round(report.overall.tpot.p50, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    endpoint = EndpointConfig(engine="vllm")
    replica = build_replica(endpoint, MODEL, GPU, mean_tokens=1133 + 283)
    saturation = simulate_replica(
        replica,
        Workload(arrivals=ClosedLoop(concurrency=replica.max_concurrency), tenants=(tenant(),)),
        n_requests=4 * replica.max_concurrency,
    )
    capacity = saturation.overall.throughput_req_s
    rate = 0.8 * capacity
    workload = Workload(arrivals=PoissonArrivals(rate=rate), tenants=(tenant(),))
    out: dict[str, object] = {
        "capacity_req_s": round(capacity, 2),
        "rate_req_s": round(rate, 2),
        "max_concurrency": replica.max_concurrency,
    }

    best = float("inf")
    report = None
    for seed in range(args.repeat):
        started = time.perf_counter()
        report = simulate_replica(replica, workload, n_requests=args.small, seed=seed)
        best = min(best, time.perf_counter() - started)
    assert report is not None
    out["small"] = figures(report, best, args.small)

    started = time.perf_counter()
    report = simulate(endpoint, MODEL, GPU, workload, n_requests=2000, seed=0)
    out["simulate_2000_with_setup_s"] = round(time.perf_counter() - started, 3)

    if args.large:
        started = time.perf_counter()
        report = simulate_replica(replica, workload, n_requests=args.large, seed=0)
        out["large"] = figures(report, time.perf_counter() - started, args.large)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
