"""Hand-computed counts, invariants over random valid configs, and refusal of invalid ones.

Random configs start from a real config of each family (reportgen/sources/bundled)
with the geometry replaced by small random values, so every family adapter is
exercised on shapes it has never seen.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from reportgen.arch import ConfigError, build_spec
from reportgen.arch.spec import AttentionKind, Component

BUNDLED = Path(__file__).resolve().parents[1] / "reportgen" / "sources" / "bundled"


def _load(name: str) -> dict:
    return json.loads((BUNDLED / f"{name}.json").read_text())


TEMPLATES = {
    "llama": _load("meta-llama--Meta-Llama-3.1-8B"),
    "mistral": _load("mistralai--Mistral-7B-v0.1"),
    "qwen2": _load("Qwen--Qwen2.5-7B"),
    "qwen3": _load("Qwen--Qwen3-8B"),
    "granite": _load("ibm-granite--granite-3.3-8b-instruct"),
    "gemma": _load("google--gemma-7b"),
    "gemma2": _load("google--gemma-2-9b"),
    "phi": _load("microsoft--phi-2"),
    "phi3": _load("microsoft--phi-4"),
    "mixtral": _load("mistralai--Mixtral-8x7B-v0.1"),
    "qwen2_moe": _load("Qwen--Qwen1.5-MoE-A2.7B-Chat"),
    "qwen3_moe": _load("Qwen--Qwen3-30B-A3B"),
    "deepseek_v2": _load("deepseek-ai--DeepSeek-V2-Lite"),
    "deepseek_v3": _load("deepseek-ai--DeepSeek-V3"),
    "glm4_moe": _load("zai-org--GLM-4.5-Air"),
    "gpt_oss": _load("openai--gpt-oss-20b"),
    "gemma3": _load("google--gemma-3-12b-it"),
    "mistral3": _load("mistralai--Mistral-Small-3.1-24B-Instruct-2503"),
    "llama4": _load("meta-llama--Llama-4-Scout-17B-16E-Instruct"),
}
# Families without a bundled config: realistic published configs WRITTEN FROM MEMORY (architecture
# fields only; not fetched), used as random-config templates and checked against the meta-device oracle.
TEMPLATES_FROM_MEMORY = {
    # allenai/OLMo-2-1124-7B
    "olmo2": {"model_type": "olmo2", "architectures": ["Olmo2ForCausalLM"], "hidden_size": 4096,
              "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
              "num_key_value_heads": 32, "vocab_size": 100352, "max_position_embeddings": 4096,
              "rope_theta": 500000, "rms_norm_eps": 1e-06, "attention_bias": False, "tie_word_embeddings": False,
              "torch_dtype": "float32"},
    # allenai/Olmo-3-7B-Instruct (yarn x8 on full layers, 3 of 4 layers sliding 4096)
    "olmo3": {"model_type": "olmo3", "architectures": ["Olmo3ForCausalLM"], "hidden_size": 4096,
              "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
              "num_key_value_heads": 32, "vocab_size": 100278, "max_position_embeddings": 65536,
              "rope_theta": 500000, "rope_scaling": {"rope_type": "yarn", "factor": 8.0,
              "original_max_position_embeddings": 8192, "attention_factor": 1.2079441541679836,
              "beta_fast": 32, "beta_slow": 1}, "sliding_window": 4096, "rms_norm_eps": 1e-06,
              "attention_bias": False, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
              "layer_types": ["sliding_attention"] * 3 + ["full_attention"]
              + ["sliding_attention"] * 3 + ["full_attention"] + (["sliding_attention"] * 3 + ["full_attention"]) * 6},
    # THUDM/GLM-4-9B-0414
    "glm4": {"model_type": "glm4", "architectures": ["Glm4ForCausalLM"], "hidden_size": 4096,
             "intermediate_size": 13696, "num_hidden_layers": 40, "num_attention_heads": 32,
             "num_key_value_heads": 2, "head_dim": 128, "vocab_size": 151552, "max_position_embeddings": 32768,
             "partial_rotary_factor": 0.5, "rope_theta": 10000.0, "rms_norm_eps": 1e-05, "attention_bias": True,
             "tie_word_embeddings": False, "torch_dtype": "bfloat16"},
    # LGAI-EXAONE/EXAONE-4.0-32B (3 sliding : 1 full, llama3 rope scaling)
    "exaone4": {"model_type": "exaone4", "architectures": ["Exaone4ForCausalLM"], "hidden_size": 5120,
                "intermediate_size": 27392, "num_hidden_layers": 64, "num_attention_heads": 40,
                "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 102400, "max_position_embeddings": 131072,
                "rope_theta": 1000000, "rope_scaling": {"rope_type": "llama3", "factor": 16.0, "low_freq_factor": 1.0,
                "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}, "sliding_window": 4096,
                "sliding_window_pattern": "LLLG", "layer_types": (["sliding_attention"] * 3 + ["full_attention"]) * 16,
                "rms_norm_eps": 1e-05, "tie_word_embeddings": False, "torch_dtype": "bfloat16"},
    # ByteDance-Seed/Seed-OSS-36B-Instruct
    "seed_oss": {"model_type": "seed_oss", "architectures": ["SeedOssForCausalLM"], "hidden_size": 5120,
                 "intermediate_size": 27648, "num_hidden_layers": 64, "num_attention_heads": 80,
                 "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 155136, "max_position_embeddings": 524288,
                 "rope_theta": 10000000.0, "rms_norm_eps": 1e-06, "attention_bias": True, "attention_out_bias": False,
                 "mlp_bias": False, "tie_word_embeddings": False, "torch_dtype": "bfloat16"},
    # bigcode/starcoder2-15b (sliding window 4096 on every layer)
    "starcoder2": {"model_type": "starcoder2", "architectures": ["Starcoder2ForCausalLM"], "hidden_size": 6144,
                   "intermediate_size": 24576, "num_hidden_layers": 40, "num_attention_heads": 48,
                   "num_key_value_heads": 4, "vocab_size": 49152, "max_position_embeddings": 16384,
                   "sliding_window": 4096, "rope_theta": 100000, "norm_epsilon": 1e-05, "use_bias": True,
                   "hidden_act": "gelu_pytorch_tanh", "tie_word_embeddings": False, "torch_dtype": "float32"},
    # allenai/OLMoE-1B-7B-0924
    "olmoe": {"model_type": "olmoe", "architectures": ["OlmoeForCausalLM"], "hidden_size": 2048,
              "intermediate_size": 1024, "num_hidden_layers": 16, "num_attention_heads": 16,
              "num_key_value_heads": 16, "num_experts": 64, "num_experts_per_tok": 8, "vocab_size": 50304,
              "max_position_embeddings": 4096, "rope_theta": 10000.0, "rms_norm_eps": 1e-05, "clip_qkv": None,
              "norm_topk_prob": False, "output_router_logits": False, "router_aux_loss_coef": 0.01,
              "attention_bias": False, "tie_word_embeddings": False, "torch_dtype": "bfloat16"},
    # ibm-granite/granite-3.1-3b-a800m-instruct
    "granitemoe": {"model_type": "granitemoe", "architectures": ["GraniteMoeForCausalLM"], "hidden_size": 1536,
                   "intermediate_size": 512, "num_hidden_layers": 32, "num_attention_heads": 24,
                   "num_key_value_heads": 8, "num_local_experts": 40, "num_experts_per_tok": 8,
                   "vocab_size": 49155, "max_position_embeddings": 131072, "rope_theta": 10000000,
                   "rms_norm_eps": 1e-06, "attention_bias": False, "attention_multiplier": 0.015625,
                   "embedding_multiplier": 12.0, "logits_scaling": 6.0, "residual_multiplier": 0.22,
                   "tie_word_embeddings": True, "torch_dtype": "bfloat16"},
    # microsoft/Phi-3.5-MoE-instruct (longrope, window 131072 on every layer)
    "phimoe": {"model_type": "phimoe", "architectures": ["PhiMoEForCausalLM"], "hidden_size": 4096,
               "intermediate_size": 6400, "num_hidden_layers": 32, "num_attention_heads": 32,
               "num_key_value_heads": 8, "num_local_experts": 16, "num_experts_per_tok": 2, "vocab_size": 32064,
               "max_position_embeddings": 131072, "original_max_position_embeddings": 4096,
               "rope_theta": 10000.0, "rope_scaling": {"type": "longrope", "short_factor": [1.0] * 64,
               "long_factor": [1.0] * 64, "short_mscale": 1.243163121016122, "long_mscale": 1.243163121016122,
               "original_max_position_embeddings": 4096}, "sliding_window": 131072, "rms_norm_eps": 1e-05,
               "attention_bias": True, "lm_head_bias": True, "router_jitter_noise": 0.01,
               "input_jitter_noise": 0.01, "tie_word_embeddings": False, "torch_dtype": "bfloat16"},
    # arcee-ai/AFM-4.5B (ReLU^2 MLP without gate, yarn x4)
    "arcee": {"model_type": "arcee", "architectures": ["ArceeForCausalLM"], "hidden_size": 2560,
              "intermediate_size": 18432, "num_hidden_layers": 36, "num_attention_heads": 20,
              "num_key_value_heads": 4, "head_dim": 128, "vocab_size": 128004, "max_position_embeddings": 65536,
              "rope_theta": 10000.0, "rope_scaling": {"rope_type": "yarn", "factor": 16.0,
              "original_max_position_embeddings": 4096, "beta_fast": 32.0, "beta_slow": 1.0, "mscale": 1.0,
              "mscale_all_dim": 0.0}, "rms_norm_eps": 1e-05, "hidden_act": "relu2", "attention_bias": False,
              "mlp_bias": False, "tie_word_embeddings": False, "torch_dtype": "bfloat16"},
}
TEMPLATES.update(copy.deepcopy(TEMPLATES_FROM_MEMORY))
TEMPLATES["gemma3_text"] = dict(TEMPLATES["gemma3"]["text_config"], architectures=["Gemma3ForCausalLM"])
TEMPLATES["llama4_text"] = dict(TEMPLATES["llama4"]["text_config"], architectures=["Llama4ForCausalLM"])
FAMILIES = sorted(TEMPLATES)
MOE = {"olmoe", "granitemoe", "phimoe", "mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v2", "deepseek_v3", "glm4_moe", "gpt_oss", "llama4", "llama4_text"}
MLA = {"deepseek_v2", "deepseek_v3"}
# per-layer lists that must follow the layer count; dropped so transformers re-derives them
_PER_LAYER_KEYS = ("layer_types", "moe_layers", "no_rope_layers", "mlp_only_layers")


def _text(cfg: dict) -> dict:
    return cfg["text_config"] if "text_config" in cfg else cfg


# ---------------------------------------------------------------- hand-computed


def tiny_llama(**over) -> dict:
    cfg = {"model_type": "llama", "vocab_size": 100, "hidden_size": 16, "num_hidden_layers": 2,
           "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 32,
           "tie_word_embeddings": False}
    cfg.update(over)
    return cfg


def test_tiny_llama_by_hand():
    spec = build_spec(tiny_llama())
    embed = 100 * 16
    attn = 16 * 16 + 2 * (16 * 8) + 16 * 16          # q, k, v (2 kv heads x 4), o
    mlp = 3 * 16 * 32                                 # gate, up, down
    per_layer = attn + mlp + 2 * 16                   # + two RMSNorms
    assert spec.params_total == embed + 2 * per_layer + 16 + embed == 7888
    assert spec.kv_bytes_per_token(2) == 2 * 2 * 2 * 4 * 2 == 64   # layers * (K+V) * kv heads * head_dim * bf16
    assert spec.kv_bytes_per_token(1, tp=2) == 2 * 2 * 1 * 4
    comp = spec.params_by_component()
    assert (comp["embedding"], comp["lm_head"], comp["attention"], comp["dense_mlp"], comp["norm"]) == (
        1600, 1600, 2 * attn, 2 * mlp, 2 * 32 + 16)
    assert spec.params_active == spec.params_total and spec.num_experts == 0


def test_tiny_llama_tied_and_biased():
    untied = build_spec(tiny_llama()).params_total
    assert build_spec(tiny_llama(tie_word_embeddings=True)).params_total == untied - 1600
    # attention_bias: q, k, v, o biases (16 + 8 + 8 + 16) per layer; mlp_bias: 32 + 32 + 16 per layer
    assert build_spec(tiny_llama(attention_bias=True)).params_total == untied + 2 * 48
    assert build_spec(tiny_llama(mlp_bias=True)).params_total == untied + 2 * 80


def test_llama_class_defaults_match_oracle_selftest():
    cfg = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
           "vocab_size": 32000}
    spec = build_spec(cfg)
    assert spec.params_total == 6_738_415_616 and spec.kv_bytes_per_token(2) == 524_288


def test_kimi_k2_parsed_as_deepseek_v3():
    base = TEMPLATES["deepseek_v3"]
    kimi = dict(base, model_type="kimi_k2", architectures=["DeepseekV3ForCausalLM"],
                auto_map={"AutoConfig": "configuration_deepseek.DeepseekV3Config"})
    a, b = build_spec(base), build_spec(kimi)
    assert b.unsupported_reason is None and b.family == "deepseek_v3"
    assert b.params_total == a.params_total and b.kv_bytes_per_token(2) == a.kv_bytes_per_token(2)
    assert any("kimi_k2" in n for n in b.notes)


def test_unknown_model_type_is_unsupported():
    spec = build_spec({"model_type": "foo", "hidden_size": 8})
    assert spec.unsupported_reason == "model_type foo is not supported"
    assert spec.params_total == 0


def test_remote_code_only_type_without_known_architecture_is_unsupported():
    spec = build_spec({"model_type": "chatglm", "architectures": ["ChatGLMModel"], "auto_map": {"AutoConfig": "x.Y"}})
    assert spec.unsupported_reason == "model_type chatglm is not supported"


@pytest.mark.parametrize(("patch", "feature"), [
    ({"num_kv_shared_layers": 10}, "num_kv_shared_layers"),
    ({"num_key_value_heads": [2, 2]}, "per-layer num_key_value_heads"),
    ({"num_attention_heads": [4, 4], "num_key_value_heads": 2}, "per-layer num_attention_heads"),
    ({"layer_types": ["linear_attention", "full_attention"]}, "linear_attention"),
    ({"index_head_dim": 128, "index_n_heads": 64}, "indexer"),
    ({"kv_lora_rank": 512}, "kv_lora_rank"),
    ({"mamba_d_state": 16}, "Mamba"),
])
def test_unmodelled_features_are_unsupported_never_guessed(patch, feature):
    spec = build_spec(tiny_llama(**patch))
    assert spec.unsupported_reason and feature in spec.unsupported_reason
    assert spec.tensors == []


def test_unmodelled_feature_in_text_config_of_multimodal():
    cfg = copy.deepcopy(TEMPLATES["gemma3"])
    cfg["text_config"]["num_kv_shared_layers"] = 4
    assert "num_kv_shared_layers" in build_spec(cfg).unsupported_reason


def test_multimodal_with_unverified_language_model_is_unsupported():
    cfg = copy.deepcopy(TEMPLATES["mistral3"])
    cfg["text_config"]["model_type"] = "qwen2"
    assert "qwen2" in build_spec(cfg).unsupported_reason


@pytest.mark.parametrize(("sub", "model_type"), [("text_config", "foo"), ("vision_config", "clip_vision_model")])
def test_multimodal_with_unknown_part_is_unsupported(sub, model_type):
    cfg = copy.deepcopy(TEMPLATES["gemma3"])
    cfg[sub]["model_type"] = model_type
    assert model_type in build_spec(cfg).unsupported_reason


def test_deepseek_v2_moe_layer_freq_is_unsupported():
    cfg = dict(TEMPLATES["deepseek_v2"], moe_layer_freq=2)
    assert "moe_layer_freq" in build_spec(cfg).unsupported_reason


def test_hybrid_types_vllm_does_not_serve_are_unsupported_with_reason():
    for mt in ("recurrent_gemma", "rwkv", "zamba"):
        reason = build_spec({"model_type": mt}).unsupported_reason
        assert reason and reason.startswith(mt + ":") and "vLLM" in reason and "registry.py @055e47c2" in reason


def test_mla_kv_is_one_latent_per_layer():
    spec = build_spec(TEMPLATES["deepseek_v2"])
    assert {l.kind for l in spec.layers_kv} == {AttentionKind.MLA}
    assert spec.kv_bytes_per_token(2) == 27 * (512 + 64) * 2


# ---------------------------------------------------------------- random valid configs


@st.composite
def family_configs(draw, family: str):
    """A small random valid config of one family, derived from a real one."""
    cfg = copy.deepcopy(TEMPLATES[family])
    cfg.pop("quantization_config", None)
    t = _text(cfg)
    for key in _PER_LAYER_KEYS + ("pad_token_id", "bos_token_id", "eos_token_id"):
        t.pop(key, None)  # token ids would fall outside the small random vocabulary
    t["pad_token_id"] = None  # (class defaults too)
    heads = draw(st.sampled_from([1, 2, 4, 8]))
    kv = draw(st.sampled_from([d for d in (1, 2, 4, 8) if heads % d == 0]))
    head_dim = draw(st.sampled_from([4, 8, 16]))
    hidden = heads * head_dim * draw(st.integers(1, 2))
    layers = draw(st.integers(1, 6))
    t.update(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv,
             vocab_size=draw(st.integers(8, 512)), intermediate_size=draw(st.integers(1, 96)))
    if "head_dim" in t or family in ("gemma", "gemma2", "gemma3", "gemma3_text", "mistral3", "llama4", "gpt_oss"):
        t["head_dim"] = head_dim
    if "intermediate_size_mlp" in t:
        t["intermediate_size_mlp"] = draw(st.integers(1, 96))
    if family in MOE:
        experts = draw(st.integers(1, 8))
        for key in ("num_local_experts", "num_experts", "n_routed_experts"):
            if key in t:
                t[key] = experts
        t["num_experts_per_tok"] = draw(st.integers(1, experts))
        if "moe_intermediate_size" in t:
            t["moe_intermediate_size"] = draw(st.integers(1, 64))
        if "shared_expert_intermediate_size" in t:
            t["shared_expert_intermediate_size"] = draw(st.integers(0, 64))
        if "first_k_dense_replace" in t:
            t["first_k_dense_replace"] = draw(st.integers(0, layers))
        if "n_shared_experts" in t:
            t["n_shared_experts"] = draw(st.integers(0, 2))
        if "n_group" in t:
            t["n_group"], t["topk_group"] = 1, 1
        if family in ("llama4", "llama4_text"):
            t["interleave_moe_layer_step"] = draw(st.integers(1, 2))
    if family in MLA:
        t["kv_lora_rank"] = draw(st.integers(1, 32))
        t["q_lora_rank"] = draw(st.one_of(st.none(), st.integers(1, 32)))
        t["qk_rope_head_dim"] = 2 * draw(st.integers(1, 8))
        t["qk_nope_head_dim"] = draw(st.integers(1, 16))
        t["v_head_dim"] = draw(st.integers(1, 16))
    if family == "phimoe":  # longrope factor lists must match the random head_dim
        t.pop("rope_scaling", None)
    if family == "exaone4":  # layer_types dropped: re-derived from an int pattern ("LLLG" needs layer_types)
        t["sliding_window_pattern"] = draw(st.integers(2, 4))  # 1: every layer full with a window (refused)
        t["sliding_window"] = draw(st.sampled_from([16, 4096]))
    if family in ("qwen2_moe", "qwen3_moe"):
        t["decoder_sparse_step"] = draw(st.integers(1, 3))
        t["mlp_only_layers"] = draw(st.lists(st.integers(0, layers - 1), unique=True, max_size=layers))
    # olmoe / phimoe: vLLM never ties their lm_head, a tied config is refused (tested separately)
    for flag in _FLAGS.get(family, ()) + (("tie_word_embeddings",) if family not in ("olmoe", "phimoe") else ()):
        choice = draw(st.sampled_from([True, False, None]))  # None: leave it to the class default
        if choice is None:
            t.pop(flag, None)
        else:
            t[flag] = choice
    if draw(st.booleans()):
        t.pop("head_dim", None)  # class default, or hidden // heads
    if family in ("gemma3", "mistral3", "llama4"):
        v = cfg["vision_config"]
        vh = draw(st.sampled_from([1, 2])) * 8
        v.update(hidden_size=vh * 2, num_attention_heads=2, num_hidden_layers=draw(st.integers(1, 3)),
                 intermediate_size=draw(st.integers(1, 64)), image_size=28, patch_size=14)
        if family == "llama4":
            v.update(intermediate_size=vh * 8, projector_input_dim=32, projector_output_dim=32, vision_output_dim=32)
        if family == "gemma3":
            v["vision_use_head"] = draw(st.booleans())
        if family == "mistral3":
            cfg["multimodal_projector_bias"] = draw(st.booleans())
            cfg["spatial_merge_size"] = draw(st.integers(1, 3))
            cfg["vision_feature_layer"] = draw(st.sampled_from([-1, [-1, -2]]))
    return cfg


# switches that add or remove tensors, per family (drawn true / false / absent)
_FLAGS = {
    "llama": ("attention_bias", "mlp_bias"),
    "granite": ("attention_bias", "mlp_bias"),
    "qwen3": ("attention_bias",),
    "qwen3_moe": ("attention_bias",),
    "qwen2_moe": ("qkv_bias",),
    "gemma": ("attention_bias",),
    "gemma2": ("attention_bias",),
    "gemma3": ("attention_bias",),
    "gemma3_text": ("attention_bias",),
    "llama4_text": ("attention_bias",),
    "phi": ("qk_layernorm",),
    "deepseek_v2": ("attention_bias", "mlp_bias"),
    "deepseek_v3": ("attention_bias",),
    "glm4_moe": ("attention_bias", "use_qk_norm"),
    "glm4": ("attention_bias",),
    "starcoder2": ("use_bias",),
    "arcee": ("attention_bias", "mlp_bias"),
    "gpt_oss": ("attention_bias",),
    "llama4": ("attention_bias",),
}


def _family_strategy():
    return st.sampled_from(FAMILIES).flatmap(lambda fam: st.tuples(st.just(fam), family_configs(fam)))


SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(_family_strategy())
def test_random_valid_configs_build(fam_cfg):
    family, cfg = fam_cfg
    spec = build_spec(cfg)
    assert spec.unsupported_reason is None, spec.unsupported_reason
    assert spec.params_total > 0
    assert sum(spec.params_by_component().values()) == spec.params_total
    assert 0 < spec.params_active <= spec.params_total
    assert len(spec.layers_kv) == spec.num_layers == _text(cfg)["num_hidden_layers"]
    assert spec.kv_bytes_per_token(2) > 0
    assert all(t.numel >= 0 and all(d >= 0 for d in t.shape) for t in spec.tensors)
    assert spec.multimodal == (family in ("gemma3", "mistral3", "llama4"))
    assert spec.is_mla == (family in MLA)


def oracle_kv_bytes(cfg: dict) -> int:
    """The oracle's KV formula (../shared/tools/oracle_params.py kv_cache), on the transformers text config."""
    from transformers import CONFIG_MAPPING

    parsed = CONFIG_MAPPING[cfg["model_type"]](**copy.deepcopy(cfg)).get_text_config()
    layers = parsed.num_hidden_layers
    if getattr(parsed, "kv_lora_rank", None) is not None and getattr(parsed, "qk_rope_head_dim", None) is not None:
        per_layer = (parsed.kv_lora_rank + parsed.qk_rope_head_dim) * 2
    else:
        head_dim = getattr(parsed, "head_dim", None) or parsed.hidden_size // parsed.num_attention_heads
        n_kv = getattr(parsed, "num_key_value_heads", None) or parsed.num_attention_heads
        per_layer = 2 * n_kv * head_dim * 2
    return layers * per_layer


