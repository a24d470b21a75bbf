"""Step-3.7-Flash (``step3p7``): per-layer KV kinds, shard classes and refusals, each pinned to the vLLM source line
it follows -- vLLM ``step3p5.py`` @01b50b9e, ``step3p7.py`` @22c552fa, ``step_vl.py`` @055e47c2 (read through the
search index).  Parameter totals against the meta device: tests/test_oracle_step3p7.py."""

from __future__ import annotations

import copy

import pytest

from reportgen.arch import build_spec
from reportgen.arch.spec import AttentionKind, Component as C, Shard as S
from step3p7_configs import shipped_flat, shipped_nested

CFG = shipped_nested()


def _t(spec, name):
    return next(t for t in spec.tensors if t.name == name)


def _edit(text=None, vision=None, **top):
    cfg = copy.deepcopy(CFG)
    cfg["text_config"].update(text or {})
    cfg["vision_config"].update(vision or {})
    cfg.update(top)
    return cfg


def test_text_architecture_step3p5_accepted():
    spec = build_spec(_edit({"architectures": ["Step3p5ForCausalLM"]}))
    assert spec.unsupported_reason is None and spec.params_total == build_spec(CFG).params_total


def test_layer_kinds_and_kv_bytes_follow_per_layer_sliding_window():
    # step3p5.py Step3p5Attention: enable_sliding_window = layer_types[layer_idx] == "sliding_attention";
    # Attention(..., num_kv_heads=self.num_kv_heads, per_layer_sliding_window=sliding_window)
    spec = build_spec(CFG)
    assert spec.unsupported_reason is None
    kinds = [k.kind for k in spec.layers_kv]
    assert kinds.count(AttentionKind.FULL) == 12 and kinds.count(AttentionKind.SLIDING) == 33
    assert all(k.window == 512 for k in spec.layers_kv if k.kind is AttentionKind.SLIDING)
    assert [k.kind is AttentionKind.FULL for k in spec.layers_kv] == [i % 4 == 0 for i in range(45)]
    # 45 layers x 8 K/V heads x (128 + 128) x 2 bytes, before the sliding layers' 512-token cap
    assert spec.kv_bytes_per_token(2) == 184_320
    assert spec.kv_bytes_per_token(1) == 92_160
    # self.num_kv_heads = max(1, self.total_num_kv_heads // tp_size): one K/V head per rank at tp 8 and 16
    assert spec.kv_bytes_per_token(2, tp=8) == 45 * 1 * 256 * 2
    assert spec.kv_bytes_per_token(2, tp=16) == 45 * 1 * 256 * 2


def test_no_sliding_window_keeps_every_layer_full():
    # step3p5.py: `if sliding_window is not None and enable_sliding_window: ... else: sliding_window = None`
    spec = build_spec(_edit({"sliding_window": None}))
    assert {k.kind for k in spec.layers_kv} == {AttentionKind.FULL}


def test_attention_shards():
    spec = build_spec(CFG)
    a = "model.layers.5.self_attn"
    # qkv_proj = QKVParallelLinear(...): q COLUMN, k/v KV; o_proj = RowParallelLinear
    assert _t(spec, f"{a}.q_proj.weight").shard is S.COLUMN
    assert _t(spec, f"{a}.k_proj.weight").shard is S.KV and _t(spec, f"{a}.v_proj.weight").shard is S.KV
    assert _t(spec, f"{a}.o_proj.weight").shard is S.ROW
    # self.g_proj = ColumnParallelLinear(hidden_size, self.total_num_heads, bias=False, ...)
    g = _t(spec, f"{a}.g_proj.weight")
    assert g.shape == (64, 4096) and g.shard is S.COLUMN
    # self.q_norm = GemmaRMSNorm(self.head_dim, ...): one per-head norm, replicated
    assert _t(spec, f"{a}.q_norm.weight").shape == (128,)


