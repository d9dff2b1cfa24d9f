"""Cost arithmetic against hand calculations, and clear errors for unknown prices."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optimizer.capacity import (
    HOURS_PER_MONTH,
    monthly_usd,
    replica_usd_per_hour,
    usd_per_million_tokens,
    usd_per_million_tokens_array,
)
from optimizer.catalog.gpus import get_gpu
from optimizer.errors import InvalidInputError
from optimizer.settings import Settings

CATALOG_ONLY = Settings(prices_file=None, gpu_prices={})


def test_replica_price_is_gpu_price_times_gpus():
    h100 = get_gpu("h100_sxm", CATALOG_ONLY)
    assert replica_usd_per_hour(h100, 1) == pytest.approx(6.88)
    assert replica_usd_per_hour(h100, 8) == pytest.approx(55.04)


def test_user_price_overrides_are_used():
    gpu = get_gpu("h100_sxm", Settings(prices_file=None, gpu_prices={"h100_sxm": 2.1}))
    assert replica_usd_per_hour(gpu, 4) == pytest.approx(8.4)


def test_unknown_price_says_which_gpu_and_how_to_set_one():
    gb300 = get_gpu("gb300", CATALOG_ONLY)
    assert gb300.price_usd_per_hour is None
    with pytest.raises(InvalidInputError) as err:
        replica_usd_per_hour(gb300, 4)
    message = str(err.value)
    assert "gb300" in err.value.field
    assert "EPOPT_GPU_PRICES" in message and "EPOPT_PRICES_FILE" in message
    assert '{"gb300": <usd per GPU-hour>}' in message


@pytest.mark.parametrize("gpus", [0, -2, True])
def test_gpu_count_must_be_positive(gpus):
    with pytest.raises(InvalidInputError) as err:
        replica_usd_per_hour(get_gpu("l4", CATALOG_ONLY), gpus)
    assert err.value.field == "gpus_per_replica"


def test_usd_per_million_tokens_by_hand():
    # $36/h over 1,000 tok/s = 3.6M tokens an hour -> $10 per million
    assert usd_per_million_tokens(36.0, 1000.0) == pytest.approx(10.0)
    assert usd_per_million_tokens(6.88, 2500.0) == pytest.approx(6.88 / 9.0)
    assert usd_per_million_tokens(0.0, 10.0) == 0.0


@pytest.mark.parametrize(
    ("price", "rate", "field"),
    [
        (-1.0, 100.0, "usd_per_hour"),
        (math.nan, 100.0, "usd_per_hour"),
        (1.0, 0.0, "output_tok_s"),
        (1.0, -5.0, "output_tok_s"),
        (1.0, math.inf, "output_tok_s"),
    ],
)
def test_usd_per_million_tokens_rejects_bad_input(price, rate, field):
    with pytest.raises(InvalidInputError) as err:
        usd_per_million_tokens(price, rate)
    assert err.value.field == field


def test_array_version_matches_scalar_and_marks_zero_rate_infinite():
    prices = np.array([36.0, 6.88, 10.0, np.nan, 5.0])
    rates = np.array([1000.0, 2500.0, 0.0, 100.0, np.nan])
    cost = usd_per_million_tokens_array(prices, rates)
    assert cost[0] == pytest.approx(10.0)
    assert cost[1] == pytest.approx(usd_per_million_tokens(6.88, 2500.0))
    assert cost[2] == np.inf
    assert np.isnan(cost[3]) and np.isnan(cost[4])


def test_array_version_broadcasts_over_a_sweep():
    rates = np.linspace(100, 10_000, 5000)
    cost = usd_per_million_tokens_array(12.0, rates)
    assert cost.shape == (5000,)
    assert np.all(np.diff(cost) < 0)  # more throughput, cheaper tokens
    with pytest.raises(InvalidInputError) as err:
        usd_per_million_tokens_array(12.0, [-1.0, 5.0])
    assert err.value.field == "output_tok_s"


def test_monthly_cost_uses_730_hours():
    assert HOURS_PER_MONTH == 730.0
    assert monthly_usd(10.0) == pytest.approx(7300.0)
    assert monthly_usd(10.0, hours_per_month=24 * 30) == pytest.approx(7200.0)
    with pytest.raises(InvalidInputError) as err:
        monthly_usd(10.0, hours_per_month=0)
    assert err.value.field == "hours_per_month"
