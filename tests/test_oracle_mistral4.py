"""Meta-device cross-check of ``mistral4`` (Mistral Small 4), alone and as a ``mistral3`` composite's text model.

transformers 5.24 has no AutoModelForCausalLM mapping for Mistral4Config, so the text model is built as
``Mistral4ForCausalLM`` directly; composites go through ``meta_count`` (AutoModelForImageTextToText).  Counted on
the Mistral-Small-4 geometry (the class defaults), the class defaults of the composite, and random valid configs
(``ORACLE_EXAMPLES_MISTRAL4`` / ``ORACLE_EXAMPLES``, default 200 text configs and 200 composites).
"""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, strategies as st  # noqa: E402

from reportgen.arch import build_spec  # noqa: E402
from oracle_support import check, class_defaults, count_on_meta, examples, meta_count, oracle_settings  # noqa: E402
from test_arch_mistral4 import SMALL4, small4_composite  # noqa: E402
from test_oracle_flagships_dsa import mla_configs  # noqa: E402

EXAMPLES = examples("ORACLE_EXAMPLES_MISTRAL4")


def meta_count_text(config: dict) -> int:
    import transformers

    cfg = copy.deepcopy(config)
    for key in ("quantization_config", "architectures"):
        cfg.pop(key, None)
    conf = transformers.Mistral4Config(**cfg)
    return count_on_meta(lambda: transformers.Mistral4ForCausalLM(conf))


def test_small4_geometry_matches_meta_device():
    spec = build_spec(SMALL4)
    assert spec.params_total == meta_count_text(SMALL4) == 118_972_826_624


def test_transformers_default_config_matches_meta_device():
    check(class_defaults("mistral4"), meta_count_text)


def test_small4_composite_matches_meta_device():
    cfg = small4_composite()
    assert build_spec(cfg).params_total == meta_count(cfg)


def test_composite_class_defaults_with_mistral4_text_match_meta_device():
    check(class_defaults("mistral3", text_config={"model_type": "mistral4"}))


@st.composite
def mistral4_configs(draw) -> dict:
    """The DeepSeek-V3 random geometry of the MLA flagships, as a Mistral4 config (no MTP, no moe_layer_freq)."""
    cfg = draw(mla_configs("glm4_moe_lite"))
    for key in ("moe_layer_freq", "mlp_layer_types", "num_nextn_predict_layers"):
        cfg.pop(key)
    cfg.update(model_type="mistral4", n_shared_experts=max(1, cfg["n_shared_experts"]),
               pad_token_id=0)                # the class default 11 is outside a tiny vocabulary
    if draw(st.booleans()):
        cfg.pop("first_k_dense_replace")      # class default 0
    return cfg


@oracle_settings(EXAMPLES)
@given(mistral4_configs())
def test_random_mistral4_configs_match_meta_device(cfg):
    spec = check(cfg, meta_count_text)
    assert len(spec.layers_kv) == cfg["num_hidden_layers"]
    assert spec.kv_bytes_per_token(2) == cfg["num_hidden_layers"] * (cfg["kv_lora_rank"] + cfg["qk_rope_head_dim"]) * 2


@st.composite
def composites(draw) -> dict:
    text = draw(mistral4_configs())
    heads = draw(st.integers(1, 3))
    vis = {"model_type": "pixtral", "hidden_size": heads * 2 * draw(st.integers(1, 4)),
           "intermediate_size": draw(st.integers(1, 40)), "num_hidden_layers": draw(st.integers(1, 3)),
           "num_attention_heads": heads, "patch_size": draw(st.integers(1, 4)), "image_size": 64}
    vis["head_dim"] = vis["hidden_size"] // heads
    return {"model_type": "mistral3", "text_config": text, "vision_config": vis,
            "spatial_merge_size": draw(st.integers(1, 2)), "multimodal_projector_bias": draw(st.booleans()),
            "projector_hidden_act": "gelu", "vision_feature_layer": -1}


@oracle_settings(EXAMPLES)
@given(composites())
def test_random_mistral3_composites_with_mistral4_text_match_meta_device(cfg):
    check(cfg)
