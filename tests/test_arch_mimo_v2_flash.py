"""MiMo-V2-Flash (``mimo_v2_flash``): shipped config exact, per-layer KV kinds / heads / bytes, the KV dtype flag that
never reaches the layers, TP cells beyond the full layers' K/V heads, fields where vLLM and transformers disagree.

vLLM sources read:

* vllm/model_executor/models/mimo_v2.py @055e47c2 -- ``MiMoV2FlashDecoderLayer.__init__``: ``if
  self.is_compressed_softmax_layer(): self.self_attn = MiMoV2Attention(num_heads=config.swa_num_attention_heads,
  num_kv_heads=config.swa_num_key_value_heads, head_dim=config.swa_head_dim, v_head_dim=getattr(config,
  "swa_v_head_dim", None), sliding_window_size=config.sliding_window_size, add_swa_attention_sink_bias=...)`` else
  ``num_kv_heads=config.num_key_value_heads, ..., sliding_window_size=-1``; ``is_compressed_softmax_layer``:
  ``self.config.hybrid_layer_pattern[self.layer_id] == 1``; ``MiMoV2Attention``: ``self.attn = Attention(self.num_heads,
  self.head_dim, ..., num_kv_heads=self.num_kv_heads, cache_config=cache_config, per_layer_sliding_window=
  sliding_window, ..., head_size_v=self.v_head_dim)`` with ``cache_config`` left at its default None by the decoder
  layer; ``MiMoV2MoE``: ``self.gate = nn.Linear(config.hidden_size, config.n_routed_experts, bias=False,
  dtype=self.gate_dtype)`` (``moe_router_dtype``, default ``"float32"``) and ``self.gate.e_score_correction_bias =
  nn.Parameter(torch.empty(config.n_routed_experts, dtype=self.gate_dtype))``.
* vllm/model_executor/layers/attention/attention.py @0014ca6b -- ``Attention.__init__``: ``if cache_config is not
  None: kv_cache_dtype = cache_config.cache_dtype ... else: kv_cache_dtype = "auto"`` (a checkpoint
  ``kv_cache_scheme`` still turns ``auto`` into fp8).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.arch.spec import AttentionKind, Component, Shard
from reportgen.estimate.kvcache import kv_bytes_per_token
from reportgen.estimate.quant import Scheme, kv_cache_dtype_used
from test_arch_mistral4 import tensor

DATA = Path(__file__).resolve().parent / "data"
MIMO = json.loads((DATA / "configs_2026" / "XiaomiMiMo--MiMo-V2-Flash.json").read_text())
TRUTH = json.loads((DATA / "param_counts_2026.json").read_text())["models"]["XiaomiMiMo/MiMo-V2-Flash"]


def mimo(**over) -> dict:
    return dict(MIMO, **over)


def test_shipped_config_equals_meta_truth_per_component():
    spec = build_spec(MIMO)
    assert spec.unsupported_reason is None and spec.family == "mimo_v2_flash"
    assert spec.params_total == TRUTH["total_params"] == 308_778_768_832
    by = spec.params_by_component()
    names = {"attention": "attention", "dense_mlp": "dense_mlp", "routed_experts": "routed_expert",
             "router": "router", "norm": "norm", "embedding": "embedding", "lm_head": "lm_head"}
    for comp, key in names.items():
        assert by[comp] == TRUTH[f"{key}_params"], comp
    assert spec.experts_per_token == 8 and spec.num_experts == 256


def test_per_layer_kinds_heads_and_window():
    spec = build_spec(MIMO)
    full = [i for i, l in enumerate(spec.layers_kv) if l.kind is AttentionKind.FULL]
    assert full == [0, 5, 11, 17, 23, 29, 35, 41, 47]          # hybrid_layer_pattern 0 entries
    for i, layer in enumerate(spec.layers_kv):
        if i in full:
            assert (layer.num_kv_heads, layer.head_size_k, layer.head_size_v, layer.window) == (4, 192, 128, None)
        else:   # vLLM's window is sliding_window_size (128); transformers' sliding_window is 129
            assert (layer.kind, layer.num_kv_heads, layer.head_size_k, layer.head_size_v, layer.window) == \
                (AttentionKind.SLIDING, 8, 192, 128, 128)


def test_kv_bytes_and_the_kv_dtype_flag_that_never_reaches_the_layers():
    spec = build_spec(MIMO)
    bf16 = 9 * 4 * (192 + 128) * 2 + 39 * 8 * (192 + 128) * 2
    assert bf16 == TRUTH["kv_cache_bytes_per_token_bf16_from_modules"] == 222_720
    assert kv_bytes_per_token(spec, "auto", 2, 1) == bf16
    # cache_config is not passed to Attention: --kv-cache-dtype fp8 still allocates the model dtype
    assert kv_bytes_per_token(spec, "fp8", 2, 1) == bf16
    assert kv_cache_dtype_used("fp8", "bfloat16", spec) == "bfloat16"
    # TP 4: full layers 1 K/V head a rank, sliding layers 2
    assert kv_bytes_per_token(spec, "auto", 2, 4) == 9 * 1 * 320 * 2 + 39 * 2 * 320 * 2


def test_tensors_shards_and_float32_router():
    spec = build_spec(MIMO)
    a = "model.layers.1.self_attn."
    assert (tensor(spec, a + "k_proj.weight").shape, tensor(spec, a + "k_proj.weight").shard) == ((8 * 192, 4096),
                                                                                                    Shard.KV)
    assert tensor(spec, a + "v_proj.weight").shape == (8 * 128, 4096)
    assert tensor(spec, "model.layers.0.self_attn.k_proj.weight").shape == (4 * 192, 4096)
    assert tensor(spec, a + "o_proj.weight").shape == (4096, 64 * 128)
    sink = tensor(spec, a + "attention_sink_bias")
    assert (sink.shape, sink.shard) == ((64,), Shard.COLUMN)
    assert not [t for t in spec.tensors if t.name == "model.layers.0.self_attn.attention_sink_bias"]
    gate = tensor(spec, "model.layers.1.mlp.gate.weight")
    assert (gate.shape, gate.component, gate.dtype_bytes) == ((256, 4096), Component.ROUTER, 4)
    assert Scheme("bf16", model_dtype_bytes=2).tensor_bytes(gate) == 256 * 4096 * 4
    bias = tensor(spec, "model.layers.1.mlp.gate.e_score_correction_bias")
    assert bias.allocated_only and bias.params == 0
    assert tensor(spec, "model.layers.0.mlp.gate_proj.weight").shape == (16384, 4096)      # layer 0 dense
    assert spec.rope_caches == ((262_144, 64, 0), (262_144, 64, 0))   # rope_theta and swa_rope_theta


def test_tp_above_the_full_layers_kv_heads_shards_each_layer_by_its_own_count(monkeypatch):
    """At tp 8 vLLM's QKVParallelLinear replicates the full layers' 4 K/V heads (num_kv_head_replicas = 2) and splits
    the sliding layers' 8 (vllm 0.34.0 sdist model_executor/layers/linear.py:1116): one K/V head a rank on every layer.
    KV: 48 layers x 1 head x (192 + 128) x 2 B = 30,720 B a token (tp 4: 9 full layers x 1 head + 39 sliding x 2 heads
    = 55,680).  Weights: sharding every layer's K/V by the full layers' 4 heads would keep 1/4 of each sliding layer's
    K/V projections (8 x (192 + 128) x 4096 bf16) on a rank instead of 1/8: 39 x 20,971,520 x (1/4 - 1/8) =
    102,236,160 B more -- before PyTorch's allocator rounding (weights.allocator_unsplit_bytes, switched off here:
    the merged qkv_proj sizes differ between the two readings, and so do their 2 MiB-rounded blocks)."""
    import dataclasses

    from reportgen.estimate import tables
    from reportgen.matrix import estimate_one

    monkeypatch.setattr(tables, "allocator_unsplit_bytes", lambda spec, scheme, lay, *rest: [0.0] * lay.pp)

    spec = build_spec(MIMO)
    assert spec.kv_heads_by_layer == tuple(8 if p else 4 for p in MIMO["hybrid_layer_pattern"])
    assert sum(MIMO["hybrid_layer_pattern"]) == 39
    r8 = estimate_one(spec, 141.0, tp=8, max_model_len=8192, weights_as="bf16")
    r4 = estimate_one(spec, 141.0, tp=4, max_model_len=8192, weights_as="bf16")
    assert r8["status"] == "fits" and r8["kv_bytes_per_token"] == 48 * 320 * 2 == 30_720
    assert r4["kv_bytes_per_token"] == 9 * 320 * 2 + 39 * 2 * 320 * 2 == 55_680
    one_count = dataclasses.replace(spec, kv_heads_by_layer=())
    w1 = estimate_one(one_count, 141.0, tp=8, max_model_len=8192, weights_as="bf16")["weights_gib"]
    assert (w1 - r8["weights_gib"]) * 2**30 == pytest.approx(39 * 8 * 320 * 4096 * 2 * (1 / 4 - 1 / 8))


@pytest.mark.parametrize("change, words", [
    ({"hybrid_layer_pattern": [1] * 48}, "hybrid_layer_pattern"),
    ({"hybrid_layer_pattern": None}, "hybrid_layer_pattern"),
    ({"swa_num_key_value_heads": 4}, "swa_num_key_value_heads"),
    ({"swa_head_dim": 128}, "swa_head_dim"),
    ({"add_swa_attention_sink_bias": False}, "add_swa_attention_sink_bias"),
    ({"moe_layer_freq": [1] * 48}, "moe_layer_freq"),
    ({"moe_layer_freq": 1}, "moe_layer_freq"),
    ({"tie_word_embeddings": True}, "lm_head"),
])
def test_configs_vllm_and_transformers_build_differently_are_refused(change, words):
    reason = build_spec(mimo(**change)).unsupported_reason
    assert reason and words in reason


def test_layer_types_that_match_the_pattern_are_accepted():
    layer_types = ["sliding_attention" if p == 1 else "full_attention" for p in MIMO["hybrid_layer_pattern"]]
    assert build_spec(mimo(layer_types=layer_types)).params_total == 308_778_768_832
