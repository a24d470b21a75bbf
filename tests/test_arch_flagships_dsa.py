"""MLA / DSA flagships: per-layer KV kinds, KV bytes per token (bf16, fp8), indexer cache, MTP, refusals,
and the KV dtype vLLM actually allocates (``kv_cache_dtype_used``).

Hand-computed numbers follow vLLM's cache specs:

* MLA latent: ``MLAAttentionSpec(head_size=kv_lora_rank + qk_rope_head_dim)``, one per token and
  layer, not split by TP (vllm model_executor/layers/attention/mla_attention.py; reportgen
  already pins it for DeepSeek-V3).
* fp8 on a sparse (DSA) layer: vllm/v1/attention/backends/mla/flashmla_sparse.py @008a0c31:
  "each token's KV cache is 656 Bytes" (512 fp8 NoPE + 4 fp32 scales + 64 bf16 RoPE) and
  ``supported_kv_cache_dtypes = [..., "fp8_ds_mla", "fp8",  # alias for fp8_ds_mla ...]``.
* Indexer key cache: vllm/model_executor/models/deepseek_v2.py @002d6073, ``Indexer.__init__``:
  ``self.k_cache = DeepseekV32IndexerCache(head_dim=self.head_dim + self.head_dim //
  self.quant_block_size * 4, dtype=torch.uint8, ...)`` with ``self.quant_block_size = 128``, and
  ``DeepseekV32IndexerCache.get_kv_cache_spec`` -> ``MLAAttentionSpec(num_kv_heads=1,
  head_size=self.head_dim, dtype=self.dtype)``: 128 + 4 = 132 bytes per token for GLM-5.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.arch.spec import AttentionKind, Component
from reportgen.estimate.kvcache import kv_bytes_per_token, kv_element_bytes, kv_groups
from reportgen.estimate.quant import kv_cache_dtype_used

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "tests" / "data" / "configs_2026"


def _cfg(name: str) -> dict:
    return json.loads((CONFIGS / f"{name}.json").read_text())


GLM5 = _cfg("zai-org--GLM-5")
FLASH = _cfg("zai-org--GLM-4.7-Flash")


def _v32(**over) -> dict:
    """DeepSeek-V3.2-Exp's architecture fields (as published; no V3.2 file in configs_2026)."""
    cfg = {"model_type": "deepseek_v32", "architectures": ["DeepseekV32ForCausalLM"], "hidden_size": 7168,
           "intermediate_size": 18432, "moe_intermediate_size": 2048, "num_hidden_layers": 61,
           "num_attention_heads": 128, "num_key_value_heads": 128, "n_shared_experts": 1, "n_routed_experts": 256,
           "num_experts_per_tok": 8, "kv_lora_rank": 512, "q_lora_rank": 1536, "qk_rope_head_dim": 64,
           "qk_nope_head_dim": 128, "v_head_dim": 128, "first_k_dense_replace": 3, "moe_layer_freq": 1,
           "vocab_size": 129280, "max_position_embeddings": 163840, "index_head_dim": 128, "index_n_heads": 64,
           "index_topk": 2048, "num_nextn_predict_layers": 1, "tie_word_embeddings": False,
           "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
                            "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
           "torch_dtype": "bfloat16"}
    cfg.update(over)
    return cfg


# ---- per-layer kinds and KV bytes ------------------------------------------------------------------

def test_glm5_every_layer_is_sparse_mla_with_an_indexer_cache():
    spec = build_spec(GLM5)
    assert spec.unsupported_reason is None
    assert len(spec.layers_kv) == 78
    for layer in spec.layers_kv:
        assert layer.kind is AttentionKind.MLA and layer.sparse
        assert layer.head_size_k == 512 + 64 and layer.head_size_v == 0
        assert layer.index_token_bytes == 128 + 128 // 128 * 4 == 132


