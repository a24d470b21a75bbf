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


def test_mllama_is_weights_only_because_its_cross_attention_kv_is_not_modelled():
    spec = build_spec(shipped("meta-llama/Llama-3.2-11B-Vision-Instruct"))
    assert spec.unsupported_reason and "V1" in spec.unsupported_reason and "cross-attention" in spec.unsupported_reason
    # the weights are exact (tests/test_oracle_mllama.py checks them against the meta device)
    assert spec.params_total == TRUTH["meta-llama/Llama-3.2-11B-Vision-Instruct"]["total_params"]


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
                   "glm4v", "glm4v_moe", "llava_onevision", "internvl")


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
    elif kind == "internvl":
        if tie is None:     # InternVLConfig ties by default, its text configs do not: vLLM follows the text flag
            tie = draw(st.booleans())
        mt = draw(st.sampled_from(["qwen2", "qwen3", "qwen3_moe", "llama"]))
        t = draw(_text(moe=mt == "qwen3_moe"))
        t["model_type"] = mt
        t["architectures"] = [{"qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM",
                               "qwen3_moe": "Qwen3MoeForCausalLM", "llama": "LlamaForCausalLM"}[mt]]
        if mt.startswith("qwen3"):
            t["head_dim"] = t["hidden_size"] // t["num_attention_heads"]
        patch = draw(st.integers(1, 4))
        side = st.sampled_from([1, 2, 3]).map(lambda k: patch * k)
        v = dict(model_type="internvl_vision", hidden_size=v_hidden, num_attention_heads=v_heads,
                 num_hidden_layers=draw(st.integers(1, 3)), intermediate_size=draw(st.integers(1, 40)),
                 patch_size=draw(st.sampled_from([patch, [patch, patch]])),
                 image_size=draw(st.one_of(side, st.lists(side, min_size=2, max_size=2))),
                 num_channels=draw(st.integers(1, 3)), norm_type=draw(st.sampled_from(["layer_norm", "rms_norm"])),
                 attention_bias=draw(st.booleans()), use_qk_norm=draw(st.booleans()),
                 use_mask_token=draw(st.booleans()), use_absolute_position_embeddings=draw(st.booleans()),
                 use_mean_pooling=draw(st.booleans()))
        cfg = {"model_type": kind, "text_config": t, "vision_config": v,
               "downsample_ratio": draw(st.sampled_from([0.5, 0.25, 1.0]))}
    elif kind == "llava_onevision":
        t = draw(_text())
        t["model_type"] = draw(st.sampled_from(["qwen2", "llama", "mistral", "granite"]))
        n_layers = draw(st.integers(1, 3))
        patch = draw(st.integers(1, 4))
        # widths that are and are not multiples of 64 (vLLM's SigLIP MLP quantization rule)
        v = dict(model_type=draw(st.sampled_from(["siglip_vision_model", "siglip_vision_model", "clip_vision_model"])),
                 hidden_size=v_hidden * draw(st.sampled_from([1, 16])), num_attention_heads=v_heads,
                 num_hidden_layers=n_layers, intermediate_size=draw(st.sampled_from([7, 40, 64])), patch_size=patch,
                 image_size=patch * draw(st.integers(1, 3)), num_channels=draw(st.integers(1, 3)))
        if v["model_type"] == "siglip_vision_model":
            v["vision_use_head"] = False
        layer = draw(st.sampled_from([-1, -2, 0, 1, [-1]]))
        if isinstance(layer, int) and (-layer > n_layers or layer > n_layers):
            layer = -1
        cfg = {"model_type": kind, "text_config": t, "vision_config": v, "vision_feature_layer": layer,
               "multimodal_projector_bias": draw(st.booleans())}
    else:
        t = draw(_text())
        t["model_type"] = draw(st.sampled_from(["llama", "mistral", "qwen2", "granite"]))
        n_layers = draw(st.integers(1, 3))
        patch = draw(st.integers(1, 4))
        v = dict(model_type="clip_vision_model", hidden_size=v_hidden, num_attention_heads=v_heads,
                 num_hidden_layers=n_layers, intermediate_size=draw(st.integers(1, 40)), patch_size=patch,
                 image_size=patch * draw(st.integers(1, 3)), num_channels=draw(st.integers(1, 3)))
        # several feature layers: llava_next only (vLLM's llava projector is vision_hidden wide: refused)
        layer = draw(st.sampled_from([-1, -2, 0, [-1]] + ([[-1, -2], [0, -1]] if kind == "llava_next" else [])))
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
    # + the allocator blocks of the merger at TP 2 (weights.allocator_unsplit_bytes, branch load29): mlp.0 5,120^2 / 2
    # x 2 B = 25 MiB -> 26 (>= 20 MiB, never split from vLLM 0.21), mlp.2 3,584 x 5,120 / 2 x 2 B = 17.5 -> 18 (0.5 left)
    assert (full - text) * 2**30 == pytest.approx(per_rank * 2 + 1.5 * 2**20, rel=1e-9)


