"""Optional cross-check against torch's meta device (skipped when torch is not importable).

The same method as ../shared/tools/oracle_params.py: instantiate the model
from its config under ``torch.device("meta")`` and count ``named_parameters()``
(shared tensors once).  Run on the bundled configs and on random configs of
every supported family, so shapes no reference config has are checked too:

    make oracle      # a separate .venv-oracle with torch==2.13.0 (CPU), then this file
"""

from __future__ import annotations

import copy
import os

import pytest

torch = pytest.importorskip("torch")

from hypothesis import HealthCheck, given, settings  # noqa: E402

from reportgen.arch import build_spec  # noqa: E402
from test_arch_properties import FAMILIES, TEMPLATES, _family_strategy  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
MULTIMODAL = ("gemma3", "mistral3", "llama4")


def meta_count(config: dict) -> int:
    """Parameters of the transformers model built on the meta device."""
    import transformers
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    cfg = copy.deepcopy(config)
    for key in ("quantization_config", "compression_config", "auto_map"):
        cfg.pop(key, None)
    model_type = cfg["model_type"]
    if model_type in MULTIMODAL:
        # count the whole model with the language model's own tie flag (what checkpoints and vLLM do)
        text_cls = transformers.CONFIG_MAPPING[cfg["text_config"].get("model_type", {
            "gemma3": "gemma3_text", "mistral3": "mistral", "llama4": "llama4_text"}[model_type])]
        text = text_cls(**cfg["text_config"])
        cfg["tie_word_embeddings"] = text.tie_word_embeddings
    conf = transformers.CONFIG_MAPPING[model_type](**cfg)
    with torch.device("meta"):
        if model_type in MULTIMODAL:
            model = AutoModelForImageTextToText.from_config(conf)
        else:
            model = AutoModelForCausalLM.from_config(conf)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("family", FAMILIES)
def test_bundled_family_config_matches_meta_device(family):
    assert build_spec(TEMPLATES[family]).params_total == meta_count(TEMPLATES[family])


@settings(max_examples=int(os.environ.get("ORACLE_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(_family_strategy())
def test_random_family_configs_match_meta_device(fam_cfg):
    _, cfg = fam_cfg
    assert build_spec(cfg).params_total == meta_count(cfg)


# families added later: their transformers class defaults too (phimoe's defaults are refused: no biases)
NEW_FAMILY_DEFAULTS = ("olmo2", "olmo3", "olmoe", "glm4", "exaone4", "seed_oss", "starcoder2", "granitemoe",
                       "arcee")


@pytest.mark.parametrize("model_type", NEW_FAMILY_DEFAULTS)
def test_new_family_default_config_matches_meta_device(model_type):
    import transformers

    cfg = transformers.AutoConfig.for_model(model_type).to_dict()
    spec = build_spec(cfg)
    assert spec.unsupported_reason is None, spec.unsupported_reason
    assert spec.params_total == meta_count(cfg)
