"""KV-cache dtype element sizes (reportgen/estimate/quant/kv.py)."""

import pytest

from reportgen.arch.spec import AttentionKind, LayerKV, ModelSpec
from reportgen.estimate.quant import UnsupportedQuantization, kv_cache_bytes, kv_cache_token_bytes

MLA = ModelSpec(model_type="deepseek_v3", is_mla=True,
                layers_kv=[LayerKV(AttentionKind.MLA, head_size_k=576)] * 61)
GQA = ModelSpec(model_type="llama", layers_kv=[LayerKV(AttentionKind.FULL, 8, 128, 128)] * 32)


@pytest.mark.parametrize("kv,model,want", [
    ("auto", "bfloat16", 2), ("auto", "float32", 4), ("auto", "float16", 2),
    ("bfloat16", "float32", 2), ("fp16", "bfloat16", 2),
    ("fp8", "bfloat16", 1), ("fp8_e4m3", "bfloat16", 1), ("fp8_e5m2", "float16", 1), ("FP8_E4M3", "bf16", 1),
])
def test_element_bytes(kv, model, want):
    assert kv_cache_bytes(kv, model, GQA) == want
    assert kv_cache_token_bytes(kv) is None


def test_fp8_ds_mla_656_per_token_per_layer():
    assert kv_cache_token_bytes("fp8_ds_mla") == 656
    # through LayerKV.bytes_per_token: 61 layers * 656 = 40,016 B/token, at any TP
    b = kv_cache_bytes("fp8_ds_mla", "bfloat16", MLA)
    assert MLA.kv_bytes_per_token(b, tp=8) == 61 * 656
    assert GQA.kv_bytes_per_token(kv_cache_bytes("fp8", "bfloat16"), tp=2) == 32 * 4 * 256


def test_fp8_ds_mla_needs_mla():
    with pytest.raises(UnsupportedQuantization, match="MLA"):
        kv_cache_bytes("fp8_ds_mla", "bfloat16", GQA)


def test_unknown_kv_dtype_lists_allowed():
    with pytest.raises(UnsupportedQuantization, match="'int4'.*allowed: auto.*fp8_e5m2.*fp8_ds_mla"):
        kv_cache_bytes("int4", "bfloat16", GQA)


def test_auto_follows_modelopt_fp8_kv_but_not_compressed_tensors():
    """vLLM >= PR #30785: `auto` on a ModelOpt checkpoint with kv_cache_quant_algo FP8 is an fp8_e4m3 cache;
    a compressed-tensors kv_cache_scheme only brings scales (auto stays the model dtype)."""
    modelopt = ModelSpec(model_type="llama", quantization_config={
        "quant_method": "modelopt", "producer": {"name": "modelopt"},
        "quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8", "exclude_modules": ["lm_head"]}})
    assert kv_cache_bytes("auto", "bfloat16", modelopt) == 1
    assert kv_cache_bytes("bfloat16", "bfloat16", modelopt) == 2
    ct = ModelSpec(model_type="llama", quantization_config={
        "quant_method": "compressed-tensors", "config_groups": {},
        "kv_cache_scheme": {"num_bits": 8, "type": "float", "strategy": "tensor", "dynamic": False}})
    assert kv_cache_bytes("auto", "bfloat16", ct) == 2
    no_kv = ModelSpec(model_type="llama", quantization_config={
        "quant_method": "modelopt", "quantization": {"quant_algo": "NVFP4", "kv_cache_quant_algo": None}})
    assert kv_cache_bytes("auto", "bfloat16", no_kv) == 2


def test_auto_with_nvfp4_kv_checkpoint_is_unsupported():
    spec = ModelSpec(model_type="qwen3", quantization_config={
        "quant_method": "modelopt", "quantization": {"quant_algo": "NVFP4", "kv_cache_quant_algo": "NVFP4"}})
    with pytest.raises(UnsupportedQuantization, match="NVFP4 KV"):
        kv_cache_bytes("auto", "bfloat16", spec)
    assert kv_cache_bytes("fp8", "bfloat16", spec) == 1