# ---------------------------------------------------------------- LLaVA-OneVision (families/llava_onevision.py)

# llava-hf/llava-onevision-qwen2-7b-ov-hf, written from memory (no shipped copy in tests/data; the
# image_grid_pinpoints list is left to the class default: it feeds the processor, not the weights)
ONEVISION_7B = {
    "architectures": ["LlavaOnevisionForConditionalGeneration"], "model_type": "llava_onevision",
    "image_token_index": 151646, "video_token_index": 151647, "projector_hidden_act": "gelu",
    "tie_word_embeddings": False, "torch_dtype": "float16", "use_image_newline_parameter": True,
    "vision_aspect_ratio": "anyres_max_9", "vision_feature_layer": -1, "vision_feature_select_strategy": "full",
    "text_config": {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "bos_token_id": 151643,
                    "eos_token_id": 151645, "hidden_size": 3584, "intermediate_size": 18944,
                    "max_position_embeddings": 32768, "max_window_layers": 28, "num_attention_heads": 28,
                    "num_hidden_layers": 28, "num_key_value_heads": 4, "rope_theta": 1000000.0,
                    "sliding_window": 131072, "torch_dtype": "bfloat16", "use_sliding_window": False,
                    "vocab_size": 152128},
    "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 1152, "image_size": 384,
                      "intermediate_size": 4304, "num_attention_heads": 16, "num_hidden_layers": 26,
                      "patch_size": 14, "vision_use_head": False},
}
FROM_MEMORY = {"llava-hf/llava-onevision-qwen2-7b-ov-hf": ONEVISION_7B}
# one SigLIP-so400m encoder layer: 2 LayerNorms, q/k/v/out with biases, fc1/fc2 with biases
SO400M_LAYER = 4 * 1152 + 4 * (1152 * 1152 + 1152) + 2 * 1152 * 4304 + 4304 + 1152


