"""Families added after the first release: olmo2, olmo3, olmoe, glm4, exaone4, seed_oss, starcoder2,
granitemoe, phimoe, arcee -- and the families examined and refused.

The published configs are ``TEMPLATES_FROM_MEMORY`` (test_arch_properties.py): WRITTEN FROM MEMORY,
not fetched.  Every expected total below equals the meta-device count of that config
(``tests/test_arch_oracle.py`` checks the same configs, their transformers defaults and random
variants against torch).  KV geometry and shard classes follow the vLLM model file named per test.
"""

from __future__ import annotations

import copy

import pytest

from reportgen.arch import build_spec
from reportgen.arch.spec import AttentionKind, Shard
from test_arch_properties import TEMPLATES_FROM_MEMORY as T

FULL, SLIDING = AttentionKind.FULL, AttentionKind.SLIDING

# meta-device totals of the published configs (oracle-verified, torch 2.13 / transformers 5.24)
PUBLISHED_TOTALS = {
    "olmo2": 7_298_617_344,        # OLMo-2-1124-7B
    "olmo3": 7_298_011_136,        # Olmo-3-7B
    "olmoe": 6_919_161_856,        # OLMoE-1B-7B-0924
    "glm4": 9_400_279_040,         # GLM-4-9B-0414
    "exaone4": 32_003_216_384,     # EXAONE-4.0-32B
    "seed_oss": 36_151_104_512,    # Seed-OSS-36B
    "starcoder2": 15_957_889_024,  # starcoder2-15b
    "granitemoe": 3_298_793_472,   # granite-3.1-3b-a800m
    "phimoe": 41_873_153_344,      # Phi-3.5-MoE
    "arcee": 4_619_184_640,        # AFM-4.5B
}


def _cfg(family: str, **changes) -> dict:
    cfg = copy.deepcopy(T[family])
    cfg.update(changes)
    return cfg


@pytest.mark.parametrize("family", sorted(PUBLISHED_TOTALS))
def test_published_config_total(family):
    spec = build_spec(T[family])
    assert spec.unsupported_reason is None
    assert spec.family == family
    assert spec.params_total == PUBLISHED_TOTALS[family]
    assert sum(spec.params_by_component().values()) == spec.params_total


# ---------------------------------------------------------------- KV geometry (vLLM per-layer windows)

def test_olmo2_full_attention_mha():
    """olmo2.py: no layer_types -> no per-layer window; 32 KV heads x 128."""
    spec = build_spec(T["olmo2"])
    assert {l.kind for l in spec.layers_kv} == {FULL}
    assert spec.kv_bytes_per_token(2) == 32 * 2 * 32 * 128 * 2


def test_olmo3_three_sliding_one_full():
    """olmo2.py (serves Olmo3): layer_types[i] == sliding_attention -> window 4096."""
    spec = build_spec(T["olmo3"])
    kinds = [l.kind for l in spec.layers_kv]
    assert kinds == ([SLIDING] * 3 + [FULL]) * 8
    assert {l.window for l in spec.layers_kv if l.kind is SLIDING} == {4096}


def test_olmo3_rope_scaling_only_on_full_layers_two_caches():
    """Sliding layers get the default rope, full layers yarn x8 from 8192: two caches of 65536 rows."""
    spec = build_spec(T["olmo3"])
    assert spec.rope_caches == ((65536, 128, 0), (65536, 128, 0))
    assert spec.max_model_len_limit == 65536
    unscaled = build_spec(_cfg("olmo3", rope_scaling=None))
    assert unscaled.rope_caches == ((65536, 128, 0),)


def test_exaone4_pattern_and_one_rope_cache():
    """exaone4.py: per-layer window for sliding layers; every layer builds the same get_rope -> one cache."""
    spec = build_spec(T["exaone4"])
    assert [l.kind for l in spec.layers_kv] == ([SLIDING] * 3 + [FULL]) * 16
    assert spec.kv_bytes_per_token(2) == 64 * 2 * 8 * 128 * 2
    assert spec.rope_caches == ((131072, 128, 0),)   # llama3 rope: max_position rows, no factor
    assert spec.max_model_len_limit == 131072


def test_starcoder2_window_on_every_layer():
    """starcoder2.py passes no per-layer window: cache_config.sliding_window applies to all layers."""
    spec = build_spec(T["starcoder2"])
    assert {(l.kind, l.window) for l in spec.layers_kv} == {(SLIDING, 4096)}
    assert {l.kind for l in build_spec(_cfg("starcoder2", sliding_window=None)).layers_kv} == {FULL}


def test_glm4_partial_rotary_half_head():
    """glm4.py: partial_rotary_factor defaults to 0.5 -> rotary cache head_dim / 2 wide."""
    spec = build_spec(T["glm4"])
    assert spec.rotary_dim == 64 and spec.rope_caches == ((32768, 64, 0),)
    no_factor = {k: v for k, v in T["glm4"].items() if k != "partial_rotary_factor"}
    assert build_spec(no_factor).rotary_dim == 64
    assert spec.kv_bytes_per_token(2) == 40 * 2 * 2 * 128 * 2


def test_phimoe_longrope_and_config_window():
    """phimoe.py: longrope cache = original + max_position rows; config window on every layer."""
    spec = build_spec(T["phimoe"])
    assert spec.rope_caches == ((4096 + 131072, 128, 0),)
    assert spec.max_model_len_limit == 131072
    assert {(l.kind, l.window) for l in spec.layers_kv} == {(SLIDING, 131072)}


# ---------------------------------------------------------------- shard classes

def _by_name(spec):
    return {t.name: t for t in spec.tensors}


