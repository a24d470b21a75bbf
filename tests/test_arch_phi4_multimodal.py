"""Phi-4-multimodal, HF format (``phi4_multimodal``; families/phi4_multimodal.py, vLLM phi4_multimodal.py
@f8cc4535, idefics2_vision_model.py @68137261): what vLLM loads and how it shards it, the parameters it
skips, the encoder budget's largest item, the limits, the LoRA decision and the refusals.  No torch needed;
tests/test_oracle_phi4_multimodal.py checks the counts against the meta device.

``PHI4_MM`` is microsoft/Phi-4-multimodal-instruct's HF-format config.json WRITTEN FROM MEMORY (the
transformers-format revision vLLM's examples load; no copy is in tests/data/configs_2026): the rope
factor lists are 48 placeholder values (their values change no count, only their length is checked).
"""

from __future__ import annotations

import copy

import pytest

from reportgen.arch import build_spec
from reportgen.arch.families import phi4_multimodal as P
from reportgen.arch.spec import Component, Shard
from reportgen.arch.vision_parts import vision_split
from reportgen.estimate import encoder

PHI4_MM = {
    "architectures": ["Phi4MultimodalForCausalLM"],
    "model_type": "phi4_multimodal",
    "attention_dropout": 0.0, "embd_pdrop": 0.0, "resid_pdrop": 0.0,
    "bos_token_id": 199999, "eos_token_id": [199999, 200020], "pad_token_id": 199999,
    "hidden_act": "silu", "hidden_size": 3072, "initializer_range": 0.02, "intermediate_size": 8192,
    "max_position_embeddings": 131072, "original_max_position_embeddings": 4096,
    "num_attention_heads": 24, "num_hidden_layers": 32, "num_key_value_heads": 8,
    "partial_rotary_factor": 0.75, "rms_norm_eps": 1e-05,
    "rope_scaling": {"type": "longrope", "long_factor": [1.0] * 48, "short_factor": [1.0] * 48},
    "rope_theta": 10000.0, "sliding_window": 262144, "tie_word_embeddings": True,
    "torch_dtype": "bfloat16", "use_cache": True, "vocab_size": 200064,
    "vision_config": {
        "model_type": "phi4_multimodal_vision", "attention_dropout": 0.0, "crop_size": 448, "feature_layer": -2,
        "hidden_act": "gelu_pytorch_tanh", "hidden_size": 1152, "image_size": 448, "image_token_id": 200010,
        "intermediate_size": 4304, "layer_norm_eps": 1e-06, "num_attention_heads": 16, "num_channels": 3,
        "num_hidden_layers": 27, "patch_size": 14,
    },
    "audio_config": {
        "model_type": "phi4_multimodal_audio", "activation": "swish", "audio_token_id": 200011,
        "bias_max_distance": 500, "bias_symmetric": False, "chunk_size": -1, "conv_activation": "swish",
        "conv_glu_type": "swish", "depthwise_multiplier": 1, "depthwise_separable_out_channel": 1024,
        "downsample_rate": 1, "dropout_rate": 0.0, "ext_pw_out_channel": 1024, "feature_layer": -2,
        "hidden_size": 1024, "initializer_range": 0.02, "input_size": 80, "intermediate_size": 1536,
        "kernel_size": 3, "left_chunk": 18, "nemo_activation": "relu", "nemo_conv_channels": 1024,
        "nemo_final_size": 10, "num_attention_heads": 16, "num_blocks": 24, "time_reduction": 8,
    },
}


def spec_of(cfg=PHI4_MM):
    spec = build_spec(copy.deepcopy(cfg))
    assert spec.unsupported_reason is None, spec.unsupported_reason
    return spec


# hand counts of the shipped geometry, from transformers' module shapes (not from the family module)
HV, IV, LV, KEEP = 1152, 4304, 27, 26            # SigLIP-so400m, feature_layer -2 -> 26 layers built
HA, IA, NA, HT = 1024, 1536, 24, 3072
VIS_LAYER = 2 * 2 * HV + 4 * (HV * HV + HV) + (HV * IV + IV) + (IV * HV + HV)
VIS_HEAD = HV + (3 * HV * HV + 3 * HV) + (HV * HV + HV) + 2 * HV + (HV * IV + IV) + (IV * HV + HV)
AUD_MLP = 2 * HA + (HA * 2 * IA + 2 * IA) + (IA * HA + HA)
AUD_CONV = 2 * HA + (2 * HA * HA + 2 * HA) + 2 * HA + (HA * 3 + HA) + (HA * HA + HA) + (HA * HA + HA)
AUD_LAYER = 2 * AUD_MLP + 4 * (HA * HA + HA) + AUD_CONV + 2 * 2 * HA
NEMO = (1024 * 9 + 1024) + 2 * ((1024 * 9 + 1024) + (1024 * 1024 + 1024)) + (1024 * 10 * HA + HA)


