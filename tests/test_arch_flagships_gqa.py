"""The 2025-2026 grouped-query-attention flagships (issue 12): minimax_m2, gemma4 / gemma4_text, mistral3 +
ministral3, cohere (cohere2 / cohere2_moe: tests/test_arch_cohere_exaone.py), and the families refused with a
reason.

Expected parameter totals are the meta-device truths in tests/data/param_counts_2026.json (torch 2.13,
transformers 5.24) for the shipped configs in tests/data/configs_2026/; tests/test_oracle_flagships_gqa.py
checks the same configs, the transformers class defaults and random variants against torch itself.

KV bytes per token are hand-computed from vLLM's cache spec: ``AttentionSpec.real_page_size_bytes`` in
``vllm/v1/kv_cache_interface.py`` is ``2 * block_size * num_kv_heads * head_size * dtype_size`` per layer
(K and V; ``num_kv_heads`` = ``max(1, total // tp)`` from the model file's ``Attention(...)`` call), and a
layer built with ``kv_sharing_target_layer_name`` gets no cache of its own.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.arch.spec import AttentionKind, Shard
from reportgen.estimate.kvcache import kv_bytes_per_token, kv_groups

DATA = Path(__file__).resolve().parent / "data"
TRUTH = json.loads((DATA / "param_counts_2026.json").read_text())["models"]
FULL, SLIDING, NONE = AttentionKind.FULL, AttentionKind.SLIDING, AttentionKind.NONE


def shipped(name: str) -> dict:
    return json.loads((DATA / "configs_2026" / f"{name}.json").read_text())


def tensor(spec, name):
    (t,) = [t for t in spec.tensors if t.name == name]
    return t


# ---------------------------------------------------------------- MiniMax-M2.5 (vLLM minimax_m2.py)

def test_minimax_m25_exact_and_components():
    spec = build_spec(shipped("MiniMaxAI--MiniMax-M2.5"))
    truth = TRUTH["MiniMaxAI/MiniMax-M2.5"]
    assert spec.unsupported_reason is None and spec.family == "minimax_m2"
    assert spec.params_total == truth["total_params"] == 228_689_748_992
    comp = spec.params_by_component()
    assert comp["routed_experts"] == truth["routed_expert_params"]
    assert comp["router"] == truth["router_params"]
    assert comp["attention"] == truth["attention_params"]      # q/k/v/o + whole-projection q/k norms
    assert comp["norm"] == truth["norm_params"]
    assert (spec.num_experts, spec.experts_per_token) == (256, 8)
    assert spec.quantization_config["quant_method"] == "fp8"


def test_minimax_m25_kv_and_rope():
    spec = build_spec(shipped("MiniMaxAI--MiniMax-M2.5"))
    assert {(l.kind, l.num_kv_heads, l.head_size_k) for l in spec.layers_kv} == {(FULL, 8, 128)}
    # 62 layers x 2 (K, V) x 8 heads x 128 x bf16 = the oracle's figure
    assert kv_bytes_per_token(spec, "auto", 2, 1) == 62 * 2 * 8 * 128 * 2 == 253_952
    assert kv_bytes_per_token(spec, "fp8", 2, 1) == 62 * 2 * 8 * 128
    assert kv_bytes_per_token(spec, "auto", 2, 4) == 62 * 2 * 2 * 128 * 2
    assert kv_bytes_per_token(spec, "auto", 2, 16) == 62 * 2 * 1 * 128 * 2   # 8 heads replicated over 16
    # rotary_dim 64 of head_dim 128 (partial rotary), 196608 positions, model dtype
    # (then max(196608, max_model_len) rows: vLLM minimax_m2.py @01d99586, tests/test_arch_minimax.py)
    assert [c[:3] for c in spec.rope_caches] == [(196_608, 64, 0)] and spec.rope_caches[0][3].mode == "max"


def test_minimax_m2_qk_norms_split_by_tp():
    """MiniMaxText01RMSNormTP: weight = ones(hidden / tp) with the rank's slice -> COLUMN, not replicated; k_norm
    split as the KV heads (Shard.KV: 1/tp up to tp 8, one head's 128 above -- vllm 0.21.0 sdist
    minimax_m2.py:224-238 shards it by num_key_value_heads there; tests/test_tp_kv_heads_versions.py)."""
    spec = build_spec(shipped("MiniMaxAI--MiniMax-M2.5"))
    q, k = tensor(spec, "model.layers.0.self_attn.q_norm.weight"), tensor(spec, "model.layers.0.self_attn.k_norm.weight")
    assert (q.shape, q.shard) == ((48 * 128,), Shard.COLUMN)
    assert (k.shape, k.shard) == ((8 * 128,), Shard.KV)
    assert tensor(spec, "model.layers.0.self_attn.k_proj.weight").shard is Shard.KV
    assert tensor(spec, "model.layers.0.block_sparse_moe.gate.weight").shard is Shard.REPLICATED
    assert tensor(spec, "model.layers.0.block_sparse_moe.experts.gate_up_proj.weight").shard is Shard.EXPERT


@pytest.mark.parametrize(("change", "words"), [
    ({"tie_word_embeddings": True}, "always allocates its own lm_head"),
    ({"attention_bias": True}, "q/k/v biases"),
    ({"rotary_dim": None}, "reads config.rotary_dim"),
])
def test_minimax_m2_configs_vllm_builds_differently_are_refused(change, words):
    cfg = shipped("MiniMaxAI--MiniMax-M2.5")
    for k, v in change.items():
        if v is None:
            cfg.pop(k)
        else:
            cfg[k] = v
    reason = build_spec(cfg).unsupported_reason
    assert reason and words in reason


def test_minimax_m3_weights_and_kv_modelled():
    # weights exact, GQA + lightning-indexer KV cache: tests/test_arch_minimax_m3.py, tests/test_oracle_minimax_m3.py
    spec = build_spec(shipped("MiniMaxAI--MiniMax-M3"))
    assert spec.unsupported_reason is None and spec.params_total > 0 and len(spec.layers_kv) == 60


# ---------------------------------------------------------------- Gemma 4 (vLLM gemma4.py)

def gemma4_text_e4b() -> dict:
    return dict(shipped("google--gemma-4-E4B-it")["text_config"], architectures=["Gemma4ForCausalLM"])


def test_gemma4_e4b_text_exact():
    spec = build_spec(gemma4_text_e4b())
    truth = TRUTH["google/gemma-4-E4B-it"]["text_model"]
    assert spec.unsupported_reason is None and spec.family == "gemma4_text"
    assert spec.params_total == truth["total_params"] == 7_463_013_376
    comp = spec.params_by_component()
    assert comp["attention"] == truth["attention_params"]
    assert comp["dense_mlp"] == truth["dense_mlp_params"]
    assert comp["embedding"] == truth["embedding_params"]
    assert comp["other"] + comp["norm"] == truth["other_params"] + truth["norm_params"]   # PLE
    assert spec.tie_word_embeddings and comp["lm_head"] == 0


def test_gemma4_e4b_per_layer_kv():
    """layer_types: 5 sliding : 1 full (class default); the last 18 of 42 layers share the cache of the last
    earlier layer of their type (vLLM kv_sharing_target_layer_name) and hold none; full layers 512 wide."""
    spec = build_spec(gemma4_text_e4b())
    kinds = [(l.kind, l.num_kv_heads, l.head_size_k, l.head_size_v, l.window) for l in spec.layers_kv]
    for i in range(24):
        full = (i + 1) % 6 == 0
        assert kinds[i] == ((FULL, 2, 512, 512, None) if full else (SLIDING, 2, 256, 256, 512)), i
    assert all(k[0] is NONE for k in kinds[24:]) and len(kinds) == 42
    # 20 sliding x 2 x 2 x 256 x 2 B + 4 full x 2 x 2 x 512 x 2 B = the oracle's KV-holding-layer figure
    bf16 = 20 * 2 * 2 * 256 * 2 + 4 * 2 * 2 * 512 * 2
    assert kv_bytes_per_token(spec, "auto", 2, 1) == bf16 == TRUTH["google/gemma-4-E4B-it"][
        "kv_cache_bytes_per_token_bf16_kv_layers"] == 57_344
    assert kv_bytes_per_token(spec, "fp8", 2, 1) == bf16 // 2
    assert kv_bytes_per_token(spec, "auto", 2, 2) == bf16 // 2
    assert kv_bytes_per_token(spec, "auto", 2, 4) == bf16 // 2           # 2 KV heads replicated over 4


def test_gemma4_e4b_hybrid_groups_unify_pages():
    """Sliding page (16 x 2 x 2 heads x 256 x 2 B) is half the full page (2 x 512): vLLM doubles the sliding
    block size to unify pages; 4 full + 20 sliding KV layers -> groups of 4: one full, five sliding; the
    18 KV-shared layers take no part."""
    spec = build_spec(gemma4_text_e4b())
    g = kv_groups(spec, 1, 1, "auto", 2, 16)
    assert (g.n_groups, g.n_full, g.bs_full, g.n_slide, g.bs_slide, g.window) == (6, 1, 16, 5, 32, 512)
    assert g.stage_bytes_per_block == (4 * 16 * 2 * 2 * 512 * 2,)


def test_gemma4_shared_layers_keep_allocated_kv_weights():
    """vLLM's Gemma4Attention builds qkv_proj and k_norm on every layer, KV-shared ones included:
    bytes on the GPU (allocated_only), not parameters."""
    spec = build_spec(gemma4_text_e4b())
    k_shared = tensor(spec, "model.layers.30.self_attn.k_proj.weight")
    assert k_shared.allocated_only and k_shared.shape == (2 * 256, 2560) and k_shared.shard is Shard.KV
    assert not tensor(spec, "model.layers.3.self_attn.k_proj.weight").allocated_only
    extra = sum(t.numel for t in spec.tensors if t.allocated_only)
    # 18 shared layers: 15 sliding (k, v: 512 x 2560, k_norm 256) + 3 full (k, v: 1024 x 2560, k_norm 512)
    assert extra == 15 * (2 * 512 * 2560 + 256) + 3 * (2 * 1024 * 2560 + 512)
    assert spec.params_total == sum(t.numel for t in spec.tensors) - extra


def test_gemma4_k_eq_v_v_slot_is_a_copy_and_cache_keeps_k_and_v():
    cfg = dict(gemma4_text_e4b(), attention_k_eq_v=True, num_kv_shared_layers=0)
    spec = build_spec(cfg)
    assert spec.unsupported_reason is None
    assert tensor(spec, "model.layers.5.self_attn.v_proj.weight").allocated_only        # full layer
    assert not tensor(spec, "model.layers.4.self_attn.v_proj.weight").allocated_only    # sliding layer
    assert spec.layers_kv[5].head_size_v == 512 and spec.layers_kv[5].num_kv_heads == 2


def test_gemma4_ple_sharding_and_rope():
    spec = build_spec(gemma4_text_e4b())
    assert tensor(spec, "model.embed_tokens_per_layer.weight").shape == (262_144, 42 * 256)
    assert tensor(spec, "model.embed_tokens_per_layer.weight").shard is Shard.VOCAB
    assert tensor(spec, "model.per_layer_model_projection.weight").shard is Shard.COLUMN
    assert tensor(spec, "model.layers.0.per_layer_input_gate.weight").shard is Shard.REPLICATED
    # sliding: default rope over 256; full: proportional -> Gemma4RotaryEmbedding(rotary_dim = head_size = 512)
    assert spec.rope_caches == ((131_072, 256, 0), (131_072, 512, 0))
    assert spec.pp_unsupported is None and spec.pp_every_stage


def test_gemma4_e4b_composite_exact():
    """gemma4_mm.py: the language model + vision tower + audio tower + embedders, towers replicated."""
    spec = build_spec(shipped("google--gemma-4-E4B-it"))
    truth = TRUTH["google/gemma-4-E4B-it"]
    assert spec.unsupported_reason is None and spec.family == "gemma4" and spec.multimodal
    assert spec.params_total == truth["total_params"] == 7_941_100_832
    assert spec.params_by_component()["vision"] == truth["vision_params"]
    assert spec.params_text == truth["text_model"]["total_params"]
    towers = [t for t in spec.tensors if t.name.startswith(("model.vision_tower", "model.audio_tower", "model.embed_"))]
    assert towers and {t.shard for t in towers} == {Shard.REPLICATED}
    assert tensor(spec, "model.audio_tower.output_proj.weight").shape == (1536, 1024)   # audio class defaults
    assert tensor(spec, "model.embed_audio.embedding_projection.weight").shape == (2560, 1536)
    assert kv_bytes_per_token(spec, "auto", 2, 1) == 57_344


@pytest.mark.parametrize(("change", "words"), [
    ({"hidden_activation": "gelu"}, "gelu_pytorch_tanh"),
    ({"num_kv_shared_layers": 42}, "every layer KV-shared"),
])
def test_gemma4_refusals(change, words):
    reason = build_spec(dict(gemma4_text_e4b(), **change)).unsupported_reason
    assert reason and words in reason


# Gemma 4 31B / 26B-A4B (attention_k_eq_v, num_global_key_value_heads on the full layers): the text_config of
# the real config.json files in tests/data/configs_2026/ (SOURCES.md): google/gemma-4-26B-A4B's own, and
# nvidia/Gemma-4-31B-IT-NVFP4's (the 31B-it architecture; its quantization_config sits outside text_config).
# hidden 5376, 32 heads, 16 KV heads of 256, full layers 4 KV heads of 512, window 1024; 26B-A4B: hidden 2816,
# 16 / 8 heads, 2 global KV heads, 128 experts top-8 of 704.  Exactness against the meta device:
# tests/test_oracle_flagships_gqa.py.  vLLM gemma4.py @eee7972f, Gemma4DecoderLayer: on a full layer with
# attention_k_eq_v, ``num_kv_heads = getattr(config, "num_global_key_value_heads", ...)``, and Gemma4Attention
# builds its own QKVParallelLinear / Attention with that count.


def gemma4_31b_text() -> dict:
    return dict(shipped("nvidia--Gemma-4-31B-IT-NVFP4")["text_config"], architectures=["Gemma4ForCausalLM"])


def gemma4_26b_a4b_text() -> dict:
    return dict(shipped("google--gemma-4-26B-A4B")["text_config"], architectures=["Gemma4ForCausalLM"])


# meta-device counts of the two real configs (torch 2.13.0 CPU, transformers 5.24.0; recomputed live by
# tests/test_oracle_flagships_gqa.py): text stack alone and the whole composite (+ SigLIP-like tower, embedder)
GEMMA4_REAL = {"nvidia--Gemma-4-31B-IT-NVFP4": (30_697_345_280, 31_273_086_512),
               "google--gemma-4-26B-A4B": (25_233_141_760, 25_805_933_872)}


@pytest.mark.parametrize("name", sorted(GEMMA4_REAL))
def test_gemma4_31b_and_26b_a4b_real_configs_exact(name):
    text_total, whole_total = GEMMA4_REAL[name]
    cfg = shipped(name)
    assert build_spec(dict(cfg["text_config"], architectures=["Gemma4ForCausalLM"])).params_total == text_total
    spec = build_spec(cfg)
    assert spec.unsupported_reason is None and spec.params_total == whole_total
    # 27-layer 1152-wide tower, position table 10,240 x 2; projector 1152 -> text hidden
    assert spec.params_by_component()["vision"] == whole_total - text_total


def test_gemma4_global_kv_heads_per_layer():
    spec = build_spec(gemma4_31b_text())
    assert spec.unsupported_reason is None
    assert spec.num_kv_heads == 16 and spec.kv_heads_by_layer == tuple([16] * 5 + [4]) * 10
    assert [(l.kind, l.num_kv_heads, l.head_size_k, l.head_size_v, l.window) for l in spec.layers_kv[:6]] == \
        [(SLIDING, 16, 256, 256, 1024)] * 5 + [(FULL, 4, 512, 512, None)]
    assert tensor(spec, "model.layers.5.self_attn.k_proj.weight").shape == (4 * 512, 5376)
    v = tensor(spec, "model.layers.5.self_attn.v_proj.weight")     # K reused as V: a copy vLLM loads
    assert v.shape == (4 * 512, 5376) and v.allocated_only
    assert tensor(spec, "model.layers.4.self_attn.v_proj.weight").shape == (16 * 256, 5376)
    # KV per token (vLLM real_page_size_bytes / block): 50 sliding x 2 x 16 x 256 x 2 B + 10 full x 2 x 4 x 512
    # x 2 B; at tp = 8 the sliding layers hold 2 heads, the full ones max(1, 4 // 8) = 1 head (replicated)
    assert kv_bytes_per_token(spec, "auto", 2, 1) == 50 * 2 * 16 * 256 * 2 + 10 * 2 * 4 * 512 * 2 == 901_120
    assert kv_bytes_per_token(spec, "auto", 2, 8) == 50 * 2 * 2 * 256 * 2 + 10 * 2 * 1 * 512 * 2
    assert kv_bytes_per_token(spec, "fp8", 2, 4) == 50 * 2 * 4 * 256 + 10 * 2 * 1 * 512


def _rank_bytes_by_hand(spec, tp: int) -> float:
    """bf16 bytes on one rank, tensor by tensor, each K/V projection split by its own layer's head count."""
    from math import ceil

    total = 0.0
    for t in spec.tensors:
        b = t.numel * 2
        if t.shard in (Shard.COLUMN, Shard.ROW):
            b /= tp
        elif t.shard is Shard.KV:
            h = spec.kv_heads_by_layer[t.layer]
            b *= max(1, h // tp) / h
        elif t.shard is Shard.VOCAB:
            b *= ceil(t.shape[0] / 64) * 64 / t.shape[0] / tp
        elif t.shard is Shard.EXPERT:
            b /= tp
        total += b
    return total


@pytest.mark.parametrize("tp", [1, 2, 4, 8, 16])
@pytest.mark.parametrize("shape", [gemma4_31b_text, gemma4_26b_a4b_text])
def test_gemma4_global_kv_weights_shard_by_their_own_head_count(shape, tp):
    """QKVParallelLinear per layer: K/V of the full layers split max(1, 4 // tp) / 4 (replicated past tp 4),
    the sliding layers' max(1, 16 // tp) / 16 -- one weight table, two KV classes."""
    from reportgen.estimate import quant
    from reportgen.estimate.layout import Layout
    from reportgen.estimate.weights import build_weight_table, stage_weights

    spec = build_spec(shape())
    table = build_weight_table(spec, quant.whatif_scheme("bf16"), 2)
    (st,) = stage_weights(table, Layout(tp=tp))
    assert st.bytes - table.buffer_bytes == pytest.approx(_rank_bytes_by_hand(spec, tp), rel=1e-12)


def test_gemma4_global_kv_heads_validity_rule():
    """vLLM Gemma4Attention asserts n_kv % tp == 0 (n_kv >= tp) or tp % n_kv == 0 for each layer's count."""
    from reportgen.estimate.layout import Layout
    from reportgen.estimate.tables import model_rule

    spec = build_spec(dict(gemma4_31b_text(), num_attention_heads=48, num_key_value_heads=12,
                           num_global_key_value_heads=3))
    assert [model_rule(spec, Layout(tp=tp)) for tp in (1, 3, 6, 12)] == [None] * 4
    rule = model_rule(spec, Layout(tp=4))         # 12 % 4 == 0, but 3 and 4: neither divides the other
    assert rule and "(3)" in rule and "KV heads of some layers" in rule


def test_gemma4_kv_sharing_targets_and_pp_validity():
    """vLLM gemma4.py @eee7972f: a KV-shared layer reads the last earlier layer of its type
    (kv_sharing_target_layer_name); on another pipeline stage that target is not in the rank's forward
    context and validate_kv_sharing_target raises -> invalid_layout.  E4B: layers 24-41 read 22 (sliding)
    or 23 (full); pp = 2 puts 21-41 on stage 1 (starts), pp = 3 puts 22 on stage 1 and 28 on stage 2."""
    from reportgen.estimate.layout import Layout
    from reportgen.estimate.tables import ModelTables

    spec = build_spec(gemma4_text_e4b())
    assert spec.kv_sharing == tuple((i, 23 if (i + 1) % 6 == 0 else 22) for i in range(24, 42))
    tables = ModelTables(spec)
    head, _, n = tables.row(Layout(tp=1, pp=2), "checkpoint", "auto")
    assert head[6] is None and n >= 1
    for pp, layer in ((3, 28), (4, 32)):
        head, _, _ = tables.row(Layout(tp=1, pp=pp), "checkpoint", "auto")
        assert head[6] == "invalid_layout" and f"layer {layer} shares the KV cache of layer 22" in head[7]
    # no KV sharing (31B): any pp up to the layer count is valid
    assert build_spec(gemma4_31b_text()).kv_sharing == ()


@pytest.mark.parametrize("untied", [False, True])
def test_gemma4_pp_every_stage_holds_embeddings_ple_and_towers(untied):
    """vLLM Gemma4Model builds embed_tokens, embed_tokens_per_layer, per_layer_model_projection (+ norm) and
    the final norm on every PP rank (no PPMissingLayer), Gemma4ForCausalLM its lm_head (tied = the
    embedding), gemma4_mm.py the towers: at pp = 2 each stage = its decoder layers + all of those, by hand."""
    from math import ceil

    from reportgen.estimate import quant
    from reportgen.estimate.layout import Layout, pp_partition
    from reportgen.estimate.weights import build_weight_table, stage_weights

    cfg = shipped("google--gemma-4-E4B-it")
    if untied:
        cfg = dict(cfg, tie_word_embeddings=False, text_config=dict(cfg["text_config"], tie_word_embeddings=False))
    spec = build_spec(cfg)
    assert any(t.component.value == "lm_head" for t in spec.tensors) == untied
    table = build_weight_table(spec, quant.whatif_scheme("bf16"), 2)

    def nbytes(t):
        pad = ceil(t.shape[0] / 64) * 64 / t.shape[0] if t.shard is Shard.VOCAB else 1
        return t.numel * 2 * pad

    outside = sum(nbytes(t) for t in spec.tensors if t.layer is None)
    assert outside > 2 * 262_144 * 42 * 256          # PLE table + embedding + towers
    for st, (a, b) in zip(stage_weights(table, Layout(tp=1, pp=2)), pp_partition(42, 2)):
        layers = sum(nbytes(t) for t in spec.tensors if t.layer is not None and a <= t.layer < b)
        assert st.bytes - table.buffer_bytes == pytest.approx(layers + outside, rel=1e-12)


# ---------------------------------------------------------------- Ministral 3 (mistral3 composite, vLLM mistral3.py)

def test_ministral3_composite_exact():
    """text_config ministral3 (vLLM: Ministral3ForCausalLM -> mistral.py, Llama layers) + Pixtral tower."""
    spec = build_spec(shipped("mistralai--Ministral-3-3B-Instruct-2512"))
    truth = TRUTH["mistralai/Ministral-3-3B-Instruct-2512"]
    assert spec.unsupported_reason is None and spec.family == "mistral3"
    assert spec.params_total == truth["total_params"] == 3_849_090_048
    assert spec.params_text == truth["text_model"]["total_params"]
    assert spec.params_by_component()["vision"] == truth["vision_params"]
    assert spec.tie_word_embeddings


def test_ministral3_kv_and_yarn_rope():
    spec = build_spec(shipped("mistralai--Ministral-3-3B-Instruct-2512"))
    assert {(l.kind, l.num_kv_heads, l.head_size_k) for l in spec.layers_kv} == {(FULL, 8, 128)}
    assert kv_bytes_per_token(spec, "auto", 2, 1) == 26 * 2 * 8 * 128 * 2 == 106_496
    assert kv_bytes_per_token(spec, "fp8", 2, 1) == 26 * 2 * 8 * 128
    # yarn x16 over 16384 original positions: 262144 rows, rotary = head_dim
    assert spec.rope_caches == ((262_144, 128, 0),) and spec.max_model_len_limit == 262_144


def test_ministral3_text_alone():
    cfg = dict(shipped("mistralai--Ministral-3-3B-Instruct-2512")["text_config"], architectures=["Ministral3ForCausalLM"])
    spec = build_spec(cfg)
    assert spec.params_total == TRUTH["mistralai/Ministral-3-3B-Instruct-2512"]["text_model"]["total_params"]


def test_mistral_large4_refused():
    """mistral4 is modelled now (tests/test_arch_mistral4.py); Mistral Large 4 has no vLLM model."""
    reason = build_spec({"model_type": "mistral_large4"}).unsupported_reason
    assert reason and "latent" in reason and "kv_source_layers" in reason


# ---------------------------------------------------------------- Command-R (vLLM commandr.py)

def test_command_r_exact_and_kv():
    spec = build_spec(shipped("CohereForAI--c4ai-command-r-v01"))   # TRIMMED: tie / qk-norm from class defaults
    truth = TRUTH["CohereForAI/c4ai-command-r-v01"]
    assert spec.unsupported_reason is None and spec.family == "cohere"
    assert spec.params_total == truth["total_params"] == 34_980_831_232
    assert spec.tie_word_embeddings and spec.params_by_component()["lm_head"] == 0
    assert kv_bytes_per_token(spec, "auto", 2, 1) == 40 * 2 * 64 * 128 * 2 == truth["kv_cache_bytes_per_token_bf16"]
    assert kv_bytes_per_token(spec, "fp8", 2, 1) == 40 * 2 * 64 * 128
    assert kv_bytes_per_token(spec, "auto", 2, 8) == 40 * 2 * 8 * 128 * 2


def test_command_r_qk_norms_per_rank_heads():
    """use_qk_norm: LayerNorm(param_shape=(num_heads / tp, head_dim)) and (max(1, kv / tp), head_dim)."""
    spec = build_spec(dict(shipped("CohereForAI--c4ai-command-r-v01"), use_qk_norm=True, num_key_value_heads=8))
    q = tensor(spec, "model.layers.0.self_attn.q_norm.weight")
    k = tensor(spec, "model.layers.0.self_attn.k_norm.weight")
    assert (q.shape, q.shard, k.shape, k.shard) == ((64, 128), Shard.COLUMN, (8, 128), Shard.KV)


def test_command_r_rotary_cache_follows_model_max_length():
    spec = build_spec(dict(shipped("CohereForAI--c4ai-command-r-v01"), max_position_embeddings=8192,
                           model_max_length=131072))
    assert spec.rope_caches == ((131_072, 128, 0),) and spec.max_model_len_limit == 131_072


@pytest.mark.parametrize(("change", "words"), [
    ({"tie_word_embeddings": False}, "always computes the logits"),
    ({"attention_bias": True}, "without bias"),
])
def test_command_r_refusals(change, words):
    reason = build_spec(dict(shipped("CohereForAI--c4ai-command-r-v01"), **change)).unsupported_reason
    assert reason and words in reason


# ---------------------------------------------------------------- dots.llm1 (vLLM dots1.py)

# rednote-hilab/dots.llm1.inst architecture fields, WRITTEN FROM MEMORY (not fetched); its total below is the
# meta-device count of exactly this dict (tests/test_oracle_flagships_gqa.py checks it against torch)
DOTS1 = {"model_type": "dots1", "architectures": ["Dots1ForCausalLM"], "hidden_size": 4096, "intermediate_size": 10944,
         "moe_intermediate_size": 1408, "num_hidden_layers": 62, "num_attention_heads": 32, "num_key_value_heads": 32,
         "n_routed_experts": 128, "n_shared_experts": 2, "num_experts_per_tok": 6, "first_k_dense_replace": 1,
         "moe_layer_freq": 1, "vocab_size": 152064, "max_position_embeddings": 32768, "rope_theta": 10000000,
         "rms_norm_eps": 1e-5, "sliding_window": None, "tie_word_embeddings": False, "attention_bias": False,
         "hidden_act": "silu", "norm_topk_prob": True, "routed_scaling_factor": 2.5, "scoring_func": "noaux_tc",
         "topk_method": "noaux_tc", "n_group": 1, "topk_group": 1}


def test_dots1_total_kv_and_shards():
    spec = build_spec(DOTS1)
    assert spec.unsupported_reason is None and spec.family == "dots1"
    assert spec.params_total == 142_774_373_888
    assert (spec.num_experts, spec.experts_per_token, spec.num_shared_experts) == (128, 6, 2)
    assert kv_bytes_per_token(spec, "auto", 2, 1) == 62 * 2 * 32 * 128 * 2
    assert kv_bytes_per_token(spec, "fp8", 2, 8) == 62 * 2 * 4 * 128
    assert tensor(spec, "model.layers.1.mlp.shared_experts.gate_proj.weight").shape == (2 * 1408, 4096)
    assert tensor(spec, "model.layers.1.mlp.shared_experts.gate_proj.weight").shard is Shard.COLUMN
    assert tensor(spec, "model.layers.0.mlp.gate_proj.weight").shape == (10944, 4096)       # first_k_dense_replace
    assert tensor(spec, "model.layers.0.self_attn.q_norm.weight").shard is Shard.REPLICATED


@pytest.mark.parametrize(("change", "words"), [
    ({"tie_word_embeddings": True}, "own lm_head"),
    ({"attention_bias": True}, "o_proj has no bias"),
    ({"moe_layer_freq": 2}, "moe_layer_freq"),
    ({"hidden_act": "gelu"}, "silu only"),
])
def test_dots1_refusals(change, words):
    reason = build_spec(dict(DOTS1, **change)).unsupported_reason
    assert reason and words in reason


@pytest.mark.parametrize(("change", "kinds"), [
    ({"sliding_window": 4096}, {(AttentionKind.SLIDING, 4096)}),                           # 62 of 62 layers full
    ({"sliding_window": 4096, "max_window_layers": 62}, {(AttentionKind.SLIDING, 4096)}),
    ({"sliding_window": 4096, "max_window_layers": 10}, {(AttentionKind.FULL, None)}),     # 10 full + 52 sliding
    ({"sliding_window": 0}, {(AttentionKind.FULL, None)}),
    ({"sliding_window": None}, {(AttentionKind.FULL, None)}),
])
def test_dots1_sliding_window_as_vllm_applies_it(change, kinds):
    """vLLM 0.22.0 (the 0.13.0 sdist reads the same): ``dots1.py`` l. 249-256 builds ``Attention(...)`` without
    ``per_layer_sliding_window``, so ``attention.py`` l. 213-221 takes ``cache_config.sliding_window``, which
    ``arg_utils.py`` l. 1738-1743 sets to ``model_config.get_sliding_window()`` only ``if not is_interleaved(...)``
    (``transformers_utils/config.py`` l. 560-567: ``layer_types`` of more than one kind), and ``config/model.py``
    l. 673-675 turns a window of 0 into None.  transformers' Dots1Config derives ``layer_types`` (sliding from
    ``max_window_layers`` on).  So: one window for every layer, or none -- never transformers' split."""
    spec = build_spec(dict(DOTS1, **change))
    assert spec.unsupported_reason is None
    assert spec.params_total == 142_774_373_888                  # the window moves no parameter
    assert {(l.kind, l.window) for l in spec.layers_kv} == kinds
    assert len(spec.layers_kv) == 62


# ---------------------------------------------------------------- ERNIE 4.5 (vLLM ernie45.py / ernie45_moe.py)

# baidu/ERNIE-4.5-21B-A3B-PT architecture fields, WRITTEN FROM MEMORY (not fetched); its total is the
# meta-device count of this dict (= the transformers class defaults' count, checked in the oracle file)
ERNIE_MOE = {"model_type": "ernie4_5_moe", "architectures": ["Ernie4_5_MoeForCausalLM"], "hidden_size": 2560,
             "intermediate_size": 12288, "num_hidden_layers": 28, "num_attention_heads": 20, "num_key_value_heads": 4,
             "head_dim": 128, "vocab_size": 103424, "max_position_embeddings": 131072, "rope_theta": 500000,
             "rms_norm_eps": 1e-5, "tie_word_embeddings": True, "use_bias": False, "moe_num_experts": 64, "moe_k": 6,
             "moe_num_shared_experts": 2, "moe_intermediate_size": 1536, "moe_layer_start_index": 1,
             "moe_layer_end_index": 27, "moe_layer_interval": 1, "hidden_act": "silu"}


def test_ernie45_moe_total_layers_and_kv():
    spec = build_spec(ERNIE_MOE)
    assert spec.unsupported_reason is None and spec.family == "ernie4_5_moe"
    assert spec.params_total == 21_825_437_888
    assert tensor(spec, "model.layers.0.mlp.gate_proj.weight").shape == (12288, 2560)     # layer 0 dense
    assert tensor(spec, "model.layers.1.mlp.gate.e_score_correction_bias").shape == (64,)
    assert tensor(spec, "model.layers.1.mlp.shared_experts.up_proj.weight").shape == (2 * 1536, 2560)
    assert kv_bytes_per_token(spec, "auto", 2, 1) == 28 * 2 * 4 * 128 * 2
    assert kv_bytes_per_token(spec, "fp8", 2, 8) == 28 * 2 * 1 * 128              # 4 KV heads replicated over 8


@pytest.mark.parametrize(("cfg", "words"), [
    (dict(ERNIE_MOE, use_bias=True), "no bias"),
    (dict(ERNIE_MOE, moe_layer_start_index=40), "without a MoE layer"),
    ({"model_type": "ernie4_5", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
      "vocab_size": 100, "use_bias": True}, "different biases"),
])
def test_ernie_refusals(cfg, words):
    reason = build_spec(cfg).unsupported_reason
    assert reason and words in reason


# ---------------------------------------------------------------- Apertus (vLLM apertus.py)

# swiss-ai/Apertus-8B-2509 architecture fields, WRITTEN FROM MEMORY (not fetched); the total is the meta-device
# count of this dict (checked in the oracle file)
APERTUS = {"model_type": "apertus", "architectures": ["ApertusForCausalLM"], "hidden_size": 4096,
           "intermediate_size": 21504, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
           "vocab_size": 131072, "max_position_embeddings": 65536, "hidden_act": "xielu", "rms_norm_eps": 1e-5,
           "tie_word_embeddings": False, "attention_bias": False, "rope_theta": 12000000,
           "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "original_max_position_embeddings": 8192,
                            "low_freq_factor": 1.0, "high_freq_factor": 4.0}}