def test_glm5_kv_bytes_per_token_bf16_fp8_and_fp8_ds_mla():
    spec = build_spec(GLM5)
    # bf16: 78 x (576 x 2 latent + 132 indexer) -- the meta oracle's 89,856 is the latent alone
    assert kv_bytes_per_token(spec, "auto") == 78 * (576 * 2 + 132) == 100152
    assert kv_bytes_per_token(spec, "bfloat16") == 100152
    # fp8 = fp8_ds_mla on the sparse backend: 656 B latent; the indexer cache keeps its 132 B
    assert kv_bytes_per_token(spec, "fp8") == 78 * (656 + 132) == 61464
    assert kv_bytes_per_token(spec, "fp8_ds_mla") == 61464
    assert kv_bytes_per_token(spec, "fp8_e4m3") == 61464


@pytest.mark.parametrize("kd", ["fp8_e5m2", "fp8_inc", "float16"])
def test_kv_dtypes_the_sparse_backend_lacks_are_refused(kd):
    from reportgen.estimate.kvcache import UnsupportedKvDtype

    with pytest.raises(UnsupportedKvDtype, match="FlashMLASparse"):
        kv_bytes_per_token(build_spec(GLM5), kd)


def test_glm5_kv_not_split_by_tp_and_one_block_group():
    spec = build_spec(GLM5)
    eb = kv_element_bytes("auto", 2, spec)
    g = kv_groups(spec, 8, 1, "auto", eb)
    assert g.n_groups == 1 and g.n_full == 1 and g.n_slide == 0
    assert g.stage_bytes_per_block == (16 * 100152.0,)
    g2 = kv_groups(spec, 8, 2, "fp8", kv_element_bytes("fp8", 2, spec))
    assert g2.stage_token_bytes == (39 * 788.0, 39 * 788.0)


def test_index_cache_skip_layers_hold_no_indexer_cache():
    # GLM-5.1-style IndexCache: index_topk_freq 4, offset 2 -> layers 0, 1 full, then one full layer in 4
    cfg = dict(GLM5, index_topk_freq=4, index_skip_topk_offset=2)
    spec = build_spec(cfg)
    assert spec.unsupported_reason is None
    full = [i for i, l in enumerate(spec.layers_kv) if l.index_token_bytes]
    assert full == [i for i in range(78) if max(i - 1, 0) % 4 == 0]
    assert all(l.sparse for l in spec.layers_kv)
    assert kv_bytes_per_token(spec, "auto") == 78 * 1152 + len(full) * 132
    base = build_spec(GLM5)
    # each skipped layer drops wq_b (2048 x 32*128), wk (6144 x 128), weights_proj (6144 x 32), k_norm (2 x 128)
    per_indexer = 2048 * 32 * 128 + 6144 * 128 + 6144 * 32 + 2 * 128
    assert base.params_total - spec.params_total == (78 - len(full)) * per_indexer


def test_glm_4_7_flash_is_plain_mla():
    spec = build_spec(FLASH)
    assert spec.unsupported_reason is None and spec.family == "glm4_moe_lite"
    assert {(l.kind, l.sparse, l.index_token_bytes) for l in spec.layers_kv} == {(AttentionKind.MLA, False, 0)}
    assert kv_bytes_per_token(spec, "auto") == 47 * 576 * 2 == 54144     # = the meta oracle's figure
    assert kv_bytes_per_token(spec, "fp8") == 47 * 576 == 27072           # plain MLA: 1 B a latent element
    assert kv_cache_dtype_used("fp8", "bfloat16", spec) == "fp8"
    # layer 0 dense (first_k_dense_replace 1), the other 46 MoE
    dense = {t.layer for t in spec.tensors if t.component is Component.DENSE_MLP}
    assert dense == {0}


