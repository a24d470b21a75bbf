"""OLMo-Hybrid (olmo_hybrid) against torch's meta device: class defaults and random configs.

vLLM ``olmo_hybrid.py`` @055e47c2 and ``olmo_gdn_linear_attn.py`` @0290a15b (reportgen/arch/families/
olmo_hybrid.py).  No shipped OLMo-Hybrid config is in tests/data/configs_2026, so the class defaults
(OLMo-Hybrid-7B-shaped) and random valid configs are the checks.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, strategies as st  # noqa: E402

from oracle_support import check, class_defaults, examples, oracle_settings  # noqa: E402

N = examples("HYBRID_ORACLE_EXAMPLES")


def test_class_defaults_match_meta_device():
    spec = check(class_defaults("olmo_hybrid"))
    assert spec.params_total == 7_430_870_688
    comp = spec.params_by_component()
    # 24 GDN layers of 30 key / value heads, key head 96 (0.75 * 3840 / 30), value head 192: q, k (2880
    # rows), v, g (5760), a, b (30) from 3840, o_proj, conv1d (11520 x 4), A_log, dt_bias (30), o_norm (192)
    per_gdn = 3840 * (2 * 2880 + 2 * 5760 + 2 * 30) + 5760 * 3840 + 11520 * 4 + 2 * 30 + 192
    assert comp["linear_attention"] == 24 * per_gdn


@st.composite
def olmo_hybrid_configs(draw) -> dict:
    n_layers = draw(st.integers(2, 6))
    heads = draw(st.sampled_from([1, 2, 4]))
    kv = draw(st.sampled_from([h for h in (1, 2, 4) if heads % h == 0]))
    nk = draw(st.sampled_from([1, 2, 4]))
    cfg = {
        "model_type": "olmo_hybrid",
        "vocab_size": draw(st.integers(8, 300)),
        "hidden_size": heads * draw(st.sampled_from([4, 8, 12])),
        "intermediate_size": draw(st.integers(1, 64)),
        "num_hidden_layers": n_layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "linear_num_key_heads": nk,
        "linear_num_value_heads": nk * draw(st.integers(1, 3)),
        "linear_key_head_dim": draw(st.sampled_from([4, 8])),
        "linear_value_head_dim": draw(st.sampled_from([4, 8, 12])),
        "linear_conv_kernel_dim": draw(st.integers(2, 5)),
        "tie_word_embeddings": draw(st.booleans()),
        "pad_token_id": 0, "eos_token_id": 0,
    }
    if draw(st.booleans()):
        kinds = [draw(st.sampled_from(["linear_attention", "full_attention"])) for _ in range(n_layers)]
        kinds[draw(st.integers(0, n_layers - 1))] = "linear_attention"
        if "full_attention" not in kinds:
            kinds[-1] = "full_attention"
        if "linear_attention" not in kinds:
            kinds[0] = "linear_attention"
        cfg["layer_types"] = kinds
    if draw(st.booleans()):  # the class derives GDN heads (= attention heads) and head dims from hidden_size
        for key in ("linear_num_key_heads", "linear_num_value_heads", "linear_key_head_dim", "linear_value_head_dim"):
            cfg.pop(key)
        cfg["hidden_size"] = heads * draw(st.sampled_from([4, 8, 12]))
    return cfg


def test_random_configs_match_meta_device():
    @oracle_settings(N, database=None)
    @given(olmo_hybrid_configs())
    def run(cfg):
        check(cfg)

    run()
