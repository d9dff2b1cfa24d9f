"""Capacity plan: hand calculations, invariants, and errors that name the field."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.capacity import CapacityPlan, plan_capacity, replicas_for_rate
from optimizer.errors import InvalidInputError

BASE = {
    "peak_rps": 10.0,
    "replica_capacity_rps": 2.0,
    "gpus_per_replica": 2,
    "usd_per_hour_per_replica": 5.0,
    "scale_up_seconds": 120.0,
}


def test_hand_calculation():
    plan = plan_capacity(**BASE)
    # serving: 10 / (2 * 0.8) = 6.25 -> 7; burst 15 req/s needs 7.5 -> 8 at full load
    assert plan.serving_replicas == 7
    assert plan.warm_pool_replicas == 1
    assert plan.total_replicas == 8
    assert plan.total_gpus == 16
    assert plan.burst_rps == 15.0
    assert plan.burst_requests_during_scale_up == 15.0 * 120.0
    assert plan.usd_per_hour == 40.0
    assert plan.usd_per_month == 40.0 * 730
    assert plan.utilisation_at_peak == pytest.approx(10 / 14)
    assert plan.utilisation_at_burst == pytest.approx(15 / 16)


def test_exact_division_does_not_round_up():
    plan = plan_capacity(**{**BASE, "headroom": 0.0, "burst_factor": 1.0})
    assert plan.serving_replicas == 5 and plan.warm_pool_replicas == 0
    # 3 / (1 * 0.6) is 5.000000000000001 in floating point, still 5 replicas
    plan = plan_capacity(**{**BASE, "peak_rps": 3.0, "replica_capacity_rps": 1.0, "headroom": 0.4})
    assert plan.serving_replicas == 5


def test_headroom_already_covers_a_small_burst():
    plan = plan_capacity(**{**BASE, "headroom": 0.5, "burst_factor": 1.5})
    # serving 10 / 1 = 10 replicas = 20 req/s at full load >= 15 req/s burst
    assert plan.serving_replicas == 10 and plan.warm_pool_replicas == 0


def test_bigger_bursts_need_a_bigger_warm_pool():
    plan = plan_capacity(**{**BASE, "burst_factor": 3.0})
    # burst 30 req/s -> 15 replicas at full load; 7 serve the peak
    assert plan.warm_pool_replicas == 8


def test_instant_scale_up_needs_no_warm_pool():
    plan = plan_capacity(**{**BASE, "scale_up_seconds": 0.0, "burst_factor": 3.0})
    assert plan.warm_pool_replicas == 0


def test_minimum_replicas():
    plan = plan_capacity(**{**BASE, "peak_rps": 0.1, "min_replicas": 2})
    assert plan.serving_replicas == 2


def test_plan_is_json_serialisable_and_lists_its_assumptions():
    plan = plan_capacity(**BASE, extra_assumptions=["weights load at 2 GB/s per node"])
    assert CapacityPlan.model_validate_json(plan.model_dump_json()) == plan
    text = " ".join(plan.assumptions)
    assert "20% headroom" in text and "1.5x the peak" in text and "120 s cold start" in text
    assert "730 h" in text and plan.assumptions[-1] == "weights load at 2 GB/s per node"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("peak_rps", 0.0),
        ("peak_rps", -1.0),
        ("peak_rps", math.nan),
        ("replica_capacity_rps", 0.0),
        ("replica_capacity_rps", math.inf),
        ("gpus_per_replica", 0),
        ("usd_per_hour_per_replica", -0.5),
        ("scale_up_seconds", -1.0),
        ("headroom", 1.0),
        ("headroom", -0.1),
        ("burst_factor", 0.9),
        ("min_replicas", 0),
        ("hours_per_month", 0.0),
    ],
)
def test_bad_input_names_the_field(field, value):
    with pytest.raises(InvalidInputError) as err:
        plan_capacity(**{**BASE, field: value})
    assert err.value.field == field


@settings(max_examples=200, deadline=None)
@given(
    peak=st.floats(0.01, 1e4),
    capacity=st.floats(0.01, 1e3),
    headroom=st.floats(0.0, 0.9),
    burst=st.floats(1.0, 5.0),
)
def test_plan_invariants(peak, capacity, headroom, burst):
    plan = plan_capacity(
        peak_rps=peak,
        replica_capacity_rps=capacity,
        gpus_per_replica=4,
        usd_per_hour_per_replica=1.0,
        scale_up_seconds=60.0,
        headroom=headroom,
        burst_factor=burst,
    )
    slack = 1e-6 * peak
    # the peak fits within the headroom; one replica fewer would not
    assert plan.serving_replicas * capacity * (1 - headroom) >= peak - slack
    if plan.serving_replicas > 1:
        assert (plan.serving_replicas - 1) * capacity * (1 - headroom) < peak + slack
    # the burst fits at full load in the whole fleet; the warm pool is no larger than needed
    assert plan.total_replicas * capacity >= burst * peak - slack
    if plan.warm_pool_replicas > 0:
        assert (plan.total_replicas - 1) * capacity < burst * peak + slack
    assert plan.total_gpus == 4 * plan.total_replicas
    assert plan.usd_per_month == pytest.approx(plan.total_replicas * 730.0)


def test_replicas_for_rate_matches_the_plan():
    capacities = np.array([0.5, 1.0, 2.0, 3.3, 7.0])
    counts = replicas_for_rate(10.0, capacities, headroom=0.2)
    expected = [
        plan_capacity(**{**BASE, "replica_capacity_rps": float(c)}).serving_replicas
        for c in capacities
    ]
    assert counts.tolist() == expected
    assert counts.dtype == np.int64


def test_replicas_for_rate_marks_zero_capacity_impossible():
    assert replicas_for_rate([10.0, 10.0], [0.0, 5.0]).tolist() == [-1, 3]
    assert replicas_for_rate(0.0, 5.0).tolist() == 1
    with pytest.raises(InvalidInputError) as err:
        replicas_for_rate(10.0, [np.nan])
    assert err.value.field == "replica_capacity_rps"
    with pytest.raises(InvalidInputError) as err:
        replicas_for_rate(10.0, 1.0, headroom=1.0)
    assert err.value.field == "headroom"
