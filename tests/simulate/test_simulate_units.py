"""Units: KV-cache arithmetic and prefix chains, speculative acceptance, step-time tables."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.domain import EndpointConfig
from optimizer.errors import InvalidInputError
from optimizer.simulate import (
    PUBLISHED_ACCEPTANCE,
    AcceptanceModel,
    PrefixCache,
    SpecDecoding,
    StepTimeModel,
    alpha_from_acceptance_length,
    block_waste,
    blocks_for,
    expected_tokens_per_step,
)
from optimizer.simulate.speculative import StepSampler
from optimizer.simulate.step_time import build_step_tables


# --- KV cache -------------------------------------------------------------------------------
def test_block_arithmetic():
    assert [blocks_for(n, 16) for n in (1, 16, 17, 32)] == [1, 1, 2, 2]
    assert [block_waste(n, 16) for n in (1, 16, 17)] == [15, 0, 15]


def test_prefix_chains_hit_whole_blocks_and_leave_one_token():
    cache = PrefixCache(16)
    cache.acquire(7)
    assert cache.extend(7, 10) == 10 and cache.pinned == 10
    assert cache.lookup(7, shared_tokens=100, prompt_tokens=500) == 6  # floor(100 / 16)
    assert cache.lookup(7, shared_tokens=500, prompt_tokens=160) == 9  # keeps one to compute
    cache.release(7)
    assert (cache.pinned, cache.cached) == (0, 10)
    assert PrefixCache(16, enabled=False).lookup(7, 100, 500) == 0


def test_lru_eviction_from_the_tail_and_pinning():
    cache = PrefixCache(16)
    for ns in (1, 2):
        cache.acquire(ns)
        cache.extend(ns, 5)
        cache.release(ns)
    cache.acquire(1)  # pinned, and now the most recently used
    cache.release(1)
    cache.acquire(2)
    assert cache.evict(3) == 3  # chain 1 is the only evictable one
    assert cache.chain_blocks(1) == 2 and cache.chain_blocks(2) == 5
    assert cache.evict(10) == 2 and cache.chain_blocks(1) == 0
    assert cache.evicted == 5 and cache.cached == 0 and cache.pinned == 5


# --- speculative decoding -------------------------------------------------------------------
def test_expected_tokens_formula_and_its_inverse():
    assert expected_tokens_per_step(0.0, 4) == 1.0
    assert expected_tokens_per_step(1.0, 4) == 5.0
    assert expected_tokens_per_step(0.5, 2) == pytest.approx(1.75)
    assert alpha_from_acceptance_length(1.75, 2) == pytest.approx(0.5)
    with pytest.raises(InvalidInputError, match="acceptance_length"):
        alpha_from_acceptance_length(4.5, 3)


def test_published_defaults_cite_their_source_and_reproduce_their_figure():
    for method, item in PUBLISHED_ACCEPTANCE.items():
        assert item.source and "#" in item.source
        assert 0 < item.alpha < 1
        assert expected_tokens_per_step(item.alpha, item.draft_len) == pytest.approx(
            item.acceptance_length
        )
        assert SpecDecoding.fixed(method, 3).acceptance.per_position[0] == pytest.approx(item.alpha)


def test_per_position_acceptance():
    model = AcceptanceModel((0.58, 0.34, 0.22, 0.15, 0.11))  # vllm#24243's curve
    assert model.expected_tokens(5) == pytest.approx(1 + 0.58 + 0.34 + 0.22 + 0.15 + 0.11)
    assert model.tokens_pmf(3).sum() == pytest.approx(1.0)
    assert model.rates(7)[5] == pytest.approx(0.11 * 0.11 / 0.15)
    with pytest.raises(InvalidInputError, match="must not increase"):
        AcceptanceModel((0.3, 0.5))
    with pytest.raises(InvalidInputError, match="draft_len_schedule"):
        SpecDecoding(
            method="eagle", schedule=((64, 3), (8, 1)), acceptance=AcceptanceModel.iid(0.5)
        )


def test_step_sampler_emits_at_least_the_tokens_asked():
    sampler = StepSampler(AcceptanceModel.iid(0.7), np.random.default_rng(0), pool=1000)
    total_steps = 0
    for tokens in (1, 5, 300, 5000):
        steps, produced = sampler.steps(3, tokens)
        total_steps += steps
        assert produced >= tokens and steps * 4 >= tokens and steps <= tokens
    assert sampler.drawn_steps == total_steps
    assert sampler.steps(0, 9) == (9, 9)


# --- step times -----------------------------------------------------------------------------
def test_step_times_grow_with_batch_context_and_prompt(prior_step):
    assert prior_step.decode(1, 1000)[0] < prior_step.decode(64, 64_000)[0]
    t, slope = prior_step.decode(32, 32 * 1000)
    assert slope > 0 and prior_step.decode(32, 32 * 4000)[0] > t
    small = prior_step.mixed(8, 8000, [(256, 0)])
    assert small < prior_step.mixed(8, 8000, [(4096, 0)])
    # a chunk after a cached prefix costs less than the whole prompt, more than alone
    assert prior_step.mixed(0, 0, [(512, 0)]) < prior_step.mixed(0, 0, [(512, 4096)])
    assert prior_step.mixed(0, 0, [(512, 4096)]) < prior_step.mixed(0, 0, [(4608, 0)])


def test_scales_by_batch_interpolate_in_log_batch(prior_step):
    scaled = prior_step.with_scales((1.0, 2.0), (1.0, 3.0), (1, 100), frontend_s=0.05)
    assert scaled.scales(1) == (1.0, 1.0) and scaled.scales(1000) == (2.0, 3.0)
    assert scaled.scales(10)[0] == pytest.approx(1.5)
    assert scaled.decode(100, 100_000)[0] == pytest.approx(2 * prior_step.decode(100, 100_000)[0])
    assert scaled.frontend_s == 0.05
    with pytest.raises(ValueError, match="one value per scale_batch"):
        prior_step.with_scales((1.0,), (1.0, 2.0), (1, 10))


def test_pipeline_stages_split_the_batch_into_micro_batches(llama, h100):
    one = StepTimeModel.from_endpoint(
        llama, h100, EndpointConfig(engine="vllm"), max_batch=64, max_tokens=8192
    )
    two = StepTimeModel.from_endpoint(
        llama, h100, EndpointConfig(engine="vllm", pp=2), max_batch=64, max_tokens=8192
    )
    # one sequence crosses both stages: about one full model plus transfer and overhead
    assert two.decode(1, 1000)[0] > one.decode(1, 1000)[0]
    assert two.pp_bubble(1) == pytest.approx(0.5) and two.pp_bubble(64) == pytest.approx(0.0)
    assert one.pp_bubble(1) == 0.0


def test_tables_are_built_once_per_configuration(llama, h100):
    endpoint = EndpointConfig(engine="vllm", tp=2)
    first = build_step_tables(llama, h100, endpoint, max_batch=32, max_tokens=2048)
    again = build_step_tables(llama, h100, endpoint, max_batch=32, max_tokens=2048)
    assert first is again
    assert np.all(np.diff(first.linear_ms) >= -1e-9)