def test_sliding_layers_take_attention_other_setting_heads():
    # Step3p5DecoderLayer: layer_types[layer_idx] == attention_other_setting["attention_type"] -> its
    # num_attention_heads for that layer's Step3p5Attention (q_proj, o_proj, g_proj)
    other = {"attention_type": "sliding_attention", "num_attention_heads": 96, "num_attention_groups": 8,
             "head_dim": 128}
    spec = build_spec(_edit({"attention_other_setting": other}))
    assert spec.unsupported_reason is None
    assert _t(spec, "model.layers.1.self_attn.q_proj.weight").shape == (96 * 128, 4096)
    assert _t(spec, "model.layers.1.self_attn.g_proj.weight").shape == (96, 4096)
    assert _t(spec, "model.layers.0.self_attn.q_proj.weight").shape == (64 * 128, 4096)
    assert spec.kv_bytes_per_token(2) == 184_320  # K/V heads are the same on every layer


def test_moe_block_shards_and_fp32_router():
    spec = build_spec(CFG)
    p = "model.layers.3.mlp"
    # self.gate = FP32ReplicatedLinear(hidden, moe_num_experts, quant_config=None, params_dtype=torch.float32)
    gate = _t(spec, f"{p}.gate.weight")
    assert gate.shard is S.REPLICATED and gate.dtype_bytes == 4 and not gate.quantizable
    # self.router_bias = nn.Parameter(torch.zeros(moe_num_experts, dtype=torch.float32)): a buffer in transformers
    bias = _t(spec, f"{p}.gate.e_score_correction_bias")
    assert bias.allocated_only and bias.dtype_bytes == 4
    assert _t(spec, f"{p}.experts.gate_up_proj.weight").shard is S.EXPERT
    # self.share_expert = Step3p5MLP(intermediate_size=config.share_expert_dim): MergedColumn / Row
    assert _t(spec, f"{p}.shared_experts.gate_proj.weight").shape == (1280, 4096)
    assert _t(spec, f"{p}.shared_experts.down_proj.weight").shard is S.ROW
    # layers below first_k_dense_replace are Step3p5MLP(intermediate_size)
    assert _t(spec, "model.layers.2.mlp.gate_proj.weight").shape == (11264, 4096)
    # FusedMoEBlock: `if self.tp_size > config.moe_num_experts: raise ValueError`
    assert spec.max_tp == 288
    assert spec.num_experts == 288 and spec.experts_per_token == 8 and spec.num_shared_experts == 1


def test_tower_and_projector_shards():
    spec = build_spec(CFG)
    v = "model.vision_model.layers.0"
    # PerceptionEncoderVisionAttention: qkv_proj = QKVParallelLinear(embed_dim, head_dim, heads, bias=True)
    # (K/V heads = heads: every part split by heads), out_proj = RowParallelLinear
    for name in ("q_proj", "k_proj", "v_proj"):
        assert _t(spec, f"{v}.self_attn.{name}.weight").shard is S.COLUMN
    assert _t(spec, f"{v}.self_attn.out_proj.weight").shard is S.ROW
    # PerceptionEncoderMLP: fc1 ColumnParallelLinear, fc2 RowParallelLinear, both biased
    assert _t(spec, f"{v}.mlp.fc1.weight").shape == (8960, 1536)
    assert _t(spec, f"{v}.mlp.fc2.weight").shard is S.ROW
    # vit_downsampler2 = Conv2dLayer(width * 2, width * 4, kernel_size=3, stride=2, padding=1)
    assert _t(spec, "model.vision_model.downsampler2.weight").shape == (6144, 3072, 3, 3)
    # step3p7.py: vit_large_projector = ColumnParallelLinear(width * 4, text hidden, bias=projector_bias)
    proj = _t(spec, "model.multi_modal_projector.weight")
    assert proj.shape == (4096, 6144) and proj.shard is S.COLUMN and proj.component is C.VISION
    assert spec.multimodal


