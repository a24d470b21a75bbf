"""MiniMax-Text-01 / MiniMax-M1 (minimax): per-rank shards of the lightning layer, the lightning state and the
hybrid KV pool priced as vLLM allocates them, float32 head / router / rotary cache, served only up to vLLM 0.23,
bad input.

Sources (reportgen/arch/families/minimax.py): vLLM ``vllm/model_executor/models/minimax_text_01.py`` @98370df7,
``vllm/model_executor/layers/mamba/linear_attn.py`` @038f589a, ``layers/mamba/mamba_utils.py`` @2afe1e85:

* ``MambaStateShapeCalculator.linear_attention_state_shape``: ``(num_heads // tp_size, head_dim, head_dim)``;
  ``MambaStateDtypeCalculator.linear_attention_state_dtype``: ``get_kv_cache_torch_dtype(mamba_cache_dtype,
  model_dtype)`` (auto -> the model dtype, bf16 here: 2 bytes);
* ``MiniMaxText01Attention``: ``num_kv_heads = max(1, total_num_kv_heads // tp)``, K and V of ``head_dim`` each;
* the attention block size vLLM raises so a page holds a state page (estimate/hybrid.py:
  ``16 * cdiv(state_page, 16 * attn_page_1_token)``).
"""

from __future__ import annotations

import copy

import pytest

from reportgen.arch import build_spec
from reportgen.arch.errors import ConfigError
from reportgen.arch.spec import AttentionKind, Component, Shard
from reportgen.estimate import hybrid
from reportgen.estimate.kvcache import kv_groups
from reportgen.estimate.served import LAST_SERVED, spec_for_version
from reportgen.matrix import GpuLike, estimate_one

from test_arch_hybrid_mamba import rank_elements, state_tp_rule

H200 = GpuLike(id="h200", name="H200", usable_memory_gib=139.8)

# written FROM MEMORY from the published MiniMax-Text-01 / MiniMax-M1 geometry (no such config is in
# /work/shared/reference); tests/test_oracle_minimax.py checks it on the meta device: 456 B parameters, 45.9 B active
TEXT01 = {
    "model_type": "minimax", "architectures": ["MiniMaxForCausalLM"], "hidden_size": 6144, "num_hidden_layers": 80,
    "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 9216,
    "num_local_experts": 32, "num_experts_per_tok": 2, "vocab_size": 200064, "max_position_embeddings": 10240000,
    "rope_theta": 10000000, "rotary_dim": 64, "layer_types": (["linear_attention"] * 7 + ["full_attention"]) * 10,
    "tie_word_embeddings": False, "block_size": 256, "rms_norm_eps": 1e-5, "torch_dtype": "bfloat16",
}



@pytest.fixture(scope="module")
def text01():
    return build_spec(TEXT01)


def test_layer_kinds_follow_layer_types(text01):
    kinds = text01.layers_kv
    assert [i for i, l in enumerate(kinds) if l.kind is AttentionKind.FULL] == list(range(7, 80, 8))
    assert all(l.kind is AttentionKind.STATE and l.state.kind == "linear_attention" and l.state.dims == (64, 128)
               for i, l in enumerate(kinds) if i % 8 != 7)
    assert text01.num_experts == 32 and text01.experts_per_token == 2


@pytest.mark.parametrize("tp", [1, 2, 4, 8])
def test_lightning_rows_per_rank_match_vllm(text01, tp):
    # qkv_proj / output_gate ColumnParallel, out_proj RowParallel, MiniMaxText01RMSNormTP keeps P / tp rows
    p, inner = "model.layers.0.self_attn", 64 * 128
    assert rank_elements(text01, f"{p}.qkv_proj", tp) == 3 * inner // tp * 6144
    assert rank_elements(text01, f"{p}.output_gate", tp) == inner // tp * 6144
    assert rank_elements(text01, f"{p}.out_proj", tp) == 6144 * inner // tp
    assert rank_elements(text01, f"{p}.norm", tp) == inner // tp


@pytest.mark.parametrize("tp, per_layer", [(1, 64 * 128 * 128 * 2), (2, 32 * 128 * 128 * 2),
                                           (4, 16 * 128 * 128 * 2), (8, 8 * 128 * 128 * 2)])
def test_state_bytes_per_sequence_by_hand(text01, tp, per_layer):
    # (num_heads // tp, head_dim, head_dim) in the model dtype (bf16), no conv state
    state = text01.layers_kv[0]
    assert hybrid.state_layer_bytes(state, tp, 2) == per_layer
    assert state.state.bytes_per_seq(tp, 2) == per_layer


