"""Byte-exact pins for every weight storage scheme, on hand-built tensors.

Each expected number is worked out by hand in the comment next to it from the
layout vLLM allocates (see reportgen/estimate/quant/layouts.py), so a change
to a formula shows up as a changed integer, not a drifting ratio.
"""

import json
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from reportgen.arch.spec import Component, Shard, Tensor
from reportgen.estimate.quant import MXFP4_MOE_PADDING, UnsupportedQuantization, method_of, whatif_scheme
from reportgen.estimate.quant.layouts import mxfp4_expert_rank_parts
from reportgen.estimate.quant.checkpoint import checkpoint_scheme
from reportgen.arch.spec import ModelSpec


BUNDLED = Path(__file__).resolve().parents[1] / "reportgen" / "sources" / "bundled"


def lin(name="layers.0.self_attn.q_proj.weight", out=4096, in_=4096, count=1,
        component=Component.ATTENTION, shard=Shard.COLUMN):
    return Tensor(name, (out, in_), shard, component, layer=0, count=count, quantizable=True)


def spec_with(qc, dtype="bfloat16", tensors=()):
    return ModelSpec(model_type="test", dtype=dtype, quantization_config=qc, tensors=list(tensors))


EMBED = Tensor("embed_tokens.weight", (1000, 4096), Shard.VOCAB, Component.EMBEDDING)
LM_HEAD = Tensor("lm_head.weight", (1000, 4096), Shard.VOCAB, Component.LM_HEAD)
NORM = Tensor("layers.0.input_layernorm.weight", (4096,), Shard.REPLICATED, Component.NORM, layer=0)
ROUTER = Tensor("layers.0.mlp.gate.weight", (64, 4096), Shard.REPLICATED, Component.ROUTER, layer=0)
BIAS = Tensor("layers.0.self_attn.q_proj.bias", (4096,), Shard.COLUMN, Component.ATTENTION, layer=0)


# ---------------------------------------------------------------- GPTQ / AWQ
GPTQ_4B_G128 = {"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": False, "sym": True,
                "lm_head": False}


def test_gptq_4bit_g128_4096_square():
    # qweight int32 (4096*4/32 = 512, 4096) = 8,388,608 B
    # scales fp16 (4096/128 = 32 groups, 4096) = 262,144 B
    # qzeros int32 (32, 4096*4/32 = 512) = 65,536 B
    s = checkpoint_scheme(spec_with(GPTQ_4B_G128, "float16"))
    assert s.name == "gptq-int4-g128"
    assert s.breakdown(lin()) == {"weight": 8_388_608, "scale": 262_144, "zero_point": 65_536}
    assert s.tensor_bytes(lin()) == 8_716_288


def test_gptq_desc_act_adds_g_idx():
    # + g_idx int32 per input column: 4096 * 4 = 16,384 B
    s = checkpoint_scheme(spec_with({**GPTQ_4B_G128, "desc_act": True}, "float16"))
    assert s.name == "gptq-int4-g128-desc_act"
    assert s.tensor_bytes(lin()) == 8_716_288 + 16_384


def test_gptq_8bit_and_per_channel():
    # 8-bit g128: qweight (1024, 4096) int32 = 16,777,216; scales 262,144; qzeros (32, 1024) int32 = 131,072
    s8 = checkpoint_scheme(spec_with({**GPTQ_4B_G128, "bits": 8}, "float16"))
    assert s8.tensor_bytes(lin()) == 16_777_216 + 262_144 + 131_072
    # 4-bit per channel (group_size -1): one group -> scales 4096*2, qzeros 512*4
    sch = checkpoint_scheme(spec_with({**GPTQ_4B_G128, "group_size": -1}, "float16"))
    assert sch.name == "gptq-int4-ch"
    assert sch.tensor_bytes(lin()) == 8_388_608 + 8_192 + 2_048


def test_gptq_lm_head_flag_and_dynamic_exclusion():
    qc = {**GPTQ_4B_G128, "lm_head": True, "dynamic": {r"-:.*layers\.0\.mlp\.down_proj": {}}}
    s = checkpoint_scheme(spec_with(qc, "float16"))
    # lm_head (1000, 4096) 4-bit g128: qweight 512*1000*4 = 2,048,000; scales 32*1000*2 = 64,000;
    # qzeros 32 * ceil(1000*4/32)=125 * 4 = 16,000
    assert s.tensor_bytes(LM_HEAD) == 2_048_000 + 64_000 + 16_000
    down = lin("layers.0.mlp.down_proj.weight", 4096, 11008, component=Component.DENSE_MLP, shard=Shard.ROW)
    assert s.tensor_bytes(down) == 4096 * 11008 * 2          # "-:" pattern keeps it fp16
    assert s.is_quantized(lin("layers.1.mlp.down_proj.weight", 4096, 11008, component=Component.DENSE_MLP))