@SETTINGS
@given(_family_strategy())
def test_random_kv_bytes_match_oracle_formula(fam_cfg):
    _, cfg = fam_cfg
    assert build_spec(cfg).kv_bytes_per_token(2) == oracle_kv_bytes(cfg)


@SETTINGS
@given(_family_strategy())
def test_more_layers_more_params(fam_cfg):
    _, cfg = fam_cfg
    more = copy.deepcopy(cfg)
    _text(more)["num_hidden_layers"] += 1
    a, b = build_spec(cfg), build_spec(more)
    assert b.params_total > a.params_total
    assert b.kv_bytes_per_token(2) > a.kv_bytes_per_token(2)


@SETTINGS
@given(_family_strategy())
def test_gqa_kv_never_exceeds_mha(fam_cfg):
    family, cfg = fam_cfg
    assume(family not in MLA)
    mha = copy.deepcopy(cfg)
    _text(mha)["num_key_value_heads"] = _text(mha)["num_attention_heads"]
    gqa_spec, mha_spec = build_spec(cfg), build_spec(mha)
    assert gqa_spec.kv_bytes_per_token(2) <= mha_spec.kv_bytes_per_token(2)
    assert gqa_spec.params_total <= mha_spec.params_total


# ---------------------------------------------------------------- invalid configs

