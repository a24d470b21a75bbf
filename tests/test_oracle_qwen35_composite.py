"""Qwen3.5 composites (qwen3_5, qwen3_5_moe) against torch's meta device (skipped without torch).

The count is transformers' ``Qwen3_5(Moe)ForConditionalGeneration`` built on the meta device
(``AutoModelForImageTextToText``: ``meta_count_image_text`` of tests/oracle_support.py, as
tests/test_oracle_vision.py counts); the spec must equal it
exactly: the Gated-DeltaNet hybrid text stack (families/qwen3_next.py) plus the Qwen3-VL tower
without deepstack mergers (towers_qwen.qwen3_5_tower).  Each family: its shipped config, its
transformers class defaults, a trimmed config (no ``vision_config``) and ``ORACLE_EXAMPLES``
random small composites (default 200 per family; ``ORACLE_QWEN35_EXAMPLES`` overrides it here),
built from the random hybrid text configs of tests/test_oracle_hybrid_qwen.py and a random
Qwen3-VL-shaped tower as in tests/test_arch_vision_2026.py.
"""

from __future__ import annotations

import copy
import json

import pytest

torch = pytest.importorskip("torch")

from hypothesis import HealthCheck, given, strategies as st  # noqa: E402

from reportgen.arch import build_spec  # noqa: E402
from oracle_support import (DATA, class_defaults, examples, meta_count_image_text as meta_count,  # noqa: E402
                            oracle_settings)
from test_oracle_hybrid_qwen import hybrid_configs  # noqa: E402

EXAMPLES = examples("ORACLE_QWEN35_EXAMPLES")  # per family
FAMILIES = {"qwen3_5": "qwen3_5_text", "qwen3_5_moe": "qwen3_5_moe_text"}
SHIPPED = {"qwen3_5": DATA / "configs_2026" / "Qwen--Qwen3.5-27B.json",
           "qwen3_5_moe": DATA / "configs_2026" / "Qwen--Qwen3.5-35B-A3B.json"}


def spec_total(cfg: dict) -> int:
    spec = build_spec(copy.deepcopy(cfg))
    assert spec.unsupported_reason is None, spec.unsupported_reason
    assert spec.family == cfg["model_type"] and spec.multimodal
    assert spec.unloaded_params == 0          # vLLM loads the whole Qwen3-VL tower
    return spec.params_total


@pytest.mark.parametrize("kind", FAMILIES)
def test_shipped_config_matches_meta_device(kind):
    cfg = json.loads(SHIPPED[kind].read_text())
    assert spec_total(cfg) == meta_count(cfg)


@pytest.mark.parametrize("kind", FAMILIES)
def test_class_defaults_match_meta_device(kind):
    cfg = class_defaults(kind)
    assert spec_total(cfg) == meta_count(cfg)


@pytest.mark.parametrize("kind", FAMILIES)
def test_trimmed_config_takes_class_default_tower(kind):
    cfg = json.loads(SHIPPED[kind].read_text())
    cfg.pop("vision_config")
    spec = build_spec(copy.deepcopy(cfg))
    assert any("class default" in n for n in spec.notes)
    assert spec.params_total == meta_count(cfg)


@st.composite
def composite_configs(draw, kind: str) -> dict:
    """A small random qwen3_5 / qwen3_5_moe composite: hybrid text stack + Qwen3-VL-shaped tower."""
    text = draw(hybrid_configs(FAMILIES[kind]))
    v_heads = draw(st.sampled_from([1, 2]))
    vision = dict(depth=draw(st.integers(1, 3)), num_heads=v_heads, hidden_size=v_heads * 2 * draw(st.integers(1, 4)),
                  intermediate_size=draw(st.integers(1, 40)), in_channels=draw(st.integers(1, 3)),
                  patch_size=draw(st.integers(1, 4)), temporal_patch_size=draw(st.integers(1, 2)),
                  spatial_merge_size=draw(st.integers(1, 2)), num_position_embeddings=draw(st.sampled_from([1, 4, 16])),
                  out_hidden_size=text["hidden_size"])
    if draw(st.booleans()):
        vision["deepstack_visual_indexes"] = []        # as every shipped checkpoint states it
    cfg = {"model_type": kind, "text_config": text, "vision_config": vision,
           "tie_word_embeddings": text["tie_word_embeddings"]}
    return cfg


@pytest.mark.parametrize("kind", FAMILIES)
def test_random_composites_match_meta_device(kind):
    @oracle_settings(EXAMPLES, suppress_health_check=list(HealthCheck), database=None)
    @given(composite_configs(kind))
    def check(cfg):
        assert spec_total(cfg) == meta_count(cfg)

    check()