def test_shipped_tower_and_projectors_by_hand():
    spec = spec_of()
    split = vision_split(spec)
    image_tower = (HV * 3 * 14 * 14 + HV) + 32 * 32 * HV + KEEP * VIS_LAYER + 2 * HV   # + the two extensors
    audio_tower = NEMO + 1000 * 16 + NA * AUD_LAYER                 # 2 x 500 buckets (asymmetric) x 16 heads
    assert split["tower"] == image_tower + audio_tower
    # img_projection (1152 -> 3072 -> 3072) and the speech / vision-speech projections (1024 -> 3072 -> 3072)
    assert split["projector"] == (HV * HT + HT + HT * HT + HT) + 2 * (HA * HT + HT + HT * HT + HT)
    # skipped by vLLM: the last layer, post_layernorm and the pooling head
    assert spec.unloaded_params == (LV - KEEP) * VIS_LAYER + 2 * HV + VIS_HEAD
    # the mean / variance normalisation is on the GPU but no transformers parameter
    assert sum(t.numel for t in spec.tensors if t.allocated_only) == 2 * 80
    assert spec.params_total == spec.params_text + split["tower"] + split["projector"]


def test_text_stack_is_vllms_phi3():
    spec = spec_of()
    assert (spec.num_layers, spec.num_attention_heads, spec.num_kv_heads, spec.head_dim) == (32, 24, 8, 128)
    assert spec.tie_word_embeddings and spec.rotary_dim == 96                    # partial_rotary_factor 0.75
    names = {t.name: t for t in spec.tensors}
    assert names["model.layers.0.self_attn.qkv_proj[k].weight"].shard is Shard.KV
    assert names["model.layers.0.mlp.gate_up_proj[up].weight"].shard is Shard.COLUMN
    assert "lm_head.weight" not in names
    # text = embedding + 32 phi3 layers + final norm
    layer = 3072 * (24 + 16) * 128 + 24 * 128 * 3072 + 3 * 3072 * 8192 + 2 * 3072
    assert spec.params_text == 200064 * 3072 + 32 * layer + 3072


def test_tower_shards_follow_vllm():
    t = {x.name: x for x in spec_of().tensors}
    img = P.TOWER + ".encoder.layers.0"
    assert t[f"{img}.self_attn.q_proj.weight"].shard is Shard.COLUMN
    assert t[f"{img}.self_attn.out_proj.weight"].shard is Shard.ROW
    assert t[f"{img}.self_attn.out_proj.bias"].shard is Shard.REPLICATED
    assert t[f"{img}.mlp.fc1.weight"].shard is Shard.COLUMN and t[f"{img}.mlp.fc2.weight"].shard is Shard.ROW
    assert t[f"{P.TOWER}.embeddings.patch_embedding.weight"].shard is Shard.REPLICATED
    assert f"{P.TOWER}.encoder.layers.26.mlp.fc1.weight" not in t and f"{P.TOWER}.post_layernorm.weight" not in t
    assert not any(".head." in n for n in t)
    aud = f"{P.AUDIO}.encoder.encoders.3"
    assert t[f"{aud}.feed_forward_in.gate_up_proj.weight"].shape == (2 * IA, HA)
    assert t[f"{aud}.feed_forward_in.gate_up_proj.weight"].shard is Shard.COLUMN
    assert t[f"{aud}.feed_forward_out.down_proj.weight"].shard is Shard.ROW
    assert t[f"{aud}.self_attn.k_proj.weight"].shard is Shard.COLUMN and t[f"{aud}.self_attn.o_proj.weight"].shard is Shard.ROW
    assert t[f"{aud}.conv.dw_sep_conv_1d.dw_conv.weight"].shape == (HA, 1, 3)
    assert t[f"{aud}.conv.glu.ext_pw_conv_1d.weight"].shard is Shard.REPLICATED
    assert t[f"{P.AUDIO}.encoder.embed.out.weight"].shard is Shard.REPLICATED
    assert t[f"{P.AUDIO}.up_proj_for_speech.weight"].shard is Shard.COLUMN
    assert t[f"{P.AUDIO}.down_proj_for_vision_speech.weight"].shard is Shard.ROW
    assert t[f"{P.IMAGE}.img_projection_up.weight"].shard is Shard.COLUMN
    # vLLM builds towers and projectors without quant_config
    assert not any(x.quantizable for x in t.values() if x.component is Component.VISION)
    assert all(x.layer is None for x in t.values() if x.component is Component.VISION)


def test_tower_bytes_per_rank_at_tp2_by_hand():
    from reportgen.matrix import estimate_one

    spec = spec_of()
    split_l = 4 * HV * HV + 3 * HV + HV * IV + IV + IV * HV                   # q/k/v (+bias), out, fc1 (+bias), fc2
    whole_l = 4 * HV + HV + HV                                               # 2 LayerNorms, out / fc2 biases
    img = KEEP * (split_l / 2 + whole_l) + HV * 3 * 14 * 14 + HV + 1024 * HV + 2 * HV
    a_split = 2 * (HA * 2 * IA + 2 * IA + IA * HA) + 3 * (HA * HA + HA) + HA * HA
    a_whole = 2 * (2 * HA + HA) + HA + AUD_CONV + 4 * HA
    aud = NA * (a_split / 2 + a_whole) + NEMO + 1000 * 16 + 2 * 80
    proj = 3 * (HT * HT / 2 + HT) + (HV * HT + HT) / 2 + 2 * ((HA * HT + HT) / 2)   # downs: row, bias whole
    # vLLM served Phi4MultimodalForCausalLM until v0.12.0 (estimate/served.py): price it on 0.12
    full = estimate_one(spec, 79.2, tp=2, max_model_len=8192, vllm_version="0.12")["weights_gib"]
    no_tower = estimate_one(encoder.text_only(spec), 79.2, tp=2, max_model_len=8192,
                            vllm_version="0.12")["weights_gib"]
    assert (full - no_tower) * 2**30 == pytest.approx((img + aud + proj) * 2, rel=1e-9)


