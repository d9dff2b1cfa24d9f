"""Search-space files: the bundled ones, and broken ones that must name file, knob, problem."""

from __future__ import annotations

import copy

import pytest
import yaml

from optimizer.domain.enums import Engine
from optimizer.errors import InvalidInputError, SearchSpaceError
from optimizer.space import KNOBS, bundled_space_path, load_search_space
from optimizer.space.memory import MemoryFractionMode


@pytest.fixture(scope="module")
def vllm_data():
    return yaml.safe_load(bundled_space_path("vllm").read_text())


@pytest.mark.parametrize("engine", list(Engine))
def test_bundled_spaces_load(engine):
    space = load_search_space(engine)
    assert space.engine is engine
    assert space.size > 0
    assert "fits_in_memory" in space.constraints
    assert space.constraints[-1] == "fits_in_memory"  # the costliest check comes last
    for knob in KNOBS:
        assert space.values(knob)


def test_engine_vocabulary():
    vllm, sglang, trtllm = (load_search_space(e) for e in ("vllm", "sglang", "trtllm"))
    assert vllm.knobs.max_batch_size.flag == "max_num_seqs"
    assert vllm.knobs.kv_block_size.flag == "block_size"
    assert vllm.knobs.max_num_batched_tokens.flag == "max_num_batched_tokens"
    assert vllm.knobs.spec_draft_len.flag.startswith("speculative_config.")
    assert sglang.knobs.max_batch_size.flag == "max_running_requests"
    assert sglang.knobs.kv_block_size.flag == "page_size"
    assert sglang.knobs.max_num_batched_tokens.flag == "chunked_prefill_size"
    assert trtllm.knobs.max_batch_size.flag == "max_batch_size"
    assert trtllm.knobs.kv_block_size.flag.endswith("tokens_per_block")
    assert trtllm.knobs.max_num_batched_tokens.flag == "max_num_tokens"


def test_engine_memory_caps_and_block_sizes():
    vllm, sglang, trtllm = (load_search_space(e) for e in ("vllm", "sglang", "trtllm"))
    assert (vllm.memory.flag, vllm.memory.mode, vllm.memory.default) == (
        "gpu_memory_utilization",
        MemoryFractionMode.TOTAL,
        0.9,
    )
    assert sglang.memory.mode is MemoryFractionMode.STATIC
    assert sglang.memory.fraction([1, 2, 4, 8, 16]).tolist() == [0.88, 0.87, 0.85, 0.81, 0.79]
    assert trtllm.memory.mode is MemoryFractionMode.FREE and trtllm.memory.default == 0.9
    assert vllm.values("kv_block_size") == (16, 32, 64, 128)
    assert sglang.knobs.kv_block_size.default == 1
    assert all(b & (b - 1) == 0 for b in trtllm.supports.kv_block_size)
    assert vllm.rule("no_pp_with_spec_decoding") is not None


def test_size_pairs_spec_methods_with_draft_lengths():
    space = load_search_space("vllm")
    pairs = space.spec_pairs()
    assert pairs[0] == ("none", 0)
    assert len(pairs) == 1 + (len(space.values("spec_method")) - 1) * len(
        space.values("spec_draft_len")
    )


def test_restrict_pins_knobs_and_validates():
    space = load_search_space("vllm").restrict(max_batch_size=8, tp=[2, 4])
    assert space.values("max_batch_size") == (8,) and space.values("tp") == (2, 4)
    with pytest.raises(InvalidInputError) as info:
        load_search_space("vllm").restrict(quantization="int3")
    assert info.value.field == "quantization"
    with pytest.raises(InvalidInputError):
        load_search_space("vllm").restrict(replicas=2)
    with pytest.raises(InvalidInputError):
        load_search_space("trtllm").restrict(spec_method="eagle")  # not offered by trtllm


def test_unknown_engine_argument():
    with pytest.raises(InvalidInputError, match="allowed: vllm, sglang, trtllm"):
        load_search_space("tgi")