@pytest.mark.parametrize("tp", [1, 2, 4, 8])
def test_kv_pool_block_size_and_token_bytes_by_hand(text01, tp):
    kv_heads = max(1, 8 // tp)
    attn_1tok = kv_heads * 128 * 2 * 2                 # K + V, bf16, one softmax layer
    assert text01.kv_bytes_per_token(2, tp) == 10 * attn_1tok
    state_page = 64 // tp * 128 * 128 * 2
    g = kv_groups(text01, tp, 1, "auto", 2, 16, state_conv_bytes=2, state_mode="none")
    assert g.token_block == 16 * -(-state_page // (16 * attn_1tok))
    assert g.token_block == 512                        # state and KV both split by tp while kv heads >= tp
    assert g.n_groups == 8 and g.n_state == 7          # groups of 10 layers: 1 softmax group, 70 / 10 state groups
    assert g.stage_token_bytes == (10 * attn_1tok,)


def test_fp32_lm_head_router_and_rotary_cache(text01):
    by_name = {t.name: t for t in text01.tensors}
    assert by_name["lm_head.weight"].dtype_bytes == 4 and by_name["lm_head.weight"].shard is Shard.VOCAB
    assert by_name["model.embed_tokens.weight"].dtype_bytes == 0
    router = by_name["model.layers.3.mlp.gate.weight"]
    assert router.dtype_bytes == 4 and router.component is Component.ROUTER and router.shape == (32, 6144)
    assert text01.rotary_dim == 64
    assert text01.rope_caches == ((10_240_000, 64, 4),)     # get_rope(..., dtype=torch.float32)
    assert any("min(max_position_embeddings, max_model_len)" in n for n in text01.notes)
    no_softmax = build_spec(dict(TEXT01, layer_types=["linear_attention"] * 80))
    assert no_softmax.rope_caches == ()


def test_priced_on_0_23_with_the_state_pool(text01):
    r = estimate_one(text01, H200, tp=8, max_model_len=65536, vllm_version="0.23")
    assert r["status"] in ("fits", "tight")
    assert r["block_size"] == 512
    assert r["state_bytes_per_seq"] == 70 * 512 * (1 * 128 * 2 * 2)    # 70 pages of 512 tokens x 512 B (no padding)
    assert r["state_bytes_per_seq"] == 70 * 8 * 128 * 128 * 2


@pytest.mark.parametrize("arch", ["MiniMaxForCausalLM", "MiniMaxText01ForCausalLM", "MiniMaxM1ForCausalLM"])
def test_refused_after_vllm_0_23(text01, arch):
    spec = copy.copy(text01)
    spec.architectures = (arch,)
    assert LAST_SERVED[arch] == "0.23.0"
    assert spec_for_version(spec, "0.23") is spec
    gone = estimate_one(spec_for_version(spec, "0.24"), H200, tp=8, max_model_len=65536, vllm_version="0.24")
    assert gone["status"] == "unsupported"
    assert arch in gone["reason"] and "supported until v0.23.0" in gone["reason"]


def test_heads_not_divisible_by_tp_is_invalid_layout(text01):
    assert state_tp_rule(text01, 8) is None
    r = estimate_one(text01, H200, tp=3, max_model_len=65536, vllm_version="0.23")
    assert r["status"] == "invalid_layout" and "(64) % tp (3)" in r["reason"]
    # the lightning heads themselves (the state layer's rule), named as such
    assert "linear attention num_heads (64) % tp (3)" in state_tp_rule(text01, 3)


@pytest.mark.parametrize("change, field, words", [
    ({"layer_types": TEXT01["layer_types"][:-1]}, "layer_types", "79 entries for num_hidden_layers 80"),
    ({"layer_types": ["linear_attention"] * 79 + ["sliding_attention"]}, "layer_types", "unknown layer kind"),
    ({"attn_type_list": [0] * 79}, "attn_type_list", "must be a list of 80 layer kinds"),
    ({"rotary_dim": 256}, "rotary_dim", "256 exceeds head_dim 128"),
    ({"rotary_dim": 0}, "rotary_dim", ">= 1"),
])
def test_bad_input_is_a_config_error(change, field, words):
    with pytest.raises(ConfigError) as e:
        build_spec(dict(TEXT01, **change))
    assert e.value.field == field and words in e.value.message


@pytest.mark.parametrize("change, words", [
    ({"head_dim": None}, "reads hf_config.head_dim"),
    ({"num_local_experts": 1, "num_experts_per_tok": 1}, "dense MLP without a router"),
    ({"shared_intermediate_size": 1024}, "shared MLP"),
    ({"tie_word_embeddings": True}, "never ties"),
    ({"attn_type_list": [1] * 80}, "attn_type_list disagrees with layer_types"),
])
def test_configs_vllm_builds_differently_are_refused(change, words):
    spec = build_spec(dict(TEXT01, **change))
    assert spec.unsupported_reason and words in spec.unsupported_reason


def test_agreeing_attn_type_list_is_accepted():
    spec = build_spec(dict(TEXT01, attn_type_list=([0] * 7 + [1]) * 10))
    assert spec.unsupported_reason is None and spec.params_total == 456_089_655_296


def test_float32_tensors_cost_their_bytes_on_each_rank(text01):
    """lm_head (VOCAB: 200064 rows, a multiple of 64, / tp) and the 80 replicated routers at 4 bytes, not 2; the
    rotary cache 10,240,000 x 64 x 4 bytes on every rank."""
    from dataclasses import replace

    from reportgen.estimate.weights import rotary_cache_bytes

    plain = copy.copy(text01)
    plain.tensors = [replace(t, dtype_bytes=0) for t in text01.tensors]
    cells = [estimate_one(s, H200, tp=8, max_model_len=65536, vllm_version="0.23")["weights_gib"]
             for s in (text01, plain)]
    extra = 200064 * 6144 * (4 - 2) // 8 + 80 * 32 * 6144 * (4 - 2)
    assert (cells[0] - cells[1]) * 2**30 == pytest.approx(extra, abs=1)
    assert rotary_cache_bytes(text01, 2) == 10_240_000 * 64 * 4