def test_olmo_whole_projection_qk_norms_are_replicated():
    """olmo2.py / olmoe.py: q_norm RMSNorm(hidden), k_norm RMSNorm(total_kv*head_dim), all-gathered q/k."""
    for family, kv in (("olmo2", 32), ("olmoe", 16)):
        ts = _by_name(build_spec(T[family]))
        hidden = T[family]["hidden_size"]
        head_dim = hidden // T[family]["num_attention_heads"]
        q, k = ts["model.layers.0.self_attn.q_norm.weight"], ts["model.layers.0.self_attn.k_norm.weight"]
        assert (q.shape, q.shard) == ((hidden,), Shard.REPLICATED)
        assert (k.shape, k.shard) == ((kv * head_dim,), Shard.REPLICATED)


def test_moe_expert_banks_and_routers():
    for family, prefix, n_exp, inter in (("olmoe", "mlp", 64, 1024), ("granitemoe", "block_sparse_moe", 40, 512),
                                         ("phimoe", "block_sparse_moe", 16, 6400)):
        spec = build_spec(T[family])
        ts = _by_name(spec)
        hidden = T[family]["hidden_size"]
        gu = ts[f"model.layers.0.{prefix}.experts.gate_up_proj.weight"]
        assert (gu.shape, gu.count, gu.shard) == ((2 * inter, hidden), n_exp, Shard.EXPERT)
        gate = ts[f"model.layers.0.{prefix}.gate.weight"]
        assert (gate.shape, gate.shard, gate.quantizable) == ((n_exp, hidden), Shard.REPLICATED, False)
        assert spec.num_experts == n_exp and spec.params_active < spec.params_total


def test_biases_and_norms_shards():
    ts = _by_name(build_spec(T["phimoe"]))
    assert ts["model.layers.0.self_attn.o_proj.bias"].shard is Shard.REPLICATED
    assert ts["model.layers.0.self_attn.k_proj.bias"].shard is Shard.KV
    assert ts["model.layers.0.input_layernorm.bias"].shard is Shard.REPLICATED
    assert ts["lm_head.bias"].shard is Shard.VOCAB
    ts = _by_name(build_spec(T["starcoder2"]))
    assert ts["model.layers.0.mlp.c_fc.bias"].shard is Shard.COLUMN
    assert ts["model.layers.0.mlp.c_proj.bias"].shard is Shard.REPLICATED
    ts = _by_name(build_spec(T["glm4"]))
    assert ts["model.layers.0.mlp.gate_up_proj[gate].weight"].shard is Shard.COLUMN
    assert "model.layers.0.self_attn.o_proj.bias" not in ts and "model.layers.0.self_attn.q_proj.bias" in ts
    ts = _by_name(build_spec(T["arcee"]))
    assert "model.layers.0.mlp.gate_proj.weight" not in ts
    assert ts["model.layers.0.mlp.up_proj.weight"].shard is Shard.COLUMN


# ---------------------------------------------------------------- refused: transformers and vLLM disagree

@pytest.mark.parametrize(("family", "changes", "words"), [
    # olmo2 attention_bias / olmo3 head_dim / olmoe tied, seed_oss biases, starcoder2 head_dim, arcee qkv_bias:
    # priced from the Transformers-backend release on (tests/test_transformers_backend_versions.py)
    ("exaone4", {"mlp_bias": True}, "mlp_bias"),
    ("exaone4", {"attention_bias": True}, "attention_bias"),
    ("granitemoe", {"rope_scaling": {"rope_type": "linear", "factor": 2.0}}, "rope scaling"),
    ("granitemoe", {"attention_bias": True}, "attention_bias"),
    ("phimoe", {"lm_head_bias": False}, "lm_head_bias"),
    ("phimoe", {"attention_bias": False}, "attention_bias"),
    ("phimoe", {"tie_word_embeddings": True}, "lm_head"),
])
def test_configs_vllm_would_build_differently_are_refused(family, changes, words):
    spec = build_spec(_cfg(family, **changes))
    assert spec.unsupported_reason and words in spec.unsupported_reason
    assert spec.tensors == []


def test_phimoe_class_defaults_are_refused():
    """PhimoeConfig defaults attention_bias / lm_head_bias to false; vLLM always builds both biases."""
    cfg = {k: v for k, v in T["phimoe"].items() if k not in ("attention_bias", "lm_head_bias")}
    assert "attention_bias" in build_spec(cfg).unsupported_reason


@pytest.mark.parametrize("model_type", ["stablelm", "nemotron", "glm"])
def test_once_refused_families_are_priced(model_type):
    """Refused until issue 12 for reportgen's own limits; now families/<model_type>.py, exact against the
    meta device in tests/test_oracle_layernorm_glm.py."""
    spec = build_spec({"model_type": model_type, "hidden_size": 64, "num_hidden_layers": 2,
                       "num_attention_heads": 4, "num_key_value_heads": 4, "intermediate_size": 128,
                       "vocab_size": 100})
    assert spec.unsupported_reason is None and spec.params_total > 0


@pytest.mark.parametrize("family, n", [("exaone4", 64), ("olmo3", 32)])
def test_window_with_no_sliding_layer_puts_every_layer_in_it(family, n):
    """exaone4.py (vLLM 0.22.0 l. 175-195) and olmo2.py (olmo3's file, l. 123-136) pass no window for a full
    layer, so each takes cache_config.sliding_window -- the config's, set because the layer types hold one kind
    (arg_utils.py l. 1738-1743; kv.model_window_fallback)."""
    cfg = _cfg(family, layer_types=["full_attention"] * n)
    spec = build_spec(cfg)
    assert spec.unsupported_reason is None and spec.params_total == build_spec(T[family]).params_total
    assert cfg["sliding_window"] > 0
    assert [(l.kind, l.window) for l in spec.layers_kv] == [(AttentionKind.SLIDING, cfg["sliding_window"])] * n