def test_apertus_total_xielu_and_kv():
    spec = build_spec(APERTUS)
    assert spec.unsupported_reason is None and spec.family == "apertus"
    assert spec.params_total == 8_053_338_176
    assert tensor(spec, "model.layers.0.mlp.act_fn.alpha_p").shape == (1,)
    assert tensor(spec, "model.layers.0.mlp.up_proj.weight").shard is Shard.COLUMN
    assert kv_bytes_per_token(spec, "auto", 2, 1) == 32 * 2 * 8 * 128 * 2
    assert kv_bytes_per_token(spec, "fp8", 2, 2) == 32 * 2 * 4 * 128
    assert spec.rope_caches == ((65_536, 128, 0),)       # llama3 scaling keeps max_position rows


@pytest.mark.parametrize(("change", "words"), [
    ({"mlp_bias": True}, "vLLM reads it"),
    ({"qkv_bias": False}, "vLLM reads it"),
    ({"hidden_act": "silu"}, "xielu only"),
    ({"sliding_window": 4096}, "transformers has no window"),
])
def test_apertus_refusals(change, words):
    reason = build_spec(dict(APERTUS, **change)).unsupported_reason
    assert reason and words in reason


# ---------------------------------------------------------------- Hunyuan v1 (vLLM hunyuan_v1.py)

