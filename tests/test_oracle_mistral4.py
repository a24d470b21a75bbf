"""Meta-device cross-check of ``mistral4`` (Mistral Small 4), alone and as a ``mistral3`` composite's text model.

transformers 5.24 has no AutoModelForCausalLM mapping for Mistral4Config, so the text model is built as
``Mistral4ForCausalLM`` directly; composites go through ``meta_count`` (AutoModelForImageTextToText).  Counted on
the Mistral-Small-4 geometry (the class defaults), the class defaults of the composite, and random valid configs
(``ORACLE_EXAMPLES_MISTRAL4`` / ``ORACLE_EXAMPLES``, default 200 text configs and 200 composites).
"""

from __future__ import annotations

import copy
import os

import pytest

torch = pytest.importorskip("torch")

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from reportgen.arch import build_spec  # noqa: E402
from test_arch_mistral4 import SMALL4, small4_composite  # noqa: E402
from test_arch_oracle import meta_count  # noqa: E402
from test_oracle_flagships_dsa import mla_configs  # noqa: E402

EXAMPLES = int(os.environ.get("ORACLE_EXAMPLES_MISTRAL4", os.environ.get("ORACLE_EXAMPLES", "200")))


def meta_count_text(config: dict) -> int:
    import transformers

    cfg = copy.deepcopy(config)
    for key in ("quantization_config", "architectures"):
        cfg.pop(key, None)
    conf = transformers.Mistral4Config(**cfg)
    with torch.device("meta"):
        model = transformers.Mistral4ForCausalLM(conf)
    return sum(p.numel() for p in model.parameters())


def test_small4_geometry_matches_meta_device():
    spec = build_spec(SMALL4)
    assert spec.params_total == meta_count_text(SMALL4) == 118_972_826_624


def test_transformers_default_config_matches_meta_device():
    import transformers

    cfg = transformers.AutoConfig.for_model("mistral4").to_dict()
    spec = build_spec(cfg)
    assert spec.unsupported_reason is None, spec.unsupported_reason
    assert spec.params_total == meta_count_text(cfg)


def test_small4_composite_matches_meta_device():
    cfg = small4_composite()
    assert build_spec(cfg).params_total == meta_count(cfg)


def test_composite_class_defaults_with_mistral4_text_match_meta_device():
    import transformers

    cfg = transformers.AutoConfig.for_model("mistral3", text_config={"model_type": "mistral4"}).to_dict()
    spec = build_spec(cfg)
    assert spec.unsupported_reason is None, spec.unsupported_reason
    assert spec.params_total == meta_count(cfg)


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


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mistral4_configs())
def test_random_mistral4_configs_match_meta_device(cfg):
    spec = build_spec(cfg)
    assert spec.unsupported_reason is None, spec.unsupported_reason
    assert spec.params_total == meta_count_text(cfg)
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


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(composites())
def test_random_mistral3_composites_with_mistral4_text_match_meta_device(cfg):
    spec = build_spec(cfg)
    assert spec.unsupported_reason is None, spec.unsupported_reason
    assert spec.params_total == meta_count(cfg)
