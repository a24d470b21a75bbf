"""Qwen Gated-DeltaNet hybrids against torch's meta device: shipped configs, class defaults, random configs.

Exact parameter counts (and the per-component split on the shipped configs) for qwen3_next,
qwen3_5_text and qwen3_5_moe_text; the composite qwen3_5 / qwen3_5_moe text stacks equal the
meta-device total minus the vision tower (tests/data/param_counts_2026.json).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, strategies as st  # noqa: E402

from reportgen.arch import build_spec  # noqa: E402
from oracle_support import (DATA, assert_components, check, class_defaults_test, examples, meta_count,  # noqa: E402
                            oracle_settings, shipped, truth_2026)

# our component -> the truth file's key
TRUTH_KEY = {"attention": "attention_params", "linear_attention": "linear_attention_params",
             "dense_mlp": "dense_mlp_params", "routed_experts": "routed_expert_params",
             "shared_experts": "shared_expert_params", "router": "router_params", "norm": "norm_params",
             "embedding": "embedding_params", "lm_head": "lm_head_params"}
REF_NEXT = Path("/work/shared/reference/configs/Qwen--Qwen3-Next-80B-A3B-Instruct.json")
FAMILIES = ("qwen3_next", "qwen3_5_text", "qwen3_5_moe_text")
N = examples("HYBRID_ORACLE_EXAMPLES")


def text_stack(composite: dict) -> dict:
    """The composite's language model as a standalone config (its own tie flag, as vLLM loads it)."""
    text = copy.deepcopy(composite["text_config"])
    text.setdefault("tie_word_embeddings", composite.get("tie_word_embeddings", False))
    return text


@pytest.mark.parametrize("name", ["Qwen--Qwen3.5-27B", "Qwen--Qwen3.5-35B-A3B"])
def test_composite_text_stack_is_meta_total_minus_vision(name):
    cfg = shipped(name)
    truth = truth_2026()[name.replace("--", "/")]
    spec = check(text_stack(cfg))
    assert spec.params_total == truth["total_params"] - truth["vision_params"]
    assert_components(spec, truth, TRUTH_KEY)
    # the composite (tests/test_oracle_qwen35_composite.py) is this text stack plus the tower
    whole = build_spec(cfg)
    assert whole.params_total == truth["total_params"]
    assert whole.params_by_component()["vision"] == truth["vision_params"]


@pytest.mark.skipif(not REF_NEXT.exists(), reason="shared reference config not present")
def test_qwen3_next_80b_matches_meta_device_and_truth():
    cfg = json.loads(REF_NEXT.read_text())
    truth = json.loads((DATA / "param_counts.json").read_text())["models"]["Qwen/Qwen3-Next-80B-A3B-Instruct"]
    spec = build_spec(cfg)
    assert spec.params_total == truth["total_params"] == meta_count(cfg)
    assert_components(spec, truth, TRUTH_KEY)


test_class_defaults_match_meta_device = class_defaults_test(FAMILIES)


@st.composite
def hybrid_configs(draw, family: str) -> dict:
    n_layers = draw(st.integers(1, 6))
    heads = draw(st.sampled_from([1, 2, 4]))
    kv = draw(st.sampled_from([h for h in (1, 2, 4) if heads % h == 0]))
    nk = draw(st.sampled_from([1, 2, 4]))
    cfg = {
        "model_type": family,
        "vocab_size": draw(st.integers(8, 300)),
        "hidden_size": draw(st.sampled_from([16, 32, 48])),
        "num_hidden_layers": n_layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "head_dim": draw(st.sampled_from([4, 8, 16])),
        "linear_num_key_heads": nk,
        "linear_num_value_heads": nk * draw(st.integers(1, 3)),
        "linear_key_head_dim": draw(st.sampled_from([4, 8])),
        "linear_value_head_dim": draw(st.sampled_from([4, 8, 12])),
        "linear_conv_kernel_dim": draw(st.integers(2, 5)),
        "tie_word_embeddings": family != "qwen3_next" and draw(st.booleans()),
    }
    if draw(st.booleans()):
        cfg["layer_types"] = [draw(st.sampled_from(["linear_attention", "full_attention"])) for _ in range(n_layers)]
    else:
        cfg["full_attention_interval"] = draw(st.integers(1, 4))
    if family != "qwen3_5_moe_text":
        cfg["intermediate_size"] = draw(st.integers(1, 64))
    if family != "qwen3_5_text":
        e = draw(st.integers(1, 6))   # num_experts 0 is refused up front (fields.LIMITS)
        cfg.update(num_experts=e, num_experts_per_tok=draw(st.integers(1, max(e, 1))),
                   moe_intermediate_size=draw(st.integers(1, 32)),
                   shared_expert_intermediate_size=draw(st.integers(0, 32)))
        if family == "qwen3_next":
            cfg["decoder_sparse_step"] = draw(st.integers(1, 3))
            cfg["mlp_only_layers"] = draw(st.lists(st.integers(0, n_layers - 1), max_size=2, unique=True))
    return cfg


@pytest.mark.parametrize("family", FAMILIES)
def test_random_configs_match_meta_device(family):
    @oracle_settings(N, database=None)
    @given(hybrid_configs(family))
    def run(cfg):
        check(cfg)

    run()
