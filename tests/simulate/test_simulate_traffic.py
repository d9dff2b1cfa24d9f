"""Traffic: arrival processes, lengths, tenants, shared prefixes, sessions, traces, and
the errors bad input gets."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from optimizer.domain import (
    BurstyArrivals,
    ClosedLoop,
    ConstantRate,
    EmpiricalLength,
    FixedLength,
    LogNormalLength,
    OnOffArrivals,
    PoissonArrivals,
    TenantClass,
    TraceReplay,
    UniformLength,
    Workload,
)
from optimizer.errors import InvalidInputError
from optimizer.simulate import (
    MultiTurn,
    generate_requests,
    load_workload_file,
    read_trace,
)
from optimizer.simulate.traffic import arrival_times, sample_lengths

RNG = np.random.default_rng


@pytest.mark.parametrize(
    ("process", "cv"),
    [
        (PoissonArrivals(rate=5.0), 1.0),
        (BurstyArrivals(rate=5.0, cv=3.0), 3.0),
        (ConstantRate(rate=5.0), 0.0),
    ],
)
def test_arrival_rate_and_burstiness(process, cv):
    times = arrival_times(process, 200_000, RNG(0))
    gaps = np.diff(times)
    assert 1 / gaps.mean() == pytest.approx(5.0, rel=0.02)
    assert gaps.std() / gaps.mean() == pytest.approx(cv, abs=0.05 * max(cv, 1))


def test_on_off_arrivals_follow_their_phases():
    process = OnOffArrivals(rate_on=20.0, rate_off=2.0, on_s=5.0, off_s=15.0)
    times = arrival_times(process, 100_000, RNG(1))
    assert len(times) / times[-1] == pytest.approx(process.rate, rel=0.03)
    phase = np.mod(times, 20.0)
    on_rate = (phase < 5.0).sum() / (times[-1] / 20.0 * 5.0)
    assert on_rate == pytest.approx(20.0, rel=0.05)


def test_length_distributions():
    rng = RNG(2)
    assert (sample_lengths(FixedLength(tokens=7), 10, rng) == 7).all()
    uniform = sample_lengths(UniformLength(low=3, high=5), 10_000, rng)
    assert set(np.unique(uniform)) == {3, 4, 5}
    lognormal = sample_lengths(LogNormalLength(median=500, sigma=0.5, max_tokens=900), 50_000, rng)
    assert np.median(lognormal) == pytest.approx(500, rel=0.03)
    assert lognormal.max() <= 900 and lognormal.min() >= 1
    empirical = sample_lengths(EmpiricalLength(values=(10, 20), weights=(3, 1)), 40_000, rng)
    assert (empirical == 10).mean() == pytest.approx(0.75, abs=0.01)


def test_tenants_shares_priorities_and_shared_prefix():
    tenants = (
        TenantClass(
            name="chat",
            share=0.7,
            isl=FixedLength(tokens=100),
            osl=FixedLength(tokens=10),
            priority=2,
            shared_prefix_tokens=500,
            shared_prefix_fraction=0.5,
        ),
        TenantClass(name="batch", share=0.3, isl=FixedLength(tokens=50), osl=FixedLength(tokens=5)),
    )
    requests = generate_requests(
        Workload(arrivals=PoissonArrivals(rate=1.0), tenants=tenants), 20_000, RNG(3)
    )
    chat = requests.tenant == 0
    assert chat.mean() == pytest.approx(0.7, abs=0.01)
    assert (requests.priority[chat] == 2).all() and (requests.priority[~chat] == 0).all()
    carried = requests.lookup_ns >= 0
    assert carried[chat].mean() == pytest.approx(0.5, abs=0.02) and not carried[~chat].any()
    assert set(requests.isl[chat]) == {100, 600}  # the prefix is prepended
    assert (requests.lookup_tokens[carried] == 500).all()
    assert (np.diff(requests.arrival) >= 0).all()


def test_closed_loop_requests_have_no_times():
    requests = generate_requests(Workload.simple(10, 5, concurrency=4), 20, RNG(0))
    assert requests.clients == 4 and np.isnan(requests.arrival).all()


def test_sessions_extend_their_own_context():
    tenant = TenantClass(
        name="chat", share=1.0, isl=FixedLength(tokens=100), osl=FixedLength(tokens=20)
    )
    workload = Workload(arrivals=PoissonArrivals(rate=2.0), tenants=(tenant,))
    requests = generate_requests(
        workload, 600, RNG(4), sessions={"chat": MultiTurn(turns=3, think_time_s=5.0)}
    )
    assert len(requests) == 600
    first = requests.subset(requests.session == requests.session[0])
    assert list(first.isl) == [100, 220, 340][: len(first)]
    assert list(first.lookup_tokens[1:]) == [120, 240][: len(first) - 1]
    assert list(first.publish_final) == [True, True, False][: len(first)]
    assert (np.diff(first.arrival) > 0).all()


def test_sessions_need_a_known_tenant_and_open_loop():
    workload = Workload.simple(10, 5, rate=1.0)
    with pytest.raises(InvalidInputError, match="sessions"):
        generate_requests(
            workload, 5, RNG(0), sessions={"other": MultiTurn(turns=2, think_time_s=1)}
        )
    closed = Workload.simple(10, 5, concurrency=2)
    with pytest.raises(InvalidInputError, match="open-loop"):
        generate_requests(
            closed, 5, RNG(0), sessions={"default": MultiTurn(turns=2, think_time_s=1)}
        )


def test_unknown_length_distribution_is_named():
    with pytest.raises(InvalidInputError, match=r"tenants\.t\.isl.*unknown length distribution"):
        sample_lengths(object(), 3, RNG(0), "tenants.t.isl")  # type: ignore[arg-type]


def test_closed_loop_has_no_generated_arrival_times():
    with pytest.raises(InvalidInputError, match="arrivals"):
        arrival_times(ClosedLoop(concurrency=2), 3, RNG(0))


# --- traces -------------------------------------------------------------------------------
def test_read_csv_and_jsonl_traces(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("timestamp,input_tokens,output_tokens,tenant\n5.0,100,10,a\n3.0,50,5,b\n")
    trace = read_trace(csv)
    assert trace.timestamp.tolist() == [0.0, 2.0]  # sorted, relative
    assert trace.input_tokens.tolist() == [50, 100] and trace.tenant == ("b", "a")
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text(
        '{"arrival_time": 0.5, "isl": 7, "osl": 3}\n\n{"arrival_time": 1.5, "isl": 9, "osl": 4}\n'
    )
    trace = read_trace(jsonl)
    assert trace.output_tokens.tolist() == [3, 4] and trace.tenant is None


def test_trace_replay_generates_its_requests(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("timestamp,input_tokens,output_tokens\n0,100,10\n1,200,20\n3,300,30\n")
    tenant = TenantClass(name="a", share=1.0, isl=FixedLength(tokens=1), osl=FixedLength(tokens=1))
    workload = Workload(arrivals=TraceReplay(path=path, time_scale=2.0), tenants=(tenant,))
    requests = generate_requests(workload, 10, RNG(0), trace=read_trace(path))
    assert requests.arrival.tolist() == [0.0, 0.5, 1.5]
    assert requests.isl.tolist() == [100, 200, 300] and requests.osl.tolist() == [10, 20, 30]


@pytest.mark.parametrize(
    ("content", "suffix", "match"),
    [
        ("timestamp,input_tokens,output_tokens\n", ".csv", "no requests"),
        ("", ".jsonl", "no requests"),
        ("timestamp,input_tokens\n0,10\n", ".csv", "column 'output_tokens'.*missing"),
        ("ts,osl,isl\n0,1,x\n", ".csv", "numbers"),
        ("timestamp,input_tokens,output_tokens\n-1,10,10\n", ".csv", "timestamp: must be >= 0"),
        ("timestamp,input_tokens,output_tokens\n0,0,10\n", ".csv", "input_tokens"),
        ("timestamp,input_tokens,output_tokens\n0,,10\n", ".csv", "row 1"),
        ('{"timestamp": 0}\nnot json\n', ".jsonl", "trace line 2"),
    ],
)
def test_bad_traces_name_the_problem(tmp_path, content, suffix, match):
    path = tmp_path / f"bad{suffix}"
    path.write_text(content)
    with pytest.raises(InvalidInputError, match=match):
        read_trace(path)


def test_missing_trace_file(tmp_path):
    with pytest.raises(InvalidInputError, match=r"arrivals\.path"):
        read_trace(tmp_path / "nope.csv")


# --- workload files -----------------------------------------------------------------------
def _write(tmp_path, text: str):
    path = tmp_path / "workload.yaml"
    path.write_text(text)
    return path


def test_workload_file_with_sessions_and_relative_trace(tmp_path):
    (tmp_path / "trace.csv").write_text("timestamp,input_tokens,output_tokens\n0,10,5\n")
    path = _write(
        tmp_path,
        "arrivals: {kind: trace, path: trace.csv}\n"
        "tenants:\n  - {name: a, share: 1.0, isl: {kind: fixed, tokens: 1},"
        " osl: {kind: fixed, tokens: 1}}\n",
    )
    loaded = load_workload_file(path)
    assert loaded.workload.arrivals.path == tmp_path / "trace.csv"
    path = _write(
        tmp_path,
        "arrivals: {kind: poisson, rate: 2}\n"
        "tenants:\n  - {name: a, share: 1.0, isl: {kind: fixed, tokens: 1},"
        " osl: {kind: fixed, tokens: 1}}\nsessions: {a: {turns: 3, think_time_s: 4}}\n",
    )
    assert load_workload_file(path).sessions["a"].turns == 3


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            "arrivals: {kind: poisson, rate: -1}\ntenants:\n  - {name: a, share: 1.0, "
            "isl: {kind: fixed, tokens: 1}, osl: {kind: fixed, tokens: 1}}\n",
            r"arrivals\.poisson\.rate.*greater than 0",
        ),
        (
            "arrivals: {kind: poisson, rate: 1}\ntenants:\n  - {name: a, share: 1.0, "
            "isl: {kind: zipf, tokens: 1}, osl: {kind: fixed, tokens: 1}}\n",
            r"tenants\.0\.isl.*'zipf'.*'fixed', 'uniform', 'lognormal', 'empirical'",
        ),
        (
            "arrivals: {kind: trace, path: missing.csv}\ntenants:\n  - {name: a, share: 1.0, "
            "isl: {kind: fixed, tokens: 1}, osl: {kind: fixed, tokens: 1}}\n",
            r"arrivals\.path.*no such trace file",
        ),
        ("- not a mapping\n", "mapping"),
        ("arrivals: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_workload_files_name_the_field(tmp_path, text, match):
    with pytest.raises(InvalidInputError, match=match):
        load_workload_file(_write(tmp_path, text))


def test_domain_rejects_negative_rates_directly():
    with pytest.raises(ValidationError, match="rate"):
        PoissonArrivals(rate=-2.0)
