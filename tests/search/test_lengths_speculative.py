"""Length quantiles and dispersion; speculative-decoding expected tokens."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import lognorm

from optimizer.catalog import load_model_spec
from optimizer.domain import EmpiricalLength, FixedLength, LogNormalLength, UniformLength
from optimizer.errors import InvalidInputError
from optimizer.search.lengths import (
    length_cv2,
    length_quantile,
    sample_lengths,
    split_lengths,
)
from optimizer.search.speculative import SpecDecodingAssumptions, expected_tokens_per_step


def test_quantiles_of_each_distribution():
    assert length_quantile(FixedLength(tokens=300), 0.99) == 300
    assert length_quantile(UniformLength(low=100, high=300), 0.5) == 200
    dist = LogNormalLength(median=1000, sigma=0.7)
    assert length_quantile(dist, 0.95) == pytest.approx(lognorm(0.7, scale=1000).ppf(0.95))
    assert length_quantile(LogNormalLength(median=1000, sigma=0.7, max_tokens=1500), 0.99) == 1500
    empirical = EmpiricalLength(values=(10, 20, 30, 40), weights=(1, 1, 1, 1))
    assert length_quantile(empirical, 0.5) == 20
    assert length_quantile(empirical, 0.9) == 40
    with pytest.raises(InvalidInputError, match="quantile"):
        length_quantile(empirical, 1.0)


def test_mixture_cv2_matches_a_large_sample():
    dists = [LogNormalLength(median=200, sigma=0.5), UniformLength(low=100, high=900)]
    shares = [0.3, 0.7]
    rng = np.random.default_rng(1)
    pick = rng.random(200_000) < shares[0]
    sample = np.where(
        pick, sample_lengths(dists[0], 200_000, 2), sample_lengths(dists[1], 200_000, 3)
    )
    assert length_cv2(dists, shares) == pytest.approx(sample.var() / sample.mean() ** 2, rel=0.03)
    assert length_cv2([FixedLength(tokens=50)], [1.0]) == 0.0


def test_split_lengths_partitions_at_the_threshold():
    short, long = split_lengths(LogNormalLength(median=1000, sigma=1.0), 1000)
    assert short[0] + long[0] == pytest.approx(1.0)
    assert short[0] == pytest.approx(0.5, abs=0.03)
    assert max(short[1].values) <= 1000 < min(long[1].values)
    assert split_lengths(FixedLength(tokens=10), 100) is None


def test_expected_tokens_per_step_matches_a_simulation():
    rng = np.random.default_rng(0)
    for alpha, k in ((0.6, 3), (0.8, 5), (0.3, 1)):
        accepted = rng.random((100_000, k)) < alpha
        # Tokens per step: accepted drafts up to the first rejection, plus one.
        run = np.cumprod(accepted, axis=1).sum(axis=1) + 1
        assert expected_tokens_per_step(alpha, k) == pytest.approx(run.mean(), rel=0.01)


def test_default_acceptance_reproduces_published_acceptance_lengths():
    spec = SpecDecodingAssumptions()
    # EAGLE AL 1.89 at k=2 (vllm#16035); EAGLE-3 AL 3.53 at k=7 (vllm#26191).
    assert expected_tokens_per_step(spec.alpha("eagle"), 2) == pytest.approx(1.89, rel=0.05)
    assert expected_tokens_per_step(spec.alpha("eagle3"), 7) == pytest.approx(3.53, rel=0.05)


def test_draft_cost_and_validation():
    spec = SpecDecodingAssumptions()
    model = load_model_spec("meta-llama/Llama-3.1-8B")
    assert spec.draft_cost("ngram", model) == 0.0
    assert spec.draft_cost("eagle3", model) == pytest.approx(2 / model.num_layers)
    assert spec.draft_cost("draft_model", model) == spec.draft_model_cost
    with pytest.raises(InvalidInputError, match=r"spec_acceptance\.medusa"):
        SpecDecodingAssumptions(acceptance={"medusa": 0.5})
    with pytest.raises(InvalidInputError, match=r"spec_acceptance\.eagle"):
        SpecDecodingAssumptions(acceptance={"eagle": 1.5})
