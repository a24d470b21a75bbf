"""Every bundled reference config against the meta-device oracle (tests/data/param_counts.json).

Exact integers: total parameters, KV bytes per token at bf16, every
per-component count the oracle reports, the text model and vision tower of
multimodal models, and active parameters of MoE models.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.arch.spec import AttentionKind, Component, Shard

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "reportgen" / "sources" / "bundled"
TRUTH = json.loads((ROOT / "tests" / "data" / "param_counts.json").read_text())["models"]
# the 2026 flagships bundled for the default job: their truths are in the 2026 reference set
TRUTH_2026 = json.loads((ROOT / "tests" / "data" / "param_counts_2026.json").read_text())["models"]
TRUTH = {**TRUTH, **{m: TRUTH_2026[m] for m in ("zai-org/GLM-5", "moonshotai/Kimi-K2.5", "MiniMaxAI/MiniMax-M2.5",
                                                  "google/gemma-4-E4B-it", "Qwen/Qwen3.5-35B-A3B")}}
# bundled configs served but checked in their own files, because the 2026 truth files their components
# differently (deepseek_v4: tests/test_arch_dsv4.py, tests/test_oracle_flagships_dsv4.py; KV:
# tests/test_compressed_kv.py): model -> total params
ELSEWHERE = {"deepseek-ai/DeepSeek-V4-Flash": TRUTH_2026["deepseek-ai/DeepSeek-V4-Flash"]["total_params"]}


def _configs() -> list[tuple[str, dict]]:
    out = []
    for path in sorted(BUNDLED.glob("*.json")):
        if path.name.endswith(".hf_quant_config.json"):
            continue
        out.append((path.stem.replace("--", "/"), json.loads(path.read_text())))
    return out


CONFIGS = _configs()
SUPPORTED = [(m, c) for m, c in CONFIGS if m not in ELSEWHERE]
IDS = [m for m, _ in SUPPORTED]


def test_every_bundled_config_has_a_truth_record():
    assert len(CONFIGS) == 48
    assert {m for m, _ in CONFIGS} - set(ELSEWHERE) <= set(TRUTH)


def test_no_bundled_config_is_refused():
    """Every config of the bundled snapshot (the default job's models) is priced: none is unsupported."""
    refused = {m: build_spec(c, m).unsupported_reason for m, c in CONFIGS}
    assert {m: r for m, r in refused.items() if r} == {}


@pytest.mark.parametrize("model", sorted(ELSEWHERE))
def test_served_bundled_config_checked_elsewhere(model):
    spec = build_spec(dict(CONFIGS)[model], model)
    assert spec.unsupported_reason is None and spec.params_total == ELSEWHERE[model] and spec.layers_kv


@pytest.mark.parametrize(("model", "config"), SUPPORTED, ids=IDS)
def test_total_params_exact(model, config):
    spec = build_spec(config, model)
    assert spec.unsupported_reason is None
    assert spec.params_total == TRUTH[model]["total_params"]


@pytest.mark.parametrize(("model", "config"), SUPPORTED, ids=IDS)
def test_kv_bytes_per_token_exact(model, config):
    spec = build_spec(config, model)
    # the oracle counts attention K/V (the MLA latent) only; a DSA layer's lightning-indexer key cache
    # (GLM-5: 132 B a layer) is vLLM's too and is pinned in tests/test_arch_flagships_dsa.py
    indexer = sum(l.index_token_bytes for l in spec.layers_kv)
    assert spec.kv_bytes_per_token(2) - indexer == TRUTH[model]["kv_cache_bytes_per_token_bf16_kv_layers"]


_COMPONENTS = {
    Component.EMBEDDING: "embedding_params",
    Component.ATTENTION: "attention_params",
    Component.DENSE_MLP: "dense_mlp_params",
    Component.ROUTED_EXPERTS: "routed_expert_params",
    Component.SHARED_EXPERTS: "shared_expert_params",
    Component.ROUTER: "router_params",
    Component.NORM: "norm_params",
    Component.VISION: "vision_params",
    Component.LINEAR_ATTENTION: "linear_attention_params",
}


@pytest.mark.parametrize(("model", "config"), SUPPORTED, ids=IDS)
def test_components_exact(model, config):
    spec = build_spec(config, model)
    truth = TRUTH[model]
    comp = spec.params_by_component()
    for c, key in _COMPONENTS.items():
        assert comp[c.value] == truth[key], c
    # the oracle reports the head's size even when it is the embedding; we store a tied head once
    assert comp[Component.LM_HEAD.value] == (0 if truth["tied_embeddings"] else truth["lm_head_params"])
    assert spec.tie_word_embeddings == truth["tied_embeddings"]


@pytest.mark.parametrize(("model", "config"), [(m, c) for m, c in SUPPORTED if "text_model" in TRUTH[m]],
                         ids=[m for m, _ in SUPPORTED if "text_model" in TRUTH[m]])
def test_multimodal_text_and_vision(model, config):
    spec = build_spec(config, model)
    assert spec.multimodal
    assert spec.params_text == TRUTH[model]["text_model"]["total_params"]
    assert spec.params_total - spec.params_text == TRUTH[model]["vision_params"]
    assert all(t.layer is None for t in spec.tensors if t.component is Component.VISION)


@pytest.mark.parametrize(("model", "config"), [(m, c) for m, c in SUPPORTED if TRUTH[m]["active_params_per_token_est"]],
                         ids=[m for m, _ in SUPPORTED if TRUTH[m]["active_params_per_token_est"]])
def test_moe_active_params(model, config):
    spec = build_spec(config, model)
    assert spec.num_experts > 0 and 0 < spec.experts_per_token <= spec.num_experts
    assert spec.params_active == TRUTH[model]["active_params_per_token_est"]


# ---- known values, one by one (published counts and the vLLM geometry) ----

def _spec(model: str):
    return build_spec(dict(CONFIGS)[model], model)


def test_llama31_8b_published_count_and_geometry():
    spec = _spec("meta-llama/Meta-Llama-3.1-8B")
    assert spec.params_total == 8_030_261_248
    assert (spec.num_layers, spec.num_attention_heads, spec.num_kv_heads, spec.head_dim) == (32, 32, 8, 128)
    assert spec.kv_bytes_per_token(2) == 32 * 2 * 8 * 128 * 2
    assert spec.kv_bytes_per_token(2, tp=8) == 32 * 2 * 1 * 128 * 2
    assert spec.kv_bytes_per_token(2, tp=16) == 32 * 2 * 1 * 128 * 2  # KV heads replicated past n_kv
    assert spec.max_position_embeddings == 131072 and spec.family == "llama"


def test_mistral_v01_sliding_window_everywhere():
    spec = _spec("mistralai/Mistral-7B-v0.1")
    assert {(l.kind, l.window) for l in spec.layers_kv} == {(AttentionKind.SLIDING, 4096)}
    v03 = _spec("mistralai/Mistral-7B-Instruct-v0.3")
    assert {l.kind for l in v03.layers_kv} == {AttentionKind.FULL}


def test_gemma_windows_and_layer_pattern():
    g2 = _spec("google/gemma-2-9b")
    assert [l.kind for l in g2.layers_kv[:2]] == [AttentionKind.SLIDING, AttentionKind.FULL]
    assert g2.layers_kv[0].window == 4096 and g2.dtype == "float32"
    g3 = _spec("google/gemma-3-12b-it")
    kinds = [l.kind for l in g3.layers_kv]
    assert kinds.count(AttentionKind.SLIDING) == 40 and kinds.count(AttentionKind.FULL) == 8
    assert kinds[5] is AttentionKind.FULL and g3.layers_kv[0].window == 1024


def test_gpt_oss_alternating_windows_and_biases():
    spec = _spec("openai/gpt-oss-20b")
    assert [l.kind for l in spec.layers_kv[:2]] == [AttentionKind.SLIDING, AttentionKind.FULL]
    assert spec.layers_kv[0].window == 128
    names = {t.name for t in spec.tensors if t.layer == 0}
    assert {"model.layers.0.self_attn.sinks", "model.layers.0.mlp.router.bias",
            "model.layers.0.mlp.experts.gate_up_proj.bias", "model.layers.0.mlp.experts.down_proj.bias"} <= names
    gate_up = next(t for t in spec.tensors if t.name == "model.layers.0.mlp.experts.gate_up_proj.weight")
    assert gate_up.shape == (2 * 2880, 2880) and gate_up.count == 32 and gate_up.shard is Shard.EXPERT
    assert spec.quantization_config["quant_method"] == "mxfp4"


def test_llama4_chunked_attention_and_interleaving():
    spec = _spec("meta-llama/Llama-4-Scout-17B-16E-Instruct")
    kinds = [l.kind for l in spec.layers_kv]
    assert kinds[:4] == [AttentionKind.CHUNKED] * 3 + [AttentionKind.FULL]
    assert spec.layers_kv[0].window == 8192
    assert (spec.num_experts, spec.experts_per_token, spec.num_shared_experts) == (16, 1, 1)


def test_deepseek_v3_mla_and_mtp():
    spec = _spec("deepseek-ai/DeepSeek-V3")
    assert spec.is_mla and spec.num_kv_heads == 0
    assert spec.layers_kv[0].kind is AttentionKind.MLA and spec.layers_kv[0].head_size_k == 576
    assert spec.kv_bytes_per_token(2, tp=8) == 61 * 576 * 2  # MLA latent is not split by TP
    # MTP module: one MoE decoder layer + own embedding/head + enorm/hnorm/shared_head.norm + eh_proj
    assert spec.mtp_params == 13_463_426_048
    assert spec.params_total + spec.mtp_params == 684_489_830_400
    shards = {t.name.rsplit(".", 2)[-2]: t.shard for t in spec.tensors if t.layer == 5 and "self_attn" in t.name}
    assert shards["q_a_proj"] is Shard.REPLICATED and shards["kv_a_proj_with_mqa"] is Shard.REPLICATED
    assert shards["q_b_proj"] is Shard.COLUMN and shards["kv_b_proj"] is Shard.COLUMN and shards["o_proj"] is Shard.ROW


def test_deepseek_v2_lite_has_no_q_lora():
    spec = _spec("deepseek-ai/DeepSeek-V2-Lite")
    names = {t.name for t in spec.tensors if t.layer == 0}
    assert "model.layers.0.self_attn.q_proj.weight" in names
    assert not any("q_a_proj" in n for n in names)


def test_phi3_fused_tensors_split_with_exact_rows():
    spec = _spec("microsoft/Phi-3-mini-128k-instruct")
    layer0 = {t.name: t for t in spec.tensors if t.layer == 0}
    q = layer0["model.layers.0.self_attn.qkv_proj[q].weight"]
    k = layer0["model.layers.0.self_attn.qkv_proj[k].weight"]
    assert (q.shape, q.shard, k.shape, k.shard) == ((3072, 3072), Shard.COLUMN, (3072, 3072), Shard.KV)
    assert layer0["model.layers.0.mlp.gate_up_proj[up].weight"].shape == (8192, 3072)


def test_sharding_classes_of_a_dense_layer():
    spec = _spec("Qwen/Qwen2.5-7B")
    by_name = {t.name.removeprefix("model.layers.3."): t for t in spec.tensors if t.layer == 3}
    assert by_name["self_attn.q_proj.weight"].shard is Shard.COLUMN
    assert by_name["self_attn.q_proj.bias"].shard is Shard.COLUMN
    assert by_name["self_attn.k_proj.bias"].shard is Shard.KV
    assert by_name["self_attn.o_proj.weight"].shard is Shard.ROW
    assert "self_attn.o_proj.bias" not in by_name
    assert by_name["mlp.down_proj.weight"].shard is Shard.ROW
    assert by_name["input_layernorm.weight"].shard is Shard.REPLICATED
    emb = next(t for t in spec.tensors if t.component is Component.EMBEDDING)
    assert emb.shard is Shard.VOCAB and emb.layer is None and not emb.quantizable
    assert by_name["mlp.gate_proj.weight"].quantizable and not by_name["input_layernorm.weight"].quantizable


def test_quantization_recorded_not_applied():
    fp8 = _spec("Qwen/Qwen3-32B-FP8")
    plain = _spec("Qwen/Qwen3-32B")
    assert fp8.quantization_config["quant_method"] == "fp8"
    assert fp8.params_total == plain.params_total
    awq = _spec("Qwen/Qwen3-32B-AWQ")
    assert awq.quantization_config["quant_method"] == "awq" and awq.dtype == "float16"


def test_modelopt_side_file_becomes_quantization_config():
    model = "nvidia/Llama-3.1-70B-Instruct-FP8"
    side = json.loads((BUNDLED / "nvidia--Llama-3.1-70B-Instruct-FP8.hf_quant_config.json").read_text())
    spec = build_spec(dict(CONFIGS)[model], model, extra={"hf_quant_config": side})
    assert spec.quantization_config["quant_method"] == "modelopt"
    assert spec.quantization_config["quant_algo"] == "FP8"
    assert spec.params_total == 70_553_706_496


@pytest.mark.parametrize(("model", "rotary"), [
    ("meta-llama/Meta-Llama-3.1-8B", 128),
    ("microsoft/phi-2", 32),             # partial_rotary_factor 0.4 of head_dim 80
    ("zai-org/GLM-4.5-Air", 64),         # 0.5 of 128
    ("deepseek-ai/DeepSeek-V3", 64),     # MLA: qk_rope_head_dim
])
def test_rotary_dim(model, rotary):
    assert _spec(model).rotary_dim == rotary
