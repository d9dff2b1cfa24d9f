"""Pareto masks against a brute-force check, hypervolume, objectives and SLO bounds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from search_testing import brute_force_nondominated

from optimizer.catalog import get_gpu, load_model_spec
from optimizer.domain import SLO, FixedLength, PoissonArrivals, TenantClass, Workload
from optimizer.errors import InvalidInputError
from optimizer.search.objectives import default_objectives, parse_objectives, slo_bounds
from optimizer.search.pareto import Normalizer, hypervolume, pareto_front, pareto_mask
from optimizer.search.scenario import Scenario


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 8), st.integers(0, 8), st.integers(0, 8)), min_size=1, max_size=40
    )
)
def test_pareto_mask_matches_brute_force(points):
    values = np.array(points, dtype=float)
    mask = pareto_mask(values)
    reference = np.array(brute_force_nondominated(values))
    # moocore keeps one of identical points; compare on distinct points.
    _, first = np.unique(values, axis=0, return_index=True)
    distinct = np.zeros(len(values), dtype=bool)
    distinct[first] = True
    assert set(map(tuple, values[mask])) == set(map(tuple, values[reference]))
    assert mask.sum() == (reference & distinct).sum()


def test_ties_keep_the_first_row_and_noise_below_six_digits_ties():
    values = np.array([[1.0, 2.0], [1.0 + 1e-12, 2.0], [2.0, 1.0]])
    assert pareto_mask(values).tolist() == [True, False, True]


def test_pareto_front_respects_directions_and_feasibility():
    frame = pd.DataFrame(
        {
            "usd_per_mtok": [1.0, 2.0, 3.0, 0.5],
            "tok_s_per_user": [10.0, 30.0, 20.0, 99.0],
            "slo_feasible": [True, True, True, False],
        }
    )
    front = pareto_front(frame, parse_objectives("usd_per_mtok,tok_s_per_user"))
    assert list(front.index) == [0, 1]


def test_hypervolume_of_known_sets():
    normalizer = Normalizer(ideal=np.zeros(2), nadir=np.ones(2), log=np.array([False, False]))
    assert hypervolume(np.array([[0.0, 0.0]]), normalizer) == pytest.approx(1.21)
    assert hypervolume(np.array([[0.5, 0.5]]), normalizer) == pytest.approx(0.36)
    two = hypervolume(np.array([[0.0, 1.0], [1.0, 0.0]]), normalizer)
    assert two == pytest.approx(1.1 * 0.1 + 0.1 * 1.1 - 0.1 * 0.1)
    assert hypervolume(np.array([[2.0, 2.0]]), normalizer) == 0.0
    fitted = Normalizer.fit(np.array([[1.0, 10.0], [100.0, 1000.0]]))
    assert fitted(np.array([[10.0, 100.0]]))[0] == pytest.approx([0.5, 0.5])


def test_parse_objectives_errors_name_the_allowed_values():
    assert parse_objectives("ttft_p95_ms")[0].column == "ttft_p95_ms"
    with pytest.raises(InvalidInputError, match="allowed: usd_per_mtok"):
        parse_objectives("latency")
    with pytest.raises(InvalidInputError, match="twice"):
        parse_objectives("gpus,gpus")


def _scenario(workload, slo):
    return Scenario(
        load_model_spec("meta-llama/Llama-3.1-8B"), (get_gpu("h100_sxm"),), workload, slo
    )


def test_slo_bounds_merge_tenant_slos_and_default_objectives_follow_them():
    tenants = (
        TenantClass(
            name="chat",
            share=0.7,
            isl=FixedLength(tokens=500),
            osl=FixedLength(tokens=200),
            slo=SLO.parse("ttft_p95<=500ms"),
        ),
        TenantClass(
            name="batch", share=0.3, isl=FixedLength(tokens=4000), osl=FixedLength(tokens=500)
        ),
    )
    workload = Workload(arrivals=PoissonArrivals(rate=3.0), tenants=tenants)
    scenario = _scenario(workload, SLO.parse("ttft_p95<=3s,tpot_p95<=60ms"))
    bounds = {b.name: b.limit for b in slo_bounds(scenario)}
    assert bounds == {
        "chat:ttft_p95": 500.0,
        "chat:tpot_p95": 60.0,
        "batch:ttft_p95": 3000.0,
        "batch:tpot_p95": 60.0,
    }
    assert [o.name for o in default_objectives(scenario)] == [
        "usd_per_mtok",
        "ttft_p95",
        "tpot_p95",
    ]
    floor = slo_bounds(
        _scenario(Workload.simple(10, 10, rate=1.0), SLO.parse("tok_s_per_user>=20"))
    )
    assert floor[0].violation(np.array([40.0])) < 0 < floor[0].violation(np.array([10.0]))


def test_scenario_refuses_a_gpu_without_a_price_and_bad_settings():
    model = load_model_spec("meta-llama/Llama-3.1-8B")
    with pytest.raises(InvalidInputError, match="gb300"):
        Scenario(model, (get_gpu("gb300"),), Workload.simple(10, 10, rate=1.0))
    with pytest.raises(InvalidInputError, match="confidence"):
        Scenario(model, (get_gpu("h100_sxm"),), Workload.simple(10, 10, rate=1.0), confidence=1.0)
