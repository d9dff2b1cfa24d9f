"""Planned kernel lookups: timed together, they answer as each call alone would."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.catalog import get_gpu, load_model_spec
from optimizer.perf.closed_loop import closed_loop_plan, closed_loop_prior
from optimizer.perf.queries import OperatorQuery, Plan, distinct_rows, evaluate, time_queries
from optimizer.perf.step import kernel_library


@pytest.fixture(scope="module")
def library():
    return kernel_library(get_gpu("h100_sxm"), "vllm")


def test_batched_queries_equal_separate_calls(library):
    queries = [
        OperatorQuery("gemm", (np.array([[1.0, 64.0], [512.0, 4096.0]]), 4096.0, 4096.0, "bf16")),
        OperatorQuery("gemm", (np.array([8.0, 8192.0]), 1024.0, 2048.0, "fp8")),
        OperatorQuery("all_reduce", (np.array([1e4, 1e6, 1e8]), np.array([1.0, 2.0, 8.0]))),
        OperatorQuery("gemm", (3.0, 128.0, 256.0, "bf16")),  # a scalar query
    ]
    got = time_queries(library, queries)
    for query, answer in zip(queries, got, strict=True):
        alone = getattr(library, query.operator)(*query.args)
        assert answer.shape == query.shape
        np.testing.assert_array_equal(answer, alone)


def test_points_not_needed_are_zero_and_the_rest_unchanged(library):
    batch = np.array([0.0, 1.0, 4.0])
    args = (np.maximum(batch, 1.0), 2048.0, 32.0, 8.0, 128.0, "bf16", 0)
    (got,) = time_queries(library, [OperatorQuery("context_attention", args, batch > 0)])
    alone = library.context_attention(*args)
    np.testing.assert_array_equal(got, np.where(batch > 0, alone, 0.0))


def test_repeated_attention_points_are_answered_alike(library):
    batch = np.array([[1.0, 8.0, 1.0], [8.0, 8.0, 64.0]])
    kv_len = np.array([[512.0, 4096.0, 512.0], [4096.0, 4096.0, 512.0]])
    args = (batch, kv_len, 32.0, np.array([8.0, 8.0, 4.0]), 128.0, "bf16", 0)
    (got,) = time_queries(library, [OperatorQuery("generation_attention", args)])
    np.testing.assert_array_equal(got, library.generation_attention(*args))


def test_queries_of_one_operator_must_agree_on_arity(library):
    queries = [OperatorQuery("gemm", (1.0, 2.0, 3.0, "bf16")), OperatorQuery("gemm", (1.0, 2.0))]
    with pytest.raises(ValueError, match="numbers of arguments"):
        time_queries(library, queries)


def test_plans_evaluated_together_equal_each_alone(library):
    gpu = get_gpu("h100_sxm")
    knobs = {"tp": [1, 2, 4], "dp": 1, "ep": 1, "concurrency": [1, 64, 512]}
    cases = [
        (load_model_spec("meta-llama/Llama-3.1-8B-Instruct"), "bf16", 1024, 128),
        (load_model_spec("Qwen/Qwen3-30B-A3B"), "fp8", 4096, 1024),
    ]
    plans = [
        closed_loop_plan(model, gpu, quantization=q, kv_dtype="bf16", isl=isl, osl=osl, **knobs)
        for model, q, isl, osl in cases
    ]
    together = evaluate(library, plans)
    for (model, q, isl, osl), prior in zip(cases, together, strict=True):
        alone = closed_loop_prior(
            model, gpu, library, quantization=q, kv_dtype="bf16", isl=isl, osl=osl, **knobs
        )
        for name, column in alone.columns().items():
            np.testing.assert_array_equal(prior.columns()[name], column, err_msg=name)


def test_evaluate_hands_each_plan_its_own_answers(library):
    def plan(m: float) -> Plan[float]:
        query = OperatorQuery("gemm", (m, 4096.0, 4096.0, "bf16"))
        return Plan((query,), lambda answers: float(answers[0]))

    small, large = evaluate(library, [plan(1.0), plan(8192.0)])
    assert small < large


def test_distinct_rows_match_numpy_unique():
    rng = np.random.default_rng(0)
    columns = [rng.integers(0, 3, 500), rng.integers(0, 4, 500).astype(float) * 0.5]
    rows, inverse = distinct_rows(columns)
    stacked = np.stack(columns, axis=1)
    expected = np.unique(stacked, axis=0)
    assert len(rows) == len(expected)
    np.testing.assert_array_equal(stacked[rows][inverse], stacked)  # each row maps to itself
    assert inverse[rows].tolist() == list(range(len(rows)))


def test_distinct_rows_of_many_wide_columns_and_nan():
    # six columns of ~3,000 values each: 7e20 combinations, renumbered on the way
    rng = np.random.default_rng(1)
    columns = [rng.integers(0, 10**6, 3000) * 1.0 for _ in range(6)]
    columns[0][:2] = np.nan  # NaN is a value like any other
    columns = [np.concatenate([c, c[:100]]) for c in columns]  # 100 repeated rows
    rows, inverse = distinct_rows(columns)
    stacked = np.stack(columns, axis=1)
    assert len(rows) == len(np.unique(np.nan_to_num(stacked, nan=-1.0), axis=0)) == 3000
    np.testing.assert_array_equal(stacked[rows][inverse], stacked)
