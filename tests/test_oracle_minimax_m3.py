"""Meta-device cross-check of ``minimax_m3`` (MiniMax-M3; vLLM vllm/models/minimax_m3/nvidia/model.py @0443308a),
weights exact (the KV cache: tests/test_arch_minimax_m3.py): the shipped config, transformers' ``minimax_m3_vl_text`` class defaults (refused without
the vLLM-only fields, exact with them) and random valid configs (``ORACLE_EXAMPLES_MINIMAX_M3`` /
``ORACLE_EXAMPLES``, default 200).  The oracle is transformers 5.24's ``MiniMaxM3VLForCausalLM`` (the text model of
the minimax_m3_vl composite; transformers has no minimax_m3 class)."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, strategies as st  # noqa: E402

from reportgen.arch import build_spec  # noqa: E402
from oracle_support import class_defaults, count_on_meta, examples, oracle_settings, shipped  # noqa: E402

EXAMPLES = examples("ORACLE_EXAMPLES_MINIMAX_M3")
M3 = shipped("MiniMaxAI--MiniMax-M3")
# the one branch vLLM's MiniMax-M3 builds (nvidia/model.py docstring), as the shipped config states it
VLLM_FIELDS = {"hidden_act": "swigluoai", "qk_norm_type": "per_head", "use_gemma_norm": True,
               "attention_output_gate": False, "use_routing_bias": True, "scoring_func": "sigmoid",
               "n_shared_experts": 1}


def meta_count(cfg: dict) -> int:
    from transformers.models.minimax_m3_vl.configuration_minimax_m3_vl import MiniMaxM3VLTextConfig
    from transformers.models.minimax_m3_vl.modeling_minimax_m3_vl import MiniMaxM3VLForCausalLM

    cfg = {k: copy.deepcopy(v) for k, v in cfg.items() if k not in ("model_type", "architectures")}
    conf = MiniMaxM3VLTextConfig(**cfg)
    return count_on_meta(lambda: MiniMaxM3VLForCausalLM(conf))


def check(cfg: dict):
    spec = build_spec(cfg)
    # KV modelled, or refused (weights still exact) where vLLM's sparse kernels take another shape
    assert (spec.unsupported_reason is None) == bool(spec.layers_kv)
    assert not spec.unsupported_reason or spec.unsupported_reason.startswith("minimax_m3: weights modelled exactly")
    assert spec.params_total == meta_count(cfg)
    return spec


def test_shipped_config_matches_meta_device():
    spec = check(M3)
    assert spec.params_total == 426_174_565_632 and spec.unsupported_reason is None
    assert spec.params_active == spec.params_total - spec.params_by_component()["routed_experts"] * 124 // 128


def test_class_defaults_refused_then_exact_with_vllm_fields():
    cfg = class_defaults("minimax_m3_vl_text")
    cfg.update(model_type="minimax_m3", architectures=["MiniMaxM3SparseForCausalLM"])
    reason = build_spec(cfg).unsupported_reason
    assert reason and "hidden_act" in reason and "different models" in reason
    check(dict(cfg, **VLLM_FIELDS))


@st.composite
def m3_configs(draw) -> dict:
    n = draw(st.integers(1, 5))
    kv = draw(st.integers(1, 3))
    hd = draw(st.sampled_from([4, 8, 12, 16, 128]))     # 128: the sparse backends' only head size (KV modelled)
    experts = draw(st.integers(1, 6))
    inter = draw(st.integers(1, 24))
    sparse = [draw(st.booleans()) for _ in range(n)]
    cfg = {
        "model_type": "minimax_m3", "architectures": ["MiniMaxM3ForCausalLM"],
        "hidden_size": draw(st.integers(4, 48)), "num_hidden_layers": n,
        "num_attention_heads": kv * draw(st.integers(1, 3)), "num_key_value_heads": kv, "head_dim": hd,
        "vocab_size": draw(st.integers(8, 200)), "max_position_embeddings": draw(st.integers(16, 4096)),
        "intermediate_size": inter, "moe_intermediate_size": inter, "shared_intermediate_size": inter,
        "dense_intermediate_size": draw(st.integers(1, 40)), "num_local_experts": experts,
        "num_experts_per_tok": draw(st.integers(1, experts)), "tie_word_embeddings": False,
        "moe_layer_freq": [int(draw(st.booleans())) for _ in range(n)],
        "partial_rotary_factor": 0.5, "rope_theta": 5e6,
        "sparse_attention_config": {"use_sparse_attention": True, "sparse_attention_freq": [int(s) for s in sparse],
                                    "sparse_num_index_heads": kv, "sparse_index_dim": hd, "sparse_block_size": 128,
                                    "sparse_topk_blocks": 4, "sparse_local_block": 1},
        **VLLM_FIELDS,
    }
    return cfg


@oracle_settings(EXAMPLES)
@given(m3_configs())
def test_random_minimax_m3_configs_match_meta_device(cfg):
    spec = check(cfg)
    names = {t.name for t in spec.tensors}
    freq = cfg["sparse_attention_config"]["sparse_attention_freq"]
    for i, s in enumerate(freq):
        assert (f"model.layers.{i}.self_attn.indexer.k_proj.weight" in names) == bool(s)
    if spec.layers_kv:      # K + V of every layer, one bf16 index key per sparse layer (vLLM's default indexer dtype)
        from reportgen.estimate.kvcache import kv_bytes_per_token
        n, kv, hd = cfg["num_hidden_layers"], cfg["num_key_value_heads"], cfg["head_dim"]
        assert kv_bytes_per_token(spec) == n * kv * 2 * hd * 2 + sum(freq) * hd * 2
    else:
        assert any(freq) and cfg["head_dim"] != 128
