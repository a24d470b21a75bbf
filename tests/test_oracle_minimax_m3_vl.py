"""Meta-device cross-check of ``minimax_m3_vl`` (MiniMax-M3 as published; vLLM vllm/models/minimax_m3/nvidia/model.py +
common/vision_tower.py, families/minimax_m3_vl.py): the synthetic composite fixture, transformers' class defaults (with
the vLLM-only text fields the text family requires) and random valid configs (``ORACLE_EXAMPLES_MINIMAX_M3_VL`` /
``ORACLE_EXAMPLES``, default 200).  The oracle is transformers 5.25's ``MiniMaxM3SparseForConditionalGeneration``."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, strategies as st  # noqa: E402

from reportgen.arch import build_spec  # noqa: E402
from oracle_support import class_defaults, count_on_meta, examples, oracle_settings  # noqa: E402
from test_oracle_minimax_m3 import VLLM_FIELDS, m3_configs  # noqa: E402

EXAMPLES = examples("ORACLE_EXAMPLES_MINIMAX_M3_VL")
FIXTURE = Path(__file__).parent / "data/configs_vision/MiniMaxAI--MiniMax-M3-composite.synthetic.json"
VL = json.loads(FIXTURE.read_text())


def meta_count(cfg: dict) -> int:
    import transformers
    from transformers.models.minimax_m3_vl.modeling_minimax_m3_vl import MiniMaxM3SparseForConditionalGeneration

    conf = transformers.CONFIG_MAPPING["minimax_m3_vl"](**copy.deepcopy(cfg))
    return count_on_meta(lambda: MiniMaxM3SparseForConditionalGeneration(conf))


def check(cfg: dict):
    spec = build_spec(cfg)
    assert spec.family == "minimax_m3_vl" and spec.multimodal
    # KV modelled, or refused by the text family (weights still exact) where vLLM's sparse kernels take another shape
    assert not spec.unsupported_reason or spec.unsupported_reason.startswith("minimax_m3: weights modelled exactly")
    assert spec.params_total == meta_count(cfg)
    return spec


def test_fixture_matches_meta_device():
    spec = check(VL)
    assert spec.params_total == 427_040_132_864 and spec.unsupported_reason is None


def test_class_defaults_match_meta_device_with_vllm_text_fields():
    cfg = class_defaults("minimax_m3_vl")
    cfg["architectures"] = ["MiniMaxM3SparseForConditionalGeneration"]
    assert "hidden_act" in build_spec(cfg).unsupported_reason        # transformers normalises it to silu
    cfg["text_config"].update(VLLM_FIELDS, partial_rotary_factor=0.5)
    check(cfg)


@st.composite
def vl_configs(draw) -> dict:
    text = draw(m3_configs())
    text.update(model_type="minimax_m3_vl_text")
    text.pop("architectures")
    heads = draw(st.integers(1, 3))
    temporal = draw(st.integers(1, 3))
    vis = {"hidden_size": heads * draw(st.integers(1, 6)), "num_attention_heads": heads,
           "intermediate_size": draw(st.integers(1, 40)), "num_hidden_layers": draw(st.integers(1, 3)),
           "num_channels": draw(st.integers(1, 3)), "patch_size": draw(st.integers(1, 4)),
           "temporal_patch_size": temporal, "spatial_merge_size": draw(st.integers(1, 3)), "layer_norm_eps": 1e-5,
           "img_token_compression_config": {"temporal_patch_size": temporal}}
    if draw(st.booleans()):
        vis.update(multimodal_projector_bias=True, patch_merge_bias=True)
    cfg = {"model_type": "minimax_m3_vl", "architectures": ["MiniMaxM3SparseForConditionalGeneration"],
           "text_config": text, "vision_config": vis, "tie_word_embeddings": False}
    if draw(st.booleans()):
        cfg["projector_hidden_size"] = draw(st.integers(1, 50))
    return cfg


@oracle_settings(EXAMPLES)
@given(vl_configs())
def test_random_minimax_m3_vl_configs_match_meta_device(cfg):
    spec = check(cfg)
    # vLLM 0.24 - 0.33 take the projector width from the text model when projector_hidden_size is absent
    assert (spec.served_from is None) == ("projector_hidden_size" in cfg or cfg["text_config"]["hidden_size"] == 6144)
