"""Mistral Small 4 (``mistral4``, alone and inside a ``mistral3`` composite): tensors, shards, KV, refusals.

What vLLM builds (families/mistral4.py): vLLM's ``get_config`` takes a Mistral repository's ``params.json``
first (vllm/transformers_utils/config.py @0036026e, "First check for Mistral to avoid defaulting to
Transformers implementation"); ``adapt_config_dict`` (vllm/transformers_utils/configs/mistral.py @01da88c5)
makes an MLA MoE with shared experts ``MistralLarge3ForCausalLM``, which is ``DeepseekV3ForCausalLM``
(vllm/model_executor/models/mistral_large_3.py @0bb55d60).  KV: ``MLAAttentionSpec(head_size=kv_lora_rank
+ qk_rope_head_dim)`` per layer, not split by TP (as pinned for DeepSeek-V3 / GLM-4.7-Flash).

The geometry below is transformers 5.24's Mistral4Config defaults, which its docstring names as
mistralai/Mistral-Small-4-119B-2603 (no config file of it is in tests/data/configs_2026).  Every total is
compared with the meta device in tests/test_oracle_mistral4.py; here they are derived by hand.
"""

from __future__ import annotations

import pytest

from reportgen.arch import build_spec
from reportgen.arch.spec import AttentionKind, Component, Shard
from reportgen.estimate.kvcache import kv_bytes_per_token

SMALL4 = {
    "model_type": "mistral4", "architectures": ["Mistral4ForCausalLM"], "vocab_size": 131072, "hidden_size": 4096,
    "intermediate_size": 12288, "moe_intermediate_size": 2048, "num_hidden_layers": 36, "num_attention_heads": 32,
    "num_key_value_heads": 32, "n_shared_experts": 1, "n_routed_experts": 128, "kv_lora_rank": 256,
    "q_lora_rank": 1024, "qk_rope_head_dim": 64, "v_head_dim": 128, "qk_nope_head_dim": 64, "num_experts_per_tok": 4,
    "first_k_dense_replace": 0, "max_position_embeddings": 1048576, "tie_word_embeddings": False,
    "rope_parameters": {"type": "yarn", "rope_theta": 10000.0, "factor": 128.0, "original_max_position_embeddings": 8192,
                        "max_position_embeddings": 1048576, "beta_fast": 32.0, "beta_slow": 1.0, "mscale_all_dim": 1.0,
                        "mscale": 1.0, "llama_4_scaling_beta": 0.1, "partial_rotary_factor": 0.5},
    "rope_interleave": True, "dtype": "bfloat16",
}


def small4(**over) -> dict:
    return dict(SMALL4, **over)


def mla_params(c: dict) -> int:
    """One MLA block written out (q_lora path, no biases)."""
    h, heads = c["hidden_size"], c["num_attention_heads"]
    q, kv, rope, nope, vd = c["q_lora_rank"], c["kv_lora_rank"], c["qk_rope_head_dim"], c["qk_nope_head_dim"], c["v_head_dim"]
    return h * q + q + q * heads * (nope + rope) + h * (kv + rope) + kv + kv * heads * (nope + vd) + heads * vd * h


def hand_count(c: dict) -> int:
    """DeepSeek-V3 tensors written out."""
    h, v = c["hidden_size"], c["vocab_size"]
    e, mi, ns = c["n_routed_experts"], c["moe_intermediate_size"], c["n_shared_experts"]
    attn = mla_params(c)
    moe = e * h + e * 3 * h * mi + 3 * h * mi * ns
    dense = 3 * h * c["intermediate_size"]
    k = c["first_k_dense_replace"]
    layers = c["num_hidden_layers"] * (2 * h + attn) + k * dense + (c["num_hidden_layers"] - k) * moe
    return 2 * v * h + h + layers


def tensor(spec, name):
    (t,) = [t for t in spec.tensors if t.name == name]
    return t


def test_small4_total_matches_hand_count():
    spec = build_spec(SMALL4)
    assert spec.unsupported_reason is None and spec.family == "mistral4" and spec.is_mla
    assert spec.params_total == hand_count(SMALL4) == 118_972_826_624
    # 128 routed experts of 3 x 4096 x 2048 in each of 36 layers
    assert spec.params_by_component()["routed_experts"] == 36 * 128 * 3 * 4096 * 2048
    assert spec.experts_per_token == 4 and spec.num_shared_experts == 1


