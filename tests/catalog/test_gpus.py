"""The GPU catalog: bundled figures, aliases, and price overrides (env > file > catalog)."""

from __future__ import annotations

import json
from datetime import date

import pytest
import yaml

from optimizer.catalog.gpus import (
    apply_price_overrides,
    get_gpu,
    gpu_aliases,
    load_gpu_catalog,
    load_prices_file,
    resolve_gpu_id,
)
from optimizer.domain.enums import Quantization
from optimizer.errors import InvalidInputError, NotFoundError
from optimizer.resources import aiconfigurator_dir
from optimizer.settings import Settings

REQUIRED = (
    "h100_sxm",
    "h100_pcie",
    "h200_sxm",
    "b200_sxm",
    "gb200",
    "b300_sxm",
    "gb300",
    "a100_sxm",
    "l40s",
    "l4",
    "a10g",
    "mi300x",
)
# Catalog ids that aiconfigurator names the same way (systems/<id>.yaml).
AIC_IDS = (
    "h100_sxm",
    "h100_pcie",
    "h200_sxm",
    "b200_sxm",
    "gb200",
    "b300_sxm",
    "gb300",
    "a100_sxm",
    "l40s",
    "l4",
)
# Where aiconfigurator records the capacity nvidia-smi reports (not a nominal 80 GiB).
AIC_MEASURED_CAPACITY = ("gb200", "b300_sxm", "gb300", "l40s")


@pytest.fixture
def catalog():
    return load_gpu_catalog(Settings())


@pytest.fixture(autouse=True)
def _no_user_prices(monkeypatch):
    monkeypatch.delenv("EPOPT_GPU_PRICES", raising=False)
    monkeypatch.delenv("EPOPT_PRICES_FILE", raising=False)


def test_catalog_holds_the_required_skus(catalog):
    assert set(REQUIRED) <= set(catalog)
    for gpu_id, spec in catalog.items():
        assert spec.id == gpu_id
        assert 0 < spec.usable_memory_gib <= spec.memory_gib
        assert spec.spec_source


@pytest.mark.parametrize("gpu_id", AIC_IDS)
def test_figures_match_aiconfigurator_system_files(catalog, gpu_id):
    path = aiconfigurator_dir() / "systems" / f"{gpu_id}.yaml"
    assert path.is_file(), f"aiconfigurator has no systems/{gpu_id}.yaml"
    system = yaml.safe_load(path.read_text())
    spec, aic = catalog[gpu_id], system["gpu"]
    assert spec.mem_bw_tb_s == pytest.approx(aic["mem_bw"] / 1e12)
    assert spec.bf16_tflops == pytest.approx(aic["bfloat16_tc_flops"] / 1e12)
    assert spec.fp8_tflops == (
        pytest.approx(aic["fp8_tc_flops"] / 1e12) if "fp8_tc_flops" in aic else None
    )
    assert spec.fp4_tflops == (
        pytest.approx(aic["fp4_tc_flops"] / 1e12) if "fp4_tc_flops" in aic else None
    )
    assert spec.int8_tops == pytest.approx(aic["int8_tc_flops"] / 1e12)
    assert spec.tdp_w == aic["power"]
    assert spec.sm == aic["sm_version"]
    assert spec.interconnect_gb_s == pytest.approx(system["node"]["intra_node_bw"] / 1e9)
    if gpu_id in AIC_MEASURED_CAPACITY:
        assert spec.usable_memory_gib == pytest.approx(aic["mem_capacity"] / 2**30, abs=1e-3)
    else:
        assert spec.usable_memory_gib <= aic["mem_capacity"] / 2**30
    assert "aic" in spec.spec_source


def test_every_price_has_a_source_and_date_or_says_why_not(catalog):
    for spec in catalog.values():
        assert spec.price_source
        if spec.price_usd_per_hour is None:
            assert "NOT FOUND" in spec.price_source and spec.price_date is None
        else:
            assert isinstance(spec.price_date, date) and spec.price_date <= date.today()
    assert catalog["gb300"].price_usd_per_hour is None
    assert catalog["h100_sxm"].price_usd_per_hour == pytest.approx(55.04 / 8)


def test_missing_figures_are_null_and_said_so(catalog):
    a10g = catalog["a10g"]
    assert a10g.bf16_tflops is None and a10g.tdp_w is None
    assert "NOT FOUND" in a10g.spec_source


def test_hardware_support_of_weight_formats(catalog):
    assert not catalog["a100_sxm"].supports(Quantization.FP8)
    assert catalog["a100_sxm"].supports(Quantization.INT4_WO)
    assert catalog["l40s"].supports(Quantization.FP8)
    assert not catalog["h100_sxm"].supports(Quantization.NVFP4)
    assert catalog["b200_sxm"].supports(Quantization.NVFP4)
    assert catalog["gb300"].supports(Quantization.MXFP4)
    assert catalog["mi300x"].supports(Quantization.FP8)
    assert not catalog["mi300x"].supports(Quantization.NVFP4)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("H100", "h100_sxm"),
        ("h100-sxm", "h100_sxm"),
        ("H100 SXM", "h100_sxm"),
        ("h100_pcie", "h100_pcie"),
        ("B200", "b200_sxm"),
        ("GB200", "gb200"),
        ("a100-sxm4-80gb", "a100_sxm"),
        ("MI300X", "mi300x"),
    ],
)
def test_aliases_resolve_case_insensitively(name, expected):
    assert resolve_gpu_id(name) == expected
    assert get_gpu(name, Settings()).id == expected


