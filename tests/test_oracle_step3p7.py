"""Meta-device cross-check of ``step3p7`` (Step-3.7-Flash, vLLM step3p7.py @22c552fa / step3p5.py @01b50b9e /
step_vl.py @055e47c2): the shipped flat config (refused: transformers builds its default language model from it;
its meta count is the class defaults'), the class defaults (refused without vLLM's remote-code field names, exact
with them), the shipped fields in nested form, and random valid nested configs whose vLLM fields agree with
transformers (``ORACLE_EXAMPLES_STEP3P7`` / ``ORACLE_EXAMPLES``, default 200)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, strategies as st  # noqa: E402

from reportgen.arch import build_spec  # noqa: E402
from oracle_support import (assert_components, check, class_defaults, examples, meta_count_image_text,  # noqa: E402
                            oracle_settings, truth_2026)
from step3p7_configs import shipped_flat, shipped_nested, vllm_fields  # noqa: E402

EXAMPLES = examples("ORACLE_EXAMPLES_STEP3P7")
TRUTH = truth_2026()["stepfun-ai/Step-3.7-Flash"]
COMPONENTS = {"embedding": "embedding_params", "lm_head": "lm_head_params", "attention": "attention_params",
              "dense_mlp": "dense_mlp_params", "routed_experts": "routed_expert_params",
              "shared_experts": "shared_expert_params", "router": "router_params", "norm": "norm_params",
              "vision": "vision_params"}


def test_shipped_flat_config_refused_and_its_meta_count_is_the_class_defaults():
    flat = shipped_flat()
    reason = build_spec(flat).unsupported_reason
    assert reason and "without text_config" in reason and "128815" in reason
    # transformers ignores the flat text fields: the shipped config's meta count is the class defaults' count
    assert meta_count_image_text(flat) == meta_count_image_text(class_defaults("step3p7")) == TRUTH["total_params"]


def test_class_defaults_refused_then_exact_with_vllm_fields():
    cfg = class_defaults("step3p7")
    reason = build_spec(cfg).unsupported_reason
    assert reason and "moe_num_experts" in reason  # vLLM's Step3p5Config default 16 vs transformers' 288
    spec = check(vllm_fields(cfg), meta_count_image_text)
    assert spec.params_total == TRUTH["total_params"] == 197_824_847_872
    assert_components(spec, TRUTH, COMPONENTS)
    assert spec.params_total - spec.params_text == TRUTH["vision_params"]


def test_shipped_fields_nested_match_meta_device():
    cfg = shipped_nested()
    spec = check(cfg, meta_count_image_text)
    # vocab 128,896 (not the default 128,815): two embedding-sized matrices larger by 81 rows
    assert spec.params_total == TRUTH["total_params"] + 2 * 81 * 4096
    # hub-style lists padded with the 3 MTP layers: transformers splits them off, vLLM skips their weights
    t = cfg["text_config"]
    t.update(num_nextn_predict_layers=3, layer_types=t["layer_types"] + ["full_attention"] * 3,
             mlp_layer_types=t["mlp_layer_types"] + ["sparse"] * 3)
    assert check(cfg, meta_count_image_text).params_total == spec.params_total


@st.composite
def step3p7_configs(draw) -> dict:
    n = draw(st.integers(1, 5))
    kv = draw(st.integers(1, 3))
    heads, swa = kv * draw(st.integers(1, 3)), kv * draw(st.integers(1, 3))
    hd = 4 * draw(st.integers(1, 4))
    types = [draw(st.sampled_from(["full_attention", "sliding_attention"])) for _ in range(n)]
    moe = [draw(st.booleans()) for _ in range(n)]
    moe[draw(st.integers(0, n - 1))] = True
    experts = draw(st.integers(1, 6))
    text = {
        "hidden_size": draw(st.integers(4, 48)), "intermediate_size": draw(st.integers(1, 40)),
        "num_hidden_layers": n, "num_attention_heads": heads, "num_key_value_heads": kv, "head_dim": hd,
        "vocab_size": draw(st.integers(8, 200)), "max_position_embeddings": draw(st.integers(16, 4096)),
        "layer_types": types, "sliding_window": draw(st.one_of(st.none(), st.integers(1, 512))),
        "n_routed_experts": experts, "num_experts_per_tok": draw(st.integers(1, experts)),
        "moe_intermediate_size": draw(st.integers(1, 24)), "share_expert_dim": draw(st.integers(1, 24)),
        "mlp_layer_types": ["sparse" if m else "dense" for m in moe], "attention_bias": draw(st.booleans()),
        "attention_other_setting": {"attention_type": "sliding_attention", "num_attention_heads": swa,
                                    "num_attention_groups": kv, "head_dim": hd},
        "rope_theta": [draw(st.sampled_from([1e4, 5e5])) for _ in range(n)],
        "partial_rotary_factors": [draw(st.sampled_from([1.0, 0.5])) for _ in range(n)],
        "tie_word_embeddings": False,
    }
    mtp = draw(st.integers(0, 2))  # hub-style padding of the per-layer lists with the MTP layers
    if mtp:
        text.update(num_nextn_predict_layers=mtp,
                    layer_types=types + [draw(st.sampled_from(["full_attention", "sliding_attention"]))
                                         for _ in range(mtp)],
                    mlp_layer_types=text["mlp_layer_types"] + ["sparse" if draw(st.booleans()) else "dense"
                                                               for _ in range(mtp)])
    vh = draw(st.integers(1, 4))
    patch = draw(st.integers(1, 4))
    vision = {"hidden_size": vh * draw(st.integers(1, 8)), "num_hidden_layers": draw(st.integers(1, 3)),
              "num_attention_heads": vh, "patch_size": patch, "image_size": patch * draw(st.integers(1, 6)),
              "mlp_ratio": draw(st.sampled_from([1.0, 2.5, 8960 / 1536])), "layer_scale_init_value": 0.1}
    return vllm_fields({"model_type": "step3p7", "text_config": text, "vision_config": vision,
                        "projector_bias": draw(st.booleans())})


@oracle_settings(EXAMPLES)
@given(step3p7_configs())
def test_random_step3p7_configs_match_meta_device(cfg):
    spec = check(cfg, meta_count_image_text)
    t = cfg["text_config"]
    per_layer = t["num_key_value_heads"] * 2 * t["head_dim"] * 2
    assert spec.kv_bytes_per_token(2) == per_layer * t["num_hidden_layers"]
    sliding = [k.window for k in spec.layers_kv if k.window is not None]
    n_sliding = t["layer_types"][:t["num_hidden_layers"]].count("sliding_attention") if t["sliding_window"] else 0
    assert sliding == [t["sliding_window"]] * n_sliding
    assert (spec.mtp_params > 0) == bool(t.get("num_nextn_predict_layers"))
