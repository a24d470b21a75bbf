"""MiniMax-M3 (``minimax_m3``, weights exact / KV refused): shard classes and refusals, each pinned to the vLLM source
line it follows -- ``vllm/models/minimax_m3/nvidia/model.py`` @0443308a, ``common/indexer.py`` @0484480b (read through
the search index).  Totals against the meta device: tests/test_oracle_minimax_m3.py."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.arch.spec import Shard as S


def _t(spec, name):
    return next(t for t in spec.tensors if t.name == name)


M3 = json.loads((Path(__file__).parent / "data/configs_2026/MiniMaxAI--MiniMax-M3.json").read_text())


def test_minimax_m3_weights_only_kv_refusal_names_vllm_facts():
    # common/indexer.py @0484480b MiniMaxM3IndexerCache.get_kv_cache_spec: MLAAttentionSpec(num_kv_heads=1,
    # head_size=index_head_dim, dtype=indexer_kv_dtype) next to the layer's FullAttentionSpec
    spec = build_spec(M3)
    for words in ("weights modelled exactly", "indexer_kv_dtype", "MLAAttentionSpec", "FullAttentionSpec"):
        assert words in spec.unsupported_reason
    assert spec.params_total == 426_174_565_632 and not spec.layers_kv


def test_minimax_m3_shards():
    spec = build_spec(M3)
    a = "model.layers.3.self_attn"
    # MinimaxM3QKVParallelLinearWithIndexer: index_q shards like the K/V heads, index_k one replicated head
    assert _t(spec, f"{a}.indexer.q_proj.weight").shard is S.KV
    assert _t(spec, f"{a}.indexer.q_proj.weight").shape == (4 * 128, 6144)
    k = _t(spec, f"{a}.indexer.k_proj.weight")
    assert k.shard is S.REPLICATED and k.shape == (128, 6144)
    # layers with sparse_attention_freq 0 are MiniMaxM3Attention: no index projections
    assert not any(t.name.startswith("model.layers.0.self_attn.indexer") for t in spec.tensors)
    # GateLinear(hidden, E, params_dtype=torch.float32); e_score_correction_bias float32 Parameter
    gate = _t(spec, "model.layers.3.mlp.gate.weight")
    assert gate.dtype_bytes == 4 and gate.shard is S.REPLICATED and not gate.quantizable
    assert _t(spec, "model.layers.3.mlp.gate.e_score_correction_bias").allocated_only
    # dense layers (moe_layer_freq 0): MiniMaxM3MLP(intermediate_size=config.dense_intermediate_size)
    assert _t(spec, "model.layers.0.mlp.gate_proj.weight").shape == (12288, 6144)
    # shared expert: intermediate_size * n_shared_experts
    assert _t(spec, "model.layers.3.mlp.shared_experts.down_proj.weight").shape == (6144, 3072)
    # MiniMaxM3MoE: `if self.tp_size > config.num_local_experts: raise ValueError`
    assert spec.max_tp == 128


@pytest.mark.parametrize("edit, words", [
    ({"hidden_act": "silu"}, ("hidden_act",)),
    ({"attention_output_gate": True}, ("attention_output_gate",)),
    ({"n_shared_experts": 0}, ("n_shared_experts",)),
    ({"shared_intermediate_size": 1024}, ("shared_intermediate_size",)),
    ({"tie_word_embeddings": True}, ("tie_word_embeddings",)),
])
def test_minimax_m3_refused_where_vllm_and_transformers_differ(edit, words):
    spec = build_spec(dict(M3, **edit))
    assert spec.params_total == 0 and all(w in spec.unsupported_reason for w in words), spec.unsupported_reason


def test_minimax_m3_index_heads_must_equal_kv_heads():
    # MinimaxM3QKVParallelLinearWithIndexer: `total_num_index_heads != total_num_kv_heads` -> ValueError
    cfg = copy.deepcopy(M3)
    cfg["sparse_attention_config"]["sparse_num_index_heads"] = 8
    spec = build_spec(cfg)
    assert spec.params_total == 0 and "K/V heads" in spec.unsupported_reason
