"""Vision-language composites against torch's meta device (skipped without torch).

The count is the transformers model (``AutoModelForImageTextToText``) built on the meta
device; the spec's tensors are what vLLM loads, plus ``unloaded_params`` for what it
skips (LLaVA's CLIP layers past the feature layer), so the two must add up exactly.
Each family: its shipped config, its transformers class defaults, a trimmed config
(no ``vision_config``) and ``ORACLE_EXAMPLES`` random small configs per family (default 200, as in ``make test``;
``ORACLE_VISION_EXAMPLES`` overrides it for this module).
"""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

from hypothesis import HealthCheck, given  # noqa: E402

from reportgen.arch import build_spec  # noqa: E402
from oracle_support import examples, meta_count_image_text as meta_count, oracle_settings  # noqa: E402
from oracle_support import class_defaults as transformers_defaults  # noqa: E402
from test_arch_vision_2026 import FROM_MEMORY, SHIPPED, VISION_FAMILIES, shipped, vision_configs  # noqa: E402

EXAMPLES = examples("ORACLE_VISION_EXAMPLES")  # per family


def class_defaults(kind: str) -> dict:
    """The composite class's defaults; InternVL's as a servable checkpoint states them: vLLM needs
    ``text_config.architectures`` (the bare defaults are refused, tests/test_arch_vision_2026.py) and
    follows the text model's tie flag, which the defaults set apart from the top-level one."""
    cfg = transformers_defaults(kind)
    if kind == "internvl":
        cfg["text_config"].update(architectures=["Qwen2ForCausalLM"], tie_word_embeddings=cfg["tie_word_embeddings"])
    return cfg


def loaded_plus_skipped(cfg: dict) -> int:
    spec = build_spec(copy.deepcopy(cfg))
    assert spec.unsupported_reason is None, spec.unsupported_reason
    return spec.params_total + spec.unloaded_params


@pytest.mark.parametrize("model_id", SHIPPED.values())
def test_shipped_config_matches_meta_device(model_id):
    cfg = shipped(model_id)
    assert loaded_plus_skipped(cfg) == meta_count(cfg)


@pytest.mark.parametrize("kind", VISION_FAMILIES)
def test_class_defaults_match_meta_device(kind):
    cfg = class_defaults(kind)
    assert loaded_plus_skipped(cfg) == meta_count(cfg)


@pytest.mark.parametrize("kind", VISION_FAMILIES)
def test_trimmed_config_takes_class_default_tower(kind):
    cfg = class_defaults(kind)
    cfg.pop("vision_config")
    spec = build_spec(copy.deepcopy(cfg))
    assert any("class default" in n for n in spec.notes)
    assert spec.params_total + spec.unloaded_params == meta_count(cfg)


@pytest.mark.parametrize("kind", VISION_FAMILIES)
def test_random_configs_match_meta_device(kind):
    @oracle_settings(EXAMPLES, suppress_health_check=list(HealthCheck))
    @given(vision_configs(kind))
    def check(cfg):
        assert loaded_plus_skipped(cfg) == meta_count(cfg)

    check()


@pytest.mark.parametrize("name", ["google--gemma-3-12b-it", "mistralai--Mistral-Small-3.1-24B-Instruct-2503",
                                  "meta-llama--Llama-4-Scout-17B-16E-Instruct"])
def test_trimmed_gemma3_mistral3_llama4_take_the_class_default_tower(name):
    import json
    from pathlib import Path

    from oracle_support import meta_count as composite_meta_count   # the text model's tie flag, as vLLM

    cfg = json.loads((Path(__file__).parents[1] / "reportgen" / "sources" / "bundled" / f"{name}.json").read_text())
    cfg.pop("vision_config")
    spec = build_spec(copy.deepcopy(cfg))
    assert any("class default" in n for n in spec.notes)
    assert spec.params_total == composite_meta_count(cfg)


@pytest.mark.parametrize("model_id", list(FROM_MEMORY))
def test_configs_from_memory_match_meta_device(model_id):
    cfg = FROM_MEMORY[model_id]
    assert loaded_plus_skipped(cfg) == meta_count(cfg)
