"""Mamba-style hybrids against the meta device: shipped config, transformers defaults, random configs.

Same method as tests/test_arch_oracle.py (``meta_count`` of tests/oracle_support.py: the native transformers class instantiated
on torch's meta device, parameters counted).  The random configs are small (hidden <= 64, <= 6 layers)
so 200 meta instantiations per family stay fast; they vary every field the family module reads.
``HYBRID_ORACLE_EXAMPLES`` overrides the count.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, strategies as st  # noqa: E402

from reportgen.arch import build_spec  # noqa: E402
from oracle_support import (assert_components, check, class_defaults_test, examples, oracle_settings,  # noqa: E402
                            shipped, truth_2026)

TRUTH = truth_2026()
EXAMPLES = examples("HYBRID_ORACLE_EXAMPLES")

SHIPPED = {
    "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-NVFP4": "nemotron_h",
}


@pytest.mark.parametrize("model_id", sorted(SHIPPED))
def test_shipped_config_matches_meta_device_truth(model_id):
    cfg = shipped(model_id.replace("/", "--"))
    spec = build_spec(cfg)
    truth = TRUTH[model_id]
    assert spec.unsupported_reason is None, spec.unsupported_reason
    assert spec.family == SHIPPED[model_id]
    assert spec.params_total == truth["total_params"]
    assert_components(spec, truth, {name: f"{key}_params" for name, key in (
        ("embedding", "embedding"), ("lm_head", "lm_head"), ("attention", "attention"),
        ("routed_experts", "routed_expert"), ("shared_experts", "shared_expert"), ("router", "router"),
        ("norm", "norm"), ("linear_attention", "linear_attention"))})
    assert spec.params_active == truth["active_params_per_token_est"]
    assert spec.kv_bytes_per_token(2) == truth["kv_cache_bytes_per_token_bf16_kv_layers"]


# lfm2: vLLM reads block_dim / conv_dim, which the transformers-5 class no longer has (refused without them):
# its defaults are checked with both set to hidden_size, as every published LFM2 config has them
# lfm2_moe's class has no layer_types default (transformers itself cannot build it without one)
DEFAULT_EXTRAS = {"lfm2": lambda d: {"block_dim": d["hidden_size"], "conv_dim": d["hidden_size"]},
                  "lfm2_moe": lambda d: {"layer_types": ["conv", "conv", "full_attention"] * 10 + ["conv"] * 2},
                  # kimi_linear: the keys vLLM's own KimiLinearConfig reads, written to match the class defaults
                  "kimi_linear": lambda d: {
                      "linear_attn_config": {
                          "num_heads": d["linear_num_heads"], "head_dim": d["linear_head_dim"],
                          "short_conv_kernel_size": d["linear_conv_kernel_dim"],
                          "kda_layers": [i + 1 for i, t in enumerate(d["layer_types"]) if t == "linear_attention"],
                          "full_attn_layers": [i + 1 for i, t in enumerate(d["layer_types"]) if t == "full_attention"]},
                      "mla_use_nope": True, "first_k_dense_replace": 1, "moe_layer_freq": 1}}


test_transformers_default_config_matches_meta_device = class_defaults_test(
    ["nemotron_h", "bamba", "granitemoehybrid", "lfm2", "lfm2_moe", "jamba", "falcon_h1", "kimi_linear", "zamba2"],
    extras=DEFAULT_EXTRAS)


# ---------------------------------------------------------------- random configs per family

def _heads(draw, max_heads: int = 4) -> tuple[int, int]:
    n_kv = draw(st.integers(1, max_heads))
    return n_kv * draw(st.integers(1, 2)), n_kv


@st.composite
def nemotron_h_configs(draw):
    pattern = "".join(draw(st.lists(st.sampled_from("M*-E"), min_size=1, max_size=6)))
    n_heads, n_kv = _heads(draw)
    m_groups = draw(st.integers(1, 3))
    has_moe = "E" in pattern
    n_exp = draw(st.integers(1, 6))
    cfg = {
        "model_type": "nemotron_h", "architectures": ["NemotronHForCausalLM"],
        "hidden_size": draw(st.integers(4, 48)), "vocab_size": draw(st.integers(8, 96)),
        "num_attention_heads": n_heads, "num_key_value_heads": n_kv, "head_dim": draw(st.integers(2, 16)),
        "intermediate_size": draw(st.integers(1, 40)),
        "mamba_num_heads": m_groups * draw(st.integers(1, 3)), "mamba_head_dim": draw(st.integers(1, 8)),
        "n_groups": m_groups, "ssm_state_size": draw(st.integers(1, 16)), "conv_kernel": draw(st.integers(2, 4)),
        "use_bias": draw(st.booleans()), "use_conv_bias": draw(st.booleans()),
        "mlp_bias": False if has_moe else draw(st.booleans()),
        "n_routed_experts": n_exp, "num_experts_per_tok": draw(st.integers(1, n_exp)), "n_shared_experts": 1,
        "moe_intermediate_size": draw(st.integers(1, 24)),
        "moe_shared_expert_intermediate_size": draw(st.integers(1, 24)),
        "moe_latent_size": draw(st.one_of(st.none(), st.integers(1, 16))),
        "tie_word_embeddings": draw(st.booleans()),
    }
    if draw(st.booleans()):
        cfg["hybrid_override_pattern"] = pattern
        if draw(st.booleans()):
            cfg["num_hidden_layers"] = len(pattern)
    else:
        kinds = {"M": "linear_attention", "*": "full_attention", "-": "mlp", "E": "moe"}
        cfg["layers_block_type"] = [kinds[c] for c in pattern]
    return cfg


def _mamba2_fields(draw, hidden: int) -> dict:
    """bamba / granitemoehybrid Mamba fields: heads * d_head == expand * hidden (transformers' rule)."""
    expand = draw(st.integers(1, 2))
    inter = expand * hidden
    heads = draw(st.sampled_from([h for h in range(1, 9) if inter % h == 0]))
    groups = draw(st.sampled_from([g for g in (1, 2, 4) if heads % g == 0]))
    return {"mamba_expand": expand, "mamba_n_heads": heads, "mamba_d_head": inter // heads,
            "mamba_n_groups": groups, "mamba_d_state": draw(st.integers(1, 16)), "mamba_d_conv": draw(st.integers(2, 4)),
            "mamba_conv_bias": draw(st.booleans()), "mamba_proj_bias": draw(st.booleans())}


@st.composite
def bamba_configs(draw):
    n_heads, n_kv = _heads(draw)
    hidden = n_heads * 2 * draw(st.integers(1, 4))   # even head_dim: RoPE needs it
    n_layers = draw(st.integers(1, 5))
    return {
        "model_type": "bamba", "architectures": ["BambaForCausalLM"], "hidden_size": hidden,
        "num_hidden_layers": n_layers, "num_attention_heads": n_heads, "num_key_value_heads": n_kv,
        "vocab_size": draw(st.integers(8, 96)), "intermediate_size": draw(st.integers(1, 40)),
        "attn_layer_indices": sorted(draw(st.sets(st.integers(0, n_layers - 1), max_size=n_layers))),
        "max_position_embeddings": 64, **_mamba2_fields(draw, hidden),
    }


@st.composite
def granitemoehybrid_configs(draw):
    n_heads, n_kv = _heads(draw)
    hidden = n_heads * 2 * draw(st.integers(1, 4))   # even head_dim: RoPE needs it
    n_layers = draw(st.integers(1, 5))
    n_exp = draw(st.integers(0, 6))
    cfg = {
        "model_type": "granitemoehybrid", "architectures": ["GraniteMoeHybridForCausalLM"], "hidden_size": hidden,
        "num_hidden_layers": n_layers, "num_attention_heads": n_heads, "num_key_value_heads": n_kv,
        "vocab_size": draw(st.integers(8, 96)), "intermediate_size": draw(st.integers(1, 24)),
        "num_local_experts": n_exp, "num_experts_per_tok": draw(st.integers(1, max(1, n_exp))),
        "shared_intermediate_size": draw(st.integers(0, 24)),
        "layer_types": draw(st.lists(st.sampled_from(["mamba", "attention"]), min_size=n_layers, max_size=n_layers)),
        "attention_bias": draw(st.booleans()), "tie_word_embeddings": draw(st.booleans()),
        "position_embedding_type": draw(st.sampled_from(["rope", "nope", None])),
        "max_position_embeddings": 64, **_mamba2_fields(draw, hidden),
    }
    return cfg


@st.composite
def lfm2_configs(draw):
    n_heads, n_kv = _heads(draw)
    hidden = n_heads * 2 * draw(st.integers(1, 4))   # even head_dim: RoPE needs it
    n_layers = draw(st.integers(1, 5))
    mult = draw(st.sampled_from([1.0, 1.5, 0.5, 2]))
    of = draw(st.sampled_from([1, 4, 8]))
    cfg = {
        "model_type": "lfm2", "architectures": ["Lfm2ForCausalLM"], "hidden_size": hidden, "block_dim": hidden,
        "conv_dim": hidden, "num_hidden_layers": n_layers, "num_attention_heads": n_heads,
        "num_key_value_heads": n_kv, "vocab_size": draw(st.integers(8, 96)),
        "intermediate_size": draw(st.integers(6, 48)), "block_multiple_of": of,   # width >= 1 after 2/3 * 0.5
        "block_ffn_dim_multiplier": mult, "block_auto_adjust_ff_dim": draw(st.booleans()),
        "conv_L_cache": draw(st.integers(2, 4)), "conv_bias": draw(st.booleans()),
        "full_attn_idxs": sorted(draw(st.sets(st.integers(0, n_layers - 1), max_size=n_layers))),
        "tie_word_embeddings": True, "max_position_embeddings": 64,
    }
    return cfg


@st.composite
def jamba_configs(draw):
    n_heads, n_kv = _heads(draw)
    hidden = n_heads * 2 * draw(st.integers(1, 4))   # even head_dim: RoPE needs it
    a_period, e_period = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    n_exp = draw(st.integers(1, 6))
    return {
        "model_type": "jamba", "architectures": ["JambaForCausalLM"], "hidden_size": hidden,
        "num_hidden_layers": draw(st.integers(1, 6)), "num_attention_heads": n_heads, "num_key_value_heads": n_kv,
        "vocab_size": draw(st.integers(8, 96)), "intermediate_size": draw(st.integers(1, 24)),
        "num_experts": n_exp, "num_experts_per_tok": draw(st.integers(1, n_exp)),
        "attn_layer_period": a_period, "attn_layer_offset": draw(st.integers(0, a_period - 1)),
        "expert_layer_period": e_period, "expert_layer_offset": draw(st.integers(0, e_period - 1)),
        "mamba_d_state": draw(st.integers(1, 16)), "mamba_d_conv": draw(st.integers(2, 4)),
        "mamba_expand": draw(st.integers(1, 2)), "mamba_dt_rank": draw(st.one_of(st.just("auto"), st.integers(1, 8))),
        "mamba_conv_bias": draw(st.booleans()), "mamba_proj_bias": draw(st.booleans()),
        "tie_word_embeddings": False,
    }


@st.composite
def falcon_h1_configs(draw):
    n_heads, n_kv = _heads(draw)
    hidden = draw(st.integers(4, 48))
    heads = draw(st.integers(1, 6))
    groups = draw(st.sampled_from([g for g in (1, 2, 3) if heads % g == 0]))
    d_head = draw(st.integers(1, 8))
    proj_bias = draw(st.booleans())
    cfg = {
        "model_type": "falcon_h1", "architectures": ["FalconH1ForCausalLM"], "hidden_size": hidden,
        "num_hidden_layers": draw(st.integers(1, 4)), "num_attention_heads": n_heads, "num_key_value_heads": n_kv,
        "head_dim": 2 * draw(st.integers(1, 8)), "vocab_size": draw(st.integers(8, 96)),
        "intermediate_size": draw(st.integers(1, 24)), "mamba_d_ssm": heads * d_head, "mamba_n_heads": heads,
        "mamba_d_head": d_head, "mamba_n_groups": groups, "mamba_d_state": draw(st.integers(1, 16)),
        "mamba_d_conv": draw(st.integers(2, 4)), "mamba_rms_norm": draw(st.booleans()),
        "mamba_conv_bias": draw(st.booleans()), "mamba_proj_bias": proj_bias, "projectors_bias": proj_bias,
        "tie_word_embeddings": draw(st.booleans()), "max_position_embeddings": 64,
    }
    return cfg


@st.composite
def lfm2_moe_configs(draw):
    n_heads, n_kv = _heads(draw)
    hidden = n_heads * 2 * draw(st.integers(1, 4))
    n_layers = draw(st.integers(1, 5))
    n_exp = draw(st.integers(1, 6))
    return {
        "model_type": "lfm2_moe", "architectures": ["Lfm2MoeForCausalLM"], "hidden_size": hidden,
        "num_hidden_layers": n_layers, "num_attention_heads": n_heads, "num_key_value_heads": n_kv,
        "vocab_size": draw(st.integers(8, 96)), "intermediate_size": draw(st.integers(1, 24)),
        "moe_intermediate_size": draw(st.integers(1, 24)), "num_dense_layers": draw(st.integers(0, n_layers - 1)),
        "num_experts": n_exp, "num_experts_per_tok": draw(st.integers(1, n_exp)),
        "use_expert_bias": draw(st.booleans()), "conv_L_cache": draw(st.integers(2, 4)),
        "conv_bias": draw(st.booleans()), "tie_word_embeddings": True, "max_position_embeddings": 64,
        "layer_types": draw(st.lists(st.sampled_from(["conv", "full_attention"]), min_size=n_layers,
                                     max_size=n_layers)),
    }


@st.composite
def kimi_linear_configs(draw):
    n_layers = draw(st.integers(1, 5))
    kda = draw(st.lists(st.booleans(), min_size=n_layers, max_size=n_layers))
    n_exp = draw(st.integers(1, 6))
    k_dense = draw(st.integers(0, n_layers))
    return {
        "model_type": "kimi_linear", "architectures": ["KimiLinearForCausalLM"],
        "hidden_size": draw(st.integers(4, 48)), "num_hidden_layers": n_layers,
        "num_attention_heads": draw(st.integers(1, 4)), "num_key_value_heads": 1, "vocab_size": draw(st.integers(8, 96)),
        "intermediate_size": draw(st.integers(1, 24)), "moe_intermediate_size": draw(st.integers(1, 24)),
        "num_experts": n_exp, "num_experts_per_token": draw(st.integers(1, n_exp)),
        "num_shared_experts": draw(st.integers(0, 2)), "first_k_dense_replace": k_dense, "moe_layer_freq": 1,
        "kv_lora_rank": draw(st.integers(1, 16)), "q_lora_rank": None, "qk_rope_head_dim": 2 * draw(st.integers(1, 4)),
        "qk_nope_head_dim": draw(st.integers(0, 8)), "v_head_dim": draw(st.integers(1, 8)), "mla_use_nope": True,
        "linear_attn_config": {"num_heads": draw(st.integers(1, 4)), "head_dim": draw(st.integers(1, 8)),
                               "short_conv_kernel_size": draw(st.integers(2, 4)),
                               "kda_layers": [i + 1 for i in range(n_layers) if kda[i]],
                               "full_attn_layers": [i + 1 for i in range(n_layers) if not kda[i]]},
        "tie_word_embeddings": False, "pad_token_id": 0,   # the class default pad id exceeds a small vocab
    }


@st.composite
def zamba2_configs(draw):
    n_heads = draw(st.integers(1, 4))
    hidden = n_heads * draw(st.integers(1, 4))          # attention head_dim 2 * hidden / heads: even
    expand = draw(st.integers(1, 2))
    m_heads = draw(st.sampled_from([h for h in range(1, 7) if expand * hidden % h == 0]))
    n_blocks = draw(st.integers(1, 2))
    n_layers = draw(st.integers(n_blocks, 6))
    hybrid = draw(st.sets(st.integers(0, n_layers - 1), min_size=n_blocks, max_size=n_layers))
    return {
        "model_type": "zamba2", "architectures": ["Zamba2ForCausalLM"], "hidden_size": hidden,
        "num_hidden_layers": n_layers, "num_attention_heads": n_heads, "num_key_value_heads": n_heads,
        "vocab_size": draw(st.integers(8, 96)), "intermediate_size": draw(st.integers(1, 24)),
        "layers_block_type": ["hybrid" if i in hybrid else "linear_attention" for i in range(n_layers)],
        "num_mem_blocks": n_blocks, "use_shared_attention_adapter": draw(st.booleans()),
        "adapter_rank": draw(st.integers(1, 4)), "add_bias_linear": draw(st.booleans()),
        "use_mem_rope": draw(st.booleans()), "mamba_expand": expand, "n_mamba_heads": m_heads,
        "mamba_ngroups": draw(st.sampled_from([gr for gr in (1, 2, 3) if m_heads % gr == 0])),
        "mamba_d_state": draw(st.integers(1, 16)), "mamba_d_conv": draw(st.integers(2, 4)),
        "tie_word_embeddings": True, "max_position_embeddings": 64,
    }


STRATEGIES = {
    "zamba2": zamba2_configs(),
    "kimi_linear": kimi_linear_configs(),
    "lfm2_moe": lfm2_moe_configs(),
    "falcon_h1": falcon_h1_configs(),
    "jamba": jamba_configs(),
    "lfm2": lfm2_configs(),
    "nemotron_h": nemotron_h_configs(),
    "bamba": bamba_configs(),
    "granitemoehybrid": granitemoehybrid_configs(),
}


@pytest.mark.parametrize("family", sorted(STRATEGIES))
@oracle_settings(EXAMPLES)
@given(data=st.data())
def test_random_configs_match_meta_device(family, data):
    check(data.draw(STRATEGIES[family]))