@pytest.mark.parametrize("text, vision, words", [
    # step3p5.py: moe_layers_enum absent -> moe_layers_idx = [i for i in range(1, config.num_hidden_layers)]
    ({"moe_layers_enum": None}, {}, ("moe_layers_enum", "differently")),
    ({"moe_layers_enum": [3, 4]}, {}, ("moe_layers_enum", "strip")),
    # use_head_wise_attn_gate=getattr(config, "use_head_wise_attn_gate", False): no g_proj; transformers has one
    ({"use_head_wise_attn_gate": False}, {}, ("use_head_wise_attn_gate",)),
    ({"attention_other_setting": {"attention_type": "sliding_attention", "num_attention_heads": 96,
                                  "num_attention_groups": 4, "head_dim": 128}}, {},
     ("attention_other_setting.num_attention_groups",)),
    ({"num_attention_groups": None}, {}, ("num_attention_groups",)),  # vLLM's Step3p5Config default 8 ...
    ({"tie_word_embeddings": True}, {}, ("tie_word_embeddings",)),
    ({"rope_scaling": {"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 4096}}, {},
     ("rope_scaling",)),
    ({"partial_rotary_factors": [0.25] * 45}, {}, ("partial_rotary_factors",)),
    # step_vl.py PerceptionEncoder: ln_post = norm_layer(width) if config.use_ln_post
    ({}, {"use_ln_post": True}, ("use_ln_post",)),
    ({}, {"use_cls_token": True}, ("use_cls_token",)),
    ({}, {"width": None}, ("vision_config.width", "missing")),
    ({}, {"ls_init_value": None}, ("ls_init_value",)),
    # step3p7.py: init_vllm_registered_model(hf_config=config.text_config) -> the text config's architecture
    ({"architectures": ["Step3VLForConditionalGeneration"]}, {}, ("text_config.architectures",)),
])
def test_refused_where_vllm_and_transformers_differ(text, vision, words):
    cfg = _edit()
    for sub, edits in (("text_config", text), ("vision_config", vision)):
        for k, val in edits.items():
            if val is None:
                cfg[sub].pop(k, None)
            else:
                cfg[sub][k] = val
    if text.get("num_attention_groups", 0) is None:
        cfg["text_config"]["num_key_value_heads"] = 4  # vLLM falls back to 8, transformers reads 4
    spec = build_spec(cfg)
    assert spec.unsupported_reason and all(w in spec.unsupported_reason for w in words), spec.unsupported_reason
    assert spec.params_total == 0


def test_shipped_flat_config_refused_with_reason():
    spec = build_spec(shipped_flat())
    assert "without text_config" in spec.unsupported_reason and "Step3p7FlashForCausalLM" in spec.unsupported_reason


def _with_mtp(cfg: dict) -> dict:
    """Hub-style padding: layer_types / mlp_layer_types / moe_layers_enum cover the 3 MTP layers too."""
    cfg = copy.deepcopy(cfg)
    t = cfg["text_config"]
    t["num_nextn_predict_layers"] = 3
    t["layer_types"] = t["layer_types"] + ["sliding_attention", "sliding_attention", "full_attention"]
    t["mlp_layer_types"] = t["mlp_layer_types"] + ["sparse"] * 3
    t["moe_layers_enum"] = ",".join(str(i) for i in range(3, 48))
    return cfg


def test_mtp_layers_sized_as_step3p5_mtp_builds_them_and_not_priced():
    # step3p5_mtp.py @12c9ac28: Step3p5AMultiTokenPredictor.embed_tokens (one), per layer enorm, hnorm,
    # eh_proj = ReplicatedLinear(2 * hidden, hidden), SharedHead(norm, ParallelLMHead), mtp_block =
    # Step3p5DecoderLayer(prefix ".layers.{45 + j}"): here MoE layers with full-size heads
    plain, padded = build_spec(CFG), build_spec(_with_mtp(CFG))
    assert padded.unsupported_reason is None
    assert padded.params_total == plain.params_total and len(padded.layers_kv) == 45
    h, vocab = 4096, 128_896
    attn = 64 * 128 * h + 2 * 8 * 128 * h + 64 * 128 * h + 2 * 128 + 64 * h   # q, k+v, o, q/k norms, g_proj
    moe = 288 * h + 288 + 288 * 3 * 1280 * h + 3 * 1280 * h                    # router + bias, experts, shared
    layer = 2 * h + attn + moe
    assert padded.mtp_params == vocab * h + 3 * (vocab * h + 3 * h + 2 * h * h + layer) == 16_080_107_104
    assert plain.mtp_params == 0