def test_small4_every_layer_holds_one_latent_not_split_by_tp():
    spec = build_spec(SMALL4)
    assert len(spec.layers_kv) == 36
    for layer in spec.layers_kv:
        assert layer.kind is AttentionKind.MLA and not layer.sparse and layer.index_token_bytes == 0
        assert (layer.head_size_k, layer.head_size_v) == (256 + 64, 0)
    assert kv_bytes_per_token(spec, "auto", 2, 1) == 36 * 320 * 2 == 23_040
    assert kv_bytes_per_token(spec, "fp8", 2, 1) == 36 * 320 == 11_520
    assert kv_bytes_per_token(spec, "auto", 2, 8) == 23_040        # MLA latent is replicated over TP ranks


def test_small4_shards_are_deepseek_v3s():
    spec = build_spec(SMALL4)
    a = "model.layers.3.self_attn."
    # vLLM fuses q_a_proj + kv_a_proj_with_mqa into the replicated fused_qkv_a_proj
    assert tensor(spec, a + "q_a_proj.weight").shard is Shard.REPLICATED
    assert tensor(spec, a + "kv_a_proj_with_mqa.weight").shard is Shard.REPLICATED
    assert tensor(spec, a + "kv_a_proj_with_mqa.weight").shape == (256 + 64, 4096)
    assert tensor(spec, a + "q_b_proj.weight").shard is Shard.COLUMN
    assert tensor(spec, a + "kv_b_proj.weight").shape == (32 * (64 + 128), 256)
    assert tensor(spec, a + "o_proj.weight").shard is Shard.ROW
    gate = tensor(spec, "model.layers.3.mlp.gate.weight")
    assert (gate.shape, gate.shard, gate.component) == ((128, 4096), Shard.REPLICATED, Component.ROUTER)
    up = tensor(spec, "model.layers.3.mlp.experts.gate_up_proj.weight")
    assert (up.shape, up.count, up.shard) == ((2 * 2048, 4096), 128, Shard.EXPERT)
    # no e_score_correction_bias: adapt_config_dict sets topk_method None (vLLM), the router has none (HF)
    assert not [t for t in spec.tensors if "e_score_correction_bias" in t.name]


def test_small4_first_dense_layers():
    spec = build_spec(small4(first_k_dense_replace=2))
    assert tensor(spec, "model.layers.1.mlp.gate_proj.weight").shape == (12288, 4096)
    assert not [t for t in spec.tensors if t.name.startswith("model.layers.1.mlp.experts")]
    assert tensor(spec, "model.layers.2.mlp.gate.weight").shape == (128, 4096)
    assert spec.params_total == hand_count(small4(first_k_dense_replace=2))


def test_small4_rotary_cache_and_length_limit():
    """MLA get_rope over qk_rope_head_dim; yarn becomes deepseek_yarn: original 8192 x factor 128 rows."""
    spec = build_spec(SMALL4)
    assert spec.rope_caches == ((8192 * 128, 64, 0),)
    assert spec.max_model_len_limit == 1_048_576


@pytest.mark.parametrize("change, words", [
    ({"moe_layer_freq": 2}, "moe_layer_freq"),
    ({"n_shared_experts": 0}, "MixtralForCausalLM"),
    ({"attention_bias": True}, "biases"),
])
def test_configs_vllm_builds_differently_are_refused(change, words):
    reason = build_spec(small4(**change)).unsupported_reason
    assert reason and words in reason


def test_missing_first_k_dense_takes_the_class_default():
    cfg = small4()
    cfg.pop("first_k_dense_replace")
    assert build_spec(cfg).params_total == hand_count(SMALL4)


PIXTRAL = {"model_type": "pixtral", "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
           "num_attention_heads": 16, "head_dim": 64, "image_size": 1540, "patch_size": 14, "num_channels": 3,
           "rope_theta": 10000.0}


def small4_composite(**over) -> dict:
    text = {k: v for k, v in SMALL4.items() if k != "architectures"}
    cfg = {"model_type": "mistral3", "architectures": ["Mistral3ForConditionalGeneration"], "text_config": text,
           "vision_config": PIXTRAL, "image_token_index": 10, "multimodal_projector_bias": False,
           "projector_hidden_act": "gelu", "spatial_merge_size": 2, "vision_feature_layer": -1}
    cfg.update(over)
    return cfg


def test_small4_composite_is_text_plus_pixtral():
    spec = build_spec(small4_composite())
    assert spec.unsupported_reason is None and spec.is_mla
    by = spec.params_by_component()
    tower = (1024 * 3 * 14 * 14 + 1024 + 24 * (2 * 1024 + 4 * 1024 * 1024 + 3 * 1024 * 4096)
             + 1024 + 1024 * 4 * 1024 + 1024 * 4096 + 4096 * 4096)   # + projector norm, merger, linear_1 / linear_2
    assert by["vision"] == tower
    assert spec.params_total == hand_count(SMALL4) + tower
    assert kv_bytes_per_token(spec, "auto", 2, 1) == 23_040
    assert spec.rope_caches[0] == (8192 * 128, 64, 0)
