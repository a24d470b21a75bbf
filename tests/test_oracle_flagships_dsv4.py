"""Meta-device cross-check of DeepSeek-V4 (``deepseek_v4``) weights: families/deepseek_v4.py.

Counted three ways against transformers 5.24's native ``DeepseekV4ForCausalLM`` on the meta device:
the shipped V4-Flash config (tests/data/configs_2026), the class defaults and random valid configs
(hypothesis: ``ORACLE_EXAMPLES_DSV4``, else ``ORACLE_EXAMPLES``, default 200).  Checked: the total,
the active parameters (routed experts at k/E) and every component -- the transformers parameter
names are sorted into reportgen's components by the mapping of the family docstring (vLLM
deepseek_v4.py @023da1fc): mHC ``*_hc.*`` / ``hc_head.*`` -> other, the two decoder norms and the final
norm -> norm, ``mlp.gate`` -> router, ``mlp.experts`` -> routed, ``mlp.shared_experts`` -> shared,
everything in ``self_attn`` (compressors and indexers included) -> attention.

The specs are servable (no ``unsupported_reason``; the KV side is tests/test_compressed_kv.py); the
per-layer KV geometry is checked there.
"""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, strategies as st  # noqa: E402

from reportgen.arch import build_spec  # noqa: E402
from oracle_support import class_defaults, examples, model_on_meta, oracle_settings, shipped  # noqa: E402

EXAMPLES = examples("ORACLE_EXAMPLES_DSV4")
TYPES = ("sliding_attention", "compressed_sparse_attention", "heavily_compressed_attention")
RATIO = {"sliding_attention": 0, "compressed_sparse_attention": 4, "heavily_compressed_attention": 128}


def _component(name: str) -> str:
    if name.endswith(("_hc.fn", "_hc.base", "_hc.scale")) or ".hc_head." in name:
        return "other"
    if name.startswith("model.embed_tokens."):
        return "embedding"
    if name.startswith("lm_head."):
        return "lm_head"
    if name == "model.norm.weight" or name.endswith(("input_layernorm.weight", "post_attention_layernorm.weight")):
        return "norm"
    if ".mlp.gate." in name:
        return "router"
    if ".mlp.experts." in name:
        return "routed_experts"
    if ".mlp.shared_experts." in name:
        return "shared_experts"
    assert ".self_attn." in name, name
    return "attention"


def meta_params(config: dict) -> tuple[int, dict[str, int], int]:
    """(total, per component, active) of the transformers model on the meta device."""
    import transformers
    from transformers import AutoModelForCausalLM

    cfg = copy.deepcopy(config)
    cfg.pop("quantization_config", None)
    conf = transformers.CONFIG_MAPPING["deepseek_v4"](**cfg)
    model = model_on_meta(lambda: AutoModelForCausalLM.from_config(conf))
    by: dict[str, int] = {}
    for name, p in model.named_parameters():
        by[_component(name)] = by.get(_component(name), 0) + p.numel()
    total = sum(by.values())
    routed = by.get("routed_experts", 0)
    active = total - routed + routed * conf.num_experts_per_tok // conf.n_routed_experts
    return total, by, active


def _check(cfg: dict) -> None:
    spec = build_spec(cfg)
    assert spec.unsupported_reason is None and len(spec.layers_kv) == spec.num_layers
    total, by, active = meta_params(cfg)
    assert spec.params_total == total
    assert spec.params_active == active
    mine = {k: v for k, v in spec.params_by_component().items() if v}
    assert mine == by


def test_shipped_v4_flash_matches_meta_device():
    _check(shipped("deepseek-ai--DeepSeek-V4-Flash"))


def test_transformers_default_config_matches_meta_device():
    _check(class_defaults("deepseek_v4"))


@st.composite
def v4_configs(draw) -> dict:
    n = draw(st.integers(1, 5))
    types = draw(st.lists(st.sampled_from(TYPES), min_size=n, max_size=n))
    groups = draw(st.integers(1, 4))
    head = draw(st.integers(2, 24))
    experts = draw(st.integers(1, 6))
    cfg = {
        "model_type": "deepseek_v4",
        "hidden_size": draw(st.integers(4, 48)),
        "num_hidden_layers": n,
        "num_attention_heads": groups * draw(st.integers(1, 3)),
        "num_key_value_heads": 1,
        "head_dim": head,
        "qk_rope_head_dim": draw(st.integers(1, head)),
        "q_lora_rank": draw(st.integers(1, 24)),
        "o_groups": groups,
        "o_lora_rank": draw(st.integers(1, 16)),
        "hc_mult": draw(st.integers(1, 4)),
        "index_n_heads": draw(st.integers(1, 4)),
        "index_head_dim": draw(st.integers(1, 16)),
        "index_topk": draw(st.integers(1, 64)),
        "sliding_window": draw(st.integers(1, 256)),
        "vocab_size": draw(st.integers(8, 200)),
        "n_routed_experts": experts,
        "num_experts_per_tok": draw(st.integers(1, experts)),
        "n_shared_experts": 1,
        "moe_intermediate_size": draw(st.integers(1, 24)),
        "num_hash_layers": draw(st.integers(0, n)),
        "num_nextn_predict_layers": draw(st.integers(0, 1)),
        "max_position_embeddings": draw(st.integers(16, 1 << 20)),
    }
    if draw(st.booleans()):    # the shipped form: vLLM's per-layer ratios (plus the MTP layer's entry)
        cfg["compress_ratios"] = [RATIO[t] for t in types] + [0]
    else:                      # the transformers form
        cfg["layer_types"] = types
    return cfg


@oracle_settings(EXAMPLES)
@given(v4_configs())
def test_random_configs_match_meta_device(cfg):
    _check(cfg)