def test_deepseek_v32_indexer_weights_mtp_and_two_rope_caches():
    spec = build_spec(_v32())
    assert spec.unsupported_reason is None and spec.family == "deepseek_v32"
    idx = [t for t in spec.tensors if ".indexer." in t.name and t.layer == 5]
    shapes = {t.name.rsplit(".", 2)[-2] + "." + t.name.rsplit(".", 1)[-1]: t.shape for t in idx}
    assert shapes == {"wq_b.weight": (64 * 128, 1536), "wk.weight": (128, 7168),
                      "weights_proj.weight": (64, 7168), "k_norm.weight": (128,), "k_norm.bias": (128,)}
    assert {t.shard.value for t in idx} == {"replicated"}
    # vLLM fuses wk + weights_proj with quant_config=None: never quantized
    assert [t.quantizable for t in idx if "wk." in t.name or "weights_proj" in t.name] == [False, False]
    assert kv_bytes_per_token(spec, "auto") == 61 * (576 * 2 + 132)
    assert kv_bytes_per_token(spec, "fp8") == 61 * (656 + 132)
    # the indexer's get_rope is NeoX-style (no indexer_rope_interleave): a second cos/sin cache
    assert spec.rope_caches == ((4096 * 40, 64, 0), (4096 * 40, 64, 0))
    assert build_spec(_v32(indexer_rope_interleave=True)).rope_caches == ((4096 * 40, 64, 0),)
    # MTP: one MoE decoder layer with its indexer + embedding, head, 3 norms, eh_proj -- not loaded
    layer = sum(t.numel for t in spec.tensors if t.layer == 60)
    assert spec.mtp_params == layer + 2 * 129280 * 7168 + 3 * 7168 + 2 * 7168 * 7168


def test_glm5_mtp_is_reported_not_loaded():
    spec = build_spec(GLM5)
    layer_77 = sum(t.numel for t in spec.tensors if t.layer == 77)   # a MoE layer with an indexer, like MTP
    assert spec.mtp_params == layer_77 + 2 * 154880 * 6144 + 3 * 6144 + 2 * 6144 * 6144 == 11856085760
    assert not any(t.layer == 78 for t in spec.tensors)


# ---- refusals ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("cfg, words", [
    (_v32(index_topk_freq=2), "disagree on which layers have a lightning indexer"),
    (_v32(index_head_dim=64), "not a multiple of vLLM's 128"),
    (_v32(attention_bias=True), "no biases"),
    (dict(FLASH, first_k_dense_replace=2), "place the dense layers differently"),
    (dict(GLM5, mlp_layer_types=["sparse"] * 78), "place the dense layers differently"),
])
def test_configs_vllm_and_transformers_disagree_on_are_refused(cfg, words):
    spec = build_spec(cfg)
    assert spec.unsupported_reason and words in spec.unsupported_reason


def test_deepseek_v32_without_q_lora_is_a_config_error():
    from reportgen.arch import ConfigError

    with pytest.raises(ConfigError):
        build_spec(_v32(q_lora_rank=None))


def test_dsa_fields_still_refused_in_families_without_an_indexer():
    spec = build_spec(dict(FLASH, index_topk=2048))
    assert spec.unsupported_reason and "DSA" in spec.unsupported_reason


# ---- the KV dtype actually used ------------------------------------------------------------------

def test_kv_cache_dtype_used_resolves_auto():
    plain = build_spec(FLASH)
    assert kv_cache_dtype_used("auto", "bfloat16", plain) == "bfloat16"
    assert kv_cache_dtype_used("bf16", "bfloat16", plain) == "bfloat16"
    modelopt = dict(FLASH)
    spec = build_spec(modelopt, extra={"hf_quant_config": {"quantization": {"quant_algo": "FP8",
                                                                            "kv_cache_quant_algo": "FP8"}}})
    assert kv_cache_dtype_used("auto", "bfloat16", spec) == "fp8_e4m3"
    glm5 = build_spec(GLM5, extra={"hf_quant_config": {"quantization": {"quant_algo": "FP8",
                                                                        "kv_cache_quant_algo": "FP8"}}})
    assert kv_cache_dtype_used("auto", "bfloat16", glm5) == "fp8_ds_mla"
    assert kv_bytes_per_token(glm5, "auto") == 61464
    assert kv_cache_dtype_used("fp8", "bfloat16", build_spec(GLM5)) == "fp8_ds_mla"


