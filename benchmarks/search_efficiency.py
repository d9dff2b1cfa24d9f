"""How quickly optuna finds the Pareto front, against exhaustive and random search.

For each scenario (model, GPU, engines, workload, SLO, >= 2,000 feasible candidates) the
fast evaluator scores every candidate once; the exhaustive search's SLO-feasible Pareto
front (cost against the latencies the SLO bounds) is the reference. Each sampler then
searches the same problem (trials repair to the nearest feasible candidate and are
scored from the exhaustive table, so only the number of evaluations matters), and the
benchmark records, per seed, how many evaluations (trials) it needs to reach 95 % of
the reference hypervolume. Hypervolume: objectives on a log scale, normalised to
[0, 1] between the ideal and nadir points of the reference front, reference point 1.1.

Done-when figures (issue 6): optuna (multi-objective TPE) reaches 95 % within 10 % of
the candidates on every scenario, in fewer evaluations than random search; the table
shows the mean over seeds and the ratio random / optuna.

Usage:
    python benchmarks/search_efficiency.py [--seeds 5] [--samplers tpe,random]
        [--random-cap 0.6] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from optimizer.catalog import get_gpu, load_model_spec
from optimizer.domain import SLO, Workload
from optimizer.profiles import load_reference_profiles
from optimizer.search.backends.optuna_backend import OptunaBackend
from optimizer.search.candidates import build_candidates
from optimizer.search.fast_evaluator import FastEvaluator
from optimizer.search.objectives import default_objectives, objective_matrix
from optimizer.search.pareto import Normalizer, hypervolume, pareto_mask
from optimizer.search.problem import SearchProblem
from optimizer.search.scenario import Scenario
from optimizer.surrogate import Surrogate

__all__ = ["SCENARIOS", "main"]

TARGET = 0.95
BUDGET_SHARE = 0.10


@dataclass(frozen=True)
class Case:
    name: str
    model: str
    gpus: tuple[str, ...]
    engines: tuple[str, ...]
    workload: Workload
    slo: str
    pins: dict[str, tuple[Any, ...]]


SCENARIOS: tuple[Case, ...] = (
    Case(
        "Llama-3.1-70B / H100 / vLLM",
        "meta-llama/Llama-3.1-70B",
        ("h100_sxm",),
        ("vllm",),
        Workload.simple(2048, 256, rate=5.0),
        "ttft_p95<=2s,tpot_p95<=50ms",
        {"kv_block_size": (16,)},
    ),
    Case(
        "Qwen3-32B / H200 / SGLang + TRT-LLM",
        "Qwen/Qwen3-32B",
        ("h200_sxm",),
        ("sglang", "trtllm"),
        Workload.simple(4096, 512, rate=8.0),
        "ttft_p95<=1.5s,tpot_p95<=30ms",
        {"kv_block_size": (16,), "max_num_batched_tokens": (8192,)},
    ),
    Case(
        "Llama-3.1-8B / H100 + L40S / vLLM + SGLang",
        "meta-llama/Llama-3.1-8B",
        ("h100_sxm", "l40s"),
        ("vllm", "sglang"),
        Workload.simple(1024, 256, rate=20.0),
        "ttft_p99<=800ms,e2e_p95<=6s",
        {
            "kv_block_size": (16,),
            "max_num_batched_tokens": (8192,),
            "spec_method": ("none", "ngram", "eagle3"),
        },
    ),
)


def _surrogate() -> Surrogate:
    runs = load_reference_profiles()
    started = time.perf_counter()
    model = Surrogate(random_state=0).fit(runs[runs["mode"] == "agg"])
    print(
        f"surrogate fitted on the reference runs in {time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )
    return model


def _evaluations_to_target(
    trials: tuple[int, ...],
    feasible: np.ndarray,
    points: np.ndarray,
    normalizer: Normalizer,
    reference: float,
) -> int | None:
    """First trial count whose feasible evaluated points reach TARGET of the reference."""
    seen: set[int] = set()
    front = np.zeros((0, points.shape[1]))
    for count, index in enumerate(trials, start=1):
        if index in seen or not feasible[index]:
            seen.add(index)
            continue
        seen.add(index)
        front = np.vstack([front, points[index]])
        front = front[pareto_mask(front)]
        if hypervolume(front, normalizer) >= TARGET * reference:
            return count
    return None


def run_case(
    case: Case, surrogate: Surrogate, seeds: int, samplers: list[str], random_cap: float
) -> dict[str, Any]:
    model = load_model_spec(case.model)
    scenario = Scenario(
        model, tuple(get_gpu(g) for g in case.gpus), case.workload, SLO.parse(case.slo)
    )
    evaluator = FastEvaluator(scenario, surrogate)
    candidates = build_candidates(
        scenario, engines=case.engines, restrictions=FastEvaluator.restrictions, pins=case.pins
    ).frame
    objectives = default_objectives(scenario)
    started = time.perf_counter()
    metrics = evaluator.evaluate(candidates)
    exhaustive_s = time.perf_counter() - started
    feasible = metrics["slo_feasible"].to_numpy(bool)
    points = objective_matrix(metrics, objectives)
    front = points[feasible][pareto_mask(points[feasible])]
    normalizer = Normalizer.fit(front)
    reference = hypervolume(front, normalizer)
    n = len(candidates)
    out: dict[str, Any] = {
        "scenario": case.name,
        "candidates": n,
        "feasible": int(feasible.sum()),
        "objectives": [o.name for o in objectives],
        "front": len(front),
        "exhaustive_s": round(exhaustive_s, 2),
        "samplers": {},
    }
    for sampler in samplers:
        share = BUDGET_SHARE if sampler != "random" else random_cap
        budget = max(1, math.floor(share * n))
        runs = []
        for seed in range(seeds):
            problem = SearchProblem(candidates, evaluator, objectives, precomputed=metrics)
            began = time.perf_counter()
            result = OptunaBackend(sampler, seed=seed).search(problem, budget=budget)
            reached = _evaluations_to_target(result.trials, feasible, points, normalizer, reference)
            final = metrics.loc[list(result.evaluated)]
            final_pts = objective_matrix(final[final["slo_feasible"]], objectives)
            runs.append(
                {
                    "seed": seed,
                    "evaluations_to_95": reached,
                    "hv_at_budget": round(hypervolume(final_pts, normalizer) / reference, 4),
                    "distinct": len(result.evaluated),
                    "seconds": round(time.perf_counter() - began, 1),
                }
            )
            print(f"  {case.name} {sampler} seed {seed}: {runs[-1]}", file=sys.stderr)
        needed = [r["evaluations_to_95"] for r in runs]
        reached_all = all(v is not None for v in needed)
        mean = float(np.mean([v if v is not None else budget for v in needed]))
        out["samplers"][sampler] = {
            "budget": budget,
            "runs": runs,
            "reached_all": reached_all,
            "mean_evaluations_to_95": mean,
            "mean_share_to_95": mean / n,
        }
    return out


def _table(results: list[dict[str, Any]], samplers: list[str]) -> str:
    optimiser = samplers[0]
    lines = [
        f"| scenario | candidates | front | {optimiser}: evals to 95 % HV (mean) | share | "
        "random: evals to 95 % HV (mean) | random / " + optimiser + " |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        opt = r["samplers"][optimiser]
        rnd = r["samplers"].get("random")
        opt_text = f"{opt['mean_evaluations_to_95']:.0f}" + (
            "" if opt["reached_all"] else " (not all seeds)"
        )
        if rnd is None:
            rnd_text, ratio = "-", "-"
        else:
            lower = "" if rnd["reached_all"] else ">= "
            rnd_text = f"{lower}{rnd['mean_evaluations_to_95']:.0f}"
            ratio = f"{lower}{rnd['mean_evaluations_to_95'] / opt['mean_evaluations_to_95']:.1f}x"
        lines.append(
            f"| {r['scenario']} | {r['candidates']:,} | {r['front']} | {opt_text} | "
            f"{100 * opt['mean_share_to_95']:.1f} % | {rnd_text} | {ratio} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run every scenario and print the table (and JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--samplers", default="tpe,random", help="first one is compared")
    parser.add_argument(
        "--random-cap",
        type=float,
        default=0.6,
        help="budget of the random baseline, as a share of the candidates",
    )
    parser.add_argument("--json", help="write the full results here")
    args = parser.parse_args(argv)
    samplers = args.samplers.split(",")
    surrogate = _surrogate()
    results = [
        run_case(case, surrogate, args.seeds, samplers, args.random_cap) for case in SCENARIOS
    ]
    print(_table(results, samplers))
    ok = all(
        r["candidates"] >= 2000
        and r["samplers"][samplers[0]]["reached_all"]
        and r["samplers"][samplers[0]]["mean_share_to_95"] <= BUDGET_SHARE
        and (
            "random" not in r["samplers"]
            or r["samplers"]["random"]["mean_evaluations_to_95"]
            > r["samplers"][samplers[0]]["mean_evaluations_to_95"]
        )
        for r in results
    )
    print(
        f"done-when: {'met' if ok else 'NOT met'} (>= 2,000 candidates, 95 % HV within "
        f"{BUDGET_SHARE:.0%} of the evaluations, fewer than random)"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
