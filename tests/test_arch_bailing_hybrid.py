"""Ling-3 / Ring-3 (``bailing_hybrid``) as vLLM bailing_moe_v3.py @055e47c2 builds it: layer kinds, state bytes per
sequence and per-rank rows at TP 1/2/4, float32 tensors, KV groups, the readings vLLM takes from the checkpoint's
config class, refusals and bad input.

State bytes are hand-computed from vLLM's ``MambaStateShapeCalculator.kda_state_shape`` (mamba_utils.py
@055e47c2; ``get_mamba_state_shape_from_config`` passes ``num_attention_heads``, ``head_dim`` and
``short_conv_kernel_size``): conv ``(k - 1 + num_spec, 3 * heads * head_dim / tp)`` in the model dtype, recurrent
``(heads / tp, head_dim, head_dim)`` float32 (``kda_state_dtype``).  Parameter totals against a meta-device vLLM
module tree and transformers: tests/test_oracle_bailing_hybrid.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.arch.errors import ConfigError
from reportgen.arch.spec import AttentionKind, Shard
from reportgen.arch.state import first_state_tp_rule
from reportgen.estimate.hybrid import hybrid_block_size
from reportgen.estimate.kvcache import kv_groups

ROOT = Path(__file__).resolve().parents[1]
TINY = json.loads((ROOT / "tests/data/configs_hybrid/inclusionAI--Ling-3.0-tiny.json").read_text())
H, HEADS, D = 1536, 16, 128          # Ling-3.0-tiny: hidden, heads, KDA head_dim
P = HEADS * D


def rank_elements(spec, prefix: str, tp: int) -> int:
    """Elements of the tensors under ``prefix`` on one rank (COLUMN / ROW / tp, REPLICATED whole)."""
    out = 0
    for t in spec.tensors:
        if t.name.startswith(prefix):
            out += t.numel if t.shard is Shard.REPLICATED else t.numel // tp
    return out


@pytest.fixture(scope="module")
def tiny():
    return build_spec(TINY)


def test_tiny_layer_kinds_totals_and_rope(tiny):
    assert "".join("M" if l.kind is AttentionKind.MLA else "K" for l in tiny.layers_kv) == "KKKM" * 6
    routed = 23 * 128 * 3 * H * 512                 # 23 MoE layers of 128 experts, w13 + w2
    assert tiny.params_total == 7_893_389_856
    assert tiny.params_active == tiny.params_total - routed + routed * 8 // 128 == 1_381_732_896
    assert tiny.num_experts == 128 and tiny.experts_per_token == 8 and tiny.num_shared_experts == 1
    assert tiny.kv_bytes_per_token(2, tp=4) == 6 * (512 + 64) * 2       # MLA latent, not split by TP
    assert tiny.rope_caches == ((131072, 64, 0),) and tiny.is_mla and tiny.rotary_dim == 64
    assert tiny.max_model_len_limit == 131072
    # the names vLLM's parameters have (the loader maps the checkpoint's .attention. to .self_attn.)
    names = {t.name for t in tiny.tensors}
    assert {"model.word_embeddings.weight", "model.layers.3.self_attn.dense.weight",
            "model.layers.3.self_attn.g_proj.weight", "model.layers.0.self_attn.f_proj.weight",
            "model.layers.1.mlp.gate.expert_bias", "lm_head.weight"} <= names


@pytest.mark.parametrize("tp", [1, 2, 4])
def test_tiny_state_bytes_per_sequence(tiny, tp):
    states = [l.state for l in tiny.layers_kv if l.state]
    assert len(states) == 18
    per = 3 * 3 * (P // tp) * 2 + (HEADS // tp) * D * D * 4
    assert sum(s.bytes_per_seq(tp, conv_bytes=2) for s in states) == 18 * per
    # one speculative token widens the conv window by one row (vLLM num_spec)
    from dataclasses import replace
    assert replace(states[0], num_spec=1).bytes_per_seq(tp, 2) == per + 3 * (P // tp) * 2
    assert first_state_tp_rule(states, tp) is None
    assert "num_heads (16) % tp (32)" in first_state_tp_rule(states, 32)


@pytest.mark.parametrize("tp", [1, 2, 4])
def test_tiny_kv_groups_put_mla_and_kda_in_one_pool(tiny, tp):
    g = kv_groups(tiny, tp, 1, "auto", 2)
    state = 3 * 3 * (P // tp) * 2 + (HEADS // tp) * D * D * 4
    bs = hybrid_block_size(state, 576 * 2, 16, True)
    # 128 x cdiv(state page, 128 x 1152): from vLLM 0.27 an MLA hybrid's attention block is a multiple of 128
    # (vllm 0.28.0 sdist platforms/interface.py:883-888, "TRTLLM/FlashInfer MLA decode kernels"); bailing_hybrid is
    # served from 0.28 (estimate/first_served.json), so it never saw the 64 alignment (960 at TP 1)
    assert bs == {1: 1024, 2: 512, 4: 256}[tp]
    assert hybrid_block_size(state, 576 * 2, 16, True, (0, 26)) == {1: 960, 2: 512, 4: 256}[tp]
    assert g.bs_full == bs and g.n_full == 1 and g.n_state == 3 and g.n_groups == 4
    assert g.stage_bytes_per_block == (6 * bs * 576 * 2,)


@pytest.mark.parametrize("tp", [1, 2, 4])
def test_tiny_rows_per_rank_match_vllm(tiny, tp):
    kda, mla, moe = "model.layers.0.self_attn", "model.layers.3.self_attn", "model.layers.3.mlp"
    # qkvb_proj (MergedColumnParallelLinear [P, P, P, heads]), f_proj, g_proj: columns; o_proj: row
    assert sum(rank_elements(tiny, f"{kda}.{n}.", tp) for n in ("q_proj", "k_proj", "v_proj", "b_proj")) \
        == (3 * P + HEADS) // tp * H
    for name in ("f_proj", "g_proj", "o_proj"):
        assert rank_elements(tiny, f"{kda}.{name}.", tp) == P * H // tp
    assert rank_elements(tiny, f"{kda}.dt_bias", tp) == P // tp
    assert rank_elements(tiny, f"{kda}.A_log", tp) == HEADS // tp
    assert rank_elements(tiny, f"{kda}.o_norm", tp) == D
    # MLA: fused_qkv_a_proj replicated (disable_tp), q_b / kv_b / head-wise g_proj columns, dense a row
    assert rank_elements(tiny, f"{mla}.q_a_proj", tp) + rank_elements(tiny, f"{mla}.kv_a_proj_with_mqa", tp) \
        == (256 + 512 + 64) * H
    assert rank_elements(tiny, f"{mla}.q_b_proj", tp) == HEADS * 192 // tp * 256
    assert rank_elements(tiny, f"{mla}.g_proj", tp) == HEADS // tp * H
    assert rank_elements(tiny, f"{mla}.dense", tp) == HEADS * 128 * H // tp
    # the float32 gate: replicated
    assert rank_elements(tiny, f"{moe}.gate.weight", tp) == 128 * H


def test_float32_tensors_and_the_uncounted_expert_bias(tiny):
    fp32 = {t.name.rsplit(".", 1)[-1] if t.name.endswith(("dt_bias", "A_log")) else t.name.split(".")[-2]
            for t in tiny.tensors if t.dtype_bytes == 4}
    assert fp32 == {"q_conv1d", "k_conv1d", "v_conv1d", "dt_bias", "A_log", "gate"}
    bias = [t for t in tiny.tensors if t.allocated_only]
    assert {t.name.rsplit(".", 1)[-1] for t in bias} == {"expert_bias"} and len(bias) == 23
    assert all(t.dtype_bytes == 4 and t.shape == (128,) for t in bias)


def test_note_when_the_kda_width_is_not_qk_rope_head_dim(tiny):
    assert any("16 x 128 wide" in n and "--trust-remote-code" in n for n in tiny.notes)
    assert not any("wide" in n for n in build_spec(dict(TINY, head_dim=64)).notes)


@pytest.mark.parametrize("kind, rows", [("head_wise", HEADS), ("element_wise", HEADS * 128), (None, 0),
                                        ("channel_wise", 0)])
def test_attention_gate_rows_follow_the_granularity(kind, rows):
    spec = build_spec(dict(TINY, gated_attention_proj_granularity_type=kind))
    g = [t for t in spec.tensors if t.name == "model.layers.3.self_attn.g_proj.weight"]
    assert (g[0].shape if g else (0, H)) == (rows, H)


def test_absent_fields_take_the_checkpoint_class_defaults():
    # the fields transformers' BailingHybridConfig lacks or defaults differently, as the checkpoint's class has them
    cfg = {k: v for k, v in TINY.items() if k not in ("use_bias", "moe_shared_expert_intermediate_size",
                                                       "layer_group_size", "first_k_dense_replace")}
    spec = build_spec(cfg)
    assert "".join("M" if l.kind is AttentionKind.MLA else "K" for l in spec.layers_kv) == "KKKKM" * 4 + "MMMM"
    shared = {t.name: t.shape for t in spec.tensors if ".shared_experts." in t.name and ".layers.1." in t.name}
    assert shared["model.layers.1.mlp.shared_experts.gate_proj.weight"] == (512, H)
    assert not any(t.name.endswith(".bias") for t in spec.tensors)
    assert "model.layers.0.mlp.gate_proj.weight" in {t.name for t in spec.tensors}       # 1 dense layer


def test_use_bias_gives_every_swiglu_its_biases():
    spec = build_spec(dict(TINY, use_bias=True))
    biases = {t.name.split(".", 3)[-1] for t in spec.tensors if t.name.endswith(".bias") and t.layer in (0, 1)}
    assert biases == {f"{m}.{p}.bias" for m in ("mlp", "mlp.shared_experts")
                      for p in ("gate_proj", "up_proj", "down_proj")}
    assert spec.params_total - build_spec(TINY).params_total == (2 * 4608 + H) + 23 * (2 * 512 + H)


def test_transformers_class_is_not_backend_compatible():
    # why a config naming only transformers' class is refused: vLLM's Transformers backend would not take it
    transformers = pytest.importorskip("transformers")
    assert not transformers.BailingHybridForCausalLM.is_backend_compatible()
    assert build_spec(dict(TINY, architectures=None)).unsupported_reason is None


def test_agreeing_layer_types_are_accepted():
    lt = ["full_attention" if (i + 1) % 4 == 0 else "linear_attention" for i in range(24)]
    assert build_spec(dict(TINY, layer_types=lt)).unsupported_reason is None


@pytest.mark.parametrize("change, words", [
    ({"architectures": ["BailingHybridForCausalLM"]}, "is_backend_compatible"),
    ({"no_kda_lora": False}, "no_kda_lora"),
    ({"no_kda_lora": None}, "no_kda_lora"),
    ({"max_position_embeddings": None}, "max_position_embeddings"),
    ({"tie_word_embeddings": True}, "lm_head"),
    ({"attention_bias": True}, "attention_bias"),
    ({"linear_head_dim": 64}, "linear_head_dim 64 != head_dim 128"),
    ({"quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]}}, "block-FP8"),
    # transformers' placement of 26 layers (trailing layers KDA), vLLM's is MLA for 24 and 25
    ({"num_hidden_layers": 26, "layer_types": ["full_attention" if (i + 1) % 4 == 0 else "linear_attention"
                                               for i in range(26)]}, "layer_group_size"),
    ({"mlp_layer_types": ["dense"] * 2 + ["sparse"] * 22}, "first_k_dense_replace"),
])
def test_configs_vllm_builds_differently_or_raises_on_are_refused(change, words):
    reason = build_spec(dict(TINY, **change)).unsupported_reason
    assert reason and words in reason


@pytest.mark.parametrize("change, field", [
    ({"layer_group_size": 0}, "layer_group_size"),
    ({"use_bias": "yes"}, "use_bias"),
    ({"num_experts_per_tok": 129}, "num_experts_per_tok"),
    ({"moe_shared_expert_intermediate_size": -1}, "moe_shared_expert_intermediate_size"),
    ({"head_dim": 0}, "head_dim"),
])
def test_bad_input_is_a_config_error(change, field):
    with pytest.raises(ConfigError) as e:
        build_spec(dict(TINY, **change))
    assert e.value.field == field


def test_the_checkpoints_integer_kda_lower_bound_is_read_as_the_float_it_means():
    """The published configs write ``"kda_lower_bound": -5`` (an int: the Swift test this fixture comes from, and
    Edge0/Edge0-8B-A1B-preview's config.json, tests/data/configs_hybrid/SOURCES.md).  transformers 5.24's strict
    BailingHybridConfig rejects an int for a float field; JSON does not distinguish the two, so the parse
    (``parse._json_numbers``) reads it as -5.0 and the real checkpoint's config is priced like the fixture."""
    as_int, as_float = build_spec(dict(TINY, kda_lower_bound=-5)), build_spec(dict(TINY, kda_lower_bound=-5.0))
    assert as_int.unsupported_reason is None
    assert as_int.params_total == as_float.params_total == 7_893_389_856


def test_a_string_for_a_float_field_is_still_a_config_error_naming_it():
    with pytest.raises(ConfigError) as e:
        build_spec(dict(TINY, kda_lower_bound="-5"))
    assert e.value.field == "kda_lower_bound" and "expected float" in str(e.value)


def test_mtp_layers_are_noted_not_counted():
    spec = build_spec(dict(TINY, num_nextn_predict_layers=1))
    assert spec.params_total == build_spec(TINY).params_total
    assert any("MTP" in n for n in spec.notes)


@pytest.mark.parametrize("tp, bs", [(1, 1024), (2, 512), (4, 256)])
def test_estimator_prices_the_state_in_the_mla_pool(tiny, tp, bs):
    from reportgen.estimate.hybrid import STATE_BLOCKS
    from reportgen.matrix import estimate_one

    row = estimate_one(tiny, 79.2, tp=tp, max_model_len=32768)
    assert row["status"] == "fits" and row["block_size"] == bs
    # 18 KDA layers, each a page of bs MLA tokens (1152 B), x the blocks prefix caching's default mode keeps
    assert row["state_bytes_per_seq"] in {18 * bs * 1152 * n for n in STATE_BLOCKS.values()}
    assert estimate_one(tiny, 79.2, tp=32, max_model_len=4096)["status"] == "invalid_layout"