def test_awq_4bit_g128_qwen3_32b_gate_proj():
    """Qwen3-32B-AWQ gate_proj (25600 x 5120), config from the bundled Qwen--Qwen3-32B-AWQ.json."""
    qc = {"bits": 4, "group_size": 128, "modules_to_not_convert": None, "quant_method": "awq",
          "version": "gemm", "zero_point": True}
    s = checkpoint_scheme(spec_with(qc, "float16"))
    t = lin("layers.0.mlp.gate_proj.weight", 25600, 5120, component=Component.DENSE_MLP)
    # qweight int32 (5120, 25600/8 = 3200) = 65,536,000; scales fp16 (40, 25600) = 2,048,000;
    # qzeros int32 (40, 3200) = 512,000
    assert s.name == "awq-int4-g128"
    assert s.breakdown(t) == {"weight": 65_536_000, "scale": 2_048_000, "zero_point": 512_000}


def test_awq_modules_to_not_convert_substring_style():
    qc = {"bits": 4, "group_size": 128, "quant_method": "awq", "zero_point": True,
          "modules_to_not_convert": ["visual"]}
    s = checkpoint_scheme(spec_with(qc, "float16"))
    vis = lin("visual.blocks.0.attn.qkv.weight", 3840, 1280, component=Component.VISION)
    assert s.tensor_bytes(vis) == 3840 * 1280 * 2
    assert s.is_quantized(lin())


def test_auto_round_gptq_packing_and_extra_config():
    """AutoRound export (config keys as auto-round writes them); extra_config bits 16 keeps a layer bf16."""
    qc = {"quant_method": "auto-round", "bits": 4, "group_size": 128, "sym": True, "data_type": "int",
          "packing_format": "auto_round:auto_gptq",
          "extra_config": {"model.layers.0.mlp.down_proj": {"bits": 16, "data_type": "float"}}}
    s = checkpoint_scheme(spec_with(qc))
    assert s.name == "autoround-int4-g128"
    assert s.tensor_bytes(lin()) == 8_716_288          # same layout as the GPTQ pin above
    down = lin("layers.0.mlp.down_proj.weight", 4096, 11008, component=Component.DENSE_MLP, shard=Shard.ROW)
    assert s.tensor_bytes(down) == 4096 * 11008 * 2


def test_method_of_aliases_and_shapes():
    assert method_of({"quant_method": "awq_marlin"}) == "awq"
    assert method_of({"quant_method": "modelopt_fp4"}) == "modelopt"
    assert method_of({"producer": {"name": "modelopt"}, "quantization": {}}) == "modelopt"
    assert method_of({"config_groups": {}}) == "compressed-tensors"


# ---------------------------------------------------------------- fp8
def test_fp8_block128_non_multiple_shapes_ceil():
    """DeepSeek-V3 style weight_block_size [128, 128]; scales are ceil(out/128) x ceil(in/128) fp32."""
    qc = {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128]}
    s = checkpoint_scheme(spec_with(qc))
    assert s.name == "fp8-block128"
    # kv_a_proj_with_mqa (576, 7168): 4,128,768 B + ceil(576/128)=5 * 56 = 280 scales * 4 = 1,120
    assert s.tensor_bytes(lin("layers.0.self_attn.kv_a_proj_with_mqa.weight", 576, 7168)) == 4_128_768 + 1_120
    # (300, 200): 60,000 B + 3 * 2 = 6 scales * 4 = 24
    assert s.breakdown(lin(out=300, in_=200)) == {"weight": 60_000, "scale": 24}
    # experts: count multiplies; Qwen3-30B-A3B expert gate (768, 2048): 1,572,864 + 6*16*4 = 384 per expert
    ex = lin("layers.0.mlp.experts.gate_proj.weight", 768, 2048, count=128, component=Component.ROUTED_EXPERTS)
    assert s.tensor_bytes(ex) == 128 * (1_572_864 + 384)


def test_fp8_per_tensor_static_and_ignored_layers():
    qc = {"quant_method": "fp8", "activation_scheme": "static", "ignored_layers": ["model.layers.0.self_attn.o_proj"]}
    s = checkpoint_scheme(spec_with(qc))
    assert s.name == "fp8-tensor"
    # 16,777,216 B + weight scale 4 + input scale 4
    assert s.breakdown(lin()) == {"weight": 16_777_216, "scale": 4, "input_scale": 4}
    o = lin("layers.0.self_attn.o_proj.weight", shard=Shard.ROW)
    assert s.tensor_bytes(o) == 4096 * 4096 * 2


