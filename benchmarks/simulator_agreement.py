"""Closed-loop agreement: the simulator against the learned surrogate on the reference runs.

For every configuration of the bundled aggregated runs (model, GPU, engine,
quantization, KV dtype, tp/dp/ep, input and output length -- one concurrency sweep),
the simulator is calibrated on the surrogate at its anchor concurrencies
(:func:`optimizer.simulate.calibrated_replica`: 1, 3, 6, 12, ... per engine rank, never
the powers of two the runs use), then run in closed loop at every concurrency the runs
measured, with the engine's default limits (the runs record none). Its mean TTFT and
TPOT are compared with the surrogate's prediction for that run, and with the
measurement. Rows whose concurrency per rank is an anchor are reported apart.

Usage::

    python benchmarks/simulator_agreement.py [--sample N] [--seed S] [--json FILE]

Fits the surrogate on all aggregated runs first (about 20 s on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from optimizer.domain import EndpointConfig, Workload
from optimizer.errors import EpoptError
from optimizer.profiles import load_reference_profiles
from optimizer.simulate import (
    SimulationOptions,
    anchor_concurrencies,
    build_replica,
    calibrated_replica,
    simulate_replica,
)
from optimizer.simulate.calibration import DEFAULT_WAVES
from optimizer.surrogate import Surrogate

KEYS = ["model", "gpu", "engine", "quantization", "kv_cache_dtype", "tp", "dp", "ep", "isl", "osl"]


def sweep_rows(key: tuple[Any, ...], group: pd.DataFrame, surrogate: Surrogate) -> list[dict]:
    """Calibrate one configuration and simulate every measured concurrency."""
    knobs = dict(zip(KEYS, key, strict=True))
    isl, osl, dp = int(knobs["isl"]), int(knobs["osl"]), int(knobs["dp"])
    endpoint = EndpointConfig(
        engine=knobs["engine"],
        tp=int(knobs["tp"]),
        dp=dp,
        ep=int(knobs["ep"]),
        quantization=knobs["quantization"],
        kv_cache_dtype=knobs["kv_cache_dtype"],
    )
    replica = build_replica(endpoint, knobs["model"], knobs["gpu"], mean_tokens=isl + osl)
    replica = calibrated_replica(replica, surrogate, isl=isl, osl=osl)
    anchors = set(anchor_concurrencies(replica.max_concurrency))
    options = SimulationOptions()
    rows = []
    for concurrency, runs in group.groupby("concurrency"):
        concurrency = int(concurrency)
        workload = Workload.simple(isl, osl, concurrency=concurrency)
        report = simulate_replica(
            replica,
            workload,
            n_requests=max(DEFAULT_WAVES * concurrency, 16),
            options=options,
        )
        per_rank = max(round(concurrency / dp), 1)
        rows.append(
            {
                "config": " ".join(str(v) for v in key),
                "concurrency": concurrency,
                "per_rank": per_rank,
                "capacity_per_rank": replica.max_concurrency,
                "anchor": per_rank in anchors,
                "sim_ttft_ms": report.overall.ttft.mean,
                "sim_tpot_ms": report.overall.tpot.mean,
                "sur_ttft_ms": float(runs["sur_ttft_ms"].mean()),
                "sur_tpot_ms": float(runs["sur_tpot_ms"].mean()),
                "meas_ttft_ms": float(runs["ttft_ms"].mean()),
                "meas_tpot_ms": float(runs["tpot_ms"].mean()),
            }
        )
    return rows


def why(row: pd.Series) -> str:
    """A short reason for a large disagreement."""
    if row["per_rank"] > row["capacity_per_rank"]:
        return "over capacity: requests queue for batch slots or KV blocks in the simulator"
    if row["per_rank"] <= 16 and row["ttft_rel"] > 0:
        return "synchronised burst: all clients' prompts prefill in the same steps"
    if row["ttft_rel"] < 0 and row["per_rank"] >= 0.5 * row["capacity_per_rank"]:
        return "near capacity: measured TTFT includes queueing the memory model does not see"
    return "interpolation between anchors"


def summarise(frame: pd.DataFrame) -> dict[str, Any]:
    """Median and 90th percentile absolute relative differences."""
    out: dict[str, Any] = {"rows": len(frame)}
    for name in ("ttft", "tpot"):
        for ref in ("sur", "meas"):
            rel = (frame[f"sim_{name}_ms"] / frame[f"{ref}_{name}_ms"] - 1.0).abs()
            out[f"{name}_vs_{ref}_median_pct"] = round(100 * float(rel.median()), 1)
            out[f"{name}_vs_{ref}_p90_pct"] = round(100 * float(rel.quantile(0.9)), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sample", type=int, default=0, help="configurations (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the rows and summary to this file")
    args = parser.parse_args()

    runs = load_reference_profiles()
    runs = runs[runs["mode"] == "agg"].reset_index(drop=True)
    runs["kv_cache_dtype"] = runs["kv_cache_dtype"].fillna("bf16")
    started = time.perf_counter()
    surrogate = Surrogate(cv_folds=0).fit(runs)
    fit_s = time.perf_counter() - started
    pred = surrogate.predict(runs)
    runs["sur_ttft_ms"], runs["sur_tpot_ms"] = pred["ttft_ms"], pred["tpot_ms"]

    groups = list(runs.groupby(KEYS, dropna=False))
    if args.sample:
        pick = np.random.default_rng(args.seed).choice(len(groups), args.sample, replace=False)
        groups = [groups[i] for i in sorted(pick)]
    rows: list[dict] = []
    skipped: list[str] = []
    started = time.perf_counter()
    for index, (key, group) in enumerate(groups, start=1):
        try:
            rows.extend(sweep_rows(key, group, surrogate))
        except (EpoptError, ValidationError) as exc:  # e.g. tp=72 is outside EndpointConfig
            skipped.append(f"{' '.join(map(str, key))}: {exc}")
        if index % 25 == 0:
            print(f"  {index}/{len(groups)} configurations, {time.perf_counter() - started:.0f} s")
    sim_s = time.perf_counter() - started
    frame = pd.DataFrame(rows)
    frame["ttft_rel"] = frame["sim_ttft_ms"] / frame["sur_ttft_ms"] - 1.0
    frame["tpot_rel"] = frame["sim_tpot_ms"] / frame["sur_tpot_ms"] - 1.0
    summary = {
        "configurations": len(groups) - len(skipped),
        "skipped": len(skipped),
        "surrogate_fit_s": round(fit_s, 1),
        "simulation_s": round(sim_s, 1),
        "all": summarise(frame),
        "between_anchors": summarise(frame[~frame["anchor"]]),
        "at_anchors": summarise(frame[frame["anchor"]]),
        "within_capacity": summarise(frame[frame["per_rank"] <= frame["capacity_per_rank"]]),
    }
    print(json.dumps(summary, indent=2))
    worst = frame.assign(abs_ttft=frame["ttft_rel"].abs()).nlargest(15, "abs_ttft")
    print("largest TTFT disagreements (simulated / surrogate - 1):")
    for _, row in worst.iterrows():
        print(
            f"  {row['config']} c={row['concurrency']}: TTFT {row['ttft_rel']:+.0%}, "
            f"TPOT {row['tpot_rel']:+.0%} -- {why(row)}"
        )
    reasons = frame[frame["ttft_rel"].abs() > 0.25].apply(why, axis=1).value_counts()
    print("rows with |TTFT difference| > 25 %, by reason:")
    for reason, count in reasons.items():
        print(f"  {count:4d}  {reason}")
    if skipped:
        print(f"skipped {len(skipped)} configurations (first 5):")
        for line in skipped[:5]:
            print(f"  {line}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            clean = frame.replace({math.nan: None}).to_dict(orient="records")
            json.dump({"summary": summary, "rows": clean, "skipped": skipped}, handle, indent=1)


if __name__ == "__main__":
    main()
