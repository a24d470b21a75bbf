"""Meta-device cross-check of the models vLLM serves through its Transformers backend (smollm3, helium,
ministral, olmo; vLLM registry.py @055e47c2 ``_TRANSFORMERS_SUPPORTED_MODELS``): the shipped SmolLM3-3B config,
the transformers class defaults and >= 200 (FLAGSHIP_ORACLE_EXAMPLES) random valid configs per family.

Stronger than a total: the backend instantiates the transformers class itself, so every tensor the
spec lists must be one of the meta model's parameters with the same name and shape (lm_head aside
when tied), and the count must be equal.
"""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, strategies as st  # noqa: E402

from reportgen.arch import build_spec  # noqa: E402
from oracle_support import (check as check_total, class_defaults as defaults, examples,  # noqa: E402
                            meta_count, model_on_meta, oracle_settings, shipped, truth_2026)

TRUTH = truth_2026()
SETTINGS = oracle_settings(examples("FLAGSHIP_ORACLE_EXAMPLES"))

ARCH = {"smollm3": "SmolLM3ForCausalLM", "helium": "HeliumForCausalLM", "ministral": "MinistralForCausalLM",
        "olmo": "OlmoForCausalLM"}


def meta_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    import transformers
    from transformers import AutoModelForCausalLM

    cfg = copy.deepcopy(config)
    conf = transformers.CONFIG_MAPPING[cfg["model_type"]](**cfg)
    model = model_on_meta(lambda: AutoModelForCausalLM.from_config(conf))
    return {n: tuple(p.shape) for n, p in model.named_parameters()}


def check(cfg: dict) -> None:
    spec = check_total(cfg)
    ours = {t.name: t.shape for t in spec.tensors}
    if spec.tie_word_embeddings:
        ours.pop("lm_head.weight", None)
    assert ours == meta_shapes(cfg)


def test_smollm3_shipped_matches_meta_device_and_truth():
    cfg = shipped("HuggingFaceTB--SmolLM3-3B")
    assert build_spec(cfg).params_total == meta_count(cfg) == TRUTH["HuggingFaceTB/SmolLM3-3B"]["total_params"]
    check(cfg)


@pytest.mark.parametrize("model_type", ["smollm3", "helium", "olmo"])
def test_class_defaults(model_type):
    check(defaults(model_type))


def test_ministral_class_defaults_refused_then_exact_with_head_dim():
    """MinistralConfig's default head_dim is None, which MinistralAttention cannot build with."""
    cfg = defaults("ministral")
    assert "head_dim null" in build_spec(cfg).unsupported_reason
    with pytest.raises(TypeError):
        meta_count(cfg)
    check(dict(cfg, head_dim=cfg["hidden_size"] // cfg["num_attention_heads"]))


@st.composite
def configs(draw, model_type: str):
    heads = draw(st.sampled_from([1, 2, 4, 8]))
    kv = draw(st.sampled_from([d for d in (1, 2, 4, 8) if heads % d == 0]))
    head_dim = draw(st.sampled_from([2, 4, 8, 16]))
    hidden = heads * head_dim if model_type == "helium" else draw(st.sampled_from([8, 16, 24, 32]))
    n = draw(st.integers(1, 6))
    cfg = dict(model_type=model_type, architectures=[ARCH[model_type]], num_attention_heads=heads,
               num_key_value_heads=kv, head_dim=head_dim, hidden_size=hidden, num_hidden_layers=n,
               intermediate_size=draw(st.integers(1, 48)), vocab_size=draw(st.integers(8, 300)),
               tie_word_embeddings=draw(st.booleans()), pad_token_id=None, bos_token_id=None, eos_token_id=None)
    if model_type != "ministral":
        # olmo: mlp_bias is not an OlmoConfig field (no MLP bias in the model) -- still drawn, must be ignored
        cfg.update(attention_bias=draw(st.booleans()), mlp_bias=draw(st.booleans()))
    if model_type == "olmo" and draw(st.booleans()):
        cfg["clip_qkv"] = 8.0
    if model_type == "smollm3" and draw(st.booleans()):
        # SmolLM3Config makes the NoPE layers (every no_rope_layer_interval-th) sliding; an interval of at
        # most n keeps one sliding layer (a window no layer uses is refused: test_arch_transformers_backend)
        cfg.update(use_sliding_window=True, sliding_window=draw(st.sampled_from([4, 512])),
                   no_rope_layer_interval=draw(st.integers(1, n)))
    if model_type == "ministral":
        cfg["sliding_window"] = draw(st.sampled_from([None, 16]))
    return cfg


@pytest.mark.parametrize("model_type", sorted(ARCH))
def test_random_configs_match_meta_device(model_type):
    """FLAGSHIP_ORACLE_EXAMPLES (default 200) random configs per family."""
    @SETTINGS
    @given(configs(model_type))
    def run(cfg):
        check(cfg)

    run()