def test_aliases_point_at_catalog_ids(catalog):
    assert set(gpu_aliases().values()) <= set(catalog)


def test_unknown_gpu_lists_the_known_ids():
    with pytest.raises(NotFoundError) as info:
        get_gpu("h900", Settings())
    assert "h900" in str(info.value) and "h100_sxm" in str(info.value)


def test_catalog_copies_are_independent():
    first = load_gpu_catalog(Settings())
    first.pop("h100_sxm")
    assert "h100_sxm" in load_gpu_catalog(Settings())


# --- price overrides ------------------------------------------------------------------------
def test_env_beats_file_beats_catalog(tmp_path, monkeypatch):
    prices = tmp_path / "prices.yaml"
    prices.write_text("h100_sxm: 2.5\nb200: 4.0\n")
    monkeypatch.setenv("EPOPT_PRICES_FILE", str(prices))
    monkeypatch.setenv("EPOPT_GPU_PRICES", json.dumps({"H100": 2.1}))
    catalog = load_gpu_catalog()  # reads the environment
    assert catalog["h100_sxm"].price_usd_per_hour == 2.1
    assert catalog["h100_sxm"].price_source == "user override (EPOPT_GPU_PRICES)"
    assert catalog["h100_sxm"].price_date is None
    assert catalog["b200_sxm"].price_usd_per_hour == 4.0
    assert catalog["b200_sxm"].price_source == f"user override (prices file {prices})"
    assert catalog["h200_sxm"].price_usd_per_hour == pytest.approx(63.296 / 8)
    assert get_gpu("h100").price_usd_per_hour == 2.1


def test_json_prices_file(tmp_path):
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"gb300": 9.5}))
    catalog = load_gpu_catalog(Settings(prices_file=prices))
    assert catalog["gb300"].price_usd_per_hour == 9.5


@pytest.mark.parametrize(
    ("prices", "key", "fragment"),
    [
        ({"h900": 2.0}, "h900", "unknown GPU id"),
        ({"h100_sxm": 0}, "h100_sxm", "positive"),
        ({"h100_sxm": -1.5}, "h100_sxm", "positive"),
        ({"h100_sxm": float("inf")}, "h100_sxm", "positive"),
        ({"h100_sxm": 2.0, "H100": 2.1}, "H100", "again"),
    ],
)
def test_bad_env_overrides_name_the_key(prices, key, fragment):
    with pytest.raises(InvalidInputError) as info:
        load_gpu_catalog(Settings(gpu_prices=prices))
    assert info.value.field == f"EPOPT_GPU_PRICES.{key}"
    assert fragment in str(info.value)


def test_non_numeric_env_price_is_an_input_error(monkeypatch):
    monkeypatch.setenv("EPOPT_GPU_PRICES", '{"h100_sxm": "cheap"}')
    with pytest.raises(InvalidInputError, match=r"gpu_prices\.h100_sxm"):
        load_gpu_catalog()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("h100_sxm: -2\n", "h100_sxm"),
        ("h100_sxm: cheap\n", "h100_sxm"),
        ("h100_sxm: true\n", "h100_sxm"),
        ("- 2.0\n", "mapping"),
        ("h100_sxm: [1,\n", "not valid"),
    ],
)
def test_bad_prices_file(tmp_path, text, fragment):
    prices = tmp_path / "prices.yaml"
    prices.write_text(text)
    with pytest.raises(InvalidInputError) as info:
        load_gpu_catalog(Settings(prices_file=prices))
    assert str(prices) in str(info.value) and fragment in str(info.value)


def test_unknown_gpu_in_prices_file_names_file_and_key(tmp_path):
    prices = tmp_path / "prices.yaml"
    prices.write_text("tpu_v5: 1.0\n")
    with pytest.raises(InvalidInputError) as info:
        load_gpu_catalog(Settings(prices_file=prices))
    assert info.value.field == f"prices file {prices}.tpu_v5"


def test_missing_prices_file(tmp_path):
    with pytest.raises(InvalidInputError, match="cannot be read"):
        load_prices_file(tmp_path / "absent.yaml")


def test_apply_price_overrides_is_pure():
    catalog = load_gpu_catalog(Settings())
    updated = apply_price_overrides(catalog, {"l4": 0.5}, "test")
    assert updated["l4"].price_usd_per_hour == 0.5
    assert catalog["l4"].price_usd_per_hour == pytest.approx(0.8048)
