"""Meta-device cross-check of cohere, cohere2, cohere2_moe and exaone_moe (issue 12, the long tail): the
shipped Command-R config, published configs written from memory, the transformers class defaults and
``LONGTAIL_ORACLE_EXAMPLES`` (default ``ORACLE_EXAMPLES``, else 200) random valid configs per family.

The count is tests/oracle_support.py's ``meta_count``: the native transformers 5.24 class built under
``torch.device("meta")``, ``sum(p.numel() for p in model.parameters())``.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, strategies as st  # noqa: E402

from reportgen.arch import build_spec  # noqa: E402
from oracle_support import (check, class_defaults as defaults, examples, meta_count,  # noqa: E402
                            oracle_settings, shipped, truth_2026)
from test_arch_cohere_exaone import (COHERE2_MOE, KEXAONE, KEXAONE_TOTAL, KEXAONE_TRT_NAMES, R7B,  # noqa: E402
                                     R7B_TOTAL)

TRUTH = truth_2026()
EXAMPLES = examples("LONGTAIL_ORACLE_EXAMPLES")
SETTINGS = oracle_settings(EXAMPLES, derandomize=True, database=None)


def _geometry(draw, *, head_dim: bool = True) -> dict:
    heads = draw(st.sampled_from([1, 2, 4, 8]))
    kv = draw(st.sampled_from([d for d in (1, 2, 4, 8) if heads % d == 0]))
    g = dict(num_attention_heads=heads, num_key_value_heads=kv, hidden_size=draw(st.sampled_from([8, 16, 24, 32])),
             num_hidden_layers=draw(st.integers(1, 6)), vocab_size=draw(st.integers(8, 300)),
             intermediate_size=draw(st.integers(1, 48)), pad_token_id=None, bos_token_id=None, eos_token_id=None)
    if head_dim or draw(st.booleans()):
        g["head_dim"] = draw(st.sampled_from([4, 8, 16]))
    return g


def _windows(draw, n: int) -> list[str]:
    """Per-layer types with at least one sliding layer (with none, vLLM puts every layer in the window)."""
    lt = draw(st.lists(st.sampled_from(["sliding_attention", "full_attention"]), min_size=n, max_size=n))
    lt[draw(st.integers(0, n - 1))] = "sliding_attention"
    return lt


# ---------------------------------------------------------------- cohere

def test_command_r_shipped_and_head_dim_variant_match_meta_device():
    cfg = shipped("CohereForAI--c4ai-command-r-v01")
    assert build_spec(cfg).params_total == meta_count(cfg) == TRUTH["CohereForAI/c4ai-command-r-v01"]["total_params"]
    check(dict(cfg, head_dim=64, use_qk_norm=True))


@st.composite
def cohere_configs(draw):
    cfg = dict(model_type="cohere", architectures=["CohereForCausalLM"], **_geometry(draw, head_dim=False))
    cfg.update(use_qk_norm=draw(st.booleans()), tie_word_embeddings=True)
    if draw(st.booleans()):
        cfg["rms_norm_eps"] = 1e-6
    return cfg


@SETTINGS
@given(cohere_configs())
def test_random_cohere_configs_match_meta_device(cfg):
    check(cfg)


# ---------------------------------------------------------------- cohere2

@pytest.mark.parametrize("model_type", ["cohere", "cohere2", "cohere2_moe"])
def test_cohere_class_defaults(model_type):
    check(defaults(model_type))


def test_command_r7b_matches_meta_device():
    assert build_spec(R7B).params_total == meta_count(R7B) == R7B_TOTAL


@st.composite
def cohere2_configs(draw):
    g = _geometry(draw, head_dim=False)
    cfg = dict(model_type="cohere2", architectures=["Cohere2ForCausalLM"], **g)
    cfg.update(layer_types=_windows(draw, g["num_hidden_layers"]), sliding_window=draw(st.integers(1, 64)),
               tie_word_embeddings=True, max_position_embeddings=draw(st.sampled_from([64, 512])))
    if draw(st.booleans()):
        cfg["rms_norm_eps"] = 1e-6
    if draw(st.booleans()):
        cfg["model_max_length"] = 1024
    return cfg


@SETTINGS
@given(cohere2_configs())
def test_random_cohere2_configs_match_meta_device(cfg):
    check(cfg)


# ---------------------------------------------------------------- cohere2_moe

def test_cohere2_moe_example_matches_meta_device():
    assert build_spec(COHERE2_MOE).params_total == meta_count(COHERE2_MOE)


@st.composite
def cohere2_moe_configs(draw):
    g = _geometry(draw)
    n = g["num_hidden_layers"]
    experts = draw(st.integers(1, 8))
    cfg = dict(model_type="cohere2_moe", architectures=["Cohere2MoeForCausalLM"], **g)
    cfg.update(layer_types=_windows(draw, n), sliding_window=draw(st.integers(1, 64)), tie_word_embeddings=True,
               num_experts=experts, num_experts_per_tok=draw(st.integers(1, experts)),
               num_shared_experts=draw(st.integers(0, 2)),
               mlp_layer_types=draw(st.lists(st.sampled_from(["dense", "sparse"]), min_size=n, max_size=n)),
               prefix_dense_intermediate_size=draw(st.sampled_from([None, 8, 40])),
               expert_selection_fn=draw(st.sampled_from(["softmax", "sigmoid"])),
               shared_expert_combination_strategy=draw(st.sampled_from(["sum", "average"])),
               max_position_embeddings=512)
    if draw(st.booleans()):
        cfg["rms_norm_eps"] = 1e-6
    return cfg


@SETTINGS
@given(cohere2_moe_configs())
def test_random_cohere2_moe_configs_match_meta_device(cfg):
    check(cfg)


# ---------------------------------------------------------------- exaone_moe

def test_k_exaone_matches_meta_device():
    assert build_spec(KEXAONE).params_total == meta_count(KEXAONE) == KEXAONE_TOTAL


def test_k_exaone_trt_llm_field_names():
    """The TensorRT-LLM test's spelling (is_moe_layer, first_last_k_dense_replace, no sliding_windows): with no
    per-layer windows vLLM 0.32+ gives the sliding layers the scalar sliding_window (the spec says from which
    release: served_from); with or without them, the same count as KEXAONE on the meta device (transformers
    reads first_k_dense_replace's default 1 either way)."""
    spec = check(KEXAONE_TRT_NAMES)
    assert spec.params_total == KEXAONE_TOTAL and spec.served_from[0] == (0, 32)
    cfg = dict(KEXAONE_TRT_NAMES, sliding_windows=[128, 128, 128, 0] * 12)
    assert build_spec(cfg).params_total == meta_count(cfg) == KEXAONE_TOTAL


def test_exaone_moe_class_defaults_with_the_window_list():
    """The class defaults (no sliding_windows: priced from vLLM 0.32, tests/test_arch_cohere_exaone.py) and
    with the list vLLM reads: exact."""
    cfg = defaults("exaone_moe")
    check(cfg)
    cfg["sliding_windows"] = [cfg["sliding_window"] if t != "full_attention" else 0 for t in cfg["layer_types"]]
    check(cfg)


@st.composite
def exaone_moe_configs(draw):
    g = _geometry(draw, head_dim=False)
    n = g["num_hidden_layers"]
    experts = draw(st.integers(1, 8))
    cfg = dict(model_type="exaone_moe", architectures=["ExaoneMoeForCausalLM"], **g)
    cfg.update(num_experts=experts, num_experts_per_tok=draw(st.integers(1, experts)),
               num_shared_experts=draw(st.integers(0, 2)), moe_intermediate_size=draw(st.integers(1, 32)),
               mlp_layer_types=draw(st.lists(st.sampled_from(["dense", "sparse"]), min_size=n, max_size=n)),
               n_group=1, topk_group=1, tie_word_embeddings=draw(st.booleans()), max_position_embeddings=512)
    # transformers 5.24 types sliding_window as int (null fails to parse); the per-layer sliding_windows list
    # vLLM reads, or none (vLLM 0.32+ then takes the scalar for the sliding layers)
    window = draw(st.integers(1, 64))
    lt = _windows(draw, n)
    cfg.update(layer_types=lt, sliding_window=window)
    if draw(st.booleans()):
        cfg["sliding_windows"] = [draw(st.sampled_from([window, 2 * window])) if t == "sliding_attention" else 0
                                  for t in lt]
    return cfg


@SETTINGS
@given(exaone_moe_configs())
def test_random_exaone_moe_configs_match_meta_device(cfg):
    check(cfg)