def test_fbgemm_fp8_channel():
    s = checkpoint_scheme(spec_with({"quant_method": "fbgemm_fp8", "modules_to_not_convert": ["lm_head"]}))
    assert s.tensor_bytes(lin()) == 16_777_216 + 4096 * 4


# ---------------------------------------------------------------- compressed-tensors
def ct(weights, inputs=None, fmt="float-quantized", targets=("Linear",), ignore=("lm_head",), **extra):
    return {"quant_method": "compressed-tensors", "format": fmt, "ignore": list(ignore),
            "config_groups": {"group_0": {"targets": list(targets), "weights": weights,
                                          "input_activations": inputs}}, **extra}


FP8_DYNAMIC = ct({"num_bits": 8, "type": "float", "strategy": "channel", "symmetric": True, "dynamic": False},
                 {"num_bits": 8, "type": "float", "strategy": "token", "symmetric": True, "dynamic": True})
W8A8_INT8 = ct({"num_bits": 8, "type": "int", "strategy": "channel", "symmetric": True, "dynamic": False},
               {"num_bits": 8, "type": "int", "strategy": "token", "symmetric": True, "dynamic": True},
               fmt="int-quantized")


def test_ct_fp8_dynamic_channel():
    """llm-compressor FP8_DYNAMIC preset (RedHatAI '-FP8-dynamic'): fp8 + fp32 (out, 1) scale."""
    s = checkpoint_scheme(spec_with(FP8_DYNAMIC))
    assert s.name == "fp8-channel"
    assert s.breakdown(lin()) == {"weight": 16_777_216, "scale": 16_384}
    assert s.tensor_bytes(LM_HEAD) == 1000 * 4096 * 2


def test_ct_w8a8_int8_channel():
    """RedHatAI 'quantized.w8a8' preset: int8 + fp32 channel scale (vLLM allocates fp32 even for fp16 models)."""
    s = checkpoint_scheme(spec_with(W8A8_INT8, "float16"))
    assert s.name == "w8a8-int8-channel"
    assert s.tensor_bytes(lin()) == 16_777_216 + 16_384
    # static asymmetric activations: + input scale fp32, input zero point int8, azp_adj int32 per row
    static = ct(W8A8_INT8["config_groups"]["group_0"]["weights"],
                {"num_bits": 8, "type": "int", "strategy": "tensor", "symmetric": False, "dynamic": False},
                fmt="int-quantized")
    assert checkpoint_scheme(spec_with(static)).tensor_bytes(lin()) == 16_777_216 + 16_384 + 4 + 1 + 16_384


def test_ct_w4a16_pack_quantized_group128():
    """RedHatAI w4a16 (config like the bundled RedHatAI--Qwen3.5-9B-quantized.w4a16.json)."""
    w = {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128, "symmetric": True,
         "actorder": "static"}
    s = checkpoint_scheme(spec_with(ct(w, fmt="pack-quantized")))
    assert s.name == "w4a16-g128"
    # weight_packed int32 (4096, 512) = 8,388,608; weight_scale bf16 (4096, 32) = 262,144; weight_shape int64[2] = 16
    assert s.breakdown(lin()) == {"weight": 8_388_608, "scale": 262_144, "weight_shape": 16}


def test_ct_w4a16_asym_actorder_group():
    """Asymmetric + actorder 'group' (built from the compressed-tensors QuantizationArgs fields)."""
    w = {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128, "symmetric": False,
         "actorder": "group"}
    s = checkpoint_scheme(spec_with(ct(w, fmt="pack-quantized")))
    assert s.name == "w4a16-g128-asym-actorder"
    # + weight_zero_point int32 (4096/8 = 512, 32) = 65,536; + weight_g_idx int32 (4096) = 16,384
    assert s.tensor_bytes(lin()) == 8_388_608 + 262_144 + 16 + 65_536 + 16_384


def test_ct_nvfp4():
    """llm-compressor NVFP4 preset: tensor_group strategy, group 16, fp4 activations."""
    w = {"num_bits": 4, "type": "float", "strategy": "tensor_group", "group_size": 16, "symmetric": True}
    a = {"num_bits": 4, "type": "float", "strategy": "tensor_group", "group_size": 16, "dynamic": "local"}
    s = checkpoint_scheme(spec_with(ct(w, a, fmt="nvfp4-pack-quantized")))
    assert s.name == "nvfp4"
    # weight_packed uint8 (4096, 2048) = 8,388,608; weight_scale fp8 (4096, 256) = 1,048,576;
    # weight_global_scale fp32 + input_global_scale fp32 = 8
    assert s.tensor_bytes(lin()) == 8_388_608 + 1_048_576 + 8


