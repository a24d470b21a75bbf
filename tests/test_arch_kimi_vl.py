"""Kimi-VL (``kimi_vl``, families/kimi_vl.py): what vLLM loads per rank, KV, encoder item, refusals, bad input.

vLLM sources (read with the search index): kimi_vl.py @055e47c2, moonvit.py @055e47c2, deepseek_v2.py @002d6073,
configs/kimi_vl.py @055e47c2, configs/moonvit.py @24cbcf2e.  The Kimi-VL-A3B-Instruct config is written from
memory (tests/data/configs_vision/SOURCES.md).  Exactness against a meta-device model: test_oracle_kimi_vl.py.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.arch.errors import ConfigError
from reportgen.arch.parse import config_class
from reportgen.arch.registry import ADAPTERS, UNSUPPORTED
from reportgen.arch.spec import Component, Shard
from reportgen.arch.vision_parts import vision_split
from reportgen.estimate import encoder

KIMI_VL = json.loads((Path(__file__).parent / "data" / "configs_vision" /
                      "moonshotai--Kimi-VL-A3B-Instruct.json").read_text())


def cfg_with(text: dict | None = None, vision: dict | None = None, **top) -> dict:
    cfg = copy.deepcopy(KIMI_VL)
    cfg["text_config"].update(text or {})
    cfg["vision_config"].update(vision or {})
    cfg.update(top)
    return cfg


def test_kimi_vl_is_supported_without_a_transformers_class():
    assert config_class("kimi_vl") is None            # remote code only: parsed from vLLM's config classes
    assert "kimi_vl" in ADAPTERS and "kimi_vl" not in UNSUPPORTED
    spec = build_spec(KIMI_VL)
    assert spec.unsupported_reason is None and spec.family == "kimi_vl" and spec.multimodal and spec.is_mla


def test_tower_and_projector_hand_counted():
    h, inter, layers, patch, kk, text_h = 1152, 4304, 27, 14, 4, 2048
    layer = 2 * 2 * h + (h * 3 * h + 3 * h) + (h * h + h) + (h * inter + inter) + (inter * h + h)
    tower = h * 3 * patch * patch + h + 64 * 64 * h + layers * layer + 2 * h
    projector = 2 * h + (h * kk) ** 2 + h * kk + h * kk * text_h + text_h
    assert vision_split(build_spec(KIMI_VL)) == {"tower": tower, "projector": projector}
    assert (tower, projector) == (416_866_032, 30_679_808)


def test_text_stack_is_moonlight_shaped_deepseek_v3():
    spec = build_spec(KIMI_VL)
    assert (spec.num_layers, spec.hidden_size, spec.vocab_size, spec.num_experts, spec.experts_per_token) == \
        (27, 2048, 163840, 64, 6)
    assert spec.params_text == 15_960_108_544 and spec.mtp_params == 0
    dense = {t.layer for t in spec.tensors if t.component is Component.DENSE_MLP}
    assert dense == {0}                               # first_k_dense_replace 1
    assert not spec.tie_word_embeddings and any(t.name == "lm_head.weight" for t in spec.tensors)
    assert any(t.name.endswith("self_attn.q_proj.weight") for t in spec.tensors)     # q_lora_rank null


def test_mla_cache_is_one_latent_per_layer_not_split_by_tp():
    spec = build_spec(KIMI_VL)
    assert spec.kv_bytes_per_token(2) == 27 * (512 + 64) * 2 == 31_104    # vllm_logs.md: ~31.1 KB/token
    assert spec.kv_bytes_per_token(2, tp=2) == 31_104


def test_tower_shards_as_vllm_builds_it():
    vision = {t.name: t for t in build_spec(KIMI_VL).tensors if t.component is Component.VISION}
    p = "vision_tower.encoder.blocks.3"
    want = {f"{p}.wqkv[q].weight": Shard.COLUMN, f"{p}.wqkv[k].weight": Shard.COLUMN,
            f"{p}.wqkv[v].weight": Shard.COLUMN, f"{p}.wqkv[v].bias": Shard.COLUMN, f"{p}.wo.weight": Shard.ROW,
            f"{p}.wo.bias": Shard.REPLICATED, f"{p}.mlp.fc0.weight": Shard.COLUMN, f"{p}.mlp.fc1.weight": Shard.ROW,
            f"{p}.norm0.weight": Shard.REPLICATED, "vision_tower.patch_embed.pos_emb.weight": Shard.REPLICATED,
            "vision_tower.patch_embed.proj.weight": Shard.REPLICATED,
            "multi_modal_projector.linear_1.weight": Shard.REPLICATED,
            "multi_modal_projector.linear_2.weight": Shard.REPLICATED}
    assert {n: vision[n].shard for n in want} == want
    assert vision["vision_tower.patch_embed.pos_emb.weight"].shape == (64, 64, 1152)
    assert vision["multi_modal_projector.linear_2.weight"].shape == (2048, 4608)
    assert not any(t.quantizable for t in vision.values())     # no quant_config reaches tower or projector


def test_encoder_item_is_the_1024_profile_image():
    assert build_spec(KIMI_VL).mm_item_tokens == 37 * 37 == 1369
    assert build_spec(cfg_with(vision={"patch_size": 16})).mm_item_tokens == 32 * 32
    assert encoder.encoder_budget(512, 1369) == 1369 and encoder.encoder_budget(8192, 1369) == 8192


def test_text_only_drops_tower_and_projector():
    spec = encoder.text_only(build_spec(KIMI_VL))
    assert spec.params_total == 15_960_108_544 and not spec.multimodal


def test_absent_text_fields_take_deepseek_v2_defaults_as_vllm_does():
    # vLLM's KimiVLConfig parses text_config with DeepseekV2Config whatever its model_type says:
    # no first_k_dense_replace = 0 (DeepseekV3Config would say 3) -> every layer MoE
    cfg = cfg_with()
    del cfg["text_config"]["first_k_dense_replace"]
    spec = build_spec(cfg)
    assert spec.params_by_component()["dense_mlp"] == 0
    # moe_layer_freq, which vLLM honours: odd layers dense
    spec = build_spec(cfg_with(text={"moe_layer_freq": 2}))
    assert {t.layer for t in spec.tensors if t.component is Component.DENSE_MLP} == {0} | set(range(1, 27, 2))


def test_trimmed_config_gets_moonvit_defaults_and_says_so():
    cfg = copy.deepcopy(KIMI_VL)
    del cfg["vision_config"]
    spec = build_spec(cfg)
    assert spec.params_total == build_spec(KIMI_VL).params_total
    assert any("MoonViTConfig defaults" in n for n in spec.notes)


@pytest.mark.parametrize("change, words", [
    ({"text_config": {"attention_bias": True}}, "attention_bias"),
    ({"text_config": {"mlp_bias": True}}, "mlp_bias"),
    ({"text_config": {"tie_word_embeddings": True}}, "tied"),
    ({"text_config": {"hidden_act": "gelu"}}, "silu"),
])
def test_refusals_name_the_reason(change, words):
    spec = build_spec(cfg_with(text=change["text_config"]))
    assert spec.unsupported_reason and words in spec.unsupported_reason


@pytest.mark.parametrize("cfg, field", [
    ({k: v for k, v in KIMI_VL.items() if k != "text_config"}, "text_config"),
    (cfg_with(vision={"num_attention_heads": 5}), "vision_config.num_attention_heads"),
    (cfg_with(vision={"hidden_size": 1160, "num_attention_heads": 20}), "vision_config.num_attention_heads"),
    (cfg_with(vision={"merge_kernel_size": [2]}), "vision_config.merge_kernel_size"),
    (cfg_with(vision={"init_pos_emb_height": 0}), "vision_config.init_pos_emb_height"),
    (cfg_with(vision={"hidden_size": "1152"}), "vision_config.hidden_size"),
    (cfg_with(text={"num_hidden_layers": 0}), "text_config.num_hidden_layers"),
])
def test_bad_fields_are_config_errors_naming_the_field(cfg, field):
    with pytest.raises(ConfigError) as e:
        build_spec(cfg)
    assert e.value.field == field


def test_tower_bytes_per_rank_at_tp2_follow_vllm_sharding():
    """Hand count from vLLM moonvit.py / kimi_vl.py: wqkv / fc0 (weights and biases) and wo / fc1 weights halve;
    wo / fc1 biases, LayerNorms, the patch conv, the position grid and the whole projector stay on every rank."""
    from reportgen.matrix import estimate_one

    spec = build_spec(KIMI_VL)
    h, i, layers, kk, text_h = 1152, 4304, 27, 4, 2048
    layer_split = (3 * h * h + 3 * h) + h * h + (h * i + i) + i * h
    layer_whole = 4 * h + h + h                                   # norm0 / norm1, wo bias, fc1 bias
    whole = h * 3 * 14 * 14 + h + 64 * 64 * h + 2 * h             # patch conv, grid, final LayerNorm
    projector = 2 * h + (h * kk) ** 2 + h * kk + h * kk * text_h + text_h
    per_rank = layers * (layer_split / 2 + layer_whole) + whole + projector
    full = estimate_one(spec, 79.2, tp=2, max_model_len=8192)["weights_gib"]
    text = estimate_one(encoder.text_only(spec), 79.2, tp=2, max_model_len=8192)["weights_gib"]
    # + the allocator block of the replicated 4,608 x 4,608 bf16 projector linear (40.5 MiB -> 42, never split from
    # vLLM 0.21: weights.allocator_unsplit_bytes, tests/test_alloc_unsplit_blocks.py); the rest is < 10 MiB or 2 MiB-even
    assert (full - text) * 2**30 == pytest.approx(per_rank * 2 + 1.5 * 2**20, rel=1e-9)


def test_kimi_k25_shares_the_moonvit_blocks_and_its_projector_is_reported_apart():
    k25 = json.loads((Path(__file__).parent / "data" / "configs_2026" / "moonshotai--Kimi-K2.5.json").read_text())
    split = vision_split(build_spec(k25))
    assert split["projector"] == 2 * 1152 + 4608 * 4608 + 4608 + 4608 * 7168 + 7168
    assert split["tower"] + split["projector"] == 471_143_920             # the meta-device truth of the tower
