"""The meta-device oracle harness shared by tests/test_arch_oracle.py, tests/test_oracle_*.py and
tests/test_gemma3n.py (not a test module: pytest collects ``test_*.py`` only; imported as the tests
import each other, ``from oracle_support import ...``, tests/ being on ``sys.path``).

The count is the one of ../shared/tools/oracle_params.py: the native transformers class (never
``trust_remote_code``) instantiated under ``torch.device("meta")``, ``sum(p.numel() for p in
model.parameters())`` (shared tensors once).  torch is imported lazily, inside the counting
functions, so importing this module needs no torch: each oracle module still skips itself with
``pytest.importorskip("torch")`` (test_gemma3n.py marks only its oracle tests).

Example counts: ``examples("MODULE_OVERRIDE")`` reads the module's own environment variable, else
``ORACLE_EXAMPLES``, else 200 -- random valid configs per family.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Callable

from hypothesis import HealthCheck, settings

from reportgen.arch import build_spec

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATA = Path(__file__).resolve().parent / "data"
DEFAULT_EXAMPLES = 200
# composites counted whole through AutoModelForImageTextToText, with the language model's own tie flag
MULTIMODAL = ("gemma3", "mistral3", "llama4")
HEALTH = [HealthCheck.too_slow, HealthCheck.filter_too_much]


def examples(override: str | None = None) -> int:
    """Random configs per family: ``$override``, else ``$ORACLE_EXAMPLES``, else 200."""
    default = os.environ.get("ORACLE_EXAMPLES", str(DEFAULT_EXAMPLES))
    return int(os.environ.get(override, default) if override else default)


def oracle_settings(max_examples: int, **overrides) -> settings:
    """Hypothesis settings of an oracle test: no deadline (a meta build takes a while), slow-data and
    filter health checks off; ``overrides`` (derandomize, database, suppress_health_check) as the module had."""
    return settings(**{"max_examples": max_examples, "deadline": None, "suppress_health_check": HEALTH,
                       **overrides})


def count_on_meta(build: Callable[[], object]) -> int:
    """Parameters of the model ``build()`` makes under ``torch.device("meta")``."""
    return sum(p.numel() for p in model_on_meta(build).parameters())


def model_on_meta(build: Callable[[], object]):
    import torch

    with torch.device("meta"):
        return build()


def meta_count(config: dict) -> int:
    """Parameters of the transformers model built on the meta device (causal LM; the gemma3 / mistral3 /
    llama4 composites whole, as image-text-to-text)."""
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
    auto = AutoModelForImageTextToText if model_type in MULTIMODAL else AutoModelForCausalLM
    return count_on_meta(lambda: auto.from_config(conf))


def meta_count_image_text(config: dict, drop: tuple[str, ...] = ("quantization_config",
                                                                  "compression_config", "auto_map")) -> int:
    """Parameters of the transformers image-text-to-text model (``AutoModelForImageTextToText``) on the meta
    device, the config's own tie flag as given; ``drop``: top-level keys removed first."""
    import transformers
    from transformers import AutoModelForImageTextToText

    cfg = copy.deepcopy(config)
    for key in drop:
        cfg.pop(key, None)
    conf = transformers.CONFIG_MAPPING[cfg["model_type"]](**cfg)
    return count_on_meta(lambda: AutoModelForImageTextToText.from_config(conf))


def class_defaults(model_type: str, **kwargs) -> dict:
    """The transformers config class defaults of ``model_type`` as a config dict."""
    import transformers

    return transformers.AutoConfig.for_model(model_type, **kwargs).to_dict()


def shipped(name: str) -> dict:
    """A shipped config of tests/data/configs_2026 (``org--name``)."""
    return json.loads((DATA / "configs_2026" / f"{name}.json").read_text())


def truth_2026() -> dict:
    """tests/data/param_counts_2026.json's models (the meta-device truths recorded by the oracle)."""
    return json.loads((DATA / "param_counts_2026.json").read_text())["models"]


def check(cfg: dict, count: Callable[[dict], int] = meta_count):
    """The spec is priced (no refusal) and its total equals ``count(cfg)`` (the meta-device count);
    returns the spec for further checks."""
    spec = build_spec(cfg)
    assert spec.unsupported_reason is None, spec.unsupported_reason
    assert spec.params_total == count(cfg)
    return spec


def assert_components(spec, truth: dict, keys: dict[str, str]) -> None:
    """Per component: ``spec.params_by_component()[ours] == truth[theirs]`` for each ``ours: theirs``."""
    comp = spec.params_by_component()
    for ours, theirs in keys.items():
        assert comp[ours] == truth[theirs], ours


def class_defaults_test(model_types, count: Callable[[dict], int] = meta_count,
                        extras: dict[str, Callable[[dict], dict]] | None = None):
    """The test "the transformers class defaults of each of ``model_types`` match the meta device", to bind
    to a ``test_*`` name in the module (``extras[model_type](defaults)``: fields added to the defaults first)."""
    import pytest

    @pytest.mark.parametrize("model_type", model_types)
    def test(model_type):
        cfg = class_defaults(model_type)
        cfg.update((extras or {}).get(model_type, lambda d: {})(cfg))
        check(cfg, count)

    return test
