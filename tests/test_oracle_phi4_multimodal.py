"""Phi-4-multimodal (``phi4_multimodal``) against torch's meta device (skipped without torch): the HF-format
config written from memory (tests/test_arch_phi4_multimodal.py ``PHI4_MM``), the transformers class defaults,
a trimmed config (no sub-configs) and ``PHI4MM_ORACLE_EXAMPLES`` (default ``ORACLE_EXAMPLES``, else 200) random
valid configs.  The count is tests/oracle_support.py's ``meta_count`` (``AutoModelForCausalLM`` ->
``Phi4MultimodalForCausalLM`` under ``torch.device("meta")``); the spec's tensors are what vLLM loads
(phi4_multimodal.py @f8cc4535), so ``params_total + unloaded_params`` must equal it exactly.
"""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, strategies as st  # noqa: E402

from reportgen.arch import build_spec  # noqa: E402
from oracle_support import class_defaults, examples, meta_count, oracle_settings  # noqa: E402
from test_arch_phi4_multimodal import PHI4_MM  # noqa: E402

EXAMPLES = examples("PHI4MM_ORACLE_EXAMPLES")
SETTINGS = oracle_settings(EXAMPLES, derandomize=True, database=None)


def loaded_plus_skipped(cfg: dict):
    spec = build_spec(copy.deepcopy(cfg))
    assert spec.unsupported_reason is None, spec.unsupported_reason
    return spec, spec.params_total + spec.unloaded_params


def test_config_from_memory_matches_meta_device():
    spec, total = loaded_plus_skipped(PHI4_MM)
    assert total == meta_count(PHI4_MM) == 4_743_988_032
    assert spec.unloaded_params == 30_480_160


def test_class_defaults_match_meta_device():
    cfg = class_defaults("phi4_multimodal")
    assert loaded_plus_skipped(cfg)[1] == meta_count(cfg)


def test_trimmed_config_takes_the_class_default_towers():
    cfg = {k: v for k, v in PHI4_MM.items() if k not in ("vision_config", "audio_config")}
    assert loaded_plus_skipped(cfg)[1] == meta_count(cfg)


@st.composite
def phi4mm_configs(draw):
    heads = draw(st.sampled_from([1, 2, 4, 8]))
    kv = draw(st.sampled_from([d for d in (1, 2, 4, 8) if heads % d == 0]))
    hd = draw(st.sampled_from([4, 8, 16]))
    cfg = dict(model_type="phi4_multimodal", architectures=["Phi4MultimodalForCausalLM"],
               hidden_size=heads * hd * draw(st.sampled_from([1, 2])), num_attention_heads=heads,
               num_key_value_heads=kv, num_hidden_layers=draw(st.integers(1, 4)),
               intermediate_size=draw(st.integers(1, 64)), vocab_size=draw(st.integers(8, 300)),
               tie_word_embeddings=draw(st.booleans()), pad_token_id=None, bos_token_id=None, eos_token_id=None)
    vh = draw(st.sampled_from([1, 2, 4]))
    patch = draw(st.sampled_from([2, 3, 4]))
    n_v = draw(st.integers(1, 4))
    layer = draw(st.integers(-n_v - 1, n_v - 1))
    cfg["vision_config"] = dict(model_type="phi4_multimodal_vision", hidden_size=vh * draw(st.sampled_from([2, 4, 8])),
                                num_attention_heads=vh, intermediate_size=draw(st.integers(1, 40)),
                                num_hidden_layers=n_v, num_channels=draw(st.sampled_from([1, 3])),
                                patch_size=patch, image_size=patch * draw(st.integers(1, 6)), feature_layer=layer)
    ah = draw(st.sampled_from([1, 2, 4]))
    a_hidden = ah * draw(st.sampled_from([2, 4, 8]))
    cfg["audio_config"] = dict(
        model_type="phi4_multimodal_audio", hidden_size=a_hidden, num_attention_heads=ah,
        intermediate_size=draw(st.integers(1, 40)), num_blocks=draw(st.integers(1, 3)),
        ext_pw_out_channel=draw(st.sampled_from([a_hidden, draw(st.integers(1, 24))])),
        depthwise_separable_out_channel=draw(st.sampled_from([a_hidden, draw(st.integers(1, 24))])),
        depthwise_multiplier=draw(st.integers(1, 3)), kernel_size=draw(st.integers(1, 5)),
        input_size=draw(st.integers(1, 40)), time_reduction=draw(st.sampled_from([2, 4, 6, 8, 16])),
        bias_max_distance=draw(st.integers(1, 50)), bias_symmetric=draw(st.booleans()),
        nemo_conv_channels=draw(st.integers(1, 16)), downsample_rate=draw(st.integers(1, 3)))
    if draw(st.booleans()):
        cfg["partial_rotary_factor"] = 0.5
    return cfg


@SETTINGS
@given(phi4mm_configs())
def test_random_configs_match_meta_device(cfg):
    assert loaded_plus_skipped(cfg)[1] == meta_count(cfg)
