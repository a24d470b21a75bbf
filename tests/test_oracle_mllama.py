"""Llama-3.2-Vision (``mllama``) against torch's meta device (skipped without torch).

The count is transformers 5.24's native ``MllamaForConditionalGeneration`` (``AutoModelForImageTextToText``) on the
meta device.  The spec is weights-only (registry.WEIGHTS_ONLY): its tensors are exact, its ``unsupported_reason``
says why no KV figure is produced.  Checked: the shipped Llama-3.2-11B-Vision-Instruct config (and every
component of its recorded truth, tests/data/param_counts_2026.json), the class defaults, a config without
``vision_config`` and ``MLLAMA_ORACLE_EXAMPLES`` (else ``ORACLE_EXAMPLES``, else 200) random valid configs.
Sharding cross-checks follow vLLM mllama.py @005ad950 (see reportgen/arch/families/mllama.py).
"""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, strategies as st  # noqa: E402

from oracle_support import (class_defaults, examples, meta_count_image_text, oracle_settings, shipped,  # noqa: E402
                            truth_2026)
from reportgen.arch import build_spec  # noqa: E402
from reportgen.arch.registry import WEIGHTS_ONLY  # noqa: E402
from reportgen.arch.spec import Component, Shard  # noqa: E402
from reportgen.arch.vision_parts import vision_split  # noqa: E402

EXAMPLES = examples("MLLAMA_ORACLE_EXAMPLES")
MODEL = "meta-llama/Llama-3.2-11B-Vision-Instruct"


def weights_exact(cfg: dict):
    """Refused on KV with the weights-only reason, and the tensors add up to the meta-device count."""
    spec = build_spec(copy.deepcopy(cfg))
    assert spec.unsupported_reason == WEIGHTS_ONLY["mllama"]
    assert spec.params_total == meta_count_image_text(cfg)
    return spec


def test_shipped_11b_vision_matches_the_meta_device_component_by_component():
    spec = weights_exact(shipped(MODEL.replace("/", "--")))
    truth = truth_2026()[MODEL]
    assert spec.params_total == truth["total_params"] == 10_670_220_835
    comp = spec.params_by_component()
    for key in ("embedding", "lm_head", "attention", "dense_mlp", "norm", "vision", "other"):
        assert comp[key] == truth[f"{key}_params"], key
    # embed_tokens has vocab_size + 8 rows, the lm_head vocab_size
    assert comp["embedding"] == (128_256 + 8) * 4096 and comp["lm_head"] == 128_256 * 4096
    # 8 cross-attention layers: two scalar gates each (other), q/k norms of head_dim 128 (attention)
    assert comp["other"] == 16
    split = vision_split(spec)
    assert split["projector"] == 7680 * 4096 + 4096
    assert split["tower"] + split["projector"] == truth["vision_params"]


def test_class_defaults_match_the_meta_device():
    weights_exact(class_defaults("mllama"))


def test_config_without_vision_config_takes_the_default_tower():
    cfg = shipped(MODEL.replace("/", "--"))
    del cfg["vision_config"]
    spec = weights_exact(cfg)
    assert any("vision_config" in n for n in spec.notes)


def test_cross_attention_layers_and_sharding():
    spec = build_spec(shipped(MODEL.replace("/", "--")))
    by = {t.name: t for t in spec.tensors}
    assert "model.layers.3.cross_attn.q_norm.weight" in by and "model.layers.3.self_attn.q_proj.weight" not in by
    assert "model.layers.4.self_attn.q_proj.weight" in by and "model.layers.4.cross_attn.q_proj.weight" not in by
    assert by["model.layers.3.cross_attn_attn_gate"].component is Component.OTHER
    # global encoder layers carry the two gates, local ones do not
    assert "vision_model.global_transformer.layers.7.gate_attn" in by
    assert not any(n.startswith("vision_model.transformer.") and "gate" in n for n in by)
    # tile position embedding: 9 aspect-ratio rows x 4 tiles x (40**2 + 1) positions x 1280
    assert by["vision_model.gated_positional_embedding.tile_embedding.weight"].shape == (9, 4 * 1601 * 1280)
    # the cache geometry kept on the spec: the 32 self-attention layers only
    assert len(spec.layers_kv) == 32
    # vLLM mllama.py @6f0b37b8: cross-attention q/k/v split as QKVParallelLinear (k/v by KV heads), o_proj row;
    # vision qkv column, o_proj row, fc1 column / fc2 row, patch embedding and projector ColumnParallelLinear;
    # tile / position embeddings, gates and norms whole on every rank
    shard = {n: t.shard for n, t in by.items()}
    assert shard["model.layers.3.cross_attn.q_proj.weight"] is Shard.COLUMN
    assert shard["model.layers.3.cross_attn.k_proj.weight"] is shard["model.layers.4.self_attn.k_proj.weight"]
    assert shard["model.layers.3.cross_attn.o_proj.weight"] is Shard.ROW
    assert shard["model.layers.3.cross_attn.k_norm.weight"] is Shard.REPLICATED
    v = "vision_model.global_transformer.layers.0."
    assert [shard[v + n] for n in ("self_attn.q_proj.weight", "self_attn.o_proj.weight", "mlp.fc1.weight",
                                   "mlp.fc2.weight", "mlp.fc2.bias", "gate_attn")] == \
        [Shard.COLUMN, Shard.ROW, Shard.COLUMN, Shard.ROW, Shard.REPLICATED, Shard.REPLICATED]
    assert not any(n.startswith(v + "self_attn.") and n.endswith(".bias") for n in by)
    assert shard["vision_model.patch_embedding.weight"] is shard["multi_modal_projector.weight"] is Shard.COLUMN
    assert shard["vision_model.gated_positional_embedding.tile_embedding.weight"] is Shard.REPLICATED
    assert by["model.embed_tokens.weight"].shard is Shard.VOCAB


