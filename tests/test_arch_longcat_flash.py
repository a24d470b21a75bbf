"""LongCat-Flash (``longcat_flash``): tensors, float32 router, zero experts, two MLA latents per layer, refusals.

vLLM source read: vllm/model_executor/models/longcat_flash.py @055e47c2 --
``FlashDecoderLayer.__init__``: ``self.self_attn = nn.ModuleList([DeepseekV2MLAAttention(...) for i in range(2)])``
(each an MLAAttention layer with its own ``MLAAttentionSpec(head_size=kv_lora_rank + qk_rope_head_dim)``, not split
by TP), ``self.mlps`` two ``FlashMLP(intermediate_size=config.intermediate_size)``, ``self.mlp = LongcatMoe(num_experts=
config.n_routed_experts, intermediate_size=config.moe_intermediate_size)``; ``LongcatRouter``: ``ReplicatedLinear(
hidden, n_routed_experts + zero_expert_num, bias=config.router_bias, params_dtype=router_params_dtype)`` and
``e_score_correction_bias = nn.Parameter(torch.zeros((self.n_routed_experts), dtype=router_params_dtype))`` with
``router_params_dtype = torch.float32`` when ``config.router_dtype == "float32"`` (FlashConfig default).

The geometry is LongCat-Flash-Chat's as published (meituan-longcat/LongCat-Flash-Chat, written from memory; equal
to transformers 5.24's LongcatFlashConfig defaults); the meta-device check is tests/test_oracle_longcat_flash.py.
"""

from __future__ import annotations

from importlib import metadata

import pytest
from packaging.version import Version

from reportgen.arch import build_spec
from reportgen.arch.spec import AttentionKind, Component, Shard
from reportgen.estimate.kvcache import kv_bytes_per_token, kv_groups
from reportgen.estimate.quant import Scheme
from test_arch_mistral4 import mla_params, tensor

FLASH = {
    "architectures": ["LongcatFlashForCausalLM"], "model_type": "longcat_flash", "vocab_size": 131072,
    "hidden_size": 6144, "ffn_hidden_size": 12288, "expert_ffn_hidden_size": 2048, "num_layers": 28,
    "num_attention_heads": 64, "kv_lora_rank": 512, "q_lora_rank": 1536, "qk_rope_head_dim": 64,
    "qk_nope_head_dim": 128, "v_head_dim": 128, "n_routed_experts": 512, "zero_expert_num": 256,
    "zero_expert_type": "identity", "moe_topk": 12, "routed_scaling_factor": 6.0, "max_position_embeddings": 131072,
    "rope_theta": 10000000.0, "mla_scale_q_lora": True, "mla_scale_kv_lora": True, "router_bias": False,
    "attention_bias": False, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
}


def flash(**over) -> dict:
    return dict(FLASH, **over)


def hand_count(c: dict) -> int:
    """What vLLM allocates, written out: 2 x (2 norms + MLA + MLP) per layer, router, routed experts."""
    h, v = c["hidden_size"], c["vocab_size"]
    e, z, mi = c["n_routed_experts"], c["zero_expert_num"], c["expert_ffn_hidden_size"]
    sub = 2 * h + mla_params(c) + 3 * h * c["ffn_hidden_size"]
    router = (e + z) * h + ((e + z) if c["router_bias"] else 0)
    layer = 2 * sub + router + e * 3 * h * mi
    return 2 * v * h + h + c["num_layers"] * layer


def test_flash_total_is_what_vllm_allocates():
    spec = build_spec(FLASH)
    assert spec.unsupported_reason is None and spec.family == "longcat_flash" and spec.is_mla
    assert spec.params_total == hand_count(FLASH) == 560_664_958_976
    # transformers < 5.25's extra gate_up rows for the 256 zero experts (no checkpoint has them); none from 5.25
    old_transformers = Version(metadata.version("transformers")) < Version("5.25.0")
    assert spec.unloaded_params == (28 * 256 * 2 * 2048 * 6144 if old_transformers else 0)
    assert any("zero-computation experts" in n for n in spec.notes) is old_transformers
    assert spec.num_layers == 28 and spec.experts_per_token == 12 and spec.num_experts == 512