def test_ct_ignore_list_regex_and_full_names():
    qc = dict(FP8_DYNAMIC, ignore=["lm_head", "re:.*mlp.gate$", "model.layers.3.self_attn.q_proj",
                                   "re:model.visual.*"])
    s = checkpoint_scheme(spec_with(qc))
    assert not s.is_quantized(lin("layers.3.self_attn.q_proj.weight"))
    assert s.is_quantized(lin("layers.13.self_attn.q_proj.weight"))
    assert s.is_quantized(lin("layers.0.mlp.gate_proj.weight", 11008, 4096, component=Component.DENSE_MLP))
    assert not s.is_quantized(lin("visual.blocks.0.attn.qkv.weight", 3840, 1280, component=Component.VISION))
    # a router mislabelled quantizable is still caught by the regex
    assert not s.is_quantized(lin("layers.0.mlp.gate.weight", 64, 4096, component=Component.OTHER))


def test_ct_real_w4a16_ignore_list_on_hybrid_names():
    """The bundled RedHatAI Qwen3.5-9B w4a16 config (232 ignore entries: linear-attention projections,
    vision blocks, lm_head, re:^mtp.*) applied to tensors named as the HF checkpoint names them."""
    cfg = json.loads((BUNDLED / "RedHatAI--Qwen3.5-9B-quantized.w4a16.json").read_text())
    s = checkpoint_scheme(spec_with(cfg["quantization_config"]))
    assert s.name == "w4a16-g128"
    lm = "model.language_model.layers"
    assert not s.is_quantized(lin(f"{lm}.0.linear_attn.in_proj_qkv.weight", component=Component.LINEAR_ATTENTION))
    assert not s.is_quantized(lin(f"{lm}.20.linear_attn.out_proj.weight", component=Component.LINEAR_ATTENTION))
    assert s.is_quantized(lin(f"{lm}.3.self_attn.q_proj.weight"))
    assert s.is_quantized(lin(f"{lm}.0.mlp.gate_proj.weight", component=Component.DENSE_MLP))
    assert not s.is_quantized(lin("model.visual.blocks.26.mlp.linear_fc2.weight", component=Component.VISION))
    assert not s.is_quantized(lin("mtp.layers.0.mlp.up_proj.weight", component=Component.OTHER))
    # mlp gate_proj (12288, 4096): packed (12288, 512) int32 = 25,165,824; bf16 scales (12288, 32) = 786,432; + 16
    assert s.tensor_bytes(lin(f"{lm}.0.mlp.gate_proj.weight", 12288, 4096)) == 25_165_824 + 786_432 + 16


def test_ct_mixed_groups_name_targets_win_over_linear():
    """Two config groups: fp8 for attention (regex target), int4 for every other Linear."""
    qc = {"quant_method": "compressed-tensors", "format": "mixed-precision", "ignore": ["lm_head"],
          "config_groups": {
              "attn": {"targets": ["re:.*self_attn.*"], "format": "float-quantized",
                       "weights": {"num_bits": 8, "type": "float", "strategy": "channel"},
                       "input_activations": {"num_bits": 8, "type": "float", "strategy": "token", "dynamic": True}},
              "mlp": {"targets": ["Linear"], "format": "pack-quantized",
                      "weights": {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128,
                                  "symmetric": True}}}}
    s = checkpoint_scheme(spec_with(qc))
    assert s.name == "fp8-channel+w4a16-g128"
    assert s.tensor_bytes(lin()) == 16_777_216 + 16_384
    assert s.tensor_bytes(lin("layers.0.mlp.up_proj.weight", component=Component.DENSE_MLP)) == 8_650_768


def test_ct_kv_cache_scheme_sets_fp8_default():
    s = checkpoint_scheme(spec_with(dict(FP8_DYNAMIC, kv_cache_scheme={"num_bits": 8, "type": "float",
                                                                      "strategy": "tensor", "dynamic": False})))
    assert s.kv_cache_dtype_default == "fp8"
    assert checkpoint_scheme(spec_with(FP8_DYNAMIC)).kv_cache_dtype_default is None


def test_ct_unmodelled_scheme_is_named():
    w = {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128}
    a = {"num_bits": 8, "type": "float", "strategy": "token", "dynamic": True}
    with pytest.raises(UnsupportedQuantization, match="int4.*float8"):
        checkpoint_scheme(spec_with(ct(w, a, fmt="int-quantized")))