def _estimate(*args: str) -> dict:
    r = subprocess.run([sys.executable, "-m", "reportgen", "estimate", *args, "--json", "--offline"],
                       capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
                                                                      "PATH": "/usr/bin:/bin"})
    return json.loads(r.stdout)


def test_estimate_json_states_the_kv_dtype_a_modelopt_checkpoint_really_uses():
    # bundled nvidia/Llama-3.1-70B-Instruct-FP8: hf_quant_config.json says kv_cache_quant_algo FP8
    out = _estimate("nvidia/Llama-3.1-70B-Instruct-FP8", "--tp", "4")
    assert out["kv_cache_dtype"] == "auto"
    assert out["kv_cache_dtype_used"] == "fp8_e4m3"
    assert out["kv_bytes_per_token"] == 80 * 8 * 128 * 2 * 1       # 1-byte K and V
    plain = _estimate("meta-llama/Llama-3.1-8B-Instruct")
    assert plain["kv_cache_dtype_used"] == "bfloat16"


def test_matrix_rows_carry_kv_cache_dtype_used():
    from reportgen.catalog import load_catalog
    from reportgen.matrix import estimate_one

    gpu = load_catalog().get("H200")
    spec = build_spec(GLM5)
    row = estimate_one(spec, gpu, tp=8, kv_cache_dtype="fp8", max_model_len=4096)
    assert row["kv_cache_dtype"] == "fp8" and row["kv_cache_dtype_used"] == "fp8_ds_mla"
    row = estimate_one(spec, gpu, tp=8, max_model_len=4096)
    assert row["kv_cache_dtype_used"] == "bfloat16"


# ---- Kimi-K2.5 ---------------------------------------------------------------------------------------

KIMI = _cfg("moonshotai--Kimi-K2.5")


def test_kimi_k25_text_stack_is_deepseek_v3_and_tower_is_unquantized_tp_sharded():
    spec = build_spec(KIMI)
    assert spec.unsupported_reason is None and spec.family == "kimi_k25" and spec.multimodal
    assert spec.is_mla and len(spec.layers_kv) == 61
    assert kv_bytes_per_token(spec, "auto") == 61 * 576 * 2 == 70272          # = the meta oracle's figure
    vision = [t for t in spec.tensors if t.component is Component.VISION]
    # vLLM builds the tower and projector without quant_config: the int4 scheme must not touch them
    assert not any(t.quantizable for t in vision)
    shards = {t.name.rsplit(".", 2)[-2]: t.shard.value for t in vision if t.name.endswith(".weight") and ".layers.0." in t.name}
    assert shards == {"norm1": "replicated", "q_proj": "column", "k_proj": "column", "v_proj": "column",
                      "proj": "row", "norm2": "replicated", "fc1": "column", "fc2": "row"}
    # projector: LayerNorm(1152), 4608 -> 4608, 4608 -> 7168 (text hidden), biases
    proj = {t.name: t.shape for t in vision if "mm_projector" in t.name}
    assert proj["model.mm_projector.in_proj.weight"] == (4608, 4608)
    assert proj["model.mm_projector.out_proj.weight"] == (7168, 4608)


@pytest.mark.parametrize("change, words", [
    ({"vt_hidden_size": 1280}, "vLLM reads vt_hidden_size=1280"),
    ({"mm_projector_type": "patchmergerv2"}, "patchmerger"),
    ({"norm_type": "rmsnorm"}, "layernorm"),
    ({"mm_hidden_size": 4096}, "mm_hidden_size 4096"),
])
def test_kimi_k25_towers_transformers_cannot_build_are_refused(change, words):
    cfg = json.loads(json.dumps(KIMI))
    cfg["vision_config"].update(change)
    spec = build_spec(cfg)
    assert spec.unsupported_reason and words in spec.unsupported_reason


