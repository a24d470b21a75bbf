"""Cross-check against torch's meta device: part of ``make test`` (and so of CI).

The same method as ../shared/tools/oracle_params.py: instantiate the model
from its config under ``torch.device("meta")`` and count ``named_parameters()``
(shared tensors once).  Run on the bundled configs, on each family's
transformers class defaults and on ``ORACLE_EXAMPLES`` (default 200) random
configs *per family*, so shapes no reference config has are checked too.

torch (the CPU build, ``torch==2.13.0``) comes with the ``oracle`` extra that
``make test`` installs; it is never a runtime dependency.  Without torch the
module is skipped, so a plain ``pip install -e .[test]`` still runs the rest.
``ORACLE_EXAMPLES=20 pytest tests/test_arch_oracle.py`` for a quick pass.
"""

from __future__ import annotations

import copy
import os

import pytest

torch = pytest.importorskip("torch")

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from reportgen.arch import build_spec  # noqa: E402
from test_arch_properties import FAMILIES, TEMPLATES, family_configs  # noqa: E402

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


ORACLE_EXAMPLES = int(os.environ.get("ORACLE_EXAMPLES", "200"))


@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=ORACLE_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_random_family_configs_match_meta_device(family, data):
    cfg = data.draw(family_configs(family))
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