# tencent/Hunyuan-A13B-Instruct architecture fields, WRITTEN FROM MEMORY (not fetched); the total is the
# meta-device count of this dict (checked in the oracle file)
HUNYUAN_MOE = {"model_type": "hunyuan_v1_moe", "architectures": ["HunYuanMoEV1ForCausalLM"], "hidden_size": 4096,
               "intermediate_size": 3072, "moe_intermediate_size": [3072] * 32, "num_hidden_layers": 32,
               "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128, "attention_head_dim": 128,
               "vocab_size": 128167, "max_position_embeddings": 32768, "num_experts": 64, "moe_topk": [8] * 32,
               "num_shared_expert": [1] * 32, "use_mixed_mlp_moe": True, "use_qk_norm": True, "use_cla": False,
               "tie_word_embeddings": True, "attention_bias": False, "mlp_bias": False, "hidden_act": "silu",
               "rms_norm_eps": 1e-5, "rope_theta": 10000.0}


def test_hunyuan_a13b_total_and_kv():
    spec = build_spec(HUNYUAN_MOE)
    assert spec.unsupported_reason is None and spec.family == "hunyuan_v1_moe"
    assert spec.params_total == 80_393_183_232
    assert (spec.num_experts, spec.experts_per_token, spec.num_shared_experts) == (64, 8, 1)
    assert tensor(spec, "model.layers.0.mlp.gate.wg.weight").shard is Shard.REPLICATED
    assert tensor(spec, "model.layers.0.mlp.shared_mlp.down_proj.weight").shard is Shard.ROW
    assert kv_bytes_per_token(spec, "auto", 2, 1) == 32 * 2 * 8 * 128 * 2
    assert kv_bytes_per_token(spec, "fp8", 2, 16) == 32 * 2 * 1 * 128


