"""Model catalog: published figures, exact KV sizes, hand-computed tiny configs, coverage of
the bundled configs and of the measured runs, id resolution, bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from optimizer.catalog.hf_config import UNSUPPORTED_MODEL_TYPES, model_spec_from_config
from optimizer.catalog.model_ids import bundled_config_paths
from optimizer.catalog.models import (
    bundled_model_ids,
    catalog_report,
    load_model_spec,
    resolve_model_id,
)
from optimizer.catalog.published import PUBLISHED_PARAMETERS
from optimizer.domain.enums import Quantization
from optimizer.errors import InvalidInputError, NotFoundError, UnsupportedModelError
from optimizer.resources import aiconfigurator_dir

# --- published figures ------------------------------------------------------------------

PUBLISHED = [tuple(p) for p in PUBLISHED_PARAMETERS]


@pytest.mark.parametrize(("model", "total", "active"), PUBLISHED)
def test_parameters_within_2_percent_of_published(model, total, active, record_property):
    spec = load_model_spec(model)
    total_err = spec.total_params / total - 1
    record_property("total_error_pct", round(100 * total_err, 2))
    assert abs(total_err) < 0.02, f"{model}: total {spec.total_params:,} vs {total:,.0f}"
    if active is None:
        assert not spec.is_moe
        # dense: everything but the input embedding (a gather) is active
        assert spec.active_params == spec.total_params - spec.embedding_params
    else:
        active_err = spec.active_params / active - 1
        record_property("active_error_pct", round(100 * active_err, 2))
        assert abs(active_err) < 0.02, f"{model}: active {spec.active_params:,} vs {active:,.0f}"


def test_kv_bytes_per_token_exact():
    llama = load_model_spec("meta-llama/Llama-3.1-70B")
    assert llama.kv_bytes_per_token("bf16") == 327_680  # 80 layers * 8 heads * 2 * 128 * 2 B
    assert llama.kv_bytes_per_token("fp8") == 163_840
    deepseek = load_model_spec("deepseek-ai/DeepSeek-V3")
    assert deepseek.attention == "mla"
    assert deepseek.kv_bytes_per_token("bf16") == 70_272  # 61 layers * (512 + 64) * 2 B
    assert deepseek.kv_bytes_per_token("fp8") == 35_136


def test_mtp_layers_recorded_not_counted():
    spec = load_model_spec("deepseek-ai/DeepSeek-V3")
    assert spec.num_mtp_layers == 1
    assert spec.num_layers == 61
    assert spec.num_moe_layers == 58 and spec.num_dense_layers == 3


# --- coverage of the bundled configs and the measured runs ------------------------------

ALWAYS_LOADED_TYPES = {"llama", "qwen3", "qwen3_moe", "mixtral", "deepseek_v3", "gpt_oss"}


def _model_type(model_id: str) -> str:
    return json.loads(bundled_config_paths()[model_id].read_text())["model_type"]


def test_every_bundled_config_loads_or_is_reported_unsupported(capsys, record_property):
    report = catalog_report()
    assert [e.model_id for e in report] == bundled_model_ids()
    loaded = [e for e in report if e.spec is not None]
    unsupported = [e for e in report if e.spec is None]
    for entry in report:
        assert (entry.spec is None) != (entry.reason is None), entry
    for entry in unsupported:
        assert entry.reason and "invalid config" not in entry.reason, entry
        assert _model_type(entry.model_id) in UNSUPPORTED_MODEL_TYPES, entry
    for entry in report:
        if _model_type(entry.model_id) in ALWAYS_LOADED_TYPES:
            assert entry.spec is not None, entry
    record_property("loaded", len(loaded))
    record_property("unsupported", len(unsupported))
    with capsys.disabled():
        print(f"\nmodel catalog: {len(loaded)} loaded, {len(unsupported)} unsupported")
    assert len(loaded) >= 60


def _silicon_model_paths() -> list[str]:
    path = aiconfigurator_dir() / "systems" / "silicon_sample.csv"
    with path.open(newline="") as handle:
        return sorted({row["model_path"] for row in csv.DictReader(handle)})


def test_every_measured_model_resolves_and_loads():
    paths = _silicon_model_paths()
    assert len(paths) == 15
    for model in paths:
        spec = load_model_spec(model)
        assert spec.model_id == resolve_model_id(model)
        assert spec.total_params > 1e9


@pytest.mark.parametrize(
    ("typed", "bundled"),
    [
        ("meta-llama/Llama-3.1-70B", "meta-llama/Meta-Llama-3.1-70B"),
        ("meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Meta-Llama-3.1-8B"),
        ("nvidia/Llama-3.1-8B-Instruct-FP8", "meta-llama/Meta-Llama-3.1-8B"),
        ("zhipuai/GLM-5", "zai-org/GLM-5"),
        ("nvidia/DeepSeek-R1-NVFP4", "deepseek-ai/DeepSeek-R1"),
        ("nvidia/Qwen3-32B-NVFP4", "Qwen/Qwen3-32B"),
        ("nvidia/DeepSeek-V3.1-NVFP4", "nvidia/DeepSeek-V3.1-NVFP4"),
        ("qwen/qwen3-235b-a22b-fp8", "Qwen/Qwen3-235B-A22B-FP8"),
        ("Qwen/Qwen3-8B-FP8", "Qwen/Qwen3-8B"),
    ],
)
def test_resolve_model_id(typed, bundled):
    assert resolve_model_id(typed) == bundled


@pytest.mark.parametrize(
    "name",
    [
        "Qwen/Qwen3-33B",  # no such size
        "someone/DeepSeek-R1",  # other organisations are not re-publishers
        "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",  # a different architecture
        "meta-llama/Llama-3.1-70B-Vision",
    ],
)
def test_resolve_model_id_never_guesses_across_architectures(name):
    with pytest.raises(NotFoundError) as info:
        resolve_model_id(name)
    assert "known: " in str(info.value)


def test_load_is_cached_per_resolved_id():
    assert load_model_spec("meta-llama/Llama-3.1-8B") is load_model_spec(
        "meta-llama/Meta-Llama-3.1-8B"
    )


@pytest.mark.parametrize(
    ("model", "quantization"),
    [
        ("deepseek-ai/DeepSeek-V3", Quantization.FP8_BLOCK),
        ("openai/gpt-oss-120b", Quantization.MXFP4),
        ("moonshotai/Kimi-K2.5", Quantization.INT4_WO),
        ("nvidia/Llama-3.1-70B-Instruct-FP8", Quantization.FP8),  # hf_quant_config.json
        ("nvidia/DeepSeek-V3.1-NVFP4", Quantization.NVFP4),
        ("nvidia/GLM-5.1-NVFP4", Quantization.NVFP4),  # modelopt quantization_config
        ("meta-llama/Meta-Llama-3.1-70B", None),
    ],
)
def test_native_quantization(model, quantization):
    assert load_model_spec(model).native_quantization == quantization


def test_special_architectures():
    gpt_oss = load_model_spec("openai/gpt-oss-120b")
    assert (gpt_oss.num_sliding_layers, gpt_oss.sliding_window) == (18, 128)
    glm = load_model_spec("zhipuai/GLM-5")
    assert glm.has_sparse_attention and glm.index_topk == 2048
    # MLA latent + rope (bf16) plus the fp8 indexer key with its scale, 78 layers
    assert glm.kv_bytes_per_token("bf16") == 78 * ((512 + 64) * 2 + 128 + 4)
    qwen35 = load_model_spec("Qwen/Qwen3.5-397B-A17B")
    assert (qwen35.num_linear_attention_layers, qwen35.num_attention_layers) == (45, 15)
    assert qwen35.kv_bytes_per_token("bf16") == 15 * 2 * (256 + 256) * 2
    assert qwen35.vision_params > 0 and qwen35.recurrent_state_bytes_per_sequence > 0
    kimi = load_model_spec("moonshotai/Kimi-K2.5")
    assert 0.4e9 < kimi.vision_params < 0.5e9  # MoonViT + projector


def test_vision_tower_counted_in_total_not_active():
    vl = load_model_spec("Qwen/Qwen3-VL-8B-Instruct")
    assert abs(vl.total_params / 8.77e9 - 1) < 0.01  # published 8.77 B with the vision tower
    text_only = vl.model_copy(update={"vision_params": 0})
    assert vl.total_params - text_only.total_params == vl.vision_params
    assert vl.active_params == text_only.active_params


# --- closed-form checks on tiny hand-written configs ------------------------------------

TINY_LLAMA = {
    "model_type": "llama",
    "num_hidden_layers": 2,
    "hidden_size": 8,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "intermediate_size": 16,
    "vocab_size": 10,
}


def test_tiny_dense_by_hand():
    spec = model_spec_from_config(TINY_LLAMA, "tiny/llama")
    # head_dim 8/2 = 4; attention per layer q 8*8 + k 8*4 + v 8*4 + o 8*8 = 192
    assert spec.head_dim == 4 and spec.attention_params == 2 * 192
    assert spec.dense_mlp_params == 2 * 3 * 8 * 16  # 768
    # embedding 80 + head 80 + attention 384 + mlp 768 + norms (2*8 per layer *2 + final 8) 40
    assert spec.total_params == 1352
    assert spec.active_params == 1352 - 80
    # 16-bit part: embedding, head, norms = 200 params
    assert spec.weight_bytes("bf16") == 2 * 1352
    assert spec.weight_bytes("fp8") == 1152 + 2 * 200
    assert spec.weight_bytes("fp8_block") == round(1152 * (1 + 4 / 128**2) + 400)
    assert spec.weight_bytes("nvfp4") == 1152 * 9 // 16 + 400  # 0.5 B + 1/16 B scale
    assert spec.weight_bytes(Quantization.INT4_WO) == round(1152 * (0.5 + 4 / 128) + 400)
    # KV: 1 head * (4 + 4) * 2 layers
    assert spec.kv_bytes_per_token("bf16") == 32 and spec.kv_bytes_per_token("fp8") == 16
    assert spec.kv_bytes_per_sequence(10, "bf16") == 320
    # 2 per active weight + QK^T and AV: 2 * 2 heads * (4 + 4) * 2 layers * 10 tokens
    assert spec.flops_per_token(0) == 2 * 1272
    assert spec.flops_per_token(10) == 2 * 1272 + 640


TINY_GPT_OSS = {
    "model_type": "gpt_oss",
    "num_hidden_layers": 2,
    "hidden_size": 8,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 4,
    "intermediate_size": 6,
    "num_local_experts": 4,
    "num_experts_per_tok": 2,
    "vocab_size": 10,
    "sliding_window": 3,
    "layer_types": ["sliding_attention", "full_attention"],
    "attention_bias": True,
    "quantization_config": {"quant_method": "mxfp4"},
}


def test_tiny_moe_with_sliding_window_by_hand():
    spec = model_spec_from_config(TINY_GPT_OSS, "tiny/gpt-oss")
    assert spec.attention_params == 2 * 192
    # per expert: gate_up 8*12 + bias 12 + down 6*8 + bias 8 = 164; 4 experts, 2 layers
    assert spec.routed_expert_params == 2 * 4 * 164
    assert spec.router_params == 2 * (8 * 4 + 4)
    # biases q 8, k 4, v 4, o 8, sinks 2 per layer; norms 40
    assert spec.other_params == 2 * 26 + 40
    assert spec.total_params == 80 + 80 + 384 + 1312 + 72 + 52 + 40  # 2020
    assert spec.active_params == 2020 - 80 - 1312 + 1312 * 2 // 4  # 1284
    assert spec.native_quantization is Quantization.MXFP4
    # experts in mxfp4 (0.5 B + 1/32 B scale), attention in bf16
    assert spec.weight_bytes("bf16", moe_quantization="mxfp4") == round(
        384 * 2 + 1312 * 17 / 32 + (80 + 80 + 72 + 52 + 40) * 2
    )
    # one sliding layer (window 3) and one full layer, 1 head * (4 + 4) * 2 B per token
    assert spec.num_sliding_layers == 1
    assert spec.kv_bytes_per_token("bf16") == 32
    assert spec.kv_bytes_per_sequence(2, "bf16") == 2 * 32
    assert spec.kv_bytes_per_sequence(10, "bf16") == 16 * 10 + 16 * 3
    # attention reads 10 tokens in the full layer, 3 in the sliding one
    assert spec.flops_per_token(10) == 2 * 1284 + 2 * 2 * 8 * (10 + 3)


TINY_DEEPSEEK = {
    "model_type": "deepseek_v3",
    "num_hidden_layers": 2,
    "hidden_size": 8,
    "num_attention_heads": 2,
    "q_lora_rank": 4,
    "kv_lora_rank": 4,
    "qk_nope_head_dim": 2,
    "qk_rope_head_dim": 2,
    "v_head_dim": 2,
    "intermediate_size": 5,
    "moe_intermediate_size": 3,
    "n_routed_experts": 4,
    "num_experts_per_tok": 2,
    "n_shared_experts": 1,
    "first_k_dense_replace": 1,
    "topk_method": "noaux_tc",
    "num_nextn_predict_layers": 1,
    "vocab_size": 10,
}


def test_tiny_mla_by_hand():
    spec = model_spec_from_config(TINY_DEEPSEEK, "tiny/deepseek")
    # q_a 8*4 + q_b 4*2*4 + kv_a 8*(4+2) + kv_b 4*2*(2+2) + o 2*2*8 = 176 per layer
    assert spec.attention_params == 2 * 176
    assert spec.dense_mlp_params == 3 * 8 * 5  # layer 0 only
    assert spec.routed_expert_params == 4 * 3 * 8 * 3  # layer 1 only
    assert spec.shared_expert_params == 3 * 8 * 3
    assert spec.router_params == 8 * 4 + 4  # gate + score-correction bias
    # q_a and kv_a norms 4 + 4 per layer, layer norms 32, final norm 8
    assert spec.total_params == 80 + 80 + 352 + 16 + 120 + 288 + 72 + 36 + 40  # 1084
    assert spec.active_params == 1084 - 80 - 288 + 144
    assert spec.num_mtp_layers == 1 and spec.num_kv_heads == 1
    assert spec.kv_bytes_per_token("bf16") == 2 * (4 + 2) * 2


TINY_HYBRID = {
    "model_type": "qwen3_next",
    "num_hidden_layers": 2,
    "layer_types": ["linear_attention", "full_attention"],
    "hidden_size": 8,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 4,
    "linear_num_key_heads": 1,
    "linear_num_value_heads": 2,
    "linear_key_head_dim": 2,
    "linear_value_head_dim": 2,
    "linear_conv_kernel_dim": 3,
    "mamba_ssm_dtype": "float32",
    "num_experts": 2,
    "num_experts_per_tok": 1,
    "moe_intermediate_size": 3,
    "shared_expert_intermediate_size": 4,
    "vocab_size": 10,
}


def test_tiny_linear_attention_hybrid_by_hand():
    spec = model_spec_from_config(TINY_HYBRID, "tiny/hybrid")
    # full layer: q with output gate 8*16 + k 32 + v 32 + o 64 = 256;
    # linear layer: in_proj 8*(2*2 + 2*4) + beta/decay 8*4 + out 4*8 = 160
    assert spec.attention_params == 256 + 160
    # q/k norms 8; conv (2*2 + 4) * 3 taps + A_log, dt_bias 2*2 + gated norm 2 = 30
    assert spec.other_params == 8 + 30 + 40
    assert spec.routed_expert_params == 2 * (2 * 3 * 8 * 3)
    assert spec.shared_expert_params == 2 * (3 * 8 * 4)
    assert spec.router_params == 2 * (8 * 2 + 8)  # router + shared-expert gate
    assert spec.total_params == 1182
    assert spec.active_params == 1182 - 80 - 288 + 144
    assert spec.kv_bytes_per_token("bf16") == 16  # the one full-attention layer
    # conv state (8 channels * 2 taps * 2 B) + fp32 state (2 heads * 2 * 2 * 4 B)
    assert spec.recurrent_state_bytes_per_sequence == 32 + 32
    assert spec.kv_bytes_per_sequence(10, "bf16") == 160 + 64
    assert spec.flops_per_token(10) == 2 * 958 + 2 * 2 * 8 * 10 + 7 * 2 * 2 * 2


def test_tied_embeddings_count_once():
    spec = model_spec_from_config({**TINY_LLAMA, "tie_word_embeddings": True}, "tiny/tied")
    assert spec.lm_head_params == 0
    assert spec.total_params == 1352 - 80
    assert spec.active_params == 1352 - 80  # the tied embedding is the output head


# --- bad input --------------------------------------------------------------------------


def test_missing_num_hidden_layers_names_the_field():
    config = {k: v for k, v in TINY_LLAMA.items() if k != "num_hidden_layers"}
    with pytest.raises(InvalidInputError) as info:
        model_spec_from_config(config, "tiny/broken")
    assert info.value.field == "num_hidden_layers"
    assert "num_hidden_layers" in str(info.value) and "tiny/broken" in str(info.value)


def test_negative_num_hidden_layers_names_the_field():
    with pytest.raises(InvalidInputError, match=r"num_hidden_layers: must be >= 1, got -2"):
        model_spec_from_config({**TINY_LLAMA, "num_hidden_layers": -2}, "tiny/broken")


def test_nested_field_is_named_with_its_path():
    config = json.loads(bundled_config_paths()["Qwen/Qwen3-VL-8B-Instruct"].read_text())
    del config["text_config"]["num_hidden_layers"]
    with pytest.raises(InvalidInputError) as info:
        model_spec_from_config(config, "broken/vl")
    assert info.value.field == "text_config.num_hidden_layers"


def test_top_k_above_expert_count_is_rejected():
    with pytest.raises(InvalidInputError, match="num_experts_per_tok"):
        model_spec_from_config({**TINY_GPT_OSS, "num_experts_per_tok": 5}, "tiny/broken")


def test_unsupported_architectures_say_why():
    with pytest.raises(UnsupportedModelError) as info:
        model_spec_from_config({"model_type": "nemotron_h"}, "x/nemotron")
    assert str(info.value).startswith("x/nemotron: unsupported: hybrid Mamba-2")
    with pytest.raises(UnsupportedModelError, match="model_type 'brand_new' is not one of"):
        model_spec_from_config({**TINY_LLAMA, "model_type": "brand_new"}, "x/new")
    with pytest.raises(UnsupportedModelError, match="vision-language wrapper"):
        model_spec_from_config({"model_type": "llava", "text_config": TINY_LLAMA}, "x/llava")


def test_unknown_quantization_is_unsupported_not_ignored():
    config = {**TINY_LLAMA, "quantization_config": {"quant_method": "hqq"}}
    with pytest.raises(UnsupportedModelError, match="quant_method 'hqq'"):
        model_spec_from_config(config, "x/hqq")


def test_bad_arguments_name_the_field():
    spec = model_spec_from_config(TINY_LLAMA, "tiny/llama")
    with pytest.raises(InvalidInputError, match="quantization: unknown quantization 'int3'"):
        spec.weight_bytes("int3")
    with pytest.raises(InvalidInputError, match="kv_dtype"):
        spec.kv_bytes_per_token("fp4")
    with pytest.raises(InvalidInputError, match="seq_len"):
        spec.kv_bytes_per_sequence(-1)


def test_unknown_id_lists_known_ids():
    with pytest.raises(NotFoundError) as info:
        load_model_spec("acme/NoSuchModel-7B")
    assert "acme/NoSuchModel-7B" in str(info.value) and "known:" in str(info.value)


# --- local paths ------------------------------------------------------------------------


def test_load_from_directory_with_modelopt_quant_config(tmp_path: Path):
    (tmp_path / "config.json").write_text(json.dumps(TINY_LLAMA))
    quant = {"quantization": {"quant_algo": "NVFP4", "group_size": 16}}
    (tmp_path / "hf_quant_config.json").write_text(json.dumps(quant))
    spec = load_model_spec(tmp_path)
    assert spec.total_params == 1352
    assert spec.native_quantization is Quantization.NVFP4
    assert spec.model_id == str(tmp_path)


def test_load_from_file_with_sibling_quant_config(tmp_path: Path):
    path = tmp_path / "acme--tiny_config.json"
    path.write_text(json.dumps(TINY_LLAMA))
    (tmp_path / "acme--tiny_hf_quant_config.json").write_text(
        json.dumps({"quantization": {"quant_algo": "FP8"}})
    )
    assert load_model_spec(str(path)).native_quantization is Quantization.FP8


def test_edited_file_is_read_again(tmp_path: Path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(TINY_LLAMA))
    assert load_model_spec(path).num_layers == 2
    path.write_text(json.dumps({**TINY_LLAMA, "num_hidden_layers": 3}))
    assert load_model_spec(path).num_layers == 3


def test_bad_paths(tmp_path: Path):
    with pytest.raises(NotFoundError, match="model config file"):
        load_model_spec(tmp_path / "missing.json")
    with pytest.raises(NotFoundError, match="model config file"):
        load_model_spec(tmp_path)  # a directory without config.json
    broken = tmp_path / "config.json"
    broken.write_text("{not json")
    with pytest.raises(InvalidInputError, match="is not valid JSON"):
        load_model_spec(broken)