def test_served_by_vllm_0_12_and_older_only():
    from reportgen.matrix import estimate_one

    assert "no longer serves Phi4MultimodalForCausalLM" in estimate_one(spec_of(), 79.2, vllm_version="0.13")["reason"]
    assert estimate_one(spec_of(), 79.2, vllm_version="0.12")["status"] != "unsupported"


def test_largest_item_is_vllms_tallest_image():
    spec = spec_of()
    # 448 x (448 * 36): 16 x 576 compressed patches, 576 newlines, 16 x 16 global + 16 newlines + 1 separator
    assert spec.mm_item_tokens == 16 * 576 + 576 + 256 + 16 + 1 == 10065
    assert P.audio_item_tokens() == 188                      # (241000 - 400) // 160 + 1 = 1504 frames / 8
    assert P.image_item_tokens(448, 16) == 37 * 14 * 15 + 1  # a 28 x 28 grid: (dynamic_hd + 1) * 14 * 15 + 1
    assert P.image_item_tokens(450, 14) == 0                 # image size not a multiple of the patch
    assert P.image_item_tokens(14 * 33, 14) == 0             # odd patch grid
    assert encoder.encoder_budget(8192, spec.mm_item_tokens) == 10065


def test_limits_zero_keep_the_towers_but_drop_the_profile():
    spec = spec_of()
    assert encoder.tower_modalities(spec) == ("image", "audio")
    audio_only = encoder.apply_limits(spec, {"image": 0})                 # audio still allowed: towers kept
    assert audio_only.multimodal and audio_only.tensors == spec.tensors
    # vLLM budget.py @03ff0a31: only the modalities with a limit > 0 are profiled -> the audio item
    assert audio_only.mm_item_tokens == P.audio_item_tokens() < spec.mm_item_tokens == 10065
    assert encoder.apply_limits(spec, {"audio": 0}).mm_item_tokens == 10065
    off = encoder.apply_limits(spec, {"image": 0, "audio": 0})
    assert not off.multimodal and off.tensors == spec.tensors             # weights unchanged, no encoder term
    assert any("towers stay loaded" in n for n in off.notes)


def test_lora_is_stated_not_priced():
    spec = spec_of()
    assert any(n.startswith("LoRA not priced") and "--enable-lora" in n for n in spec.notes)


def test_trimmed_config_takes_class_default_towers():
    cfg = {k: v for k, v in PHI4_MM.items() if k not in ("vision_config", "audio_config")}
    spec = spec_of(cfg)
    assert sum("class default" in n for n in spec.notes) == 2
    # the class defaults are the shipped towers but for bias_max_distance (1000 vs 500): 500 x 2 x 16 more
    full = vision_split(spec_of())
    assert vision_split(spec) == dict(full, tower=full["tower"] + 500 * 2 * 16)


@pytest.mark.parametrize("patch,words", [
    ({"attention_bias": True}, "attention_bias"),
    ({"mlp_bias": True}, "mlp_bias"),
    ({"audio_config": dict(PHI4_MM["audio_config"], head_dim=32)}, "head_dim"),
    ({"vision_config": dict(PHI4_MM["vision_config"], model_type="siglip_vision_model")}, "vision_config"),
])
def test_refusals(patch, words):
    spec = build_spec(dict(copy.deepcopy(PHI4_MM), **patch))
    assert spec.unsupported_reason and words in spec.unsupported_reason


@pytest.mark.parametrize("patch,field", [
    ({"vision_config": dict(PHI4_MM["vision_config"], feature_layer=27)}, "vision_config.feature_layer"),
    ({"vision_config": dict(PHI4_MM["vision_config"], feature_layer=-29)}, "vision_config.feature_layer"),
    ({"audio_config": dict(PHI4_MM["audio_config"], num_attention_heads=24)}, "audio_config.num_attention_heads"),
    ({"audio_config": [1]}, "audio_config"),
    ({"audio_config": dict(PHI4_MM["audio_config"], time_reduction=3)}, "audio_config.time_reduction"),
    ({"audio_config": dict(PHI4_MM["audio_config"], bias_symmetric=1)}, "audio_config.bias_symmetric"),
])
def test_bad_fields_are_named(patch, field):
    from reportgen.arch.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        build_spec(dict(copy.deepcopy(PHI4_MM), **patch))
    assert e.value.field == field