def test_onevision_7b_matches_the_meta_device_and_skips_the_post_norm():
    spec = build_spec(copy.deepcopy(ONEVISION_7B))
    assert spec.unsupported_reason is None and spec.family == "llava_onevision" and spec.multimodal
    # meta-device count of LlavaOnevisionForConditionalGeneration (torch 2.13, transformers 5.24;
    # tests/test_oracle_vision.py re-computes it)
    assert spec.params_total + spec.unloaded_params == 8_030_807_584
    # vision_feature_layer -1 keeps all 26 layers; require_post_norm=False drops post_layernorm (weight + bias)
    assert spec.unloaded_params == 2 * 1152
    split = vision_split(spec)
    assert split["projector"] == (1152 * 3584 + 3584) + (3584 * 3584 + 3584) + 3584     # linear_1, linear_2, newline
    embeddings = 1152 * 3 * 14 * 14 + 1152 + (384 // 14) ** 2 * 1152
    assert split["tower"] == embeddings + 26 * SO400M_LAYER
    assert spec.kv_bytes_per_token(2) == 28 * 2 * 4 * 128 * 2


def test_onevision_feature_layer_cuts_the_tower():
    cfg = copy.deepcopy(ONEVISION_7B)
    cfg["vision_feature_layer"] = -2
    spec = build_spec(cfg)
    assert spec.unloaded_params == SO400M_LAYER + 2 * 1152
    names = {t.name for t in spec.tensors}
    assert "vision_tower.vision_model.encoder.layers.24.mlp.fc2.weight" in names
    assert not any(".layers.25." in n or "post_layernorm" in n for n in names if n.startswith("vision_tower"))


def test_onevision_shards_and_quantization_follow_vllm():
    by = {t.name: t for t in build_spec(copy.deepcopy(ONEVISION_7B)).tensors}
    p = "vision_tower.vision_model.encoder.layers.0"
    assert by[f"{p}.self_attn.k_proj.weight"].shard is Shard.COLUMN          # multi-head QKVParallelLinear
    assert by[f"{p}.self_attn.out_proj.weight"].shard is Shard.ROW
    assert by[f"{p}.mlp.fc1.weight"].shard is Shard.COLUMN and by[f"{p}.mlp.fc2.weight"].shard is Shard.ROW
    # SiglipMLP takes quant_config only when 1152 and 4304 are multiples of 64 (4304 is not)
    assert by[f"{p}.self_attn.q_proj.weight"].quantizable
    assert not by[f"{p}.mlp.fc1.weight"].quantizable and not by[f"{p}.mlp.fc2.weight"].quantizable
    # the projector is two plain nn.Linear: whole on every rank, never quantized
    for name in ("multi_modal_projector.linear_1.weight", "multi_modal_projector.linear_2.weight", "image_newline"):
        assert by[name].shard is Shard.REPLICATED and not by[name].quantizable
    assert by["multi_modal_projector.linear_1.weight"].shape == (3584, 1152)


def test_onevision_tower_bytes_per_rank_at_tp2():
    """Hand count from vLLM siglip.py: column/row linears halve; norms, row biases, embeddings, projector whole."""
    from reportgen.estimate.encoder import apply_limits, text_only
    from reportgen.matrix import estimate_one

    spec = build_spec(copy.deepcopy(ONEVISION_7B))
    h, i, t = 1152, 4304, 3584
    split = 4 * h * h + 3 * h + h * i + i + i * h                        # q/k/v/out, q/k/v biases, fc1 (+bias), fc2
    whole = 4 * h + h + h                                               # 2 LayerNorms, out bias, fc2 bias
    embeddings = h * 3 * 14 * 14 + h + 729 * h
    projector = h * t + t + t * t + t + t
    per_rank = 26 * (split / 2 + whole) + embeddings + projector
    full = estimate_one(spec, 79.2, tp=2, max_model_len=8192)["weights_gib"]
    text = estimate_one(text_only(spec), 79.2, tp=2, max_model_len=8192)["weights_gib"]
    # + the allocator block of the projector's 3,584 x 3,584 bf16 linear, 24.5 MiB -> 26 (never split from vLLM 0.21,
    # weights.allocator_unsplit_bytes, branch load29); its 1,152 x 3,584 linear is < 10 MiB
    assert (full - text) * 2**30 == pytest.approx(per_rank * 2 + 1.5 * 2**20, rel=1e-9)
    # the tower serves images and videos: both must be 0 for vLLM to skip it
    assert apply_limits(spec, {"image": 0}).multimodal
    assert not apply_limits(spec, {"image": 0, "video": 0}).multimodal


@pytest.mark.parametrize("change,words", [
    ({"vision_feature_layer": [-1, -2]}, "several vision_feature_layer"),
    ({"vision_config": {**ONEVISION_7B["vision_config"], "vision_use_head": True}}, "pooling head"),
    ({"vision_config": {**ONEVISION_7B["vision_config"], "model_type": "pixtral"}}, "vision tower"),
    ({"text_config": {**ONEVISION_7B["text_config"], "model_type": "gemma"}}, "language model"),
])
def test_onevision_refusals_name_the_reason(change, words):
    spec = build_spec({**copy.deepcopy(ONEVISION_7B), **copy.deepcopy(change)})
    assert spec.unsupported_reason and words in spec.unsupported_reason


# ---------------------------------------------------------------- InternVL, HF format (families/internvl.py)

# OpenGVLab/InternVL3-8B-hf, written from memory (InternViT-300M + Qwen2.5-7B text, untied head).  No copy of
# its config.json was found (search 2026-12-03).  A checkpoint of the same architecture agrees to the parameter:
# a third-party evaluation script (stored text id 62066932245, repository not named by the index) reports
# lingshu-medical-mllm's Lingshu-I-8B (InternVLForConditionalGeneration, an InternVL3-8B fine-tune) as
# "7,944,373,760 params" measured from its safetensors headers, InternViT 304,012,288 and a language-model body
# of 6,525,621,760 (Qwen2.5-7B's) -- test_internvl3_8b_agrees_with_a_same_architecture_checkpoint.
INTERNVL3_8B = {
    "architectures": ["InternVLForConditionalGeneration"], "model_type": "internvl", "downsample_ratio": 0.5,
    "image_seq_length": 256, "image_token_id": 151667, "projector_hidden_act": "gelu", "tie_word_embeddings": False,
    "torch_dtype": "bfloat16", "vision_feature_layer": -1, "vision_feature_select_strategy": "default",
    "text_config": {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "bos_token_id": 151643,
                    "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 3584, "intermediate_size": 18944,
                    "max_position_embeddings": 32768, "max_window_layers": 70, "num_attention_heads": 28,
                    "num_hidden_layers": 28, "num_key_value_heads": 4, "rms_norm_eps": 1e-06,
                    "rope_theta": 1000000.0, "sliding_window": None, "tie_word_embeddings": False,
                    "torch_dtype": "bfloat16", "use_sliding_window": False, "vocab_size": 151674},
    "vision_config": {"architectures": ["InternVisionModel"], "model_type": "internvl_vision", "attention_bias": True,
                      "hidden_act": "gelu", "hidden_size": 1024, "image_size": [448, 448], "intermediate_size": 4096,
                      "layer_norm_eps": 1e-06, "layer_scale_init_value": 0.1, "norm_type": "layer_norm",
                      "num_attention_heads": 16, "num_channels": 3, "num_hidden_layers": 24, "patch_size": [14, 14],
                      "use_absolute_position_embeddings": True, "use_mask_token": False, "use_mean_pooling": True,
                      "use_qk_norm": False},
}
FROM_MEMORY["OpenGVLab/InternVL3-8B-hf"] = INTERNVL3_8B
# InternViT-300M layer: q/k/v/projection_layer with biases, 2 LayerNorms, 2 layer scales, fc1/fc2 with biases
INTERNVIT_LAYER = 4 * (1024 * 1024 + 1024) + 4 * 1024 + 2 * 1024 + 2 * 1024 * 4096 + 4096 + 1024


def test_internvl3_8b_matches_the_meta_device_and_vllm_loads_every_tensor():
    spec = build_spec(copy.deepcopy(INTERNVL3_8B))
    assert spec.unsupported_reason is None and spec.family == "internvl" and spec.multimodal
    # meta-device count of InternVLForConditionalGeneration (tests/test_oracle_vision.py re-computes it)
    assert spec.params_total == 7_944_373_760 and spec.unloaded_params == 0
    split = vision_split(spec)
    embeddings = 1024 + 1024 * 3 * 14 * 14 + 1024 + (32 * 32 + 1) * 1024       # cls, patch conv (+bias), positions
    assert split["tower"] == embeddings + 24 * INTERNVIT_LAYER                      # mean pooling: no final norm
    wide = 1024 * 4                                                                 # pixel shuffle 0.5 -> 4x width
    assert split["projector"] == 2 * wide + (wide * 3584 + 3584) + (3584 * 3584 + 3584)
    assert spec.kv_bytes_per_token(2) == 28 * 2 * 4 * 128 * 2


def test_internvl3_8b_agrees_with_a_same_architecture_checkpoint():
    """Lingshu-I-8B's safetensors-header counts (see the comment above INTERNVL3_8B): total, InternViT tower, and
    the language model without its (untied) embedding and head."""
    spec = build_spec(copy.deepcopy(INTERNVL3_8B))
    split = vision_split(spec)
    text = INTERNVL3_8B["text_config"]
    assert spec.params_total == 7_944_373_760
    assert split["tower"] == 304_012_288
    assert spec.params_text - 2 * text["vocab_size"] * text["hidden_size"] == 6_525_621_760


def test_internvl_shards_follow_vllm_interns1_vit():
    by = {t.name: t for t in build_spec(copy.deepcopy(INTERNVL3_8B)).tensors}
    p = "vision_tower.encoder.layer.0"
    # InternSdpaAttention: plain nn.Linear -- whole on every rank, unquantized
    for name in ("q_proj", "k_proj", "v_proj", "projection_layer"):
        assert by[f"{p}.attention.{name}.weight"].shard is Shard.REPLICATED
        assert not by[f"{p}.attention.{name}.weight"].quantizable
    # InternS1VisionMLP: column / row, built without quant_config
    assert by[f"{p}.mlp.fc1.weight"].shard is Shard.COLUMN and by[f"{p}.mlp.fc2.weight"].shard is Shard.ROW
    assert not by[f"{p}.mlp.fc1.weight"].quantizable
    for name in ("multi_modal_projector.layer_norm.weight", "multi_modal_projector.linear_1.weight",
                 "multi_modal_projector.linear_2.weight", f"{p}.lambda_1"):
        assert by[name].shard is Shard.REPLICATED


def test_internvl_tower_bytes_per_rank_at_tp4():
    """Hand count from vLLM interns1_vit.py: only fc1 (weight, bias) and fc2 (weight) split by TP."""
    from reportgen.estimate.encoder import apply_limits, text_only
    from reportgen.matrix import estimate_one

    spec = build_spec(copy.deepcopy(INTERNVL3_8B))
    h, i = 1024, 4096
    split = h * i + i + i * h
    per_rank = sum(tn.numel for tn in spec.tensors if tn.component is Component.VISION) - 24 * split * 3 / 4
    full = estimate_one(spec, 79.2, tp=4, max_model_len=8192)["weights_gib"]
    text = estimate_one(text_only(spec), 79.2, tp=4, max_model_len=8192)["weights_gib"]
    # + the allocator block of mlp1's 3,584 x 3,584 bf16 linear, 24.5 MiB -> 26 (replicated; never split from vLLM
    # 0.21, weights.allocator_unsplit_bytes, branch load29); mlp1's 4,096 x 3,584 is 28 MiB, a 2 MiB multiple
    assert (full - text) * 2**30 == pytest.approx(per_rank * 2 + 1.5 * 2**20, rel=1e-9)
    assert per_rank == 331_552_768 - 24 * 3 * (2 * h * i + i) / 4
    assert not apply_limits(spec, {"image": 0, "video": 0}).multimodal and apply_limits(spec, {"image": 0}).multimodal


def test_internvl_rms_norm_qk_norm_and_pooling_variants():
    cfg = copy.deepcopy(INTERNVL3_8B)
    cfg["vision_config"].update(norm_type="rms_norm", use_qk_norm=True, use_mean_pooling=False, use_mask_token=True)
    spec = build_spec(cfg)
    names = {tn.name for tn in spec.tensors}
    assert "vision_tower.encoder.layer.3.attention.q_norm.weight" in names
    assert "vision_tower.encoder.layer.3.layernorm_before.bias" not in names      # RMSNorm: weight only
    assert {"vision_tower.layernorm.weight", "vision_tower.embeddings.mask_token"} <= names
    base = build_spec(copy.deepcopy(INTERNVL3_8B)).params_total
    assert spec.params_total == base + 24 * (2 * 1024 - 2 * 1024) + 2 * 1024 + 1024   # qk norms = dropped LN biases


@pytest.mark.parametrize("change,words", [
    ({"text_config": {**INTERNVL3_8B["text_config"], "architectures": None}}, "architectures[0]"),
    ({"text_config": {**INTERNVL3_8B["text_config"], "architectures": ["LlamaForCausalLM"]}}, "does not name"),
    ({"text_config": {**INTERNVL3_8B["text_config"], "model_type": "gemma"}}, "language model"),
])
def test_internvl_refusals_name_the_reason(change, words):
    spec = build_spec({**copy.deepcopy(INTERNVL3_8B), **copy.deepcopy(change)})
    assert spec.unsupported_reason and words in spec.unsupported_reason


def test_internvl_other_feature_layer_is_noted_not_repriced():
    cfg = copy.deepcopy(INTERNVL3_8B)
    cfg["vision_feature_layer"] = -2
    spec = build_spec(cfg)
    assert spec.params_total == 7_944_373_760 and any("last layer" in n for n in spec.notes)


def test_internvl_bare_class_defaults_are_refused():
    assert "architectures[0]" in build_spec({"model_type": "internvl"}).unsupported_reason


def test_internvl_untied_text_under_the_tied_class_default_is_noted():
    cfg = copy.deepcopy(INTERNVL3_8B)
    cfg.pop("tie_word_embeddings")          # InternVLConfig default True; the Qwen2 text config says False
    spec = build_spec(cfg)
    assert spec.params_total == 7_944_373_760                 # vLLM's Qwen2ForCausalLM keeps its own lm_head
    assert any("vLLM follows the language model" in n for n in spec.notes)


def test_llava_never_loads_the_clip_post_norm_and_refuses_several_feature_layers():
    cfg = shipped("llava-hf/llava-1.5-7b-hf")
    cfg["vision_feature_layer"] = -1                          # every CLIP layer kept: still no post_layernorm
    spec = build_spec(cfg)
    assert spec.unloaded_params == 2 * 1024
    assert not any("post_layernorm" in t.name for t in spec.tensors)
    cfg["vision_feature_layer"] = [-2, -5]
    assert "several vision_feature_layer" in build_spec(cfg).unsupported_reason
    onevision_clip = copy.deepcopy(ONEVISION_7B)
    onevision_clip["vision_config"] = {**cfg["vision_config"]}
    assert build_spec(onevision_clip).unloaded_params == 2 * 1024


def test_largest_llava_next_and_onevision_images_follow_vllm_processing_info():
    """vLLM llava_next.py @92c504dd get_image_size_with_most_features / get_num_image_tokens."""
    nxt = build_spec(json.loads((DATA / "configs_vision" / "llava-hf--llava-v1.6-mistral-7b-hf.json").read_text()))
    # pinpoint 672 x 672 = 2 x 2 tiles of 24 x 24 patches: 48 x 48 unpadded + 48 newlines + the 576 base tile
    assert nxt.mm_item_tokens == 48 * 48 + 48 + 576 == 2928
    # OneVision profiles 1153 x 944: best pinpoint 1152 x 1536 -> 3 x 4 tiles of 27 -> 81 x 108, width unpadded
    # to int(round(1153 * 81 / 944, 7)) = 98; ratio sqrt(81 * 98 / (9 * 27**2)) < 1.1 keeps it; base 729 (full)
    assert build_spec(copy.deepcopy(ONEVISION_7B)).mm_item_tokens == 81 * 98 + 81 + 729 == 8748
    assert build_spec(shipped("llava-hf/llava-1.5-7b-hf")).mm_item_tokens == 576


def test_largest_internvl_image_is_max_patches_tiles_and_a_thumbnail():
    """vLLM interns1.py @01dc2879 InternS1ProcessingInfo: the tilings of up to max_patches + 1 tiles are walked,
    tokens = image_seq_length x GotOcr2ImageProcessor.get_number_of_image_patches (12 tiles + thumbnail at most)."""
    from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import GotOcr2ImageProcessorPil

    from reportgen.estimate.encoder import apply_limits, encoder_budget

    proc = GotOcr2ImageProcessorPil(crop_to_patches=True, min_patches=1, max_patches=12,
                                 size={"height": 448, "width": 448})
    # vLLM's target ratios: (i, j) with 1 <= i * j <= 13 (max_patches + 1 for the thumbnail)
    most = max(proc.get_number_of_image_patches(448 * j, 448 * i) for i in range(1, 14) for j in range(1, 14)
               if i * j <= 13)
    assert most == 13
    spec = build_spec(copy.deepcopy(INTERNVL3_8B))
    # image_seq_length = (448 / 14)**2 * 0.5**2 = 256 (the config's own image_seq_length says the same)
    assert spec.mm_item_tokens == most * 256 == 3328 and INTERNVL3_8B["image_seq_length"] == 256
    assert encoder_budget(2048, spec.mm_item_tokens) == 3328 and encoder_budget(8192, spec.mm_item_tokens) == 8192
    assert apply_limits(spec, {"image": 2}).mm_item_tokens == 3328
    cfg = copy.deepcopy(INTERNVL3_8B)
    cfg["vision_config"]["image_size"] = [448, 224]          # a (h, w) pair: 32 x 16 patches per tile
    assert build_spec(cfg).mm_item_tokens == 13 * 32 * 16 // 4
