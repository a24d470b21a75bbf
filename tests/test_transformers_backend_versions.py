"""Families vLLM moved from a native model file to its Transformers backend: priced per release.

estimate/tf_backend.py ``BACKEND_FROM`` (generated from the release sdists' registry.py by
scripts/tf_backend_releases.py) names the first release that maps an architecture to
``TransformersForCausalLM`` / ``TransformersMoEForCausalLM``; ``served.spec_for_version`` re-reads the spec
for it.  What changes there (vllm 0.25.0 - 0.34.0 sdists ``model_executor/models/transformers/``): no vLLM
``get_rope`` cos_sin_cache -- the transformers rotary module's two fp32 ``inv_freq`` buffers instead; the per-rank
shards are the native ones (QKV / GLU fusion, the config class's ``base_model_tp_plan``); configs only the
transformers class builds (hunyuan, olmo2/3, olmoe) are priced from that release on (``served_from``).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.arch.spec import Shard as S
from reportgen.estimate.served import spec_for_version
from reportgen.estimate.tf_backend import BACKEND_FROM, backend_from, backend_rope_caches
from reportgen.estimate.weights import rotary_cache_bytes

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "reportgen" / "sources" / "bundled"
SRC = Path("/work/vllm_src")
transformers = pytest.importorskip("transformers")


def bundled(name: str) -> dict:
    return json.loads((BUNDLED / f"{name}.json").read_text())


def defaults(model_type: str, arch: str, **kw) -> dict:
    """The transformers config class defaults (real, shipped with the library) with the architecture vLLM
    resolves (a config without ``architectures`` is refused by vLLM)."""
    return dict(transformers.AutoConfig.for_model(model_type, **kw).to_dict(), architectures=[arch])


def registry_line(version: str, line: int) -> str:
    return (SRC / f"vllm-{version}" / "vllm/model_executor/models/registry.py").read_text().splitlines()[line - 1]


# ---------------------------------------------------------------- the table

needs_sdists = pytest.mark.skipif(not SRC.is_dir(), reason="vLLM release sdists not unpacked")


@needs_sdists
def test_table_is_what_the_sdists_registries_say():
    sys.path.insert(0, str(ROOT / "scripts"))
    import tf_backend_releases

    table = tf_backend_releases.table(SRC)
    assert {a: (v, c) for a, (v, c, _) in table.items()} == BACKEND_FROM


@needs_sdists
@pytest.mark.parametrize(("arch", "first", "line", "before", "native_line", "native"), [
    # first backend release: registry.py line there; the release before: the native entry
    ("Starcoder2ForCausalLM", "0.25.0", 645, "0.24.0", 211, '("starcoder2", "Starcoder2ForCausalLM")'),
    ("Olmo2ForCausalLM", "0.26.0", 660, "0.25.0", 172, '("olmo2", "Olmo2ForCausalLM")'),
    ("OlmoForCausalLM", "0.26.0", 659, "0.25.0", 171, '("olmo", "OlmoForCausalLM")'),
    ("Olmo3ForCausalLM", "0.29.0", 691, "0.28.0", None, None),
    ("HunYuanMoEV1ForCausalLM", "0.29.0", 688, "0.28.0", None, None),
    ("PhiForCausalLM", "0.32.0", 725, "0.31.0", None, None),
    ("GlmForCausalLM", "0.32.0", 714, "0.31.0", None, None),
    ("SeedOssForCausalLM", "0.32.0", 726, "0.31.0", None, None),
    ("GemmaForCausalLM", "0.34.0", 787, "0.33.0", None, None),
    ("OlmoeForCausalLM", "0.34.0", 800, "0.33.0", None, None),
    ("StableLmForCausalLM", "0.34.0", 804, "0.33.0", None, None),
])
def test_first_backend_release_cites_the_sdist(arch, first, line, before, native_line, native):
    assert BACKEND_FROM[arch][0] == first
    assert f'"{arch}": ("transformers", "Transformers' in registry_line(first, line)
    text = (SRC / f"vllm-{before}" / "vllm/model_executor/models/registry.py").read_text()
    assert f'"{arch}": ("transformers"' not in text
    if native_line:
        assert native in registry_line(before, native_line)


def test_the_brief_list_was_late_for_the_first_movers():
    """GPTBigCode / Starcoder2 moved in 0.25, Olmo / Olmo2 in 0.26, VaultGemma in 0.27 (not 0.28)."""
    assert {a: BACKEND_FROM[a][0] for a in ("GPTBigCodeForCausalLM", "Starcoder2ForCausalLM", "OlmoForCausalLM",
                                            "Olmo2ForCausalLM", "VaultGemmaForCausalLM")} == {
        "GPTBigCodeForCausalLM": "0.25.0", "Starcoder2ForCausalLM": "0.25.0", "OlmoForCausalLM": "0.26.0",
        "Olmo2ForCausalLM": "0.26.0", "VaultGemmaForCausalLM": "0.27.0"}
    assert BACKEND_FROM["HunYuanMoEV1ForCausalLM"][1] == BACKEND_FROM["OlmoeForCausalLM"][1] == \
        "TransformersMoEForCausalLM"
    assert backend_from(["Foo", "GemmaForCausalLM"]) == (0, 34, 0) and backend_from(["LlamaForCausalLM"]) is None


# ---------------------------------------------------------------- rotary: the only byte that moves

@pytest.mark.parametrize(("cfg", "before", "after", "native", "backend"), [
    # phi-2 (bundled config.json): partial_rotary_factor 0.4 of head_dim 80 -> 32; max_position_embeddings 2048
    (bundled("microsoft--phi-2"), "0.31", "0.32", ((2048, 32, 0),), ((2, 16, 4),)),
    # gemma-7b: head_dim 256, 8192 positions
    (bundled("google--gemma-7b"), "0.33", "0.34", ((8192, 256, 0),), ((2, 128, 4),)),
    # Starcoder2Config defaults (the 7B shape): head_dim 3072 / 24 = 128, 4096 positions
    (defaults("starcoder2", "Starcoder2ForCausalLM"), "0.24", "0.25", ((4096, 128, 0),), ((2, 64, 4),)),
    # Olmo2Config defaults (the 7B shape): 4096 / 32 = 128, 2048 positions
    (defaults("olmo2", "Olmo2ForCausalLM"), "0.25", "0.26", ((2048, 128, 0),), ((2, 64, 4),)),
    # SeedOssConfig defaults (Seed-OSS-36B): 524288 positions x 128 -- 128 MiB of bf16 cos/sin natively
    (defaults("seed_oss", "SeedOssForCausalLM"), "0.31", "0.32", ((524288, 128, 0),), ((2, 64, 4),)),
])
def test_rotary_cache_before_and_after_the_move(cfg, before, after, native, backend):
    spec = build_spec(cfg)
    assert spec.unsupported_reason is None
    old, new = spec_for_version(spec, before), spec_for_version(spec, after)
    assert old.rope_caches == native and new.rope_caches == backend == backend_rope_caches(native)
    rows, rot, _ = native[0]
    assert rotary_cache_bytes(old, 2) == rows * rot * 2
    assert rotary_cache_bytes(new, 2) == 2 * (rot // 2) * 4
    assert old.tensors == new.tensors and old.layers_kv == new.layers_kv   # shards and KV: unchanged
    assert spec_for_version(spec, "0.34").rope_caches == backend           # stays in the backend


@pytest.mark.parametrize("tp", [1, 2, 4])
def test_phi2_weights_per_gpu_drop_by_the_cos_sin_cache_only(tp):
    """End to end (estimate_one): vLLM 0.31 (native phi.py) vs 0.32 (Transformers backend) -- every rank holds one
    2048 x 32 bf16 cos_sin_cache natively (131072 B) and 2 x 16 fp32 inv_freq buffers (128 B) on the backend."""
    from reportgen.matrix import estimate_one

    spec = build_spec(bundled("microsoft--phi-2"))
    old = estimate_one(spec, 80, tp=tp, vllm_version="0.31", max_model_len=2048)
    new = estimate_one(spec, 80, tp=tp, vllm_version="0.32", max_model_len=2048)
    assert round((old["weights_gib"] - new["weights_gib"]) * 2**30) == 131072 - 128
    assert old["kv_bytes_per_token"] == new["kv_bytes_per_token"]


def test_backend_built_families_are_not_replaced_twice():
    """smollm3 is priced as the backend builds it (families/transformers_backend.py): its inv_freq buffers stay."""
    smol = build_spec(json.loads((ROOT / "tests/data/configs_2026/HuggingFaceTB--SmolLM3-3B.json").read_text()))
    assert smol.backend_built and spec_for_version(smol, "0.31").rope_caches == ((2, 64, 4),)


def test_olmo1_native_rotary_before_026_and_gqa_only_on_the_backend():
    """vllm 0.25.0 sdist olmo.py:86-106: QKVParallelLinear(hidden, hidden // heads, heads) -- MHA only -- and a
    get_rope(head_dim, max_position_embeddings) cache; 0.26 builds the transformers class (registry.py:659)."""
    cfg = dict(model_type="olmo", architectures=["OlmoForCausalLM"], hidden_size=4096, num_hidden_layers=32,
               num_attention_heads=32, num_key_value_heads=32, intermediate_size=11008, vocab_size=50304,
               max_position_embeddings=2048, tie_word_embeddings=False)
    spec = build_spec(cfg)
    assert spec_for_version(spec, "0.25").rope_caches == ((2048, 128, 0),)
    assert rotary_cache_bytes(spec_for_version(spec, "0.25"), 2) == 2048 * 128 * 2
    assert spec_for_version(spec, "0.26").rope_caches == ((2, 64, 4),)
    gqa = build_spec(dict(cfg, num_key_value_heads=8))
    assert "num_attention_heads K/V heads" in spec_for_version(gqa, "0.25").unsupported_reason
    assert spec_for_version(gqa, "0.26").unsupported_reason is None


# ---------------------------------------------------------------- per-rank shards: the config class's tp plan

def backend_shard(model_type: str, name: str) -> S:
    """The shard class vLLM's Transformers backend gives ``name`` (vllm 0.31.0 sdist transformers/):
    q/k/v fuse into QKVParallelLinear (fusers/qkv.py:176-183: q column, k/v by KV head) with a rowwise output
    projection (l.201-208); a gated MLP's gate/up fuse into MergedColumnParallelLinear, its down projection
    rowwise (fusers/glu.py:177-191); any other nn.Linear takes the first ``base_model_tp_plan`` pattern that
    matches (base.py recursive_replace; utils.py:130-136 -- colwise[_gather_output] column,
    rowwise[_split_input] row with a replicated bias, the rest replicated); vocab embeddings / lm_head
    vocab-parallel; FusedMoE experts; norms and routers replicated."""
    if name.startswith(("model.embed_tokens.", "lm_head.")):
        return S.VOCAB
    module, _, kind = name.rpartition(".")
    module = module.split("[")[0]
    leaf = module.rsplit(".", 1)[-1]
    if ".experts." in name:
        return S.EXPERT
    if "norm" in leaf or leaf == "gate":          # RMSNorm / LayerNorm / the MoE router: full on every rank
        return S.REPLICATED
    if re.search(r"self_attn\.[kv]_proj$", module):
        return S.KV
    if re.search(r"self_attn\.q_proj$", module) or leaf in ("gate_proj",) or \
            (leaf == "up_proj" and "gate_proj" in fused_glu(model_type)):
        return S.COLUMN
    if re.search(r"self_attn\.(o_proj|dense)$", module) or (leaf == "down_proj" and fused_glu(model_type)):
        return S.REPLICATED if kind == "bias" else S.ROW
    plan = {f"model.{k}": v for k, v in (transformers.CONFIG_MAPPING[model_type].base_model_tp_plan or {}).items()}
    style = plan.get(next((p for p in plan if re.match(p, module)), None), "replicate")
    if style.startswith("colwise"):
        return S.COLUMN
    if style.startswith("rowwise"):
        return S.REPLICATED if kind == "bias" else S.ROW
    return S.REPLICATED


def fused_glu(model_type: str) -> tuple[str, ...]:
    """The classes whose MLP has separate gate_proj / up_proj (GLUFuser)."""
    return ("gate_proj",) if model_type in ("olmo2", "seed_oss", "gemma", "stablelm", "hunyuan_v1_dense") else ()


@pytest.mark.parametrize(("model_type", "arch", "extra"), [
    ("starcoder2", "Starcoder2ForCausalLM", {}),
    ("olmo2", "Olmo2ForCausalLM", {}),
    ("phi", "PhiForCausalLM", {}),
    ("glm", "GlmForCausalLM", {}),
    ("seed_oss", "SeedOssForCausalLM", {}),
    ("gemma", "GemmaForCausalLM", {}),
    ("stablelm", "StableLmForCausalLM", {}),
    ("olmoe", "OlmoeForCausalLM", {}),
    ("arcee", "ArceeForCausalLM", {}),
    ("hunyuan_v1_dense", "HunYuanDenseV1ForCausalLM", {"head_dim": 16, "use_qk_norm": True}),
])
def test_native_shards_are_what_the_backend_builds(model_type, arch, extra):
    """The tensors priced from the native file shard as the backend shards transformers' class -- so at TP 2 / 4
    each rank's weight bytes are the same before and after the move (the rotary buffers aside)."""
    spec = build_spec(defaults(model_type, arch, **extra))
    assert spec.unsupported_reason is None, spec.unsupported_reason
    got = {t.name: t.shard for t in spec.tensors}
    assert got == {n: backend_shard(model_type, n) for n in got}


def test_starcoder2_tp2_shards_per_the_plan():
    """Starcoder2Config.base_model_tp_plan: c_fc colwise, c_proj rowwise; q/k/v fused (4 KV heads of the 15B:
    at TP 8 each rank still holds one, Shard.KV)."""
    plan = transformers.CONFIG_MAPPING["starcoder2"].base_model_tp_plan
    assert (plan["layers.*.mlp.c_fc"], plan["layers.*.mlp.c_proj"]) == ("colwise", "rowwise")
    spec = build_spec(defaults("starcoder2", "Starcoder2ForCausalLM"))
    t = {x.name: x for x in spec.tensors}
    assert (t["model.layers.0.mlp.c_fc.weight"].shard, t["model.layers.0.mlp.c_proj.weight"].shard) == (S.COLUMN, S.ROW)
    assert t["model.layers.0.mlp.c_proj.bias"].shard is S.REPLICATED
    assert t["model.layers.0.mlp.c_fc.weight"].shape == (12288, 3072)


# ---------------------------------------------------------------- configs only transformers' class builds

@pytest.mark.parametrize(("cfg", "first", "words"), [
    (dict(defaults("olmo2", "Olmo2ForCausalLM"), attention_bias=True), (0, 26), "attention_bias"),
    (dict(defaults("olmo3", "Olmo3ForCausalLM"), head_dim=64), (0, 29), "head_dim"),
    (dict(defaults("olmoe", "OlmoeForCausalLM"), tie_word_embeddings=True), (0, 34), "lm_head"),
])
def test_olmo_configs_priced_from_the_backend_release(cfg, first, words):
    from oracle_support import meta_count

    spec = build_spec(cfg)
    assert spec.unsupported_reason is None and spec.served_from[0] == first
    assert spec.params_total == meta_count(cfg)       # transformers' class, exactly
    older = spec_for_version(spec, f"{first[0]}.{first[1] - 1}").unsupported_reason
    assert older and words in older and f"{first[0]}.{first[1]} or newer" in older
    assert spec_for_version(spec, f"{first[0]}.{first[1]}").unsupported_reason is None


HUNYUAN_SMALL = dict(model_type="hunyuan_v1_moe", architectures=["HunYuanMoEV1ForCausalLM"], hidden_size=32,
                     num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                     intermediate_size=24, vocab_size=128, num_experts=4, moe_topk=2, use_qk_norm=True,
                     use_mixed_mlp_moe=True, num_shared_expert=1, hidden_act="silu", tie_word_embeddings=False)


@pytest.mark.parametrize("change", [
    {"use_qk_norm": False}, {"num_shared_expert": 2}, {"use_mixed_mlp_moe": False},
    {"mlp_bias": True}, {"bias": True, "attention_bias": True},
])
def test_hunyuan_configs_the_native_file_builds_differently_match_meta_from_029(change):
    """0.29 builds transformers' HunYuanMoEV1 class (vllm 0.29.0 sdist registry.py:688): exactly the meta count;
    0.28's hunyuan_v1.py builds something else -> refused there with the difference named."""
    from oracle_support import meta_count

    cfg = dict(HUNYUAN_SMALL, **change)
    spec = build_spec(cfg)
    assert spec.unsupported_reason is None and spec.served_from[0] == (0, 29)
    assert spec.params_total == meta_count(cfg)
    assert "hunyuan_v1" in spec_for_version(spec, "0.28").unsupported_reason
    assert spec_for_version(spec, "0.29").unsupported_reason is None


def test_hunyuan_dense_without_qk_norm_matches_meta_from_029():
    from oracle_support import meta_count

    cfg = dict(HUNYUAN_SMALL, model_type="hunyuan_v1_dense", architectures=["HunYuanDenseV1ForCausalLM"],
               use_qk_norm=False)
    for k in ("num_experts", "moe_topk", "use_mixed_mlp_moe", "num_shared_expert"):
        cfg.pop(k)
    spec = build_spec(cfg)
    assert spec.served_from[0] == (0, 29) and spec.params_total == meta_count(cfg)


def test_hunyuan_moe_intermediate_size_refused_on_every_release():
    """The backend's FusedMoE takes moe_intermediate_size before intermediate_size (vllm 0.29.0 sdist
    transformers/moe.py:170-173), as hunyuan_v1.py does natively; transformers' experts are intermediate_size wide:
    vLLM's allocation is never transformers' model."""
    if SRC.is_dir():
        src = (SRC / "vllm-0.29.0/vllm/model_executor/models/transformers/moe.py").read_text().splitlines()
        assert '["moe_intermediate_size", "intermediate_size"]' in src[171]
    spec = build_spec(dict(HUNYUAN_SMALL, moe_intermediate_size=40))
    assert "sizes the experts" in spec.unsupported_reason


def test_stablelm_tp_above_1_unsupported_on_the_backend():
    """0.34 serves StableLmForCausalLM through the backend (registry.py:804); transformers' StableLmAttention
    views q/k/v with the full head counts (modeling_stablelm.py, below), which a TP rank's fused QKV split
    cannot fill: tp > 1 unsupported from 0.34, tp 1 priced; 0.33's native stablelm.py prices every tp."""
    import inspect

    from transformers.models.stablelm import modeling_stablelm

    src = inspect.getsource(modeling_stablelm.StableLmAttention.forward)
    assert "view(bsz, q_len, self.num_heads, self.head_dim)" in src
    from reportgen.matrix import estimate_one

    spec = build_spec(defaults("stablelm", "StableLmForCausalLM"))
    assert spec_for_version(spec, "0.33").tp_unsupported is None
    assert spec_for_version(spec, "0.34").tp_unsupported[0] == 1
    assert estimate_one(spec, 80, tp=2, vllm_version="0.34", max_model_len=2048)["status"] == "unsupported"
    assert estimate_one(spec, 80, tp=1, vllm_version="0.34", max_model_len=2048)["status"] == "fits"
    assert estimate_one(spec, 80, tp=2, vllm_version="0.33", max_model_len=2048)["status"] == "fits"


@pytest.mark.parametrize("change", [{"qk_layernorm": True}, {"use_parallel_residual": True},
                                    {"qk_layernorm": True, "use_parallel_residual": True, "num_key_value_heads": 2}])
def test_stablelm_2_12b_shapes_priced_from_034_at_tp1(change):
    """StableLM-2-12B's per-head q/k LayerNorms and parallel residual: native stablelm.py (<= 0.33) has neither;
    0.34's backend builds transformers' class -- exactly the meta count, tp 1 only."""
    from oracle_support import meta_count

    cfg = dict(defaults("stablelm", "StableLmForCausalLM", hidden_size=64, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=4, intermediate_size=96, vocab_size=256), **change)
    spec = build_spec(cfg)
    assert spec.unsupported_reason is None and spec.served_from[0] == (0, 34)
    assert spec.params_total == meta_count(cfg)
    assert "native stablelm.py" in spec_for_version(spec, "0.33").unsupported_reason
    served = spec_for_version(spec, "0.34")
    assert served.unsupported_reason is None and served.tp_unsupported[0] == 1


@pytest.mark.parametrize(("cfg", "first", "words"), [
    (dict(defaults("seed_oss", "SeedOssForCausalLM"), attention_out_bias=True, mlp_bias=True), (0, 32),
     "attention_out_bias"),
    (dict(defaults("seed_oss", "SeedOssForCausalLM"), attention_bias=False), (0, 32), "attention_bias=false"),
    (dict(defaults("arcee", "ArceeForCausalLM"), qkv_bias=True), (0, 32), "qkv_bias"),
    (dict(defaults("starcoder2", "Starcoder2ForCausalLM"), head_dim=64), (0, 25), "head_dim"),
])
def test_native_only_configs_priced_from_the_backend_release(cfg, first, words):
    """Shrunk to a few layers for the meta build; transformers' class, priced from the backend release only."""
    from oracle_support import meta_count

    cfg = dict(cfg, num_hidden_layers=2, vocab_size=512)
    spec = build_spec(cfg)
    assert spec.unsupported_reason is None and spec.served_from[0] == first
    assert spec.params_total == meta_count(cfg)
    older = spec_for_version(spec, f"{first[0]}.{first[1] - 1}").unsupported_reason
    assert older and words in older
    newer = spec_for_version(spec, f"{first[0]}.{first[1]}")
    assert newer.unsupported_reason is None and newer.rope_caches == ((2, spec.rotary_dim // 2 or spec.head_dim // 2, 4),)


@pytest.mark.parametrize(("model_type", "arch", "extra"), [
    ("starcoder2", "Starcoder2ForCausalLM", {}), ("olmo2", "Olmo2ForCausalLM", {}),
    ("olmo3", "Olmo3ForCausalLM", {"num_hidden_layers": 4}), ("phi", "PhiForCausalLM", {}),
    ("glm", "GlmForCausalLM", {}), ("seed_oss", "SeedOssForCausalLM", {}), ("gemma", "GemmaForCausalLM", {}),
    ("olmoe", "OlmoeForCausalLM", {}), ("stablelm", "StableLmForCausalLM", {}), ("arcee", "ArceeForCausalLM", {}),
    ("hunyuan_v1_dense", "HunYuanDenseV1ForCausalLM", {"head_dim": 16, "use_qk_norm": True}),
])
def test_backend_rotary_bytes_are_the_transformers_modules_buffers(model_type, arch, extra):
    """What the backend keeps of the rotary embedding: the transformers class's own buffers (built here, on the
    CPU, from the config class defaults) -- e.g. Olmo3's one inv_freq pair per layer type."""
    import importlib

    config = transformers.AutoConfig.for_model(model_type, **extra)
    module = importlib.import_module(f"transformers.models.{model_type}.modeling_{model_type}")
    rotary = next(getattr(module, n) for n in dir(module) if n.endswith("RotaryEmbedding") and "Dynamic" not in n)
    buffers = sum(b.numel() * b.element_size() for b in rotary(config=config).buffers())
    spec = build_spec(dict(config.to_dict(), architectures=[arch]))
    assert spec.unsupported_reason is None
    on_backend = spec_for_version(spec, "0.34")
    assert rotary_cache_bytes(on_backend, 2) == buffers