@pytest.mark.parametrize(("change", "words"), [
    ({"use_cla": True, "cla_share_factor": 2}, "cross-layer attention"),
    ({"moe_intermediate_size": 1024}, "sizes the experts"),
    ({"head_dim": None, "use_qk_norm": False}, "without head_dim"),
])
def test_hunyuan_refusals(change, words):
    reason = build_spec(dict(HUNYUAN_MOE, **change)).unsupported_reason
    assert reason and words in reason


@pytest.mark.parametrize(("change", "words"), [
    ({"use_qk_norm": False}, "use_qk_norm"),
    ({"num_shared_expert": 2}, "shared MLP"),
    ({"mlp_bias": True}, "loads that bias"),
    # tests/test_hunyuan_cla_versions.py: per release, with the vLLM lines
    ({"num_experts": 1, "moe_topk": 1}, "No HunYuanMoE layer found"),
    ({"hidden_act": "gelu"}, "Unsupported activation: gelu"),
])
def test_hunyuan_native_only_differences_refused_before_the_backend(change, words):
    """vLLM 0.10 - 0.28's hunyuan_v1.py builds these configs differently from transformers; 0.29 on builds
    transformers' class (Transformers backend, vllm 0.29.0 sdist registry.py:688): priced from 0.29."""
    from reportgen.estimate.served import spec_for_version
    spec = build_spec(dict(HUNYUAN_MOE, **change))
    assert spec.unsupported_reason is None and spec.served_from[0] == (0, 29)
    reason = spec_for_version(spec, "0.28").unsupported_reason
    assert reason and words in reason and "0.29 or newer" in reason
    assert spec_for_version(spec, "0.29").unsupported_reason is None


