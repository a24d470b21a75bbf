"""DeepSeek-V4 (``deepseek_v4``) without torch: the weights against the recorded meta-device truth and
vLLM's sharding, the refusals, and the serving entry points (the KV layout and the matrix cells are
tests/test_compressed_kv.py).

vLLM sources (families/deepseek_v4.py docstring): deepseek_v4.py @023da1fc, deepseek_v4_attention.py
@0a291a2e, deepseek_compressor.py @0de10a27.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.arch.spec import Component, Shard

ROOT = Path(__file__).resolve().parents[1]
FLASH = json.loads((ROOT / "tests/data/configs_2026/deepseek-ai--DeepSeek-V4-Flash.json").read_text())
TRUTH = json.loads((ROOT / "tests/data/param_counts_2026.json").read_text())["models"]["deepseek-ai/DeepSeek-V4-Flash"]


def test_v4_flash_matches_recorded_meta_truth():
    spec = build_spec(FLASH)
    assert spec.params_total == TRUTH["total_params"] == 284_332_230_231
    assert spec.params_active == TRUTH["active_params_per_token_est"] == 13_799_622_231
    by = spec.params_by_component()
    for comp in ("embedding", "lm_head", "router", "norm", "other", "dense_mlp"):
        assert by[comp] == TRUTH[f"{comp}_params"], comp
    assert by["routed_experts"] == TRUTH["routed_expert_params"]
    assert by["shared_experts"] == TRUTH["shared_expert_params"]
    # the oracle files self_attn of CSA / HCA layers under linear_attention (their layer types are
    # unknown to it); here all of it is attention
    assert by["attention"] == TRUTH["attention_params"] + TRUTH["linear_attention_params"]
    assert by["linear_attention"] == 0


def test_v4_flash_per_layer_counts_by_hand():
    """One layer of each kind, from the shapes in vLLM's modules (H 4096, 64 heads x 512, q_lora 1024,
    8 groups x o_lora 1024, indexer 64 x 128, hc_mult 4)."""
    spec = build_spec(FLASH)

    def attn(i):
        return sum(t.params for t in spec.tensors if t.layer == i and t.component is Component.ATTENTION)

    H, hd, ql = 4096, 512, 1024
    core = H * (ql + hd) + ql + ql * 64 * hd + hd + (64 * hd // 8) * 8 * 1024 + 8 * 1024 * H + 64
    assert attn(0) == core                                               # sliding only
    hca = 2 * H * hd + 128 * hd + hd                                     # coff 1
    assert attn(3) == core + hca
    csa = 2 * H * 2 * hd + 4 * 2 * hd + hd                               # coff 2
    indexer = ql * 64 * 128 + H * 64 + 2 * H * 256 + 4 * 256 + 128
    assert attn(2) == core + csa + indexer
    hc = sum(t.params for t in spec.tensors if t.layer == 5 and t.component is Component.OTHER)
    assert hc == 2 * (24 * 4 * H + 24 + 3)


def test_v4_sharding_follows_vllm():
    t = {x.name.removesuffix(".weight"): x for x in build_spec(FLASH).tensors}
    a = "model.layers.2.attn"
    assert t[f"{a}.fused_wqa_wkv[wq_a]"].shard is Shard.REPLICATED and t[f"{a}.fused_wqa_wkv[wq_a]"].quantizable
    assert t[f"{a}.wq_b"].shard is Shard.COLUMN
    assert t[f"{a}.wo_a"].shard is Shard.COLUMN and t[f"{a}.wo_a"].shape == (8 * 1024, 64 * 512 // 8)
    assert t[f"{a}.wo_b"].shard is Shard.ROW
    comp = t[f"{a}.mla_attn.compressor.fused_wkv_wgate[wkv]"]
    assert comp.shard is Shard.REPLICATED and not comp.quantizable and comp.shape == (1024, 4096)
    assert t[f"{a}.indexer.wq_b"].shard is Shard.REPLICATED and t[f"{a}.indexer.wq_b"].quantizable
    assert not t[f"{a}.indexer.weights_proj"].quantizable
    assert t[f"{a}.indexer.k_norm"].allocated_only and t[f"{a}.indexer.k_norm"].params == 0
    assert "model.layers.3.attn.indexer.wq_b" not in t                     # HCA: no indexer
    assert "model.layers.0.attn.mla_attn.compressor.ape" not in t                # sliding: no compressor
    assert t["model.layers.0.ffn.experts.gate_up_proj"].shard is Shard.EXPERT
    assert t["model.layers.0.ffn.shared_experts.gate_up_proj[gate]"].shape == (2048, 4096)
    assert t["model.layers.0.hc_attn_fn"].component is Component.OTHER
    assert "lm_head" in t


def test_servable_with_the_kv_geometry_carried():
    """No refusal any more: the per-layer cache geometry feeds estimate/compressed.py (tests/test_compressed_kv.py
    pins its bytes and the matrix cells), and the fp8 checkpoint's routed experts are costed MXFP4 as vLLM's
    DeepseekV4FP8Config loads them (expert_dtype missing = "fp4", deepseek_v4.py @023da1fc)."""
    spec = build_spec(FLASH)
    assert spec.unsupported_reason is None
    assert len(spec.layers_kv) == 43
    assert [l.compressed.ratio for l in spec.layers_kv] == FLASH["compress_ratios"][:43]
    assert {l.index_token_bytes for l in spec.layers_kv if l.compressed.ratio == 4} == {132}
    assert spec.quantization_config["expert_dtype"] == "fp4"
    assert build_spec(dict(FLASH, expert_dtype="fp8")).quantization_config["expert_dtype"] == "fp8"


def test_estimate_cli_reports_the_exact_weights_and_kv_figures_with_fp8_kv():
    import contextlib
    import io

    from reportgen.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["estimate", str(ROOT / "tests/data/configs_2026/deepseek-ai--DeepSeek-V4-Flash.json"), "--json",
              "--offline", "--gpu", "H200", "--tp", "8", "--kv-cache-dtype", "fp8"])
    d = json.loads(out.getvalue())
    assert d["status"] in ("fits", "tight") and d["kv_cache_tokens"] > 0
    assert d["params_total"] == TRUTH["total_params"]
    # the compressed caches' page bytes per token at block 256: 21 x (37,440 + 8,640) / 256 + 20 x 1,728 / 256
    assert d["kv_bytes_per_token"] == 21 * 180 + 20 * 6.75 == 3_915 and d["block_size"] == 256


def test_estimate_one_with_auto_kv_is_vllms_assert():
    from reportgen.catalog import load_catalog
    from reportgen.matrix import estimate_one

    row = estimate_one(build_spec(FLASH), load_catalog().get("H200"), model="deepseek-ai/DeepSeek-V4-Flash",
                       tp=8, max_model_len=1_048_576)
    assert row["status"] == "invalid_layout" and "DeepseekV4 only supports fp8 kv-cache format" in row["reason"]
    assert row.get("kv_cache_tokens") in (None, 0)


@pytest.mark.parametrize("change, words", [
    ({"compress_rates": {"compressed_sparse_attention": 8, "heavily_compressed_attention": 128}}, "ratio 4 only"),
    ({"n_shared_experts": 2}, "n_shared_experts"),
    ({"tie_word_embeddings": True}, "ParallelLMHead"),
    ({"mlp_bias": True}, "mlp_bias"),
    ({"layer_types": [{0: "sliding_attention", 4: "compressed_sparse_attention",
                       128: "heavily_compressed_attention"}[r] for r in FLASH["compress_ratios"][:43]],
      "compress_ratios": [0, 4] + FLASH["compress_ratios"][2:]}, "disagree"),
])
def test_configs_vllm_and_transformers_build_differently_are_refused(change, words):
    spec = build_spec(dict(FLASH, **change))
    assert spec.unsupported_reason and words in spec.unsupported_reason
    assert spec.params_total == 0


def test_o_groups_must_divide_the_heads():
    from reportgen.arch.errors import ConfigError

    with pytest.raises(ConfigError, match="o_groups"):
        build_spec(dict(FLASH, o_groups=7))


JUNK = (None, 0, -1, 1.5, True, "x", [], {}, [1, 2], 10**12)
FUZZ_FIELDS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "head_dim", "qk_rope_head_dim",
               "q_lora_rank", "o_groups", "o_lora_rank", "hc_mult", "index_n_heads", "index_head_dim", "index_topk",
               "sliding_window", "n_routed_experts", "num_experts_per_tok", "moe_intermediate_size", "vocab_size",
               "num_hash_layers", "compress_ratios", "compress_rates", "layer_types", "n_shared_experts",
               "tie_word_embeddings", "hidden_act", "max_position_embeddings")


@pytest.mark.parametrize("field", FUZZ_FIELDS)
@pytest.mark.parametrize("value", JUNK, ids=repr)
def test_fuzzed_fields_give_a_spec_or_a_named_error(field, value):
    """A broken field is a ConfigError naming a field, or a spec (refused or with exact weights) -- nothing else."""
    from reportgen.arch.errors import ConfigError

    try:
        spec = build_spec(dict(FLASH, **{field: value}))
    except ConfigError as e:
        assert e.field
        return
    assert spec.unsupported_reason or (spec.params_total > 0 and len(spec.layers_kv) == spec.num_layers)


def test_non_kv_memory_vllm_allocates_with_the_model():
    """What vLLM allocates beside the checkpoint tensors (D01 in docs/accuracy.md, +13.6 % KV before they were
    priced, +2.6 % after):

    * rotary caches -- ``DeepseekV4Attention`` (deepseek_v4.py @023da1fc) calls ``get_rope(head_dim,
      rope_parameters={rope_type deepseek_yarn, rope_theta = compress_rope_theta on ratio > 1 layers else
      rope_theta, is_deepseek_v4, rope_dim = qk_rope_head_dim})``: two memoised modules (thetas 10,000 and
      160,000), each ``original_max_position_embeddings x factor`` = 65,536 x 16 rows x 64, float32;
    * ``topk_indices_buffer = torch.empty(max_num_batched_tokens, index_topk, dtype=int32)`` in
      ``DeepseekV4Model.__init__``: 512 x 4 B per batched token, whatever tp;
    * the mHC tensors, ``ape`` and ``attn_sink`` are float32 parameters."""
    from reportgen.estimate.tables import topk_buffer_bytes_per_token
    from reportgen.estimate.weights import rotary_cache_bytes

    spec = build_spec(FLASH)
    assert spec.rope_caches == ((1_048_576, 64, 4),) * 2
    assert rotary_cache_bytes(spec, 2) == 2 * 1_048_576 * 64 * 4 == 512 * 2**20
    assert spec.index_topk_buffer == (1, 512)
    assert topk_buffer_bytes_per_token(spec.index_topk_buffer, 1) == topk_buffer_bytes_per_token(
        spec.index_topk_buffer, 8) == 2_048
    fp32 = {t.name.split(".")[-1] for t in spec.tensors if t.dtype_bytes == 4}
    assert fp32 == {"hc_attn_fn", "hc_attn_base", "hc_attn_scale", "hc_ffn_fn", "hc_ffn_base", "hc_ffn_scale",
                    "hc_head_fn", "hc_head_base", "hc_head_scale", "ape", "attn_sink"}
    # 43 layers x 2 x (24 x 16,384 + 24 + 3) + (4 x 16,384 + 4 + 1) mHC elements, all at 4 bytes
    hc = sum(t.numel for t in spec.tensors if ".hc_" in t.name or t.name.startswith("model.hc_head"))
    assert hc == 43 * 2 * (24 * 16_384 + 24 + 3) + 4 * 16_384 + 5
    # one theta (compress_rope_theta == rope_theta): one module; no rope scaling: max_position rows, model dtype
    assert build_spec(dict(FLASH, compress_rope_theta=10_000)).rope_caches == ((1_048_576, 64, 4),)
    plain = {k: v for k, v in FLASH.items() if k != "rope_scaling"}
    assert build_spec(plain).rope_caches == ((1_048_576, 64, 0),) * 2
