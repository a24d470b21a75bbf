"""Qwen GDN hybrids in the arch layer: layer geometry, state, notes, and bad input named."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.arch.errors import ConfigError
from reportgen.arch.spec import AttentionKind, Component, Shard
from reportgen.arch.state import StateGeometry, state_tp_rule

DATA = Path(__file__).parent / "data"


def text27() -> dict:
    cfg = json.loads((DATA / "configs_2026" / "Qwen--Qwen3.5-27B.json").read_text())
    text = copy.deepcopy(cfg["text_config"])
    text["tie_word_embeddings"] = False
    return text


def test_layers_state_and_attention_geometry():
    spec = build_spec(text27())
    kinds = [l.kind for l in spec.layers_kv]
    assert kinds.count(AttentionKind.STATE) == 48 and kinds.count(AttentionKind.FULL) == 16
    assert kinds[3] is AttentionKind.FULL and kinds[0] is AttentionKind.STATE
    st = spec.layers_kv[0].state
    assert st.kind == "gdn" and st.dims == (16, 48, 128, 128, 4) and st.ssm_dtype == "float32"
    # conv (3, 10240) bf16 + delta-rule state (48, 128, 128) fp32, whole model on one rank
    assert st.bytes_per_seq(1, conv_bytes=2) == 3 * 10240 * 2 + 48 * 128 * 128 * 4
    assert st.bytes_per_seq(2, conv_bytes=2) == 3 * 5120 * 2 + 24 * 128 * 128 * 4
    # attention layers: 4 KV heads x 256, KV bytes per token over the 16 of them (truth file: 65536)
    assert spec.kv_bytes_per_token(2) == 65536
    assert any("MTP" in n for n in spec.notes)


def test_gdn_tensor_sharding():
    spec = build_spec(text27())
    by = {t.name: t for t in spec.tensors if t.layer == 0}
    assert by["model.layers.0.linear_attn.in_proj_qkvz.weight"].shard is Shard.COLUMN
    assert by["model.layers.0.linear_attn.in_proj_qkvz.weight"].shape == (2 * 2048 + 2 * 6144, 5120)
    assert by["model.layers.0.linear_attn.out_proj.weight"].shard is Shard.ROW
    assert by["model.layers.0.linear_attn.conv1d.weight"].shape == (10240, 1, 4)
    assert not by["model.layers.0.linear_attn.conv1d.weight"].quantizable
    assert by["model.layers.0.linear_attn.A_log"].shard is Shard.COLUMN
    assert by["model.layers.0.linear_attn.norm.weight"].shard is Shard.REPLICATED
    assert all(t.component is Component.LINEAR_ATTENTION for n, t in by.items() if ".linear_attn." in n)
    q = [t for t in spec.tensors if t.name == "model.layers.3.self_attn.q_proj.weight"][0]
    assert q.shape == (2 * 24 * 256, 5120)       # query + output gate


def test_state_tp_rule_names_the_field():
    st = build_spec(text27()).layers_kv[0].state
    assert state_tp_rule(st, 2) is None and state_tp_rule(st, 16) is None
    assert "linear_num_key_heads (16) % tp (3)" in state_tp_rule(st, 3)
    other = StateGeometry("gdn", (4, 6, 8, 8, 4))
    assert "linear_num_value_heads (6) % tp (4)" in state_tp_rule(other, 4)


@pytest.mark.parametrize("edit, field, words", [
    (lambda c: c.update(num_hidden_layers=63), "layer_types", "has 64 entries for num_hidden_layers 63"),
    (lambda c: c["layer_types"].__setitem__(5, "mamba"), "layer_types[5]", "unknown layer kind 'mamba'"),
    (lambda c: c.update(linear_num_value_heads=40), "linear_num_value_heads", "not a multiple"),
    (lambda c: c.update(mamba_ssm_dtype="int3"), "mamba_ssm_dtype", "must be one of"),
])
def test_bad_input_is_malformed_naming_field(edit, field, words):
    cfg = text27()
    edit(cfg)
    with pytest.raises(ConfigError) as e:
        build_spec(cfg)
    assert e.value.field.endswith(field) and words in str(e.value)


@pytest.mark.parametrize("edit, words", [
    (lambda c: c.update(attn_output_gate=False), "attn_output_gate=false"),
    (lambda c: c.update(attention_bias=True), "attention_bias=true"),
])
def test_vllm_transformers_disagreements_refused(edit, words):
    cfg = text27()
    edit(cfg)
    assert words in build_spec(cfg).unsupported_reason


def test_qwen3_next_tied_refused():
    ref = Path("/work/shared/reference/configs/Qwen--Qwen3-Next-80B-A3B-Instruct.json")
    cfg = json.loads(ref.read_text()) if ref.exists() else {
        "model_type": "qwen3_next", "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4,
        "vocab_size": 100}
    cfg["tie_word_embeddings"] = True
    assert "own lm_head" in build_spec(cfg).unsupported_reason


@pytest.mark.parametrize("composite", [False, True])
def test_kind_transformers_rejects_is_named_by_index(composite):
    """A kind outside transformers' own list ('retention') is caught by its ``validate_layer_type`` before reportgen's
    rule: the error names the entry and the allowed kinds once (it echoed the whole 64-entry list before; audit of
    issue 11, stop 23)."""
    cfg = json.loads((DATA / "configs_2026" / "Qwen--Qwen3.5-27B.json").read_text())
    text = cfg["text_config"] if composite else text27()
    text["layer_types"][5] = "retention"
    with pytest.raises(ConfigError) as e:
        build_spec(cfg if composite else text)
    assert e.value.field == ("text_config." if composite else "") + "layer_types[5]"
    assert "unknown layer kind 'retention'" in str(e.value) and "linear_attention" in str(e.value)
    assert str(e.value).count("full_attention") == 1