# ---------------------------------------------------------------- bitsandbytes
def test_bnb_nf4_plain_and_double_quant():
    base = {"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
            "bnb_4bit_compute_dtype": "bfloat16", "llm_int8_skip_modules": ["lm_head"]}
    plain = checkpoint_scheme(spec_with({**base, "bnb_4bit_use_double_quant": False}))
    # 16,777,216 elements: nibbles 8,388,608; absmax fp32 per 64 -> 262,144 blocks * 4 = 1,048,576; code 16*4 = 64
    assert plain.name == "bnb-nf4"
    assert plain.tensor_bytes(lin()) == 8_388_608 + 1_048_576 + 64
    dq = checkpoint_scheme(spec_with({**base, "bnb_4bit_use_double_quant": True}))
    # absmax uint8 262,144 + nested fp32 per 256 blocks 1,024*4 = 4,096 + nested code 256*4 = 1,024 + offset 4 + code 64
    assert dq.name == "bnb-nf4-dq"
    assert dq.tensor_bytes(lin()) == 8_388_608 + 262_144 + 4_096 + 1_024 + 4 + 64


def test_bnb_int8():
    s = checkpoint_scheme(spec_with({"quant_method": "bitsandbytes", "load_in_8bit": True}))
    assert s.name == "bnb-int8"
    assert s.tensor_bytes(lin()) == 16_777_216 + 16_384


# ---------------------------------------------------------------- MXFP4 (gpt-oss)
GPT_OSS_QC = {"modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router",
                                         "model.embed_tokens", "lm_head"], "quant_method": "mxfp4"}


def test_mxfp4_expert_tensor_and_non_experts_unquantized():
    s = checkpoint_scheme(spec_with(GPT_OSS_QC))
    gate_up = lin("layers.0.mlp.experts.gate_up_proj.weight", 5760, 2880, count=32, component=Component.ROUTED_EXPERTS)
    # per expert: blocks 5760 * 2880/2 = 8,294,400 B; e8m0 scales 5760 * 2880/32 = 518,400 B
    assert s.breakdown(gate_up) == {"weight": 32 * 8_294_400, "scale": 32 * 518_400}
    # attention is a Linear but MXFP4 only touches experts (and the ignore list says so too)
    assert s.tensor_bytes(lin("layers.0.self_attn.q_proj.weight", 4096, 2880)) == 4096 * 2880 * 2
    assert s.kv_cache_dtype_default is None


def test_mxfp4_per_rank_padding_marlin():
    """vLLM's Marlin MXFP4 MoE pads the per-rank intermediate to 128 and hidden to 256 (mxfp4.py)."""
    s = checkpoint_scheme(spec_with(GPT_OSS_QC), mxfp4_backend="marlin")
    gate_up = lin("layers.0.mlp.experts.gate_up_proj.weight", 5760, 2880, count=32, component=Component.ROUTED_EXPERTS)
    down = lin("layers.0.mlp.experts.down_proj.weight", 2880, 2880, count=32, component=Component.ROUTED_EXPERTS)
    # TP2: intermediate 1440 -> 1536, hidden 2880 -> 3072
    # gate_up per expert: (3072 rows, 3072 in) -> 3072*1536 + 3072*96 = 5,013,504
    assert s.expert_rank_bytes(gate_up, moe_tp=2) == 32 * (3072 * 1536 + 3072 * 96)
    # down per expert: (3072 rows, 1536 in) -> 3072*768 + 3072*48 = 2,506,752
    assert s.expert_rank_bytes(down, moe_tp=2) == 32 * (3072 * 768 + 3072 * 48)
    # biases stay bf16: w13_bias (E, 2 x 1536), w2_bias (E, 3072) whole on every rank
    gu_bias = Tensor("layers.0.mlp.experts.gate_up_proj.bias", (5760,), Shard.EXPERT, Component.ROUTED_EXPERTS,
                     layer=0, count=32)
    dn_bias = Tensor("layers.0.mlp.experts.down_proj.bias", (2880,), Shard.EXPERT, Component.ROUTED_EXPERTS,
                     layer=0, count=32)
    assert s.expert_rank_bytes(gu_bias, moe_tp=2) == 32 * 3072 * 2
    assert s.expert_rank_bytes(dn_bias, moe_tp=2) == 32 * 3072 * 2
    # no padding backend = the proportional checkpoint slice
    plain = checkpoint_scheme(spec_with(GPT_OSS_QC), mxfp4_backend="none")
    assert plain.expert_rank_bytes(down, moe_tp=2) == plain.tensor_bytes(down) / 2