_INT_FIELDS = ["hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size"]
BAD_VALUES = st.sampled_from([0, -1, -4096, "4096", 12.5, True, None, [], {}, 10**15, 2**62])


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(FAMILIES), st.sampled_from(_INT_FIELDS), BAD_VALUES)
def test_invalid_field_values_name_the_field(family, field, value):
    cfg = copy.deepcopy(TEMPLATES[family])
    _text(cfg)[field] = value
    with pytest.raises(ConfigError) as e:
        build_spec(cfg)
    assert e.value.field.endswith(field)
    assert field in str(e.value)


@pytest.mark.parametrize("family", [f for f in FAMILIES if f not in ("gemma3", "mistral3", "llama4")])
@pytest.mark.parametrize("field", _INT_FIELDS)
def test_missing_required_field_names_it(family, field):
    cfg = copy.deepcopy(TEMPLATES[family])
    del cfg[field]
    with pytest.raises(ConfigError) as e:
        build_spec(cfg)
    assert e.value.field == field and "missing" in str(e.value)


@pytest.mark.parametrize(("family", "field", "value"), [
    ("llama", "num_key_value_heads", 3),          # does not divide 32 heads
    ("llama", "num_key_value_heads", 0),
    ("llama", "head_dim", -128),
    ("llama", "intermediate_size", "14336"),
    ("llama", "tie_word_embeddings", "false"),
    ("llama", "attention_bias", 1),
    ("mixtral", "num_local_experts", 0),
    ("mixtral", "num_experts_per_tok", 9),         # more than the 8 experts
    ("qwen3_moe", "mlp_only_layers", "all"),
    ("deepseek_v3", "kv_lora_rank", 0),
    ("deepseek_v3", "qk_rope_head_dim", 1.5),
    ("deepseek_v3", "n_routed_experts", 10**9),
    ("gpt_oss", "layer_types", ["sliding_attention"]),  # wrong length
    ("gemma2", "sliding_window", -1),
    ("llama", "max_position_embeddings", 10**20),
])
def test_specific_invalid_fields(family, field, value):
    cfg = copy.deepcopy(TEMPLATES[family])
    cfg[field] = value
    with pytest.raises(ConfigError) as e:
        build_spec(cfg)
    assert field in e.value.field


