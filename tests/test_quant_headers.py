"""Checkpoint-true weights: safetensors header listings mapped onto ModelSpecs (quant/headers.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hubserver import fake_hub, safetensors_bytes  # noqa: F401 - fixture

from reportgen.arch import build_spec
from reportgen.arch.spec import Shard
from reportgen.estimate.quant import HeaderScheme, attach_checkpoint_headers, checkpoint_scheme
from reportgen.estimate.weights import rotary_cache_bytes
from reportgen.job import ModelRef
from reportgen.matrix import estimate_one
from reportgen.sources import checkpoint_weight_bytes, resolve_all

BUNDLED = Path(__file__).resolve().parents[1] / "reportgen" / "sources" / "bundled"
GIB = float(1 << 30)
SIZES = {"F32": 4, "F16": 2, "BF16": 2, "I32": 4, "U8": 1, "I8": 1, "F8_E4M3": 1, "I64": 8}
DT = {"bfloat16": "BF16", "float16": "F16", "float32": "F32"}


def entry(dtype: str, shape) -> dict:
    n = SIZES[dtype]
    for d in shape:
        n *= d
    return {"shape": list(shape), "dtype": dtype, "bytes": n, "file": "model.safetensors"}


def tiny_llama(**over) -> dict:
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 256, "hidden_size": 64,
           "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128,
           "max_position_embeddings": 512, "torch_dtype": "bfloat16", "tie_word_embeddings": False}
    cfg.update(over)
    return cfg


def plain_header(spec, dtype="BF16") -> dict:
    return {t.name: entry(dtype, t.shape) for t in spec.tensors}


def total(header: dict) -> int:
    return sum(v["bytes"] for v in header.values())


# ---------------------------------------------------------------- a synthetic HF-style header for any spec

_PART = {"weight": "weight", "scale": "weight_scale", "input_scale": "input_scale", "zero_point": "qzeros",
         "g_idx": "g_idx", "weight_shape": "weight_shape", "global_scale": "weight_scale_2"}


def hf_header(spec, scheme=None, *, new_multimodal_layout=False) -> dict:
    """The listing a real checkpoint of ``spec`` would have, named the way HF checkpoints name it:
    per-expert tensors (Mixtral ``block_sparse_moe.experts.N.w1``), gpt-oss ``*_blocks``/``*_scales``/
    ``*_bias`` fused experts, Llama-4 fused expert params, phi3 fused ``qkv_proj``/``gate_up_proj``,
    multimodal ``language_model.`` prefixes; bytes per part from ``scheme`` (default: config scheme)."""
    scheme = scheme or checkpoint_scheme(spec, headers=False)
    fam = spec.family
    out: dict[str, dict] = {}

    def put(name, nbytes):
        e = out.setdefault(name, {"shape": [0], "dtype": "U8", "bytes": 0, "file": "model.safetensors"})
        e["bytes"] += nbytes

    def prefix(name):
        if not spec.multimodal:
            return name
        if name.startswith("model."):
            return ("model.language_model." + name[6:]) if new_multimodal_layout else "language_model." + name
        if name.startswith("lm_head"):
            return name if new_multimodal_layout else "language_model." + name
        return ("model." + name) if new_multimodal_layout else name

    for t in spec.tensors:
        parts = scheme.breakdown(t)
        name = re.sub(r"\[[^\]]*\]", "", t.name)
        module, _, leaf = name.rpartition(".")
        if leaf not in ("weight", "bias"):
            module, leaf = name, "weight"
        if fam == "mixtral":
            module = module.replace(".mlp.", ".block_sparse_moe.")
        if t.count > 1 and ".experts." in t.name:
            head, _, proj = module.rpartition(".")
            if fam == "gpt_oss":
                for p, b in parts.items():
                    suffix = "bias" if leaf == "bias" else {"weight": "blocks", "scale": "scales"}.get(p, p)
                    put(prefix(f"{head}.{proj}_{suffix}"), b)
                continue
            if fam in ("llama4", "llama4_text"):
                for p, b in parts.items():
                    put(prefix(f"{head}.{proj}" + ("" if p == "weight" else "_" + _PART.get(p, p))), b)
                continue
            subs = ["gate_proj", "up_proj"] if proj == "gate_up_proj" else [proj]
            if fam == "mixtral":
                subs = {"gate_proj": "w1", "up_proj": "w3", "down_proj": "w2"}
                subs = [subs[s] for s in (["gate_proj", "up_proj"] if proj == "gate_up_proj" else [proj])]
            for p, b in parts.items():
                per = b // t.count // len(subs)
                assert per * t.count * len(subs) == b
                for e in range(t.count):
                    for s in subs:
                        put(prefix(f"{head}.{e}.{s}." + (leaf if p == "weight" else _PART.get(p, p))), per)
            continue
        for p, b in parts.items():
            put(prefix(f"{module}." + (leaf if p == "weight" else _PART.get(p, p))), b)
    return out


# ---------------------------------------------------------------- (a) bf16: header == config, exactly

def test_bf16_llama_headers_equal_config_exactly():
    spec = build_spec(tiny_llama())
    base = checkpoint_scheme(spec)
    before = estimate_one(spec, 79.19, tp=2, weight_dtype="checkpoint")
    header = plain_header(spec)
    rep = attach_checkpoint_headers(spec, header)
    scheme = checkpoint_scheme(spec)
    assert isinstance(scheme, HeaderScheme) and scheme.name == "bf16+headers" and scheme.origin == "checkpoint"
    assert checkpoint_scheme(spec, headers=False).name == "bf16"
    assert all(scheme.tensor_bytes(t) == base.tensor_bytes(t) for t in spec.tensors)
    assert rep["weight_bytes"] == rep["config_weight_bytes"] == total(header)
    assert rep["header_bytes"] == rep["matched_bytes"] == total(header)
    assert rep["unmatched"] == [] and rep["fallback"] == [] and rep["spec_tensors_from_headers"] == len(spec.tensors)
    after = estimate_one(spec, 79.19, tp=2, weight_dtype="checkpoint")
    assert after["weight_scheme"] == "bf16+headers"
    assert after["weights_gib"] == before["weights_gib"] and after["kv_cache_tokens"] == before["kv_cache_tokens"]


def test_full_checkpoint_weight_bytes_result_is_accepted_and_tied_embedding_stored_once():
    spec = build_spec(tiny_llama(tie_word_embeddings=True))
    assert not any(t.name.startswith("lm_head") for t in spec.tensors)
    header = plain_header(spec)
    rep = attach_checkpoint_headers(spec, {"source": "safetensors", "revision": "abc", "total_bytes": total(header),
                                           "tensors": header})
    assert spec.checkpoint_tensors is header and rep["revision"] == "abc"
    assert rep["weight_bytes"] == rep["config_weight_bytes"] == total(header) and rep["fallback"] == []
    # a checkpoint that also stores the tied lm_head: excluded (vLLM reuses the embedding), not double counted
    header2 = dict(header, **{"lm_head.weight": entry("BF16", (256, 64))})
    rep2 = attach_checkpoint_headers(spec, header2)
    assert rep2["weight_bytes"] == total(header)
    assert [(u["module"], u["bytes"]) for u in rep2["unmatched"]] == [("lm_head", 256 * 64 * 2)]
    assert "tied" in rep2["unmatched"][0]["reason"]


# ---------------------------------------------------------------- (b) fp8 per channel + scales

def fp8_channel_header(spec, static_input=False) -> dict:
    out = {}
    for t in spec.tensors:
        if t.quantizable and len(t.shape) == 2 and not t.name.startswith(("lm_head", "model.embed")):
            mod = t.name[: -len(".weight")]
            out[mod + ".weight"] = entry("F8_E4M3", t.shape)
            out[mod + ".weight_scale"] = entry("F32", (t.shape[0], 1))
            if static_input:
                out[mod + ".input_scale"] = entry("F32", ())
        else:
            out[t.name] = entry("BF16", t.shape)
    return out


def test_fp8_per_channel_headers_exact():
    spec = build_spec(tiny_llama(quantization_config={"quant_method": "fbgemm_fp8"}))
    base = checkpoint_scheme(spec)
    assert base.name == "fp8-channel"
    header = fp8_channel_header(spec)
    rep = attach_checkpoint_headers(spec, header)
    scheme = checkpoint_scheme(spec)
    assert scheme.name == "fp8-channel+headers" and scheme.method == "fbgemm_fp8"
    assert rep["weight_bytes"] == rep["config_weight_bytes"] == total(header) and rep["unmatched"] == []
    q = next(t for t in spec.tensors if t.name == "model.layers.0.self_attn.q_proj.weight")
    assert scheme.tensor_bytes(q) == 64 * 64 + 64 * 4 == base.tensor_bytes(q)
    assert scheme.breakdown(q) == {"weight": 64 * 64, "weight_scale": 64 * 4}
    # the checkpoint also stores static input scales the config does not announce: true bytes include them
    spec2 = build_spec(tiny_llama(quantization_config={"quant_method": "fbgemm_fp8"}))
    rep2 = attach_checkpoint_headers(spec2, fp8_channel_header(spec2, static_input=True))
    assert rep2["weight_bytes"] == rep2["config_weight_bytes"] + 2 * 7 * 4
    assert checkpoint_scheme(spec2).tensor_bytes(q) == 64 * 64 + 64 * 4 + 4


# ---------------------------------------------------------------- (c) MoE: per-expert and fused expert tensors

def tiny_qwen3_moe(**over) -> dict:
    cfg = {"architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "vocab_size": 256,
           "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
           "head_dim": 16, "intermediate_size": 128, "moe_intermediate_size": 32, "num_experts": 4,
           "num_experts_per_tok": 2, "max_position_embeddings": 512, "torch_dtype": "bfloat16",
           "tie_word_embeddings": False, "decoder_sparse_step": 1, "mlp_only_layers": []}
    cfg.update(over)
    return cfg


def test_moe_per_expert_tensors_collapse_into_the_counted_entry():
    spec = build_spec(tiny_qwen3_moe())
    gu = next(t for t in spec.tensors if t.name == "model.layers.1.mlp.experts.gate_up_proj.weight")
    assert gu.count == 4 and gu.shape == (64, 64) and gu.shard is Shard.EXPERT
    header = hf_header(spec)
    assert "model.layers.1.mlp.experts.3.up_proj.weight" in header
    assert "model.layers.1.mlp.experts.gate_up_proj.weight" not in header
    # an fp8 checkpoint would add scales per expert: give expert 2 of layer 1 an extra scale tensor
    header["model.layers.1.mlp.experts.2.gate_proj.weight_scale"] = entry("F32", (32, 1))
    rep = attach_checkpoint_headers(spec, header)
    scheme = checkpoint_scheme(spec)
    assert rep["unmatched"] == [] and rep["fallback"] == [] and rep["warnings"] == []
    assert scheme.tensor_bytes(gu) == 4 * 2 * 32 * 64 * 2 + 32 * 4
    assert rep["weight_bytes"] == rep["config_weight_bytes"] + 128 == total(header)
    # per rank: proportional share (no backend padding outside MXFP4), with and without EP
    assert scheme.expert_rank_bytes(gu, 2) == scheme.tensor_bytes(gu) / 2
    assert scheme.expert_rank_bytes(gu, 1, 1) == scheme.tensor_bytes(gu) / 4


def test_moe_missing_experts_warned():
    spec = build_spec(tiny_qwen3_moe())
    header = {k: v for k, v in hf_header(spec).items() if ".experts.3." not in k}
    rep = attach_checkpoint_headers(spec, header)
    assert any("3 experts in the checkpoint, 4 in the config" in w for w in rep["warnings"])


def _bundled(name: str) -> dict:
    return json.loads((BUNDLED / f"{name}.json").read_text())


def test_gpt_oss_mxfp4_fused_experts_keep_vllm_padding():
    spec = build_spec(_bundled("openai--gpt-oss-20b"))
    base = checkpoint_scheme(spec)
    assert base.name == "mxfp4" and base.moe_padding
    header = hf_header(spec)
    assert "model.layers.0.mlp.experts.gate_up_proj_blocks" in header
    assert "model.layers.0.mlp.experts.down_proj_bias" in header
    rep = attach_checkpoint_headers(spec, header)
    scheme = checkpoint_scheme(spec)
    assert scheme.name == "mxfp4+headers" and scheme.moe_padding == base.moe_padding
    assert rep["unmatched"] == [] and rep["fallback"] == [] and rep["weight_bytes"] == rep["config_weight_bytes"]
    gu = next(t for t in spec.tensors if t.name == "model.layers.0.mlp.experts.gate_up_proj.weight")
    bias = next(t for t in spec.tensors if t.name == "model.layers.0.mlp.experts.gate_up_proj.bias")
    assert scheme.tensor_bytes(bias) == 32 * 5760 * 2
    for moe_tp, n in ((1, None), (2, None), (4, None), (1, 8)):
        padded = base.expert_rank_bytes(gu, moe_tp, n)
        assert scheme.expert_rank_bytes(gu, moe_tp, n) == pytest.approx(padded, rel=1e-12)
    a = estimate_one(spec, 79.19, tp=2, weight_dtype="checkpoint")
    spec.checkpoint_tensors = None
    b = estimate_one(spec, 79.19, tp=2, weight_dtype="checkpoint")
    assert a["weights_gib"] == pytest.approx(b["weights_gib"], rel=1e-12) and b["weight_scheme"] == "mxfp4"


# ---------------------------------------------------------------- (d) phi3 fused qkv / gate_up

def tiny_phi3(**over) -> dict:
    cfg = {"architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "vocab_size": 256, "hidden_size": 64,
           "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128,
           "max_position_embeddings": 512, "torch_dtype": "bfloat16", "tie_word_embeddings": False}
    cfg.update(over)
    return cfg


def test_phi3_fused_qkv_split_by_config_bytes():
    spec = build_spec(tiny_phi3())
    names = {t.name: t for t in spec.tensors}
    q, k, v = (names[f"model.layers.0.self_attn.qkv_proj[{x}].weight"] for x in "qkv")
    assert (q.shard, k.shard, v.shard) == (Shard.COLUMN, Shard.KV, Shard.KV)
    header = hf_header(spec)
    assert header["model.layers.0.self_attn.qkv_proj.weight"]["bytes"] == (64 + 32 + 32) * 64 * 2
    rep = attach_checkpoint_headers(spec, header)
    scheme = checkpoint_scheme(spec)
    assert rep["unmatched"] == [] and rep["fallback"] == [] and rep["weight_bytes"] == total(header)
    assert (scheme.tensor_bytes(q), scheme.tensor_bytes(k), scheme.tensor_bytes(v)) == (64 * 64 * 2, 32 * 64 * 2,
                                                                                         32 * 64 * 2)
    # fp8 per-tensor checkpoint: ONE scale for the fused module (the config counts one per part);
    # the module's stored bytes are split in proportion, to the byte
    spec8 = build_spec(tiny_phi3(quantization_config={"quant_method": "fp8", "activation_scheme": "dynamic"}))
    header8 = hf_header(spec8)
    for layer in (0, 1):
        header8[f"model.layers.{layer}.self_attn.qkv_proj.weight_scale"] = entry("F32", ())
        header8[f"model.layers.{layer}.mlp.gate_up_proj.weight_scale"] = entry("F32", ())
    rep8 = attach_checkpoint_headers(spec8, header8)
    s8 = checkpoint_scheme(spec8)
    assert rep8["weight_bytes"] == total(header8) == rep8["config_weight_bytes"] - 2 * (2 + 1) * 4
    n8 = {t.name: t for t in spec8.tensors}
    parts = [s8.tensor_bytes(n8[f"model.layers.0.self_attn.qkv_proj[{x}].weight"]) for x in "qkv"]
    assert sum(parts) == 128 * 64 + 4
    assert parts == [64 * 64 + 2, 32 * 64 + 1, 32 * 64 + 1]          # the one scale: 2 + 1 + 1 bytes


# ---------------------------------------------------------------- (e) unmatched tensors reported and excluded

def test_mtp_layer_and_rotary_buffers_reported_and_excluded():
    spec = build_spec(tiny_llama())
    header = plain_header(spec)
    extra = {}
    # an MTP / next-n layer after the 2 decoder layers, as DeepSeek-V3 ships model.layers.61.*
    for n in ("self_attn.q_proj.weight", "mlp.experts.0.gate_proj.weight", "mlp.experts.1.gate_proj.weight",
              "enorm.weight", "eh_proj.weight"):
        extra[f"model.layers.2.{n}"] = entry("BF16", (64, 64))
    extra["model.layers.0.self_attn.rotary_emb.inv_freq"] = entry("F32", (8,))
    extra["model.layers.0.self_attn.o_proj.bias"] = entry("BF16", (64,))      # the spec has no o_proj bias
    rep = attach_checkpoint_headers(spec, {**header, **extra})
    assert rep["header_bytes"] == total(header) + total(extra)
    assert rep["matched_bytes"] == rep["weight_bytes"] == rep["config_weight_bytes"] == total(header)
    assert rep["unmatched_bytes"] == total(extra) and rep["unmatched_tensors"] == len(extra)
    by_module = {u["module"]: u for u in rep["unmatched"]}
    assert by_module["model.layers.2.mlp.experts.*.gate_proj"]["tensors"] == 2
    assert "MTP" in by_module["model.layers.2.mlp.experts.*.gate_proj"]["reason"]
    assert "rotary" in by_module["model.layers.0.self_attn.rotary_emb"]["reason"]
    assert "no bias" in by_module["model.layers.0.self_attn.o_proj"]["reason"]
    assert rep["unmatched"][0]["bytes"] >= rep["unmatched"][-1]["bytes"]       # largest first


def test_deepseek_v3_fp8_checkpoint_mtp_layer_and_router_bias():
    spec = build_spec(_bundled("deepseek-ai--DeepSeek-V3"))
    assert spec.num_layers == 61 and spec.mtp_params > 0
    base = checkpoint_scheme(spec)
    assert base.name == "fp8-block128"
    header = {k.replace(".weight_scale", ".weight_scale_inv"): v for k, v in hf_header(spec).items()}
    assert "model.layers.3.mlp.experts.255.down_proj.weight_scale_inv" in header
    for layer in range(3, 61):
        header[f"model.layers.{layer}.mlp.gate.e_score_correction_bias"] = entry("F32", (256,))
    mtp = {"model.layers.61.enorm.weight": entry("BF16", (7168,)),
           "model.layers.61.eh_proj.weight": entry("F8_E4M3", (7168, 14336)),
           "model.layers.61.embed_tokens.weight": entry("BF16", (129280, 7168)),
           "model.layers.61.shared_head.head.weight": entry("BF16", (129280, 7168))}
    for e in range(256):
        for p in ("gate_proj", "up_proj", "down_proj"):
            mtp[f"model.layers.61.mlp.experts.{e}.{p}.weight"] = entry("F8_E4M3", (2048, 7168))
            mtp[f"model.layers.61.mlp.experts.{e}.{p}.weight_scale_inv"] = entry("F32", (16, 56))
    rep = attach_checkpoint_headers(spec, {**header, **mtp})
    scheme = checkpoint_scheme(spec)
    assert scheme.name == "fp8-block128+headers"
    assert rep["unmatched_bytes"] == total(mtp) and rep["fallback"] == []
    assert all("MTP" in u["reason"] and u["module"].startswith("model.layers.61.") for u in rep["unmatched"])
    assert {u["module"] for u in rep["unmatched"]} >= {"model.layers.61.mlp.experts.*.gate_proj",
                                                      "model.layers.61.shared_head.head"}
    assert rep["weight_bytes"] == rep["config_weight_bytes"] + 58 * 256 * 4
    gate = next(t for t in spec.tensors if t.name == "model.layers.3.mlp.gate.weight")
    assert scheme.breakdown(gate) == {"weight": 256 * 7168 * 2, "e_score_correction_bias": 256 * 4}


def test_per_layer_differences_survive_the_weight_table():
    from reportgen.estimate.weights import build_weight_table
    spec = build_spec(tiny_llama(quantization_config={"quant_method": "fbgemm_fp8"}))
    header = fp8_channel_header(spec)
    header["model.layers.1.mlp.down_proj.input_scale"] = entry("F32", ())
    attach_checkpoint_headers(spec, header)
    table = build_weight_table(spec, checkpoint_scheme(spec), 2)
    assert table.per_layer[1].tp_split - table.per_layer[0].tp_split == 4


def test_spec_tensors_missing_from_header_fall_back_to_config():
    spec = build_spec(tiny_llama(quantization_config={"quant_method": "fbgemm_fp8"}))
    header = fp8_channel_header(spec)
    del header["model.layers.1.mlp.down_proj.weight"], header["model.layers.1.mlp.down_proj.weight_scale"]
    rep = attach_checkpoint_headers(spec, header)
    assert [f["tensor"] for f in rep["fallback"]] == ["model.layers.1.mlp.down_proj.weight"]
    assert rep["fallback_bytes"] == 64 * 128 + 64 * 4
    assert rep["weight_bytes"] == total(header) + rep["fallback_bytes"]


def test_float_tensors_at_another_dtype_are_counted_as_stored_and_reported():
    spec = build_spec(tiny_llama())
    header = plain_header(spec)
    header["model.norm.weight"] = entry("F32", (64,))
    rep = attach_checkpoint_headers(spec, header)
    assert rep["float_other_dtype"] == {"F32": 256} and rep["weight_bytes"] == rep["config_weight_bytes"] + 128


# ---------------------------------------------------------------- every bundled family, HF naming

FAMILY_MODELS = ["meta-llama--Llama-3.2-1B-Instruct", "Qwen--Qwen3-30B-A3B", "Qwen--Qwen3-30B-A3B-FP8",
                 "Qwen--Qwen1.5-MoE-A2.7B-Chat", "Qwen--Qwen3-32B-AWQ", "deepseek-ai--DeepSeek-V2-Lite",
                 "deepseek-ai--DeepSeek-V3", "zai-org--GLM-4.5-Air", "mistralai--Mixtral-8x7B-v0.1",
                 "microsoft--Phi-3-mini-128k-instruct", "microsoft--phi-2", "openai--gpt-oss-20b",
                 "nvidia--Qwen3-235B-A22B-NVFP4", "nvidia--Llama-3.1-70B-Instruct-FP8"]
MULTIMODAL = ["google--gemma-3-12b-it", "meta-llama--Llama-4-Scout-17B-16E-Instruct",
              "mistralai--Mistral-Small-3.1-24B-Instruct-2503"]


@pytest.mark.parametrize(("model", "new_layout"), [(m, False) for m in FAMILY_MODELS + MULTIMODAL]
                         + [(m, True) for m in MULTIMODAL])
def test_bundled_families_map_completely(model, new_layout):
    cfg = _bundled(model)
    extra = {}
    hq = BUNDLED / f"{model}.hf_quant_config.json"
    if hq.exists():
        extra["hf_quant_config"] = json.loads(hq.read_text())
    spec = build_spec(cfg, model_id=model.replace("--", "/"), extra=extra or None)
    assert spec.unsupported_reason is None and spec.multimodal == (model in MULTIMODAL)
    header = hf_header(spec, new_multimodal_layout=new_layout)
    header["model.layers.0.self_attn.rotary_emb.inv_freq"] = entry("F32", (8,))
    rep = attach_checkpoint_headers(spec, header)
    assert rep["unmatched_bytes"] == 32 and rep["fallback"] == [], rep["unmatched"]
    assert rep["weight_bytes"] == rep["config_weight_bytes"] == total(header) - 32
    base, scheme = checkpoint_scheme(spec, headers=False), checkpoint_scheme(spec)
    assert scheme.name == base.name + "+headers"
    for t in spec.tensors:
        assert scheme.tensor_bytes(t) == base.tensor_bytes(t), t.name


# ---------------------------------------------------------------- (f) fake hub end to end

def test_fake_hub_checkpoint_weights_end_to_end(fake_hub):
    cfg = tiny_llama(quantization_config={"quant_method": "fbgemm_fp8"})
    spec0 = build_spec(cfg)
    listing = fp8_channel_header(spec0, static_input=True)                 # + input_scale the config omits
    listing["model.layers.0.self_attn.rotary_emb.inv_freq"] = entry("F32", (8,))
    listing["model.layers.2.eh_proj.weight"] = entry("BF16", (64, 128))     # an MTP-style extra layer
    fake_hub.add("acme/tiny-fp8", {"config.json": cfg, "model.safetensors": safetensors_bytes(
        {k: (v["dtype"], v["shape"]) for k, v in listing.items()})})

    (resolved,) = resolve_all([ModelRef("acme/tiny-fp8")], timeout=2, retries=0)
    assert resolved.source == "hub"
    header = checkpoint_weight_bytes(ModelRef("acme/tiny-fp8"), retries=0)
    assert header["total_bytes"] == total(listing)
    spec = build_spec(resolved.config)
    config_row = estimate_one(spec, 79.19, tp=2, weight_dtype="checkpoint")
    rep = attach_checkpoint_headers(spec, header)
    assert rep["unmatched_bytes"] == 8 * 4 + 64 * 128 * 2 and rep["fallback"] == []
    row = estimate_one(spec, 79.19, tp=2, weight_dtype="checkpoint")
    assert row["weight_scheme"] == "fp8-channel+headers"

    # by hand, tp=2: embedding / lm_head vocab-parallel (256 rows, no padding), q/gate/up column (/2),
    # o/down row (/2), k/v: 2 KV heads over 2 ranks (/2), norms replicated; fp8 weight + fp32 scale
    # per output row + one fp32 input scale per Linear (from the header)
    h, i, kv = 64, 128, 32
    lin = lambda o, n: o * n + o * 4 + 4          # noqa: E731
    per_layer = (lin(h, h) + 2 * lin(kv, h) + lin(h, h) + 2 * lin(i, h) + lin(h, i)) / 2 + 2 * h * 2
    tensors = 2 * (256 * h * 2) / 2 + 2 * per_layer + h * 2
    rank = tensors + rotary_cache_bytes(spec, 2)
    assert row["weights_gib"] == pytest.approx(rank / GIB, rel=1e-12)
    assert row["weights_gib"] - config_row["weights_gib"] == pytest.approx(2 * 7 * 4 / 2 / GIB, rel=1e-9)