def test_kimi_k25_tied_language_model_is_refused():
    cfg = json.loads(json.dumps(KIMI))
    cfg["text_config"]["tie_word_embeddings"] = True
    spec = build_spec(cfg)
    assert spec.unsupported_reason and "own lm_head" in spec.unsupported_reason


# ---- refused flagships: the reason names what is missing ------------------------------------------

@pytest.mark.parametrize("name, words", [
    # MiMo-V2-Flash is modelled now (tests/test_arch_mimo_v2_flash.py); DeepSeek-V4 is served
    # (tests/test_arch_dsv4.py); Step-3.7-Flash is modelled in its nested form (tests/test_arch_step3p7.py), the
    # shipped flat config is refused; MiniMax-M3 is weights-only (tests/test_oracle_minimax_m3.py)
    ("stepfun-ai--Step-3.7-Flash", ("without text_config", "Step3p7ForConditionalGeneration")),
])
def test_flagships_not_modelled_are_refused_with_the_missing_pieces(name, words):
    spec = build_spec(_cfg(name))
    assert spec.unsupported_reason and all(w in spec.unsupported_reason for w in words)
    assert spec.params_total == 0 and not spec.layers_kv


def test_report_model_section_states_the_kv_dtype_used():
    import polars as pl

    from reportgen import results as R
    from reportgen.catalog import load_catalog
    from reportgen.matrix import estimate_one
    from reportgen.outputs import report_data as RD

    gpu = load_catalog().get("H200")
    spec = build_spec(GLM5)
    rows = [estimate_one(spec, gpu, model="zai-org/GLM-5", tp=8, kv_cache_dtype=kd, max_model_len=4096)
            for kd in ("auto", "fp8")]
    res = R.conform(pl.DataFrame([{c: r.get(c) for c in R.COLUMN_NAMES} for r in rows], schema=R.SCHEMA))
    report = RD.build_report(res, None, None)
    section = next(s for s in report["models"] if s["id"] == "zai-org/GLM-5")
    assert section["kv_dtypes_used"] == ["auto → bfloat16", "fp8 → fp8_ds_mla"]


# ---- shipped configs against the recorded meta-device truths (no torch needed) ---------------------

TRUTH = json.loads((ROOT / "tests" / "data" / "param_counts_2026.json").read_text())["models"]
SHIPPED = {"zai-org/GLM-4.7-Flash": "zai-org--GLM-4.7-Flash", "zai-org/GLM-5": "zai-org--GLM-5"}


def _shipped(hub_id: str) -> dict:
    return _cfg(SHIPPED[hub_id])


@pytest.mark.parametrize("hub_id", sorted(SHIPPED))
def test_shipped_config_matches_recorded_meta_truth(hub_id):
    spec = build_spec(_shipped(hub_id))
    assert spec.unsupported_reason is None, spec.unsupported_reason
    truth = TRUTH[hub_id]
    assert spec.params_total == truth["total_params"]
    by = spec.params_by_component()
    for comp in ("attention", "router", "norm", "dense_mlp", "embedding", "lm_head"):
        assert by[comp] == truth[f"{comp}_params"], comp
    assert by["routed_experts"] + by["shared_experts"] == truth["routed_expert_params"] + truth["shared_expert_params"]


def test_kimi_k25_shipped_config_matches_recorded_meta_truth():
    spec = build_spec(KIMI)
    assert spec.unsupported_reason is None, spec.unsupported_reason
    truth = TRUTH["moonshotai/Kimi-K2.5"]
    assert spec.params_total == truth["total_params"] == 1026879353328
    assert spec.params_text == truth["text_model"]["total_params"]
    assert spec.params_by_component()["vision"] == truth["vision_params"] == 471143920