def test_mxfp4_triton_is_the_default_backend():
    """vLLM >= 0.19 on H100/H200 (the reference GPU) runs gpt-oss on the Triton MoE backend."""
    s = checkpoint_scheme(spec_with(GPT_OSS_QC))
    assert s.moe_padding is MXFP4_MOE_PADDING["triton"] and "triton" in s.describe()
    with pytest.raises(UnsupportedQuantization, match="allowed: triton"):
        checkpoint_scheme(spec_with(GPT_OSS_QC), mxfp4_backend="cutlass")


def test_mxfp4_triton_small_expert_by_hand():
    """Triton backend, one rank, a small expert (2 experts, intermediate 100, hidden 96), TP1.

    create_weights: intermediate 100 -> 128 (round_up 64), hidden 96 kept.
    gate_up (w13): 256 rows x 96 in = 3 groups of 32, 48 packed bytes per row.
      swizzled weight (HopperMXValueLayout pre-pads rows and packed bytes to 64): 256 x 64 = 16,384
      swizzled scales (HopperMXScaleLayout, num_warps 8: rows to 256, groups to 2): 256 x 4 = 1,024
      loaded scales kept as parameters: 256 x 3 = 768                               -> 18,176 per expert
    down (w2): 96 rows x 128 in = 4 groups, 64 bytes per row.
      swizzled weight: 128 x 64 = 8,192; swizzled scales: 256 x 4 = 1,024; loaded scales 96 x 4 = 384
                                                                                    -> 9,600 per expert
    biases cast to float32: w13 2 x 128 x 4 = 1,024; w2 96 x 4 = 384 (whole on every rank).
    """
    s = checkpoint_scheme(spec_with(GPT_OSS_QC), mxfp4_backend="triton")
    gu = lin("layers.0.mlp.experts.gate_up_proj.weight", 200, 96, count=2, component=Component.ROUTED_EXPERTS)
    dn = lin("layers.0.mlp.experts.down_proj.weight", 96, 100, count=2, component=Component.ROUTED_EXPERTS)
    gu_b = Tensor("layers.0.mlp.experts.gate_up_proj.bias", (200,), Shard.EXPERT, Component.ROUTED_EXPERTS,
                  layer=0, count=2)
    dn_b = Tensor("layers.0.mlp.experts.down_proj.bias", (96,), Shard.EXPERT, Component.ROUTED_EXPERTS,
                  layer=0, count=2)
    assert s.expert_rank_bytes(gu, moe_tp=1) == 2 * 18_176
    assert s.expert_rank_bytes(dn, moe_tp=1) == 2 * 9_600
    assert s.expert_rank_bytes(gu_b, moe_tp=1) == 2 * 1_024
    assert s.expert_rank_bytes(dn_b, moe_tp=1) == 2 * 384
    # EP: one of the two experts on this rank
    assert s.expert_rank_bytes(gu, moe_tp=1, experts_on_rank=1) == 18_176
    assert mxfp4_expert_rank_parts(200, 96, 1, down=False, fused_gate_up=True,
                                   padding=MXFP4_MOE_PADDING["triton"]) == {
        "weight": 16_384, "scale": 1_024, "loaded_scale": 768}


def test_mxfp4_triton_gpt_oss_20b_expert_per_rank():
    """gpt-oss-20b experts (32 x gate_up 5760x2880, down 2880x2880) on one rank, Triton backend.

    TP2: intermediate/rank 1440 -> 1472.  w13 2944 x 2880: weight 2944 x 1472 (1440 packed bytes -> 1472),
    swizzled scales 3072 x 90, loaded scales 2944 x 90.  w2 2880 x 1472: weight 2880 x 768 (736 -> 768),
    swizzled scales 3072 x 46, loaded scales 2880 x 46.
    TP1: intermediate 2880 (already a multiple of 64).  w13 5760 x 2880: 5760 x 1472 + 5888 x 90 + 5760 x 90;
    w2 2880 x 2880: 2880 x 1472 + 3072 x 90 + 2880 x 90.
    """
    s = checkpoint_scheme(spec_with(GPT_OSS_QC))
    gu = lin("layers.0.mlp.experts.gate_up_proj.weight", 5760, 2880, count=32, component=Component.ROUTED_EXPERTS)
    dn = lin("layers.0.mlp.experts.down_proj.weight", 2880, 2880, count=32, component=Component.ROUTED_EXPERTS)
    assert s.expert_rank_bytes(gu, moe_tp=2) == 32 * (2944 * 1472 + 3072 * 90 + 2944 * 90)
    assert s.expert_rank_bytes(dn, moe_tp=2) == 32 * (2880 * 768 + 3072 * 46 + 2880 * 46)
    assert s.expert_rank_bytes(gu, moe_tp=1) == 32 * (5760 * 1472 + 5888 * 90 + 5760 * 90)
    assert s.expert_rank_bytes(dn, moe_tp=1) == 32 * (2880 * 1472 + 3072 * 90 + 2880 * 90)
    # vLLM 0.11-0.14 (pip triton_kernels 3.5.0): the swizzle only fills its 16-row / 32-byte tile
    legacy = checkpoint_scheme(spec_with(GPT_OSS_QC), mxfp4_backend="triton_legacy")
    assert legacy.expert_rank_bytes(gu, moe_tp=2) == 32 * (2944 * 1440 + 3072 * 90 + 2944 * 90)


