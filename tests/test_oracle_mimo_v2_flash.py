"""Meta-device cross-check of ``mimo_v2_flash`` (MiMo-V2-Flash): the shipped config, transformers' class defaults
(refused: vLLM's remote-code fields are missing; priced once they are added consistently) and random valid configs
whose vLLM fields agree with transformers' rules (``ORACLE_EXAMPLES_MIMO`` / ``ORACLE_EXAMPLES``, default 200).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, strategies as st  # noqa: E402

from reportgen.arch import build_spec  # noqa: E402
from oracle_support import check, class_defaults, examples, meta_count, oracle_settings  # noqa: E402
from test_arch_mimo_v2_flash import MIMO  # noqa: E402

EXAMPLES = examples("ORACLE_EXAMPLES_MIMO")


def vllm_fields(cfg: dict, sliding: list[bool], moe: list[bool]) -> dict:
    """The remote-code fields vLLM reads, written to agree with transformers' rules."""
    return dict(cfg, hybrid_layer_pattern=[1 if s else 0 for s in sliding], moe_layer_freq=[1 if m else 0 for m in moe],
                swa_num_attention_heads=cfg["num_attention_heads"], swa_num_key_value_heads=2 * cfg["num_key_value_heads"],
                swa_head_dim=cfg["head_dim"], swa_v_head_dim=cfg["v_head_dim"], add_swa_attention_sink_bias=True,
                sliding_window_size=cfg.get("sliding_window_size", 128))


def test_shipped_config_matches_meta_device():
    assert build_spec(MIMO).params_total == meta_count(MIMO) == 308_778_768_832


def test_transformers_defaults_refused_then_exact_with_vllm_fields():
    cfg = class_defaults("mimo_v2_flash")
    reason = build_spec(cfg).unsupported_reason
    assert reason and "hybrid_layer_pattern" in reason
    full = dict(vllm_fields(cfg, [t == "sliding_attention" for t in cfg["layer_types"]],
                            [t == "sparse" for t in cfg["mlp_layer_types"]]))
    check(full)


@st.composite
def mimo_configs(draw) -> dict:
    n = draw(st.integers(1, 6))
    kv = draw(st.integers(1, 3))
    heads = 2 * kv * draw(st.integers(1, 3))
    sliding = [draw(st.booleans()) for _ in range(n)]
    moe = [draw(st.booleans()) for _ in range(n)]
    experts = draw(st.integers(1, 6))
    cfg = {
        "model_type": "mimo_v2_flash",
        "hidden_size": draw(st.integers(4, 48)),
        "num_hidden_layers": n,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "head_dim": 2 * draw(st.integers(1, 8)),
        "v_head_dim": draw(st.integers(1, 16)),
        "vocab_size": draw(st.integers(8, 200)),
        "intermediate_size": draw(st.integers(1, 40)),
        "moe_intermediate_size": draw(st.integers(1, 24)),
        "n_routed_experts": experts,
        "num_experts_per_tok": draw(st.integers(1, experts)),
        "attention_bias": draw(st.booleans()),
        "max_position_embeddings": draw(st.integers(16, 4096)),
        "layer_types": ["sliding_attention" if s else "full_attention" for s in sliding],
        "mlp_layer_types": ["sparse" if m else "dense" for m in moe],
        "sliding_window_size": draw(st.integers(1, 512)),
        "tie_word_embeddings": False,
    }
    return vllm_fields(cfg, sliding, moe)


@oracle_settings(EXAMPLES)
@given(mimo_configs())
def test_random_mimo_configs_match_meta_device(cfg):
    spec = check(cfg)
    kv, hd, vd = cfg["num_key_value_heads"], cfg["head_dim"], cfg["v_head_dim"]
    expect = sum((2 * kv if s else kv) * (hd + vd) * 2 for s in cfg["hybrid_layer_pattern"])
    assert spec.kv_bytes_per_token(2) == expect