def test_flash_two_latents_per_decoder_layer():
    spec = build_spec(FLASH)
    assert len(spec.layers_kv) == 28
    for layer in spec.layers_kv:
        assert layer.kind is AttentionKind.MLA and layer.num_kv_heads == 2
        assert (layer.head_size_k, layer.head_size_v) == (512 + 64, 0)
    assert kv_bytes_per_token(spec, "auto", 2, 1) == 28 * 2 * 576 * 2 == 64_512
    assert kv_bytes_per_token(spec, "fp8", 2, 1) == 28 * 2 * 576
    assert kv_bytes_per_token(spec, "auto", 2, 8) == 64_512          # MLA latents are not split by TP
    assert kv_bytes_per_token(spec, "fp8_ds_mla", 2, 1) == 28 * 2 * 656


def test_flash_pipeline_stages_keep_whole_decoder_layers():
    spec = build_spec(FLASH)
    g = kv_groups(spec, 1, 2, "auto", 2)
    # 14 decoder layers a stage, each 2 latents x 576 x 2 bytes x 16 tokens a block
    assert g.stage_bytes_per_block == (14 * 2 * 576 * 2 * 16,) * 2
    assert g.stage_token_bytes == (14 * 2 * 576 * 2,) * 2


def test_flash_router_is_float32_and_correction_bias_allocated_only():
    spec = build_spec(FLASH)
    cls = tensor(spec, "model.layers.0.mlp.router.classifier.weight")
    assert (cls.shape, cls.shard, cls.component, cls.dtype_bytes) == ((512 + 256, 6144), Shard.REPLICATED,
                                                                       Component.ROUTER, 4)
    bias = tensor(spec, "model.layers.0.mlp.router.e_score_correction_bias")
    assert bias.allocated_only and bias.params == 0 and bias.dtype_bytes == 4 and bias.shape == (768,)
    bf16 = Scheme("bf16", model_dtype_bytes=2)
    assert bf16.tensor_bytes(cls) == 768 * 6144 * 4
    assert bf16.tensor_bytes(tensor(spec, "model.layers.0.mlps.1.down_proj.weight")) == 6144 * 12288 * 2
    # router_dtype other than float32: vLLM builds the router at the model dtype
    other = build_spec(flash(router_dtype="bfloat16"))
    assert tensor(other, "model.layers.0.mlp.router.classifier.weight").dtype_bytes == 0


def test_flash_mla_and_experts_shards():
    spec = build_spec(FLASH)
    a = "model.layers.5.self_attn.1."
    assert tensor(spec, a + "q_a_proj.weight").shard is Shard.REPLICATED
    assert tensor(spec, a + "kv_a_proj_with_mqa.weight").shape == (576, 6144)
    assert tensor(spec, a + "kv_b_proj.weight").shard is Shard.COLUMN
    assert tensor(spec, a + "o_proj.weight").shard is Shard.ROW
    up = tensor(spec, "model.layers.5.mlp.experts.gate_up_proj.weight")
    assert (up.shape, up.count, up.shard) == ((2 * 2048, 6144), 512, Shard.EXPERT)      # routed experts only
    assert tensor(spec, "model.layers.5.mlps.0.gate_proj.weight").shape == (12288, 6144)
    assert spec.rope_caches == ((131_072, 64, 0),)


def test_router_bias_counts():
    spec = build_spec(flash(router_bias=True))
    assert spec.params_total == hand_count(flash(router_bias=True)) == hand_count(FLASH) + 28 * 768


@pytest.mark.parametrize("change, drop, words", [
    ({"attention_bias": True}, None, "no biases"),
    ({"tie_word_embeddings": True}, None, "ParallelLMHead"),
    ({}, "zero_expert_type", "asserts"),
])
def test_configs_vllm_builds_differently_are_refused(change, drop, words):
    cfg = flash(**change)
    if drop:
        cfg.pop(drop)
    reason = build_spec(cfg).unsupported_reason
    assert reason and words in reason
