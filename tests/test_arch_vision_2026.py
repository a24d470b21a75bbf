"""Vision-language composites of issue 13: Qwen2/2.5/3-VL (+MoE), LLaVA / LLaVA-NeXT, refusals.

Truths here need no torch: the meta-device totals and tower sizes recorded in
tests/data/param_counts_2026.json (torch 2.13, transformers 5.24), and hand-computed
per-rank shards from vLLM's tower code.  The random-config strategies live here too;
tests/test_oracle_vision.py runs them against the meta device.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from reportgen.arch import build_spec
from reportgen.arch.spec import Component, Shard
from reportgen.arch.vision_parts import vision_split

DATA = Path(__file__).parent / "data"
TRUTH = json.loads((DATA / "param_counts_2026.json").read_text())["models"]
SHIPPED = {
    "qwen2_5_vl": "Qwen/Qwen2.5-VL-7B-Instruct",
    "qwen3_vl": "Qwen/Qwen3-VL-8B-Instruct",
    "qwen3_vl_moe": "Qwen/Qwen3-VL-30B-A3B-Instruct",
    "llava": "llava-hf/llava-1.5-7b-hf",
}


def shipped(model_id: str) -> dict:
    return json.loads((DATA / "configs_2026" / (model_id.replace("/", "--") + ".json")).read_text())


@pytest.mark.parametrize("kind,model_id", SHIPPED.items())
def test_shipped_config_matches_meta_device_truth(kind, model_id):
    spec = build_spec(shipped(model_id))
    assert spec.unsupported_reason is None, spec.unsupported_reason
    assert spec.family == kind and spec.multimodal
    truth = TRUTH[model_id]
    # tensors (what vLLM loads) + what vLLM skips == the transformers model
    assert spec.params_total + spec.unloaded_params == truth["total_params"]
    vision = spec.params_by_component()["vision"]
    assert vision + spec.unloaded_params == truth["vision_params"]
    assert spec.kv_bytes_per_token(2) == truth["kv_cache_bytes_per_token_bf16"]


def test_llava_skips_the_clip_layer_past_the_feature_layer():
    spec = build_spec(shipped("llava-hf/llava-1.5-7b-hf"))
    # CLIP-L/14: one encoder layer = 2 LayerNorms + q/k/v/out + fc1/fc2 with biases; plus post_layernorm
    h, i = 1024, 4096
    layer = 4 * h + 4 * (h * h + h) + (h * i + i) + (i * h + h)
    assert spec.unloaded_params == layer + 2 * h == 12_598_272
    names = {t.name for t in spec.tensors}
    assert "vision_tower.vision_model.encoder.layers.22.mlp.fc2.weight" in names
    assert not any(".layers.23." in n or "post_layernorm" in n for n in names if n.startswith("vision_tower"))


def test_qwen_tower_split_and_tp_shards():
    spec = build_spec(shipped("Qwen/Qwen2.5-VL-7B-Instruct"))
    split = vision_split(spec)
    # projector: the patch merger (RMSNorm 1280, 5120x5120 + bias, 5120 -> 3584 + bias)
    assert split["projector"] == 1280 + 5120 * 5120 + 5120 + 5120 * 3584 + 3584
    assert split["tower"] + split["projector"] == TRUTH["Qwen/Qwen2.5-VL-7B-Instruct"]["vision_params"]
    by = {t.name: t for t in spec.tensors}
    assert by["visual.blocks.0.attn.qkv[k].weight"].shard is Shard.COLUMN      # multi-head: K split like Q
    assert by["visual.blocks.0.attn.proj.weight"].shard is Shard.ROW
    assert by["visual.blocks.0.mlp.gate_proj.bias"].shard is Shard.COLUMN
    assert by["visual.patch_embed.proj.weight"].shard is Shard.REPLICATED
    assert by["visual.patch_embed.proj.weight"].shape == (1280, 3 * 2 * 14 * 14)
    assert by["visual.merger.mlp.2.weight"].shard is Shard.ROW
    assert all(t.component is Component.VISION and t.layer is None for t in spec.tensors if t.name.startswith("visual."))


def test_qwen3_vl_deepstack_mergers():
    spec = build_spec(shipped("Qwen/Qwen3-VL-8B-Instruct"))
    names = {t.name for t in spec.tensors}
    assert {f"visual.deepstack_merger_list.{k}.linear_fc2.weight" for k in range(3)} <= names
    by = {t.name: t for t in spec.tensors}
    # the post-shuffle norm is as wide as the merged patch (1152 * 2 * 2)
    assert by["visual.deepstack_merger_list.0.norm.weight"].shape == (4608,)
    assert by["visual.pos_embed.weight"].shape == (2304, 1152)


def test_trimmed_checkpoint_takes_the_class_default_tower():
    cfg = shipped("Qwen/Qwen3-VL-8B-Instruct")
    default_tower = build_spec({"model_type": "qwen3_vl", "text_config": cfg["text_config"]})
    cfg.pop("vision_config")
    spec = build_spec(cfg)
    assert spec.unsupported_reason is None
    assert any("class default" in n for n in spec.notes)
    # transformers' Qwen3VLVisionConfig defaults: 27 blocks of 1152, 3 deepstack mergers, out 3584
    assert spec.params_by_component()["vision"] == default_tower.params_by_component()["vision"]
    assert any(t.name == "visual.blocks.26.norm1.weight" for t in spec.tensors)


def test_mllama_is_refused_because_vllm_v1_dropped_it():
    spec = build_spec(shipped("meta-llama/Llama-3.2-11B-Vision-Instruct"))
    assert spec.unsupported_reason and "V1" in spec.unsupported_reason


def test_unverified_parts_are_refused():
    cfg = shipped("llava-hf/llava-1.5-7b-hf")
    cfg["vision_config"]["model_type"] = "siglip_vision_model"
    assert "vision tower" in build_spec(cfg).unsupported_reason
    cfg = shipped("llava-hf/llava-1.5-7b-hf")
    cfg["text_config"]["model_type"] = "gemma"
    assert "language model" in build_spec(cfg).unsupported_reason
    cfg = shipped("Qwen/Qwen3-VL-8B-Instruct")
    cfg["text_config"]["model_type"] = "qwen2"
    assert "language model" in build_spec(cfg).unsupported_reason


# ---------------------------------------------------------------- random valid configs (small dims)

VISION_FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe", "llava", "llava_next", "idefics3", "smolvlm",
                   "glm4v", "glm4v_moe")


@st.composite
def _text(draw, moe: bool = False) -> dict:
    heads = draw(st.sampled_from([1, 2, 4]))
    kv = draw(st.sampled_from([d for d in (1, 2, 4) if heads % d == 0]))
    head_dim = draw(st.sampled_from([8, 16]))
    t = dict(hidden_size=heads * head_dim * draw(st.integers(1, 2)), num_hidden_layers=draw(st.integers(1, 3)),
             num_attention_heads=heads, num_key_value_heads=kv, vocab_size=draw(st.integers(16, 300)),
             intermediate_size=draw(st.integers(1, 64)), pad_token_id=None, bos_token_id=None, eos_token_id=None)
    if moe:
        e = draw(st.integers(1, 6))
        t.update(num_experts=e, num_experts_per_tok=draw(st.integers(1, e)),
                 moe_intermediate_size=draw(st.integers(1, 32)), decoder_sparse_step=draw(st.integers(1, 2)),
                 mlp_only_layers=draw(st.lists(st.integers(0, t["num_hidden_layers"] - 1), unique=True)))
    return t


@st.composite
def vision_configs(draw, kind: str) -> dict:
    """A small random valid config of one vision-language family."""
    tie = draw(st.sampled_from([True, False, None]))
    v_heads = draw(st.sampled_from([1, 2]))
    v_hidden = v_heads * 2 * draw(st.integers(1, 4))          # even head dims (2-D rotary)
    if kind.startswith("qwen"):
        t = draw(_text(moe=kind == "qwen3_vl_moe"))
        v = dict(depth=draw(st.integers(1, 3)), num_heads=v_heads, in_channels=draw(st.integers(1, 3)),
                 patch_size=draw(st.integers(1, 4)), temporal_patch_size=draw(st.integers(1, 2)),
                 spatial_merge_size=draw(st.integers(1, 2)))
        if kind == "qwen2_vl":
            v.update(embed_dim=v_hidden, mlp_ratio=draw(st.integers(1, 4)), hidden_size=t["hidden_size"])
        else:
            v.update(hidden_size=v_hidden, intermediate_size=draw(st.integers(1, 40)),
                     out_hidden_size=t["hidden_size"])
        if kind.startswith("qwen3"):
            t["head_dim"] = t["hidden_size"] // t["num_attention_heads"]
            t["attention_bias"] = draw(st.booleans())
            v["num_position_embeddings"] = draw(st.sampled_from([1, 4, 16]))
            v["deepstack_visual_indexes"] = draw(st.lists(st.integers(0, v["depth"] - 1), unique=True, max_size=3))
        if kind in ("qwen2_vl", "qwen2_5_vl") and draw(st.booleans()):
            cfg = {"model_type": kind, **t, "vision_config": v}          # flat, as the checkpoints ship
        else:
            cfg = {"model_type": kind, "text_config": t, "vision_config": v}
    elif kind.startswith("glm4v"):
        t = draw(_text())
        t.pop("bos_token_id"), t.pop("eos_token_id")
        if kind == "glm4v_moe":
            e = draw(st.integers(1, 6))
            t.update(n_routed_experts=e, num_experts_per_tok=draw(st.integers(1, e)), n_group=1, topk_group=1,
                     moe_intermediate_size=draw(st.integers(1, 32)), n_shared_experts=draw(st.integers(0, 2)),
                     first_k_dense_replace=draw(st.integers(0, t["num_hidden_layers"])),
                     attention_bias=draw(st.booleans()), head_dim=t["hidden_size"] // t["num_attention_heads"])
        patch = draw(st.integers(1, 4))
        v = dict(depth=draw(st.integers(1, 3)), hidden_size=v_hidden, num_heads=v_heads,
                 in_channels=draw(st.integers(1, 3)), patch_size=patch, image_size=patch * draw(st.integers(1, 3)),
                 temporal_patch_size=draw(st.integers(1, 2)), spatial_merge_size=draw(st.integers(1, 2)),
                 out_hidden_size=t["hidden_size"], intermediate_size=draw(st.integers(1, 40)))
        cfg = {"model_type": kind, "text_config": t, "vision_config": v}
    elif kind in ("idefics3", "smolvlm"):
        t = draw(_text())
        t["model_type"] = draw(st.sampled_from(["llama", "mistral", "qwen2", "granite"]))
        patch = draw(st.integers(1, 4))
        v = dict(model_type=f"{kind}_vision", hidden_size=v_hidden, num_attention_heads=v_heads,
                 num_hidden_layers=draw(st.integers(1, 3)), intermediate_size=draw(st.integers(1, 40)),
                 patch_size=patch, image_size=patch * 2 * draw(st.integers(1, 2)), num_channels=draw(st.integers(1, 3)))
        cfg = {"model_type": kind, "text_config": t, "vision_config": v, "scale_factor": draw(st.integers(1, 2))}
    else:
        t = draw(_text())
        t["model_type"] = draw(st.sampled_from(["llama", "mistral", "qwen2", "granite"]))
        n_layers = draw(st.integers(1, 3))
        patch = draw(st.integers(1, 4))
        v = dict(model_type="clip_vision_model", hidden_size=v_hidden, num_attention_heads=v_heads,
                 num_hidden_layers=n_layers, intermediate_size=draw(st.integers(1, 40)), patch_size=patch,
                 image_size=patch * draw(st.integers(1, 3)), num_channels=draw(st.integers(1, 3)))
        layer = draw(st.sampled_from([-1, -2, 0, [-1, -2], [0, -1]]))
        if isinstance(layer, int) and -layer > n_layers or isinstance(layer, list) and n_layers < 2:
            layer = -1
        cfg = {"model_type": kind, "text_config": t, "vision_config": v, "vision_feature_layer": layer,
               "multimodal_projector_bias": draw(st.booleans())}
        if kind == "llava_next":
            cfg["image_grid_pinpoints"] = [[patch, patch]]
    if tie is not None:
        cfg["tie_word_embeddings"] = tie
        if "text_config" in cfg:
            cfg["text_config"]["tie_word_embeddings"] = tie
    return cfg


def vision_family_strategy():
    return st.sampled_from(VISION_FAMILIES).flatmap(lambda k: st.tuples(st.just(k), vision_configs(k)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(vision_family_strategy())
def test_random_vision_configs_build(kind_cfg):
    kind, cfg = kind_cfg
    spec = build_spec(copy.deepcopy(cfg))
    assert spec.unsupported_reason is None, spec.unsupported_reason
    assert spec.family == kind and spec.multimodal
    split = vision_split(spec)
    assert split["tower"] > 0 and split["projector"] > 0
    assert split["tower"] + split["projector"] == spec.params_by_component()["vision"]
    assert spec.params_text + spec.params_by_component()["vision"] == spec.params_total
    assert all(t.layer is None for t in spec.tensors if t.component is Component.VISION)
    assert len(spec.layers_kv) == spec.num_layers
    text = cfg.get("text_config") or cfg
    assert spec.hidden_size == text["hidden_size"] and spec.num_layers == text["num_hidden_layers"]
    assert spec.vocab_size == text["vocab_size"]


@pytest.mark.parametrize("model_type,words", [("phi4_multimodal", "audio"),
                                              ("internvl", "not verified"), ("llava_onevision", "SigLIP"),
                                              ("gemma3n", "timm")])
def test_examined_multimodal_types_are_refused_with_their_reason(model_type, words):
    spec = build_spec({"model_type": model_type})
    assert words in spec.unsupported_reason


def test_kimi_k25_shipped_config_is_exact_with_its_tower():
    # Kimi-K2.5's MoonViT tower is modelled in families/kimi_k25.py (tests/test_arch_flagships_dsa.py
    # pins its sharding); here: the composite total and the vision share equal the meta-device truth
    spec = build_spec(shipped("moonshotai/Kimi-K2.5"))
    assert spec.unsupported_reason is None
    assert spec.params_total == 1_026_879_353_328
    assert spec.params_by_component()["vision"] == 471_143_920


def test_qwen2_5_vl_tower_bytes_per_rank_at_tp2_follow_vllm_sharding():
    """Hand count from vLLM qwen2_5_vl.py: column/row linears halve, row biases and norms stay whole."""
    from reportgen.estimate.encoder import text_only
    from reportgen.matrix import estimate_one

    spec = build_spec(shipped("Qwen/Qwen2.5-VL-7B-Instruct"))
    h, i, out, depth = 1280, 3420, 3584, 32
    block_split = 3 * (h * h + h) + h * h + 2 * (i * h + i) + h * i     # qkv, proj, gate/up (+bias), down
    block_whole = 2 * h + h + h                                        # norm1, norm2, proj bias, down bias
    wide = 4 * h
    merger_split = wide * wide + wide + out * wide                     # mlp.0 (+bias), mlp.2
    merger_whole = h + out + h * 3 * 2 * 14 * 14                       # ln_q, mlp.2 bias, patch_embed
    per_rank = depth * (block_split / 2 + block_whole) + merger_split / 2 + merger_whole
    full = estimate_one(spec, 79.2, tp=2, max_model_len=8192)["weights_gib"]
    text = estimate_one(text_only(spec), 79.2, tp=2, max_model_len=8192)["weights_gib"]
    assert (full - text) * 2**30 == pytest.approx(per_rank * 2, rel=1e-9)