@pytest.mark.parametrize(("sub", "field", "value"), [
    ("text_config", "hidden_size", 0),
    ("vision_config", "patch_size", -14),
    ("vision_config", "num_hidden_layers", "27"),
    ("text_config", "num_attention_heads", None),
])
def test_invalid_subconfig_fields_are_named_with_their_path(sub, field, value):
    cfg = copy.deepcopy(TEMPLATES["gemma3"])
    cfg[sub][field] = value
    with pytest.raises(ConfigError) as e:
        build_spec(cfg)
    assert e.value.field == f"{sub}.{field}"


@pytest.mark.parametrize("bad", [None, [], "config", 3])
def test_non_object_config(bad):
    with pytest.raises(ConfigError) as e:
        build_spec(bad)
    assert e.value.field == "config"


@pytest.mark.parametrize(("cfg", "field"), [
    ({"hidden_size": 8}, "model_type"),
    ({"model_type": 7}, "model_type"),
    ({"model_type": "llama", "architectures": "LlamaForCausalLM"}, "architectures"),
    ({"model_type": "gemma3", "vision_config": {}}, "text_config"),
])
def test_malformed_top_level(cfg, field):
    with pytest.raises(ConfigError) as e:
        build_spec(cfg)
    assert e.value.field == field


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


def test_component_enum_covers_every_tensor():
    spec = build_spec(TEMPLATES["llama4"])
    assert {t.component for t in spec.tensors} <= set(Component)


