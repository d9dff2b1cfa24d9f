"""The fast evaluator: surrogate latency curves plus analytical queueing, vectorised.

For each candidate it finds the load one replica can carry within the SLO, sizes the
replicas for the scenario's planned load, and predicts latency tails, throughput,
cost and the probability that the SLO holds. Steps (all numpy over candidates):

1. **Mean latency at a load.** ``c`` is the mean number of running requests on a
   replica. TTFT(c) and TPOT(c) come from the surrogate's curves
   (:mod:`optimizer.search.curves`); speculative decoding rescales TPOT
   (:mod:`optimizer.search.speculative`) and its drafter adds its share to TTFT; a
   prompt longer than the prefill chunk (``max_num_batched_tokens``) needs
   ``ceil(isl / chunk) - 1`` extra steps, each about one decode step. With several
   tenants, TPOT is the pool's (the surrogate at the mixture's mean lengths) and each
   tenant's TTFT is read at its own prompt length.
2. **Little's law.** A replica at load ``c`` serves ``rate(c) = c / E2E(c)`` requests/s,
   ``E2E = TTFT + (osl - 1) * TPOT`` averaged over tenants. For an open-loop rate the
   operating load solves the fixed point ``c = rate * E2E(c)`` (bisection on the
   monotone ``rate(c)``).
3. **Tails.** The q-quantile of a latency adds three effects, each conservative:
   (a) load: the running requests at a random instant are Poisson(c) capped at the
   batch limit (M/G/infinity), and TPOT is read at their q-quantile; (b) length: TTFT
   scales with the prompt, ``ttft * isl_q / isl_mean``, and E2E uses ``osl_q``; (c)
   queueing: when all batch slots are busy a request waits, with the Erlang-C /
   Allen-Cunneen wait quantile and non-preemptive priorities between tenants
   (:mod:`optimizer.search.queueing`). Closed-loop clients never exceed the batch, so
   they only see (b).
4. **Uncertainty.** The surrogate's 90 % interval is read as the central interval of
   a log-normal around the prediction (``sigma = ln(hi / lo) / 3.29``); speculative
   decoding adds the spread of its acceptance rate; E2E combines the TTFT and TPOT
   sigmas weighted by their share of the latency. A bound holds at confidence ``p`` if
   ``value * exp(z_p * sigma) <= limit``; ``p_slo`` is the product over bounds of
   ``Phi(ln(limit / value) / sigma)`` (independent errors).
5. **Capacity.** Loads ``c`` from 0.1 to ``max_batch_utilization x batch limit`` are
   scanned on a fixed geometric grid (48 loads; neighbours about 14 % apart for a
   512-request batch, so capacity errs low by at most that); the grid loads before the
   first SLO violation are feasible and the one of highest throughput gives
   ``max_rate_per_replica`` -- usually the last (binding: the SLO bound violated next,
   or ``batch_limit``), earlier when ``rate(c)`` peaks (``throughput_peak``: a larger
   batch slows every step more than it adds requests). The grid does not depend on
   the SLO, so a tighter SLO never yields more capacity. The planned load
   needs ``ceil(rate / (max_rate * (1 - headroom)))`` replicas (closed loop: clients
   over the largest load), sharing it evenly -- the capacity plan's serving replicas;
   cost is their $/hour over the output tokens they serve.

Candidates that differ only in knobs with no modelled effect (the KV block size)
share one evaluation. ``pp > 1`` is outside what the surrogate models
(:attr:`FastEvaluator.restrictions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from optimizer.capacity.cost import replica_usd_per_hour
from optimizer.search.curves import CurveStore
from optimizer.search.evaluator import Evaluator
from optimizer.search.lengths import length_cv2, length_quantile
from optimizer.search.objectives import Bound, slo_bounds
from optimizer.search.queueing import occupancy_quantile, priority_wait_factors, wait_quantile
from optimizer.search.scenario import Scenario

if TYPE_CHECKING:
    from optimizer.surrogate import Surrogate

__all__ = ["DEFAULT_MAX_CONCURRENCY", "FastEvaluator"]

DEFAULT_MAX_CONCURRENCY = 32768
"""Largest per-replica concurrency the latency curves cover (dp 8 x 512 sequences x 8
verified tokens per step)."""

_QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
_Z90 = float(ndtri(0.95))
_MIX = 0  # profile index of the pool's mixture
_LIGHTEST_LOAD = 0.1  # running requests at which "best" latencies are read


@dataclass(frozen=True)
class _Tenant:
    name: str
    share: float
    priority: int
    profile: int
    isl_mean: float
    osl_mean: float
    isl_ratio: dict[float, float]
    osl_q: dict[float, float]


@dataclass(frozen=True)
class _Candidates:
    """Per-candidate arrays of one evaluation batch."""

    layout: np.ndarray
    cap: np.ndarray
    k: np.ndarray
    tokens_per_step: np.ndarray
    spec_sigma: np.ndarray
    draft_cost: np.ndarray
    chunks: np.ndarray
    gpus: np.ndarray
    usd_per_hour: np.ndarray

    def expand(self, name: str, ndim: int) -> np.ndarray:
        value = getattr(self, name)
        return value[:, None] if ndim == 2 else value

    def matrix(self) -> np.ndarray:
        """One row per candidate of everything the evaluation depends on."""
        return np.column_stack([getattr(self, f) for f in self.__dataclass_fields__])

    def subset(self, idx: np.ndarray) -> _Candidates:
        return _Candidates(**{f: getattr(self, f)[idx] for f in self.__dataclass_fields__})


class FastEvaluator(Evaluator):
    """Vectorised evaluator on the surrogate's latency curves (module docstring).

    Args:
        scenario: model, GPUs, workload, SLO and planning settings.
        surrogate: a fitted :class:`~optimizer.surrogate.Surrogate`.
        surrogate_version: the stored version it was loaded from (for provenance).
        grid_points: loads scanned per candidate (the capacity's resolution: about
            ``(cap) ** (1 / grid_points)`` between neighbouring loads).
        max_concurrency: largest concurrency the curves cover.
        curve_cache: a dict shared between evaluators of one surrogate: scenarios with
            the same model, GPUs and mean lengths reuse each other's latency curves.

    Example:
        >>> ev = FastEvaluator(scenario, surrogate)        # doctest: +SKIP
        >>> ev.evaluate(candidates)[["usd_per_mtok", "ttft_p95_ms"]]  # doctest: +SKIP
    """

    name: ClassVar[str] = "fast"
    restrictions: ClassVar[dict[str, tuple[Any, ...]]] = {"pp": (1,)}
    """The surrogate models one aggregated pool without pipeline parallelism."""

    def __init__(
        self,
        scenario: Scenario,
        surrogate: Surrogate,
        *,
        surrogate_version: str | None = None,
        grid_points: int = 48,
        max_concurrency: float = DEFAULT_MAX_CONCURRENCY,
        curve_cache: dict[Any, CurveStore] | None = None,
    ):
        super().__init__(scenario)
        self.surrogate_version = surrogate_version
        self.grid_points = grid_points
        workload = scenario.workload
        self._bounds = slo_bounds(scenario)
        self._load_bounds = [b for b in self._bounds if b.metric != "usd_per_mtok"]
        self._z = float(ndtri(scenario.confidence))
        mix = (max(1, round(workload.mean_isl())), max(1, round(workload.mean_osl())))
        profiles = [mix]
        tenants = []
        for t in workload.tenants:
            profile = (max(1, round(t.isl.mean())), mix[1])
            if profile not in profiles:
                profiles.append(profile)
            tenants.append(
                _Tenant(
                    name=t.name,
                    share=t.share,
                    priority=t.priority,
                    profile=profiles.index(profile),
                    isl_mean=t.isl.mean(),
                    osl_mean=t.osl.mean(),
                    isl_ratio={
                        q: length_quantile(t.isl, q) / t.isl.mean() for q in _QUANTILES.values()
                    },
                    osl_q={q: length_quantile(t.osl, q) for q in _QUANTILES.values()},
                )
            )
        self._tenants = tuple(tenants)
        self._osl_mean = workload.mean_osl()
        cs2 = length_cv2([t.osl for t in workload.tenants], [t.share for t in workload.tenants])
        self._variability = (scenario.arrival_cv2 + cs2) / 2.0
        self.curves = CurveStore.shared(
            curve_cache, surrogate, scenario.model, scenario.gpu_by_id, profiles, max_concurrency
        )

    # --- interface --------------------------------------------------------------------
    def provenance(self) -> dict[Any, Any]:
        spec = self.scenario.spec
        return {
            "evaluator": self.name,
            "surrogate_version": self.surrogate_version,
            "confidence": self.scenario.confidence,
            "max_batch_utilization": self.scenario.max_batch_utilization,
            "headroom": self.scenario.headroom,
            "spec_acceptance": dict(spec.acceptance),
            "spec_acceptance_spread": spec.acceptance_spread,
            "draft_model_cost": spec.draft_model_cost,
            "arrival_cv2": self.scenario.arrival_cv2,
        }

    def evaluate(self, candidates: pd.DataFrame) -> pd.DataFrame:
        if candidates.empty:
            return pd.DataFrame(index=candidates.index)
        arrays = self._arrays(candidates)
        _, first, codes = np.unique(arrays.matrix(), axis=0, return_index=True, return_inverse=True)
        metrics = self._evaluate_unique(arrays.subset(first))
        return metrics.iloc[codes.ravel()].set_axis(candidates.index)

    # --- model ------------------------------------------------------------------------
    def _arrays(self, frame: pd.DataFrame) -> _Candidates:
        spec = self.scenario.spec
        gpus = self.scenario.gpu_by_id
        methods = frame["spec_method"].astype(str).to_numpy()
        k = frame["spec_draft_len"].to_numpy(np.float64)
        batch = frame["max_batch_size"].to_numpy(np.float64)
        if "max_sequences" in frame:
            batch = np.minimum(batch, frame["max_sequences"].to_numpy(np.float64))
        per_replica = frame["gpus_per_replica"].to_numpy(np.float64)
        price = frame["gpu"].astype(str).map(lambda g: replica_usd_per_hour(gpus[g], 1))
        price = price.to_numpy(np.float64)
        return _Candidates(
            layout=self.curves.layout_index(frame),
            cap=np.maximum(frame["dp"].to_numpy(np.float64) * batch, 1.0),
            k=k,
            tokens_per_step=spec.tokens_per_step(methods, k),
            spec_sigma=spec.log_spread(methods, k) / _Z90,
            draft_cost=_per_value(methods, lambda m: spec.draft_cost(m, self.scenario.model)),
            chunks=np.column_stack(
                [
                    np.ceil(t.isl_mean / frame["max_num_batched_tokens"].to_numpy(np.float64))
                    for t in self._tenants
                ]
            ),
            gpus=per_replica,
            usd_per_hour=price * per_replica,
        )

    def _tpot(self, a: _Candidates, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(effective TPOT, its sigma, plain decode step) at load ``c``."""
        nd = c.ndim
        layout, k = a.expand("layout", nd), a.expand("k", nd)
        base, _ = self.curves.at("tpot_ms", layout, _MIX, self.curves.position(c))
        verify, sigma = self.curves.at("tpot_ms", layout, _MIX, self.curves.position(c * (1.0 + k)))
        eff = verify * (1.0 + k * a.expand("draft_cost", nd)) / a.expand("tokens_per_step", nd)
        return eff, np.hypot(sigma, a.expand("spec_sigma", nd)), base

    def _ttft(
        self,
        a: _Candidates,
        c: np.ndarray,
        position: tuple[np.ndarray, np.ndarray],
        tenant: int,
        decode_step: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        nd = c.ndim
        profile = self._tenants[tenant].profile
        value, sigma = self.curves.at("ttft_ms", a.expand("layout", nd), profile, position)
        chunks = a.chunks[:, tenant]
        chunks = chunks[:, None] if nd == 2 else chunks
        value = value * (1.0 + a.expand("draft_cost", nd)) + (chunks - 1.0) * decode_step
        return value, sigma

    def _state(self, a: _Candidates, c: np.ndarray, quantiles: tuple[float, ...]) -> dict[Any, Any]:
        """Latencies at load ``c`` (shape ``(n,)`` or ``(n, J)``)."""
        nd = c.ndim
        cap = a.expand("cap", nd)
        tpot, tpot_sigma, step = self._tpot(a, c)
        position = self.curves.position(c)
        ttft = {t.name: self._ttft(a, c, position, i, step) for i, t in enumerate(self._tenants)}
        e2e = sum(t.share * (ttft[t.name][0] + (t.osl_mean - 1.0) * tpot) for t in self._tenants)
        state: dict[Any, Any] = {
            "tpot_mean": (tpot, tpot_sigma),
            "e2e_mix": e2e,
            "rate": 1000.0 * c / e2e,
            "ttft_mean": ttft,
        }
        open_loop = not self.scenario.closed_loop
        if open_loop:
            factors = priority_wait_factors(
                [t.share for t in self._tenants], [t.priority for t in self._tenants], c / cap
            )
        for q in quantiles:
            if open_loop:
                c_q = occupancy_quantile(q, c, cap)
                tpot_q, tpot_q_sigma, step_q = self._tpot(a, c_q)
            else:
                c_q, tpot_q, tpot_q_sigma, step_q = c, tpot, tpot_sigma, step
            state[("tpot", q)] = (tpot_q, tpot_q_sigma)
            position_q = self.curves.position(c_q) if open_loop else position
            for i, t in enumerate(self._tenants):
                ttft_q, ttft_sigma = self._ttft(a, c_q, position_q, i, step_q)
                ttft_q = ttft_q * t.isl_ratio[q]
                if open_loop:
                    wait = wait_quantile(q, cap, c, e2e / 1000.0, self._variability, factors[i])
                    ttft_q = ttft_q + 1000.0 * wait
                decode = (t.osl_q[q] - 1.0) * tpot_q
                e2e_q = ttft_q + decode
                e2e_sigma = np.hypot(ttft_sigma * ttft_q, tpot_q_sigma * decode) / e2e_q
                state[(t.name, "ttft", q)] = (ttft_q, ttft_sigma)
                state[(t.name, "tpot", q)] = (tpot_q, tpot_q_sigma)
                state[(t.name, "e2e", q)] = (e2e_q, e2e_sigma)
        return state

    def _bound_value(self, state: dict[Any, Any], bound: Bound) -> tuple[np.ndarray, np.ndarray]:
        if bound.metric == "tok_s_per_user":
            tpot, sigma = state["tpot_mean"]
            return 1000.0 / tpot, sigma
        metric, p = bound.metric.split("_")
        return state[(bound.tenant, metric, _QUANTILES[p])]

    def _violations(self, state: dict[Any, Any], z: float) -> list[np.ndarray]:
        """Per load bound, ``ln(value / limit)`` at confidence ``z``."""
        out = []
        for bound in self._load_bounds:
            value, sigma = self._bound_value(state, bound)
            shifted = value * np.exp(z * sigma) if bound.upper else value * np.exp(-z * sigma)
            out.append(bound.violation(shifted))
        return out

    def _needed_quantiles(self) -> tuple[float, ...]:
        qs = {_QUANTILES[b.metric.split("_")[1]] for b in self._load_bounds if "_p" in b.metric}
        return tuple(sorted(qs))

    def _worst(self, violations: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
        return np.max(np.stack(violations), axis=0) if violations else np.full(shape, -np.inf)

    def _capacity(self, a: _Candidates) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        """Per candidate: the planned load limit, whether any load meets the SLO, the
        binding constraint, and the state at the lightest load.

        Loads are a fixed grid (0.1, then geometric from 1 to the utilisation cap) that
        does not depend on the SLO; the feasible loads are the grid prefix before the
        first violation, and the limit is the feasible load of highest throughput. A
        tighter SLO therefore never finds more capacity.
        """
        n, J = len(a.cap), self.grid_points
        top = np.maximum(self.scenario.max_batch_utilization * a.cap, 1.0)
        grid = np.empty((n, J))
        grid[:, 0] = np.minimum(_LIGHTEST_LOAD, top)
        grid[:, 1:] = np.exp(np.linspace(np.zeros(n), np.log(top), J - 1, axis=1))
        state = self._state(a, grid, self._needed_quantiles())
        violations = self._violations(state, self._z)
        worst = self._worst(violations, grid.shape)
        infeasible = worst > 0
        first_bad = np.where(infeasible.any(axis=1), infeasible.argmax(axis=1), J)
        feasible = first_bad > 0
        rows = np.arange(n)
        rates = np.where(np.arange(J)[None, :] < first_bad[:, None], state["rate"], -np.inf)
        best_j = np.where(feasible, rates.argmax(axis=1), J - 1)
        c_star = grid[rows, best_j]
        names = np.array([b.name for b in self._load_bounds] or ["none"], dtype=object)
        binding = np.full(n, "batch_limit", dtype=object)
        binding = np.where(best_j < first_bad - 1, "throughput_peak", binding)
        if self._load_bounds:
            limited = feasible & (first_bad < J) & (best_j == first_bad - 1)
            at_bad = np.stack([v[rows, np.minimum(first_bad, J - 1)] for v in violations])
            binding = np.where(limited, names[at_bad.argmax(axis=0)], binding)
            at_best = np.stack([v[:, 0] for v in violations])
            binding = np.where(feasible, binding, names[at_best.argmax(axis=0)])
        best = {key: _column(value, 0) for key, value in state.items() if key != "ttft_mean"}
        best["ttft_mean"] = {k: _column(v, 0) for k, v in state["ttft_mean"].items()}
        return c_star, feasible, binding, best

    def _operating_load(self, a: _Candidates, c_star: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Replicas and the per-replica load for the planned traffic."""
        usable = 1.0 - self.scenario.headroom
        if self.scenario.closed_loop:
            clients = float(self.scenario.concurrency or 1)
            replicas = np.maximum(1.0, np.ceil(clients / (c_star * usable) - 1e-9))
            return replicas, clients / replicas
        rate = float(self.scenario.planning_rate or 0.0)
        r_star = self._state(a, c_star, ())["rate"]
        replicas = np.maximum(1.0, np.ceil(rate / (r_star * usable) - 1e-9))
        target = rate / replicas
        lo, hi = np.zeros_like(c_star), c_star.copy()
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            below = self._state(a, mid, ())["rate"] < target
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        return replicas, hi

    def _evaluate_unique(self, a: _Candidates) -> pd.DataFrame:
        c_star, feasible, binding, best = self._capacity(a)
        binding = np.asarray(binding, dtype=object)
        replicas, c_op = self._operating_load(a, c_star)
        state = self._state(a, c_op, tuple(_QUANTILES.values()))
        rate = state["rate"]
        out: dict[Any, Any] = {}
        tenants = self._tenants
        for metric in ("ttft", "tpot", "e2e"):
            for p, q in _QUANTILES.items():
                per_tenant = [state[(t.name, metric, q)] for t in tenants]
                value = np.max(np.stack([v for v, _ in per_tenant]), axis=0)
                sigma = np.max(np.stack([s for _, s in per_tenant]), axis=0)
                column = f"{metric}_{p}_ms"
                out[column] = value
                out[f"{column}_lo"] = value * np.exp(-_Z90 * sigma)
                out[f"{column}_hi"] = value * np.exp(_Z90 * sigma)
                if len(tenants) > 1:
                    for t, (v, _) in zip(tenants, per_tenant, strict=True):
                        out[f"{t.name}:{column}"] = v
        tpot_mean = state["tpot_mean"][0]
        ttft_mean = sum(t.share * state["ttft_mean"][t.name][0] for t in tenants)
        osl = self._osl_mean
        usd_hour = a.usd_per_hour * replicas
        tokens_per_s = rate * osl
        # The fleet serves the planned rate exactly (open loop), so equal fleets cost the
        # same to the last digit; closed-loop clients generate rate x replicas.
        fleet_rate = (
            rate * replicas
            if self.scenario.closed_loop
            else float(self.scenario.planning_rate or 0.0)
        )
        usd_per_mtok = usd_hour / (fleet_rate * osl * 3600.0) * 1e6
        out.update(
            ttft_mean_ms=ttft_mean,
            tpot_mean_ms=tpot_mean,
            e2e_mean_ms=state["e2e_mix"],
            tok_s_per_user=1000.0 / tpot_mean,
            tok_s_per_replica=tokens_per_s,
            tok_s_per_gpu=tokens_per_s / a.gpus,
            replicas=replicas.astype(np.int64),
            gpus_total=(replicas * a.gpus).astype(np.int64),
            rate_per_replica=rate,
            max_rate_per_replica=self._state(a, c_star, ())["rate"],
            max_concurrency_per_replica=c_star,
            concurrency=c_op,
            batch_limit=a.cap.astype(np.int64),
            utilization=c_op / a.cap,
            usd_per_hour_replica=a.usd_per_hour,
            usd_per_hour=usd_hour,
            usd_per_mtok=usd_per_mtok,
        )
        log_p = np.zeros(len(c_op))
        metrics_for_cost = {"usd_per_mtok": usd_per_mtok}
        for bound in self._bounds:
            if bound.metric == "usd_per_mtok":
                value, sigma = metrics_for_cost["usd_per_mtok"], np.zeros_like(usd_per_mtok)
                best_value = value
            else:
                value, sigma = self._bound_value(state, bound)
                best_value = self._bound_value(best, bound)[0]
            shift = np.exp(self._z * sigma) if bound.upper else np.exp(-self._z * sigma)
            violation = bound.violation(value * shift)
            out[f"violation_{bound.name}"] = violation
            out[f"best_{bound.name}"] = best_value
            margin = -bound.violation(value)
            with np.errstate(divide="ignore", invalid="ignore"):
                prob = np.where(
                    sigma > 0, ndtr(margin / np.where(sigma > 0, sigma, 1.0)), margin >= 0
                )
            log_p += np.log(np.maximum(prob, 1e-300))
            if bound.metric == "usd_per_mtok":
                over = feasible & (violation > 0)
                binding = np.where(over, bound.name, binding)
                feasible = feasible & ~over
        out["p_slo"] = np.exp(log_p)
        out["slo_feasible"] = feasible
        out["binding"] = binding
        return pd.DataFrame(out)


def _per_value(values: np.ndarray, function: Any) -> np.ndarray:
    """``function`` of each value, computed once per distinct value."""
    distinct, inverse = np.unique(values, return_inverse=True)
    return np.array([function(str(v)) for v in distinct], dtype=np.float64)[inverse]


def _column(value: Any, j: int) -> Any:
    if isinstance(value, tuple):
        return tuple(_column(v, j) for v in value)
    return value[:, j] if isinstance(value, np.ndarray) and value.ndim == 2 else value