# ---------------------------------------------------------------- EXAONE-3.x (vLLM exaone.py)

# LGAI-EXAONE/EXAONE-3.5-7.8B-Instruct's config.json with the hub's legacy names (num_layers,
# activation_function, layer_norm_epsilon): tests/data/configs_2026/ (SOURCES.md: sgl-project/ome's test copy;
# it replaced a dict written from memory with the same values).  The total is counted by hand below and on the
# meta device in tests/test_oracle_flagships_gqa.py (transformers 5.24's native ``exaone`` class).
EXAONE = shipped("LGAI-EXAONE--EXAONE-3.5-7.8B-Instruct")


def test_exaone_legacy_names_total_and_kv():
    spec = build_spec(EXAONE)
    assert spec.unsupported_reason is None and spec.family == "exaone" and spec.num_layers == 32
    # embedding + untied head 2 x 102400 x 4096; per layer q/o 2 x 4096^2, k/v 2 x 1024 x 4096, SwiGLU
    # 3 x 4096 x 14336, two norms; final norm
    layer = 2 * 4096 * 4096 + 2 * 1024 * 4096 + 3 * 4096 * 14336 + 2 * 4096
    assert spec.params_total == 2 * 102400 * 4096 + 32 * layer + 4096 == 7_818_448_896
    assert kv_bytes_per_token(spec, "auto", 2, 1) == 32 * 2 * 8 * 128 * 2
    assert spec.rope_caches == ((32_768, 128, 0),)


@pytest.mark.parametrize(("change", "words"), [
    ({"activation_function": "gelu"}, "silu only"),
    ({"bias": True}, "vLLM loads attention biases"),
])
def test_exaone_refusals(change, words):
    reason = build_spec(dict(EXAONE, **change)).unsupported_reason
    assert reason and words in reason
