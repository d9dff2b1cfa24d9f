"""The simulator in the loop: each candidate's capacity and tails from the serving
simulator (:mod:`optimizer.simulate`), one costly evaluation per candidate.

Per candidate: the simulator finds the highest rate one replica sustains within every
tenant's SLO (``max_rate_meeting_slo``, seeded probes), the planned load gets
``ceil(rate / (capacity * (1 - headroom)))`` replicas as with the fast evaluator, and
one more simulation at the per-replica share of the load gives the percentiles. A
candidate that misses the SLO at every probed rate is reported at its lowest probe
(``best_*``) and marked infeasible.

The simulator's percentiles are sample statistics, not model intervals: ``_lo`` and
``_hi`` equal the value and ``p_slo`` is 1 or 0. Closed-loop workloads are not
supported (the capacity search varies an arrival rate). Use it with the optuna or Ray
backends, which spend a budget of evaluations.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from optimizer.capacity.cost import replica_usd_per_hour
from optimizer.errors import InvalidInputError
from optimizer.search.deployment import endpoint_config
from optimizer.search.evaluator import Evaluator
from optimizer.search.objectives import Bound, slo_bounds
from optimizer.search.scenario import Scenario

if TYPE_CHECKING:
    from optimizer.simulate import SimulationReport
    from optimizer.surrogate import Surrogate

__all__ = ["SimulatorEvaluator"]

_LEVELS = ("p50", "p95", "p99")


class SimulatorEvaluator(Evaluator):
    """Capacity and latency percentiles from the serving simulator (module docstring).

    Args:
        scenario: an open-loop scenario.
        surrogate: calibrates the simulator's step times (``None``: the operator prior).
        surrogate_version: recorded in the provenance.
        n_requests: requests per simulation.
        seed: seed of every simulation (common random numbers across candidates).
        rel_tol: relative precision of the capacity search.

    Raises:
        InvalidInputError: a closed-loop workload.
    """

    name: ClassVar[str] = "simulator"
    costly: ClassVar[bool] = True

    def __init__(
        self,
        scenario: Scenario,
        surrogate: Surrogate | None = None,
        *,
        surrogate_version: str | None = None,
        n_requests: int = 1000,
        seed: int = 0,
        rel_tol: float = 0.05,
    ):
        super().__init__(scenario)
        if scenario.closed_loop:
            raise InvalidInputError(
                "workload.arrivals",
                "the simulator evaluator needs an open-loop rate",
                ["poisson", "gamma", "on_off", "constant"],
            )
        self.surrogate = surrogate
        self.surrogate_version = surrogate_version
        self.n_requests = n_requests
        self.seed = seed
        self.rel_tol = rel_tol
        self._bounds = slo_bounds(scenario)
        tenants = tuple(
            t.model_copy(update={"slo": scenario.tenant_slo(t)}) for t in scenario.workload.tenants
        )
        self._workload = scenario.workload.model_copy(update={"tenants": tenants})

    def provenance(self) -> dict[str, Any]:
        return {
            "evaluator": self.name,
            "surrogate_version": self.surrogate_version,
            "n_requests": self.n_requests,
            "seed": self.seed,
            "headroom": self.scenario.headroom,
        }

    def _value(self, report: SimulationReport, bound: Bound) -> float:
        tenant = report.tenant(bound.tenant)
        if bound.metric == "tok_s_per_user":
            return 1000.0 / tenant.tpot.mean
        metric, level = bound.metric.split("_")
        return getattr(tenant, metric).percentile(level)

    def _row(self, candidate: pd.Series) -> dict[str, Any]:
        from optimizer.simulate import max_rate_meeting_slo, scale_arrivals, simulate

        scenario = self.scenario
        gpu = scenario.gpu_by_id[str(candidate["gpu"])]
        endpoint = endpoint_config(candidate)
        kwargs: dict[str, Any] = {
            "n_requests": self.n_requests,
            "seed": self.seed,
            "surrogate": self.surrogate,
        }
        capacity = max_rate_meeting_slo(
            endpoint, scenario.model, gpu, self._workload, rel_tol=self.rel_tol, **kwargs
        )
        rate = float(scenario.planning_rate or 0.0)
        feasible = capacity.rate > 0
        reference = capacity.rate if feasible else min(r for r, _ in capacity.probes)
        usable = 1.0 - scenario.headroom if feasible else 1.0
        replicas = max(1, math.ceil(rate / (reference * usable) - 1e-9))
        per_replica = rate / replicas
        report = simulate(
            endpoint, scenario.model, gpu, scale_arrivals(self._workload, per_replica), **kwargs
        )
        usd_hour = replica_usd_per_hour(gpu, endpoint.gpus_per_replica)
        osl = scenario.workload.mean_osl()
        out: dict[str, Any] = {}
        for metric in ("ttft", "tpot", "e2e"):
            for level in _LEVELS:
                value = max(getattr(getattr(t, metric), level) for t in report.tenants)
                column = f"{metric}_{level}_ms"
                out[column] = out[f"{column}_lo"] = out[f"{column}_hi"] = value
        overall = report.overall
        batch_limit = endpoint.dp * int(candidate["max_batch_size"])
        out.update(
            ttft_mean_ms=overall.ttft.mean,
            tpot_mean_ms=overall.tpot.mean,
            e2e_mean_ms=overall.e2e.mean,
            tok_s_per_user=1000.0 / overall.tpot.mean,
            tok_s_per_replica=per_replica * osl,
            tok_s_per_gpu=per_replica * osl / endpoint.gpus_per_replica,
            replicas=replicas,
            gpus_total=replicas * endpoint.gpus_per_replica,
            rate_per_replica=per_replica,
            max_rate_per_replica=capacity.rate,
            max_concurrency_per_replica=(
                capacity.report.mean_in_system if capacity.report is not None else 0.0
            ),
            concurrency=report.mean_in_system,
            batch_limit=batch_limit,
            utilization=report.mean_in_system / batch_limit,
            usd_per_hour_replica=usd_hour,
            usd_per_hour=usd_hour * replicas,
            usd_per_mtok=usd_hour / (per_replica * osl * 3600.0) * 1e6,
        )
        at_capacity = capacity.report if capacity.report is not None else report
        ratios = {}
        for bound in self._bounds:
            if bound.metric == "usd_per_mtok":
                value = best = out["usd_per_mtok"]
            else:
                value = self._value(report, bound)
                best = value
                at_cap = np.asarray(self._value(at_capacity, bound))
                ratios[bound.name] = float(bound.violation(at_cap))
            violation = float(bound.violation(np.asarray(value)))
            out[f"violation_{bound.name}"] = violation
            out[f"best_{bound.name}"] = best
            if violation > 0:
                feasible = False
        out["p_slo"] = 1.0 if feasible else 0.0
        out["slo_feasible"] = feasible
        out["binding"] = max(ratios, key=lambda name: ratios[name]) if ratios else "batch_limit"
        return out

    def evaluate(self, candidates: pd.DataFrame) -> pd.DataFrame:
        rows = [self._row(candidates.loc[i]) for i in candidates.index]
        frame = pd.DataFrame(rows, index=candidates.index)
        for column in ("replicas", "gpus_total", "batch_limit"):
            frame[column] = frame[column].astype(np.int64)
        return frame