def test_tied_text_config_is_never_tied():
    cfg = shipped(MODEL.replace("/", "--"))
    cfg["text_config"]["tie_word_embeddings"] = True
    spec = weights_exact(cfg)
    assert spec.params_by_component()["lm_head"] == 128_256 * 4096
    assert any("never ties" in n for n in spec.notes)


@st.composite
def mllama_configs(draw) -> dict:
    heads = draw(st.sampled_from([1, 2, 4]))
    kv = draw(st.sampled_from([d for d in (1, 2, 4) if heads % d == 0]))
    n_layers = draw(st.integers(1, 5))
    text = dict(hidden_size=heads * draw(st.sampled_from([2, 4, 8, 16])), num_hidden_layers=n_layers,
                num_attention_heads=heads, num_key_value_heads=kv, vocab_size=draw(st.integers(16, 300)),
                intermediate_size=draw(st.integers(1, 64)),
                cross_attention_layers=draw(st.lists(st.integers(0, n_layers - 1), unique=True, max_size=n_layers)),
                pad_token_id=None, bos_token_id=0, eos_token_id=1)
    tie = draw(st.sampled_from([True, False, None]))
    if tie is not None:
        text["tie_word_embeddings"] = tie
    v_heads = draw(st.sampled_from([1, 2, 4]))
    patch = draw(st.integers(1, 8))
    tiles = draw(st.integers(1, 4))
    vision = dict(hidden_size=v_heads * draw(st.sampled_from([2, 4, 8])), attention_heads=v_heads,
                  num_hidden_layers=draw(st.integers(1, 3)), num_global_layers=draw(st.integers(0, 2)),
                  intermediate_size=draw(st.integers(1, 64)), num_channels=draw(st.integers(1, 3)),
                  patch_size=patch, image_size=patch * draw(st.integers(1, 4)) + draw(st.integers(0, patch - 1)),
                  max_num_tiles=tiles, vision_output_dim=draw(st.integers(1, 64)),
                  supported_aspect_ratios=draw(st.lists(st.tuples(st.integers(1, tiles), st.integers(1, tiles))
                                                        .map(list), min_size=1, max_size=6)),
                  intermediate_layers_indices=[0])
    return {"model_type": "mllama", "architectures": ["MllamaForConditionalGeneration"],
            "text_config": text, "vision_config": vision}


@oracle_settings(EXAMPLES)
@given(mllama_configs())
def test_random_configs_match_the_meta_device(cfg):
    spec = weights_exact(cfg)
    split = vision_split(spec)
    assert split["projector"] == cfg["vision_config"]["vision_output_dim"] * cfg["text_config"]["hidden_size"] \
        + cfg["text_config"]["hidden_size"]


def test_a_head_dim_field_is_ignored_as_the_model_code_does():
    """MllamaTextCrossAttention / SelfAttention read hidden_size // num_attention_heads, never ``head_dim``."""
    cfg = shipped(MODEL.replace("/", "--"))
    cfg["text_config"].update(num_hidden_layers=4, cross_attention_layers=[1], head_dim=64)
    cfg["vision_config"].update(num_hidden_layers=1, num_global_layers=1)
    spec = weights_exact(cfg)
    assert spec.head_dim == 128
