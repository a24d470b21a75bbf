"""Meta-device cross-check of the 2025-2026 GQA flagships (issue 12): shipped configs, transformers class
defaults, and >= 200 random valid configs per family with small dimensions.

The count is the one of tests/oracle_support.py (``meta_count``): the native transformers class built
under ``torch.device("meta")``, ``sum(p.numel() for p in model.parameters())``; composites whole with
``meta_count_image_text``.  ``FLAGSHIP_ORACLE_EXAMPLES`` (else ``ORACLE_EXAMPLES``, else 200) random configs.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from hypothesis import assume, given, strategies as st  # noqa: E402

from reportgen.arch import build_spec  # noqa: E402
from oracle_support import (check, class_defaults as defaults, examples, meta_count,  # noqa: E402
                            meta_count_image_text, oracle_settings, shipped, truth_2026)

TRUTH = truth_2026()
EXAMPLES = examples("FLAGSHIP_ORACLE_EXAMPLES")
SETTINGS = oracle_settings(EXAMPLES)


def _small_geometry(draw, *, head_dims=(4, 8, 16)) -> dict:
    heads = draw(st.sampled_from([1, 2, 4, 8]))
    kv = draw(st.sampled_from([d for d in (1, 2, 4, 8) if heads % d == 0]))
    return dict(num_attention_heads=heads, num_key_value_heads=kv, head_dim=draw(st.sampled_from(head_dims)),
                hidden_size=draw(st.sampled_from([8, 16, 24, 32])), num_hidden_layers=draw(st.integers(1, 6)),
                vocab_size=draw(st.integers(8, 300)), pad_token_id=None, bos_token_id=None, eos_token_id=None)


# ---------------------------------------------------------------- minimax_m2

def test_minimax_m25_shipped_matches_meta_device():
    cfg = shipped("MiniMaxAI--MiniMax-M2.5")
    assert build_spec(cfg).params_total == meta_count(cfg) == TRUTH["MiniMaxAI/MiniMax-M2.5"]["total_params"]


def test_minimax_m2_class_defaults():
    """The class defaults lack ``rotary_dim`` (vLLM cannot build them: refused); with it, exact."""
    cfg = defaults("minimax_m2")
    assert "rotary_dim" in build_spec(cfg).unsupported_reason
    check(dict(cfg, rotary_dim=64))


@st.composite
def minimax_m2_configs(draw):
    cfg = dict(model_type="minimax_m2", architectures=["MiniMaxM2ForCausalLM"], **_small_geometry(draw))
    experts = draw(st.integers(1, 8))
    cfg.update(num_local_experts=experts, num_experts_per_tok=draw(st.integers(1, experts)),
               intermediate_size=draw(st.integers(1, 48)), use_routing_bias=draw(st.booleans()),
               scoring_func="sigmoid", rotary_dim=cfg["head_dim"] // 2, tie_word_embeddings=False)
    return cfg


@SETTINGS
@given(minimax_m2_configs())
def test_random_minimax_m2_configs_match_meta_device(cfg):
    check(cfg)


# ---------------------------------------------------------------- gemma4_text

def test_gemma4_e4b_text_shipped_matches_meta_device():
    cfg = dict(shipped("google--gemma-4-E4B-it")["text_config"], architectures=["Gemma4ForCausalLM"])
    assert build_spec(cfg).params_total == meta_count(cfg) == TRUTH["google/gemma-4-E4B-it"]["text_model"]["total_params"]


def test_gemma4_text_class_defaults():
    check(defaults("gemma4_text"))


def test_gemma4_bidirectional_all_is_served_causally():
    """``use_bidirectional_attention='all'`` (transformers: ``is_causal = False``): vLLM compares the field with "vision"
    only (gemma4_mm.py l. 1193 / gemma4_unified.py l. 332, 0.34.0 sdist) and gemma4.py never reads it, so the model is
    served as a causal decoder: the same tensors and KV layer kinds as the shipped config, said in a note; the meta
    device builds the same parameters.  The sliding window is the one vLLM reads off transformers' config object,
    which halves it for 'all' (``sliding_window // 2 + 1``: 512 -> 257, configuration_gemma4.py)."""
    base = dict(shipped("google--gemma-4-E4B-it")["text_config"], architectures=["Gemma4ForCausalLM"])
    cfg = dict(base, use_bidirectional_attention="all")
    spec, ref = build_spec(cfg), build_spec(base)
    assert spec.unsupported_reason is None
    assert spec.params_total == ref.params_total == meta_count(cfg) == TRUTH["google/gemma-4-E4B-it"]["text_model"]["total_params"]
    assert [l.kind for l in spec.layers_kv] == [l.kind for l in ref.layers_kv]
    assert {l.window for l in ref.layers_kv if l.window} == {512}
    assert {l.window for l in spec.layers_kv if l.window} == {257}
    assert any("use_bidirectional_attention='all'" in n for n in spec.notes)


@pytest.mark.parametrize("name", ["nvidia--Gemma-4-31B-IT-NVFP4", "google--gemma-4-26B-A4B"])
def test_gemma4_31b_and_26b_a4b_real_configs_match_meta_device(name):
    """The real 31B / 26B-A4B config.json files (tests/data/configs_2026/SOURCES.md; num_global_key_value_heads
    with attention_k_eq_v): the text stack alone and the whole composite, the quantization_config dropped."""
    cfg = shipped(name)
    text = dict(cfg["text_config"], architectures=["Gemma4ForCausalLM"])
    spec = build_spec(text)
    assert spec.unsupported_reason is None and len(set(spec.kv_heads_by_layer)) == 2
    assert spec.params_total == meta_count(text)
    assert build_spec(cfg).params_total == meta_count_image_text(cfg)


@st.composite
def gemma4_text_configs(draw):
    g = _small_geometry(draw, head_dims=(4, 8))
    n = g["num_hidden_layers"]
    cfg = dict(model_type="gemma4_text", architectures=["Gemma4ForCausalLM"], **g)
    cfg["global_head_dim"] = draw(st.sampled_from([4, 8, 16]))
    pattern = draw(st.integers(1, 4))            # every pattern-th layer full; the last is forced full
    cfg["layer_types"] = ["full_attention" if (i + 1) % pattern == 0 else "sliding_attention" for i in range(n)]
    cfg["layer_types"][-1] = "full_attention"
    unshared = cfg["layer_types"]
    n_shared = draw(st.integers(0, n - 1))
    # transformers (and vLLM) need every layer type among the unshared layers
    assume(set(unshared[: n - n_shared]) == set(unshared))
    cfg["num_kv_shared_layers"] = n_shared
    cfg["use_double_wide_mlp"] = draw(st.booleans())
    cfg["attention_k_eq_v"] = draw(st.booleans())
    if draw(st.booleans()):      # full layers' own KV head count (used by both when attention_k_eq_v)
        cfg["num_global_key_value_heads"] = draw(st.sampled_from([d for d in (1, 2, 4, 8) if g["num_attention_heads"] % d == 0]))
    cfg["attention_bias"] = draw(st.booleans())
    cfg["tie_word_embeddings"] = draw(st.booleans())
    cfg["intermediate_size"] = draw(st.integers(1, 48))
    cfg["sliding_window"] = draw(st.sampled_from([4, 512]))
    ple = draw(st.sampled_from([0, 4, 8]))
    cfg["hidden_size_per_layer_input"] = ple
    cfg["vocab_size_per_layer_input"] = draw(st.integers(8, 300))
    if draw(st.booleans()):
        experts = draw(st.integers(1, 6))
        cfg.update(enable_moe_block=True, num_experts=experts, top_k_experts=draw(st.integers(1, experts)),
                   moe_intermediate_size=draw(st.integers(1, 32)))
    return cfg


@SETTINGS
@given(gemma4_text_configs())
def test_random_gemma4_text_configs_match_meta_device(cfg):
    check(cfg)


def test_gemma4_e4b_composite_shipped_matches_meta_device():
    cfg = shipped("google--gemma-4-E4B-it")
    assert build_spec(cfg).params_total == meta_count_image_text(cfg) == TRUTH["google/gemma-4-E4B-it"]["total_params"]


def test_gemma4_composite_class_defaults():
    """The composite's class defaults have no vision_config (vLLM's gemma4_mm.py always builds the vision
    tower from it): a ConfigError naming the field; with the vision class defaults, exact."""
    from reportgen.arch import ConfigError

    cfg = defaults("gemma4")
    with pytest.raises(ConfigError, match="vision_config"):
        build_spec(cfg)
    cfg["vision_config"] = {"model_type": "gemma4_vision"}
    spec = build_spec(cfg)
    assert spec.unsupported_reason is None, spec.unsupported_reason
    assert spec.params_total == meta_count_image_text(cfg)


@st.composite
def gemma4_configs(draw):
    text = draw(gemma4_text_configs())
    text.pop("architectures")
    heads = draw(st.sampled_from([1, 2, 4]))
    vision = dict(model_type="gemma4_vision", hidden_size=draw(st.sampled_from([8, 16])), num_attention_heads=heads,
                  num_key_value_heads=draw(st.sampled_from([d for d in (1, 2, 4) if heads % d == 0])),
                  head_dim=draw(st.sampled_from([4, 8])), intermediate_size=draw(st.integers(1, 32)),
                  num_hidden_layers=draw(st.integers(1, 3)), patch_size=draw(st.sampled_from([2, 4])),
                  position_embedding_size=draw(st.integers(4, 64)))
    cfg = dict(model_type="gemma4", architectures=["Gemma4ForConditionalGeneration"], text_config=text,
               vision_config=vision, tie_word_embeddings=text["tie_word_embeddings"])
    if draw(st.booleans()):
        a_heads = draw(st.sampled_from([1, 2, 4]))
        cfg["audio_config"] = dict(model_type="gemma4_audio", hidden_size=a_heads * draw(st.sampled_from([2, 4])),
                                   num_attention_heads=a_heads, num_hidden_layers=draw(st.integers(1, 3)),
                                   subsampling_conv_channels=[draw(st.sampled_from([4, 8, 12])),
                                                              draw(st.integers(1, 8))],
                                   conv_kernel_size=draw(st.integers(1, 5)),
                                   output_proj_dims=draw(st.integers(1, 24)))
    return cfg


@SETTINGS
@given(gemma4_configs())
def test_random_gemma4_composite_configs_match_meta_device(cfg):
    spec = build_spec(cfg)
    assert spec.unsupported_reason is None, spec.unsupported_reason
    assert spec.params_total == meta_count_image_text(cfg)


# ---------------------------------------------------------------- ministral3 (alone and in mistral3)

def test_ministral3_shipped_matches_meta_device():
    cfg = shipped("mistralai--Ministral-3-3B-Instruct-2512")
    assert build_spec(cfg).params_total == meta_count(cfg) == TRUTH["mistralai/Ministral-3-3B-Instruct-2512"]["total_params"]


def test_ministral3_class_defaults():
    check(defaults("ministral3"))


@st.composite
def ministral3_configs(draw):
    cfg = dict(model_type="ministral3", architectures=["Ministral3ForCausalLM"], **_small_geometry(draw))
    cfg.update(intermediate_size=draw(st.integers(1, 48)), tie_word_embeddings=draw(st.booleans()),
               sliding_window=draw(st.sampled_from([None, 16])))
    return cfg


@SETTINGS
@given(ministral3_configs())
def test_random_ministral3_configs_match_meta_device(cfg):
    check(cfg)


@st.composite
def mistral3_ministral3_configs(draw):
    """A mistral3 composite (Pixtral tower + projector) around a random ministral3 text model (Ministral 3)."""
    text = draw(ministral3_configs())
    text.pop("architectures")
    heads = draw(st.integers(1, 3))
    vis = {"model_type": "pixtral", "hidden_size": heads * 2 * draw(st.integers(1, 4)),
           "intermediate_size": draw(st.integers(1, 40)), "num_hidden_layers": draw(st.integers(1, 3)),
           "num_attention_heads": heads, "patch_size": draw(st.integers(1, 4)), "image_size": 64}
    vis["head_dim"] = vis["hidden_size"] // heads
    return {"model_type": "mistral3", "architectures": ["Mistral3ForConditionalGeneration"], "text_config": text,
            "vision_config": vis, "spatial_merge_size": draw(st.integers(1, 2)),
            "multimodal_projector_bias": draw(st.booleans()), "projector_hidden_act": "gelu",
            "vision_feature_layer": -1}


@SETTINGS
@given(mistral3_ministral3_configs())
def test_random_mistral3_composites_with_ministral3_text_match_meta_device(cfg):
    """``meta_count`` builds mistral3 whole (AutoModelForImageTextToText) with the text model's tie flag."""
    spec = check(cfg)
    assert spec.multimodal and spec.params_total > spec.params_text


# ---------------------------------------------------------------- cohere (Command-R)

def test_command_r_shipped_matches_meta_device():
    cfg = shipped("CohereForAI--c4ai-command-r-v01")
    assert build_spec(cfg).params_total == meta_count(cfg) == TRUTH["CohereForAI/c4ai-command-r-v01"]["total_params"]


def test_cohere_class_defaults():
    check(defaults("cohere"))


@st.composite
def cohere_configs(draw):
    g = _small_geometry(draw)
    g.pop("head_dim")                     # vLLM: hidden // heads
    g["hidden_size"] = g["num_attention_heads"] * draw(st.sampled_from([2, 4, 8]))
    cfg = dict(model_type="cohere", architectures=["CohereForCausalLM"], **g)
    cfg.update(intermediate_size=draw(st.integers(1, 48)), use_qk_norm=draw(st.booleans()),
               tie_word_embeddings=True)
    return cfg


@SETTINGS
@given(cohere_configs())
def test_random_cohere_configs_match_meta_device(cfg):
    check(cfg)


# ---------------------------------------------------------------- dots1

def test_dots1_published_config_matches_meta_device():
    from test_arch_flagships_gqa import DOTS1

    assert build_spec(DOTS1).params_total == meta_count(DOTS1) == 142_774_373_888


def test_dots1_class_defaults_refused():
    """The class defaults carry no experts (``n_routed_experts`` None: transformers cannot build them either); their
    4096 window is priced as vLLM applies it (test_arch_flagships_gqa.test_dots1_sliding_window_as_vllm_applies_it)."""
    from reportgen.arch.errors import ConfigError

    with pytest.raises(ConfigError, match="n_routed_experts"):
        build_spec(defaults("dots1"))
    with pytest.raises(Exception):
        meta_count(defaults("dots1"))


@st.composite
def dots1_configs(draw):
    cfg = dict(model_type="dots1", architectures=["Dots1ForCausalLM"], **_small_geometry(draw))
    experts = draw(st.integers(1, 8))
    cfg.update(n_routed_experts=experts, num_experts_per_tok=draw(st.integers(1, experts)),
               n_shared_experts=draw(st.integers(0, 2)), moe_intermediate_size=draw(st.integers(1, 32)),
               intermediate_size=draw(st.integers(1, 48)), first_k_dense_replace=draw(st.integers(0, 3)),
               moe_layer_freq=1, sliding_window=None, tie_word_embeddings=False, n_group=1, topk_group=1)
    if draw(st.booleans()):
        cfg.pop("head_dim")
    return cfg


@SETTINGS
@given(dots1_configs())
def test_random_dots1_configs_match_meta_device(cfg):
    check(cfg)


# ---------------------------------------------------------------- ernie4_5 / ernie4_5_moe

@pytest.mark.parametrize("model_type", ["ernie4_5", "ernie4_5_moe"])
def test_ernie_class_defaults(model_type):
    check(defaults(model_type))


def test_ernie45_moe_published_config_matches_meta_device():
    from test_arch_flagships_gqa import ERNIE_MOE

    assert build_spec(ERNIE_MOE).params_total == meta_count(ERNIE_MOE)


@st.composite
def ernie_configs(draw, model_type: str):
    cfg = dict(model_type="ernie4_5", architectures=["Ernie4_5ForCausalLM"], **_small_geometry(draw))
    cfg.update(intermediate_size=draw(st.integers(1, 48)), tie_word_embeddings=draw(st.booleans()), use_bias=False)
    if model_type == "ernie4_5_moe":
        n = cfg["num_hidden_layers"]
        experts = draw(st.integers(1, 8))
        start = draw(st.integers(0, n - 1))
        cfg.update(model_type="ernie4_5_moe", architectures=["Ernie4_5_MoeForCausalLM"], moe_num_experts=experts,
                   moe_k=draw(st.integers(1, experts)), moe_num_shared_experts=draw(st.integers(0, 2)),
                   moe_intermediate_size=draw(st.integers(1, 32)), moe_layer_start_index=start,
                   moe_layer_end_index=draw(st.sampled_from([-1, n - 1])), moe_layer_interval=1)
    return cfg


@pytest.mark.parametrize("model_type", ["ernie4_5", "ernie4_5_moe"])
def test_random_ernie_configs_match_meta_device(model_type):
    """FLAGSHIP_ORACLE_EXAMPLES (default 200) random configs per family."""
    @SETTINGS
    @given(ernie_configs(model_type))
    def run(cfg):
        assert cfg["model_type"] == model_type
        check(cfg)

    run()


# ---------------------------------------------------------------- apertus

def test_apertus_class_defaults_and_published():
    from test_arch_flagships_gqa import APERTUS

    check(defaults("apertus"))
    assert build_spec(APERTUS).params_total == meta_count(APERTUS)


@st.composite
def apertus_configs(draw):
    cfg = dict(model_type="apertus", architectures=["ApertusForCausalLM"], **_small_geometry(draw))
    cfg.update(intermediate_size=draw(st.integers(1, 48)), tie_word_embeddings=draw(st.booleans()),
               attention_bias=draw(st.booleans()), hidden_act="xielu")
    if draw(st.booleans()):
        cfg.pop("head_dim")
    return cfg


@SETTINGS
@given(apertus_configs())
def test_random_apertus_configs_match_meta_device(cfg):
    check(cfg)


# ---------------------------------------------------------------- hunyuan_v1_dense / hunyuan_v1_moe

def test_hunyuan_a13b_matches_meta_device():
    from test_arch_flagships_gqa import HUNYUAN_MOE

    assert build_spec(HUNYUAN_MOE).params_total == meta_count(HUNYUAN_MOE)


@pytest.mark.parametrize("model_type", ["hunyuan_v1_dense", "hunyuan_v1_moe"])
def test_hunyuan_class_defaults_refused(model_type):
    """Class defaults: no head_dim (transformers cannot build them) and no use_qk_norm (vLLM drops the norms)."""
    assert build_spec(defaults(model_type)).unsupported_reason


@st.composite
def hunyuan_configs(draw, model_type: str):
    cfg = dict(model_type="hunyuan_v1_dense", architectures=["HunYuanDenseV1ForCausalLM"], **_small_geometry(draw))
    # a non-silu activation and a single expert are priced from 0.29 (tests/test_hunyuan_cla_versions.py); use_cla
    # with cla_share_factor 1 builds no cross layer (vLLM's _get_cla_factor)
    cfg.update(intermediate_size=draw(st.integers(1, 48)), tie_word_embeddings=draw(st.booleans()),
               attention_bias=draw(st.booleans()), use_qk_norm=True,
               hidden_act=draw(st.sampled_from(["silu", "silu", "gelu", "relu", "gelu_pytorch_tanh"])),
               use_cla=draw(st.booleans()), cla_share_factor=1)
    if model_type == "hunyuan_v1_moe":
        experts = draw(st.integers(1, 8))
        cfg.update(model_type="hunyuan_v1_moe", architectures=["HunYuanMoEV1ForCausalLM"], num_experts=experts,
                   # an int or a per-layer list (HunYuanMoEV1Config: int | list[int]; vLLM reads moe_topk[i])
                   moe_topk=draw(st.integers(1, experts) | st.lists(st.integers(1, experts),
                                                                     min_size=cfg["num_hidden_layers"],
                                                                     max_size=cfg["num_hidden_layers"])),
                   use_mixed_mlp_moe=True, num_shared_expert=1,
                   moe_intermediate_size=draw(st.sampled_from([None, cfg["intermediate_size"]])))
    return cfg


@pytest.mark.parametrize("model_type", ["hunyuan_v1_dense", "hunyuan_v1_moe"])
def test_random_hunyuan_configs_match_meta_device(model_type):
    """FLAGSHIP_ORACLE_EXAMPLES (default 200) random configs per family."""
    @SETTINGS
    @given(hunyuan_configs(model_type))
    def run(cfg):
        assert cfg["model_type"] == model_type
        check(cfg)

    run()


# ---------------------------------------------------------------- exaone

def test_exaone_class_defaults_and_shipped():
    """The class defaults and EXAONE-3.5-7.8B-Instruct's config.json (tests/data/configs_2026, auto_map dropped:
    the native class)."""
    check(defaults("exaone"))
    cfg = shipped("LGAI-EXAONE--EXAONE-3.5-7.8B-Instruct")
    assert build_spec(cfg).params_total == meta_count(cfg) == 7_818_448_896


@st.composite
def exaone_configs(draw):
    g = _small_geometry(draw)
    g["num_layers"] = g.pop("num_hidden_layers")
    cfg = dict(model_type="exaone", architectures=["ExaoneForCausalLM"], activation_function="silu", **g)
    cfg.update(intermediate_size=draw(st.integers(1, 48)), tie_word_embeddings=draw(st.booleans()),
               attention_bias=draw(st.booleans()), mlp_bias=draw(st.booleans()))
    if draw(st.booleans()):
        cfg.pop("head_dim")
    return cfg


@SETTINGS
@given(exaone_configs())
def test_random_exaone_configs_match_meta_device(cfg):
    check(cfg)