# --- broken files ----------------------------------------------------------------------------
def _write(tmp_path, data, name="space.yaml"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def _broken(vllm_data, edit):
    data = copy.deepcopy(vllm_data)
    edit(data)
    return data


CASES = [
    (
        "unknown knob",
        lambda d: d["knobs"].update(tensor_parallel=d["knobs"]["tp"]),
        "tensor_parallel",
        "unknown knob",
    ),
    ("missing knob", lambda d: d["knobs"].pop("pp"), "pp", "missing"),
    ("empty values", lambda d: d["knobs"]["tp"].update(values=[]), "tp", "at least 1"),
    ("string value", lambda d: d["knobs"]["tp"].update(values=["two"]), "tp", "integer"),
    (
        "float value",
        lambda d: d["knobs"]["max_batch_size"].update(values=[8.5]),
        "max_batch_size",
        "integer",
    ),
    ("bool value", lambda d: d["knobs"]["pp"].update(values=[True]), "pp", "integer"),
    ("values not a list", lambda d: d["knobs"]["tp"].update(values=4), "tp", "values"),
    ("repeated values", lambda d: d["knobs"]["tp"].update(values=[1, 1]), "tp", "repeat"),
    ("out of range", lambda d: d["knobs"]["pp"].update(values=[0, 1]), "pp", "outside"),
    (
        "odd block size",
        lambda d: d["knobs"]["kv_block_size"].update(values=[16, 24]),
        "kv_block_size",
        "powers of two",
    ),
    (
        "unknown enum value",
        lambda d: d["knobs"]["quantization"].update(values=["bf16", "int3"]),
        "quantization",
        "unknown value 'int3'",
    ),
    (
        "unsupported value",
        lambda d: d["supports"].update(spec_method=["none", "ngram"]),
        "spec_method",
        "does not support",
    ),
    (
        "unknown constraint",
        lambda d: d["constraints"].append("tp_is_lucky"),
        "constraints",
        "unknown constraint 'tp_is_lucky'",
    ),
    (
        "unlisted rule",
        lambda d: d["constraints"].remove("no_pp_with_spec_decoding"),
        "constraints",
        "not listed",
    ),
    (
        "rule on unknown knob",
        lambda d: d["rules"][0].update(forbid={"pipeline": {"gt": 1}}),
        "pipeline",
        "unknown knob",
    ),
    (
        "ordering on enum",
        lambda d: d["rules"][0].update(forbid={"spec_method": {"gt": 1}}),
        "spec_method",
        "needs a number",
    ),
    (
        "two tests in one condition",
        lambda d: d["rules"][0].update(forbid={"pp": {"gt": 1, "lt": 4}}),
        "pp",
        "exactly one",
    ),
    ("unknown engine", lambda d: d.update(engine="tgi"), "engine", "vllm"),
    ("bad memory fraction", lambda d: d["memory"].update(default=1.5), "memory", "default"),
    ("unknown section", lambda d: d.update(extras={"a": 1}), "extras", "unknown section"),
]


@pytest.mark.parametrize(("label", "edit", "knob", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_broken_file_names_file_knob_and_problem(tmp_path, vllm_data, label, edit, knob, fragment):
    path = _write(tmp_path, _broken(vllm_data, edit))
    with pytest.raises(SearchSpaceError) as info:
        load_search_space("vllm", path)
    err = info.value
    assert err.file == str(path)
    assert err.knob == knob, label
    assert fragment in err.problem, err.problem
    assert str(path) in str(err)


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = _write(tmp_path, "engine: vllm\nknobs:\n  tp: {flag: x, values: [1, 2\n")
    with pytest.raises(SearchSpaceError) as info:
        load_search_space("vllm", path)
    assert info.value.file == str(path) and info.value.knob is None
    assert "invalid YAML at line" in info.value.problem


def test_file_that_is_not_a_mapping(tmp_path):
    path = _write(tmp_path, "- tp\n- pp\n")
    with pytest.raises(SearchSpaceError, match="must be a mapping"):
        load_search_space("vllm", path)


def test_missing_file(tmp_path):
    with pytest.raises(SearchSpaceError, match="cannot be read"):
        load_search_space("vllm", tmp_path / "absent.yaml")


def test_file_for_another_engine(tmp_path, vllm_data):
    path = _write(tmp_path, vllm_data)
    with pytest.raises(SearchSpaceError) as info:
        load_search_space("sglang", path)
    assert info.value.knob == "engine" and "expected sglang" in info.value.problem


def test_edited_file_is_reread(tmp_path, vllm_data):
    path = _write(tmp_path, vllm_data)
    assert load_search_space("vllm", path).values("tp") == (1, 2, 4, 8)
    edited = copy.deepcopy(vllm_data)
    edited["knobs"]["tp"]["values"] = [1, 2]
    path.write_text(yaml.safe_dump(edited, sort_keys=False))
    import os

    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert load_search_space("vllm", path).values("tp") == (1, 2)