def test_expert_rank_bytes_is_proportional_for_other_layouts():
    s = checkpoint_scheme(spec_with({"quant_method": "fp8", "weight_block_size": [128, 128]}))
    ex = lin("layers.0.mlp.experts.gate_proj.weight", 768, 2048, count=128, component=Component.ROUTED_EXPERTS)
    assert s.expert_rank_bytes(ex, moe_tp=1, experts_on_rank=16) == 16 * (1_572_864 + 384)


# ---------------------------------------------------------------- ModelOpt
def test_modelopt_fp8_hf_quant_config_form():
    """nvidia/Llama-3.1-70B-Instruct-FP8 hf_quant_config.json, stored with quant_method added."""
    qc = {"quant_method": "modelopt", "producer": {"name": "modelopt", "version": "0.23.0"},
          "quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8", "exclude_modules": ["lm_head"]}}
    s = checkpoint_scheme(spec_with(qc))
    assert s.name == "fp8-tensor" and s.kv_cache_dtype_default == "fp8"
    # fp8 weight + fp32 weight_scale + fp32 input_scale
    assert s.tensor_bytes(lin()) == 16_777_216 + 8
    assert s.tensor_bytes(LM_HEAD) == 1000 * 4096 * 2


def test_modelopt_nvfp4_group16_flat_form():
    qc = {"quant_method": "modelopt", "quant_algo": "NVFP4", "group_size": 16,
          "ignore": ["model.layers.*.mlp.gate", "lm_head"], "kv_cache_quant_algo": None}
    s = checkpoint_scheme(spec_with(qc))
    # Qwen3-235B expert gate_proj (1536, 4096): nibbles 1536*2048 = 3,145,728; fp8 scales 1536*256 = 393,216;
    # weight_scale_2 + input_scale fp32 = 8
    ex = lin("layers.0.mlp.experts.gate_proj.weight", 1536, 4096, count=128, component=Component.ROUTED_EXPERTS)
    assert s.name == "nvfp4" and s.kv_cache_dtype_default is None
    assert s.tensor_bytes(ex) == 128 * (3_145_728 + 393_216 + 8)


def test_modelopt_mixed_precision():
    """MIXED_PRECISION layout from ModelOpt's exporter: per-layer quant_algo; unlisted layers stay bf16."""
    qc = {"quant_method": "modelopt", "quantization": {"quant_algo": "MIXED_PRECISION", "quantized_layers": {
        "model.layers.0.self_attn.q_proj": {"quant_algo": "FP8"},
        "model.layers.0.mlp.down_proj": {"quant_algo": "NVFP4", "group_size": 16}}}}
    s = checkpoint_scheme(spec_with(qc))
    assert s.tensor_bytes(lin()) == 16_777_216 + 8
    assert s.tensor_bytes(lin("layers.0.mlp.down_proj.weight", component=Component.DENSE_MLP)) \
        == 8_388_608 + 1_048_576 + 8
    assert s.tensor_bytes(lin("layers.1.self_attn.q_proj.weight")) == 4096 * 4096 * 2


def test_modelopt_nvfp4_kv_cache_keeps_weights_modelled():
    qc = {"quant_method": "modelopt", "quantization": {"quant_algo": "NVFP4", "kv_cache_quant_algo": "NVFP4"}}
    s = checkpoint_scheme(spec_with(qc))
    assert s.kv_cache_dtype_default == "nvfp4"
    assert s.tensor_bytes(lin()) == 8_388_608 + 1_048_576 + 8


def test_modelopt_unknown_algo_named():
    with pytest.raises(UnsupportedQuantization, match="W4A8_AWQ"):
        checkpoint_scheme(spec_with({"quant_method": "modelopt", "quantization": {"quant_algo": "W4A8_AWQ"}}))


# ---------------------------------------------------------------- general rules
@pytest.mark.parametrize("qc", [GPTQ_4B_G128, FP8_DYNAMIC, W8A8_INT8, GPT_OSS_QC,
                                {"quant_method": "fp8", "weight_block_size": [128, 128]}])