def test_sliding_layers_without_window_are_full_attention():
    cfg = copy.deepcopy(TEMPLATES["gemma2"])
    cfg["sliding_window"] = None
    spec = build_spec(cfg)
    assert {l.kind for l in spec.layers_kv} == {AttentionKind.FULL}
    assert spec.kv_bytes_per_token(2) == build_spec(TEMPLATES["gemma2"]).kv_bytes_per_token(2)


def test_qwen2_sliding_window_follows_max_window_layers():
    cfg = dict(TEMPLATES["qwen2"], use_sliding_window=True, sliding_window=4096, max_window_layers=20)
    kinds = [l.kind for l in build_spec(cfg).layers_kv]
    assert kinds[:20] == [AttentionKind.FULL] * 20 and set(kinds[20:]) == {AttentionKind.SLIDING}
    assert {l.kind for l in build_spec(TEMPLATES["qwen2"]).layers_kv} == {AttentionKind.FULL}


JUNK = st.one_of(st.none(), st.booleans(), st.integers(-10, 10), st.integers(min_value=2**40),
                 st.floats(allow_nan=True), st.text(max_size=5), st.lists(st.integers(-2, 3), max_size=3),
                 st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "400")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FAMILIES), st.data())
def test_fuzzed_fields_give_a_spec_or_a_config_error(family, data):
    """Any field set to junk: a spec (supported or not) or a ConfigError naming a field -- nothing else."""
    cfg = copy.deepcopy(TEMPLATES[family])
    target = cfg
    if "text_config" in cfg and data.draw(st.booleans()):
        target = cfg[data.draw(st.sampled_from(["text_config", "vision_config"]))]
    keys = sorted(k for k in target if k != "model_type")
    for key in data.draw(st.lists(st.sampled_from(keys), min_size=1, max_size=3, unique=True)):
        target[key] = data.draw(JUNK)
    try:
        spec = build_spec(cfg)
    except ConfigError as e:
        assert e.field and str(e).startswith(e.field)
        return
    assert spec.unsupported_reason or spec.params_total >= 0
