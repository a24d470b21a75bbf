"""OLMo-Hybrid (olmo_hybrid) in the arch layer and the estimator: layer pattern, GDN state geometry as
vLLM's ``gated_delta_net_state_shape`` computes it, per-tensor sharding, bad input named, refusals.

vLLM ``olmo_hybrid.py`` @055e47c2, ``olmo_gdn_linear_attn.py`` @0290a15b; transformers 5.24 class defaults
(hidden 3840, 32 layers, every 4th full attention, 30 heads; GDN 30 key / 30 value heads of 96 / 192).
"""

from __future__ import annotations

import pytest

from reportgen.arch import build_spec
from reportgen.arch.errors import ConfigError
from reportgen.arch.spec import AttentionKind, Component, Shard
from reportgen.arch.state import state_tp_rule
from reportgen.matrix import estimate_one


def defaults() -> dict:
    import transformers

    return transformers.AutoConfig.for_model("olmo_hybrid").to_dict()


@pytest.fixture(scope="module")
def spec():
    return build_spec(defaults())


def test_layer_pattern_and_state_geometry(spec):
    kinds = [l.kind for l in spec.layers_kv]
    assert kinds.count(AttentionKind.STATE) == 24 and kinds.count(AttentionKind.FULL) == 8
    assert [i for i, k in enumerate(kinds) if k is AttentionKind.FULL] == [3, 7, 11, 15, 19, 23, 27, 31]
    st = spec.layers_kv[0].state
    assert st.kind == "gdn" and st.dims == (30, 30, 96, 192, 4) and st.ssm_dtype is None
    # vLLM: conv (k-1, (2*96*30 + 192*30)/tp), delta-rule state (30/tp, 192, 96), both in the model dtype (auto)
    assert st.shapes(1) == (((3, 11520), "conv"), ((30, 192, 96), "ssm"))
    assert st.bytes_per_seq(1, conv_bytes=2) == 3 * 11520 * 2 + 30 * 192 * 96 * 2
    assert st.bytes_per_seq(2, conv_bytes=2) == 3 * 5760 * 2 + 15 * 192 * 96 * 2
    assert st.bytes_per_seq(3, conv_bytes=2) == 3 * 3840 * 2 + 10 * 192 * 96 * 2
    assert state_tp_rule(st, 3) is None and state_tp_rule(st, 6) is None
    assert "linear_num_key_heads (30) % tp (4)" in state_tp_rule(st, 4)
    # KV only on the 8 attention layers: 30 KV heads x 128 x (K + V) x 2 bytes
    assert spec.kv_bytes_per_token(2) == 8 * 2 * 30 * 128 * 2
    assert spec.rope_caches == ((65536, 128, 0),)


def test_tensor_sharding(spec):
    by = {t.name: t for t in spec.tensors if t.layer in (0, 3)}
    la = "model.layers.0.linear_attn"
    for name, rows in (("q_proj", 2880), ("k_proj", 2880), ("v_proj", 5760), ("g_proj", 5760),
                       ("a_proj", 30), ("b_proj", 30)):
        t = by[f"{la}.{name}.weight"]
        assert t.shard is Shard.COLUMN and t.shape == (rows, 3840) and t.component is Component.LINEAR_ATTENTION
    assert by[f"{la}.o_proj.weight"].shard is Shard.ROW
    assert by[f"{la}.conv1d.weight"].shape == (11520, 1, 4) and not by[f"{la}.conv1d.weight"].quantizable
    assert by[f"{la}.A_log"].shard is Shard.COLUMN and by[f"{la}.dt_bias"].shard is Shard.COLUMN
    assert by[f"{la}.o_norm.weight"].shard is Shard.REPLICATED and by[f"{la}.o_norm.weight"].shape == (192,)
    assert "model.layers.0.input_layernorm.weight" in by and "model.layers.0.post_feedforward_layernorm.weight" not in by
    sa = "model.layers.3.self_attn"
    assert by[f"{sa}.q_norm.weight"].shard is Shard.REPLICATED and by[f"{sa}.q_norm.weight"].shape == (3840,)
    assert "model.layers.3.input_layernorm.weight" not in by and "model.layers.3.post_feedforward_layernorm.weight" in by


def test_estimate_prices_state_and_kv(spec):
    r = estimate_one(spec, 79.2, max_model_len=8192, max_num_seqs=256)
    assert r["status"] == "fits"
    # one state block per request (no prefix caching at the default version): 24 GDN layers, each a page
    assert r["state_bytes_per_seq"] >= 24 * (3 * 11520 * 2 + 30 * 192 * 96 * 2)
    assert r["block_size"] > 16   # the attention page raised to hold a ~1.17 MB state page
    r4 = estimate_one(spec, 79.2, tp=4, max_model_len=8192)
    assert r4["status"] == "invalid_layout"


def _edit(**kw):
    cfg = defaults()
    cfg.update(kw)
    return cfg


@pytest.mark.parametrize("cfg, field, words", [
    (_edit(num_hidden_layers=31), "layer_types", "has 32 entries for num_hidden_layers 31"),
    (_edit(layer_types=["linear_attention"] * 31 + ["mamba"]), "layer_types[31]", "unknown layer kind 'mamba'"),
    (_edit(layer_types=["linear_attention"] * 32), "layer_types", "has no 'full_attention' layer"),
    (_edit(layer_types=["full_attention"] * 32), "layer_types", "has no 'linear_attention' layer"),
    (_edit(layer_types="full_attention"), "layer_types", "must be a list"),
    (_edit(linear_num_value_heads=45), "linear_num_value_heads", "not a multiple"),
])
def test_bad_input_is_malformed_naming_field(cfg, field, words):
    with pytest.raises(ConfigError) as e:
        build_spec(cfg)
    assert e.value.field == field and words in str(e.value)


@pytest.mark.parametrize("kw, words", [
    (dict(head_dim=64), "head_dim 64"),
    (dict(hidden_size=3850), "not a multiple of num_attention_heads"),
    (dict(attention_bias=True), "attention_bias=true"),
    (dict(sliding_window=4096), "sliding_window"),
    (dict(linear_use_gate=False), "linear_use_gate"),
])
def test_refusals_name_the_vllm_difference(kw, words):
    spec = build_spec(_edit(**kw))
    assert spec.unsupported_reason is not None and words in spec.unsupported_reason


@pytest.mark.parametrize("rope, caches", [
    ({"rope_type": "default", "rope_theta": 10000.0}, ((65536, 128, 0),)),
    (None, ()),                                  # the released OLMo-Hybrid-7B: NoPE
    ({"rope_type": None}, ()),                   # its later config form (vLLM #43846)
])
def test_rotary_cache_follows_vllms_own_config_class(rope, caches):
    cfg = defaults()
    cfg["rope_parameters"] = rope
    spec = build_spec(cfg)
    assert spec.rope_caches == caches
    assert spec.params_total == 7_430_870_688            # rotary tables are buffers, never parameters
    assert any("NoPE" in n for n in spec.notes) == (caches == ())