def test_embeddings_norms_routers_biases_stay_model_dtype(qc):
    s = checkpoint_scheme(spec_with(qc))
    assert s.tensor_bytes(EMBED) == 1000 * 4096 * 2
    assert s.tensor_bytes(LM_HEAD) == 1000 * 4096 * 2
    assert s.tensor_bytes(NORM) == 4096 * 2
    assert s.tensor_bytes(ROUTER) == 64 * 4096 * 2
    assert s.tensor_bytes(BIAS) == 4096 * 2


def test_unknown_method_is_unsupported_and_named():
    with pytest.raises(UnsupportedQuantization, match="'hqq'"):
        checkpoint_scheme(spec_with({"quant_method": "hqq", "nbits": 4}))
    with pytest.raises(UnsupportedQuantization, match="'unknown'"):
        checkpoint_scheme(spec_with({"bits": 4}))


def test_unquantized_checkpoint_uses_model_dtype():
    s = checkpoint_scheme(spec_with(None, "float32"))
    assert s.name == "fp32" and s.tensor_bytes(lin()) == 4096 * 4096 * 4


# ---------------------------------------------------------------- what-if
def test_whatif_fp8_int8_int4_linear_and_rest():
    t = lin()
    # fp8 / int8: 1 B per element + fp32 per output channel
    assert whatif_scheme("fp8").tensor_bytes(t) == 16_777_216 + 16_384
    assert whatif_scheme("int8").tensor_bytes(t) == 16_777_216 + 16_384
    # int4 AWQ-like g128: 0.5 B/element 8,388,608 + fp16 scales 32*4096*2 = 262,144 + packed zeros 32*512*4 = 65,536
    assert whatif_scheme("int4").tensor_bytes(t) == 8_716_288
    for name in ("fp8", "int8", "int4"):
        s = whatif_scheme(name, "bfloat16")
        assert s.origin == "what-if" and s.name == name
        assert s.tensor_bytes(EMBED) == 1000 * 4096 * 2
        assert s.tensor_bytes(LM_HEAD) == 1000 * 4096 * 2
        assert s.tensor_bytes(ROUTER) == 64 * 4096 * 2
        assert s.tensor_bytes(NORM) == 4096 * 2


def test_whatif_plain_dtypes():
    assert whatif_scheme("auto", "float32").tensor_bytes(lin()) == 4096 * 4096 * 4
    assert whatif_scheme("checkpoint", "bfloat16").name == "bf16"
    assert whatif_scheme("fp16", "float32").tensor_bytes(EMBED) == 1000 * 4096 * 2
    assert whatif_scheme("bf16").describe().startswith("bf16")
    with pytest.raises(UnsupportedQuantization, match="'int3'.*allowed"):
        whatif_scheme("int3")


# ---------------------------------------------------------------- properties
dims = st.integers(min_value=1, max_value=20_000)


@given(out=dims, in_=dims, count=st.integers(1, 4))
def test_block_fp8_scale_count_and_parts_sum(out, in_, count):
    s = checkpoint_scheme(spec_with({"quant_method": "fp8", "weight_block_size": [128, 128]}))
    t = lin(out=out, in_=in_, count=count)
    parts = s.breakdown(t)
    assert parts["weight"] == out * in_ * count
    assert parts["scale"] == -(-out // 128) * -(-in_ // 128) * 4 * count
    assert s.tensor_bytes(t) == sum(parts.values())


@given(out=st.integers(1, 4096).map(lambda x: 8 * x), in_=st.integers(1, 4096).map(lambda x: 128 * x))
def test_int4_schemes_cost_more_than_half_a_byte_and_less_than_fp8(out, in_):
    t = lin(out=out, in_=in_)
    for s in (whatif_scheme("int4"), checkpoint_scheme(spec_with(GPTQ_4B_G128))):
        assert out * in_ / 2 < s.tensor_bytes(t) < whatif_scheme("fp8").tensor_bytes(t)


@given(tp=st.sampled_from([1, 2, 4, 8]))
def test_expert_rank_bytes_without_padding_sum_to_total(tp):
    """With no backend padding and whole 32-blocks per rank (4096 / 8 = 512), the ranks add up to the tensor.
    (gpt-oss's 2880 / 4 = 720 is not a whole number of 32-blocks: vLLM pads it, so no such identity there.)"""
    s = checkpoint_scheme(spec_with(GPT_OSS_QC), mxfp4_backend="none")
    down = lin("layers.0.mlp.experts.down_proj.weight", 2880, 4096, count=32, component=Component.ROUTED_EXPERTS)
    assert s.expert_rank_bytes(down, moe_tp=tp) * tp == s.tensor_bytes(down)
