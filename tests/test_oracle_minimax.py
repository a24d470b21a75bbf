"""MiniMax-Text-01 / MiniMax-M1 (minimax) against torch's meta device: class defaults, the published geometry and
random valid configs.

vLLM ``minimax_text_01.py`` @98370df7, ``layers/mamba/linear_attn.py`` @038f589a (reportgen/arch/families/
minimax.py).  No MiniMax-Text-01 / MiniMax-M1 config is in /work/shared/reference (configs/, configs_2026/), so
``TEXT01`` (tests/test_arch_minimax.py) is written FROM MEMORY from the published MiniMax-Text-01 / MiniMax-M1
geometry (both share it: 80 layers, every 8th a softmax layer, hidden 6144, 64 heads of 128, 8 KV heads,
32 experts of 9216, top-2, vocabulary 200064, rotary_dim 64); the published size is 456 B parameters, 45.9 B
activated per token, which the meta-device count of this config reproduces.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, strategies as st  # noqa: E402

from oracle_support import check, class_defaults, examples, oracle_settings  # noqa: E402
from test_arch_minimax import TEXT01  # noqa: E402

N = examples("HYBRID_ORACLE_EXAMPLES")


def test_class_defaults_with_head_dim_match_meta_device():
    # the class leaves head_dim null, which vLLM cannot size a lightning state with (test_arch_minimax.py): stated here
    cfg = class_defaults("minimax")
    cfg["head_dim"] = cfg["hidden_size"] // cfg["num_attention_heads"]
    spec = check(cfg)
    comp = spec.params_by_component()
    # 16 lightning layers of 32 x 128: qkv (3 x 4096 x 4096), output_gate, out_proj (4096 x 4096 each), norm 4096
    assert comp["linear_attention"] == 16 * (5 * 4096 * 4096 + 4096)
    assert comp["attention"] == 16 * (2 * 4096 * 4096 + 2 * 4096 * 1024)
    assert comp["routed_experts"] == 32 * 8 * 3 * 4096 * 14336


def test_text01_geometry_matches_meta_device_and_the_published_size():
    spec = check(TEXT01)
    assert spec.params_total == 456_089_655_296                          # "456 B"
    comp = spec.params_by_component()
    inactive = comp["routed_experts"] * 30 // 32                            # top-2 of 32
    assert spec.params_total - comp["embedding"] - comp["lm_head"] - inactive == 45_944_920_064   # "45.9 B"
    assert comp["linear_attention"] == 70 * (5 * 6144 * 8192 + 8192)


@st.composite
def minimax_configs(draw) -> dict:
    n_layers = draw(st.integers(1, 6))
    heads = draw(st.sampled_from([1, 2, 4, 8]))
    kv = draw(st.sampled_from([h for h in (1, 2, 4, 8) if heads % h == 0]))
    n_exp = draw(st.integers(2, 6))
    head_dim = draw(st.sampled_from([2, 4, 8, 12, 16]))
    cfg = {
        "model_type": "minimax",
        "vocab_size": draw(st.integers(8, 300)),
        "hidden_size": draw(st.integers(4, 48)),
        "intermediate_size": draw(st.integers(1, 48)),
        "num_hidden_layers": n_layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "head_dim": head_dim,
        "num_local_experts": n_exp,
        "num_experts_per_tok": draw(st.integers(1, n_exp)),
        "pad_token_id": 0, "eos_token_id": 0, "bos_token_id": 0,
    }
    if draw(st.booleans()):
        cfg["layer_types"] = [draw(st.sampled_from(["linear_attention", "full_attention"])) for _ in range(n_layers)]
    if draw(st.booleans()):
        cfg["rotary_dim"] = draw(st.integers(1, head_dim))
    if draw(st.booleans()):
        cfg["tie_word_embeddings"] = False
    return cfg


def test_random_configs_match_meta_device():
    @oracle_settings(N, database=None)
    @given(minimax_configs())
    def run(cfg):
        spec = check(cfg)
        kinds = spec.layers_kv
        assert len(kinds) == cfg["num_hidden_layers"]
        n_lin = sum(1 for l in kinds if l.state is not None)
        inner = cfg["num_attention_heads"] * cfg["head_dim"]
        assert spec.params_by_component()["linear_attention"] == n_lin * (5 * cfg["hidden_size"] * inner + inner)

    run()
