"""smollm3 / helium / ministral: the models vLLM serves only through its Transformers backend.

vLLM sources read (reportgen/arch/families/transformers_backend.py): registry.py @055e47c2
(``_TRANSFORMERS_SUPPORTED_MODELS``), transformers/base.py and transformers/utils.py @055e47c2
(``recursive_replace``, ``replace_linear_class``, ``create_attention_instances``), fusers/qkv.py @05cce93f,
causal.py @0564ab2e.  Parameter totals are pinned against the meta device in
tests/test_oracle_transformers_backend.py; here: per-tensor shard classes re-derived from the config
class's ``base_model_tp_plan`` with vLLM's rule, the KV geometry, the rotary buffers, the refusals.
"""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.version import Version

from reportgen.arch import build_spec
from reportgen.arch.kv import AttentionKind
from reportgen.arch.registry import ADAPTERS, UNSUPPORTED
from reportgen.arch.spec import Shard as S
from reportgen.estimate.weights import rotary_cache_bytes

transformers = pytest.importorskip("transformers")

DATA = Path(__file__).resolve().parent / "data"
SMOLLM3 = json.loads((DATA / "configs_2026" / "HuggingFaceTB--SmolLM3-3B.json").read_text())
ARCH = {"smollm3": "SmolLM3ForCausalLM", "helium": "HeliumForCausalLM", "ministral": "MinistralForCausalLM",
        "olmo": "OlmoForCausalLM"}


def small(model_type: str, **kw) -> dict:
    cfg = dict(model_type=model_type, architectures=[ARCH[model_type]], hidden_size=32, num_hidden_layers=4,
               num_attention_heads=4, num_key_value_heads=2, head_dim=8, intermediate_size=48, vocab_size=300,
               tie_word_embeddings=False)
    cfg.update(kw)
    return cfg


def vllm_shard(model_type: str, name: str) -> S:
    """The shard class vLLM's Transformers backend gives ``name`` (a parameter of the HF model).

    base.py ``recursive_replace``: an attention module whose q/k/v fuse becomes QKVParallelLinear (q
    column, k/v by KV head) with a RowParallelLinear output; other nn.Linear take the first
    ``base_model_tp_plan`` pattern that ``re.match``es the qualified name (prefixed ``model.``):
    colwise -> column, rowwise -> row (its bias replicated), anything else replicated
    (utils.py ``replace_linear_class``).  Embedding / lm_head: VocabParallelEmbedding / ParallelLMHead;
    norms: replicated.
    """
    if name in ("model.embed_tokens.weight", "lm_head.weight"):
        return S.VOCAB
    module, _, kind = name.rpartition(".")
    if module.endswith(("_proj", "_fc")):
        if re.search(r"self_attn\.[kv]_proj$", module):
            return S.KV
        plan = {f"model.{k}": v for k, v in transformers.CONFIG_MAPPING[model_type].base_model_tp_plan.items()}
        style = plan.get(next((p for p in plan if re.match(p, module)), None), "replicate")
        if style == "colwise":
            return S.COLUMN
        if style == "rowwise":
            return S.REPLICATED if kind == "bias" else S.ROW
        return S.REPLICATED
    return S.REPLICATED


@pytest.mark.parametrize("model_type", sorted(ARCH))
@pytest.mark.parametrize("bias", [False, True])
def test_shards_follow_the_config_class_tp_plan(model_type, bias):
    extra = dict(attention_bias=bias, mlp_bias=bias) if model_type != "ministral" else {}
    spec = build_spec(small(model_type, **extra))
    assert spec.unsupported_reason is None, spec.unsupported_reason
    shards = {t.name: t.shard for t in spec.tensors}
    assert shards == {n: vllm_shard(model_type, n) for n in shards}
    # the plan really is the llama one for these classes (what makes the native-Llama layout apply)
    plan = transformers.CONFIG_MAPPING[model_type].base_model_tp_plan
    assert plan["layers.*.self_attn.o_proj"] == plan["layers.*.mlp.down_proj"] == "rowwise"
    assert {plan[f"layers.*.mlp.{p}"] for p in ("gate_proj", "up_proj")} == {"colwise"}
    biased = {n for n in shards if n.endswith(".bias")}
    if model_type == "smollm3" and bias:
        assert "model.layers.0.self_attn.o_proj.bias" in biased   # o_proj follows attention_bias
    if model_type == "helium" and bias:
        assert "model.layers.0.self_attn.q_proj.bias" in biased
        assert "model.layers.0.self_attn.o_proj.bias" not in biased   # HeliumAttention: o_proj bias=False
    if not bias:
        assert not biased


def test_smollm3_shipped_kv_and_rotary():
    spec = build_spec(SMOLLM3)
    assert spec.unsupported_reason is None
    assert len(spec.layers_kv) == 36
    assert {(l.kind, l.num_kv_heads, l.head_size_k, l.head_size_v) for l in spec.layers_kv} == \
        {(AttentionKind.FULL, 4, 128, 128)}
    # 36 layers x (K + V) x 4 heads x 128 x 2 B; at TP 8 each rank still holds one KV head
    assert spec.kv_bytes_per_token(2) == 36 * 2 * 4 * 128 * 2 == 73728
    assert spec.kv_bytes_per_token(2, tp=8) == 36 * 2 * 1 * 128 * 2
    # no vLLM cos_sin_cache: the HF rotary module's inv_freq + original_inv_freq (fp32, head_dim / 2)
    assert spec.rope_caches == ((2, 64, 4),)
    assert rotary_cache_bytes(spec, 2) == 512


def test_smollm3_sliding_layers_are_the_nope_layers():
    """SmolLM3Config marks the NoPE layers sliding when use_sliding_window; base.py gives those layers
    per_layer_sliding_window = sliding_window, the rest full."""
    spec = build_spec(small("smollm3", num_hidden_layers=8, use_sliding_window=True, sliding_window=64,
                            no_rope_layer_interval=4))
    assert [l.kind for l in spec.layers_kv] == [AttentionKind.FULL] * 3 + [AttentionKind.SLIDING] + \
        [AttentionKind.FULL] * 3 + [AttentionKind.SLIDING]
    assert {l.window for l in spec.layers_kv if l.kind is AttentionKind.SLIDING} == {64}


def test_ministral_every_layer_sliding_by_default():
    spec = build_spec(small("ministral", sliding_window=4096))
    assert {(l.kind, l.window) for l in spec.layers_kv} == {(AttentionKind.SLIDING, 4096)}
    full = build_spec(small("ministral", sliding_window=None))
    assert {l.kind for l in full.layers_kv} == {AttentionKind.FULL}


def test_window_with_no_sliding_layer_puts_every_layer_in_it():
    """transformers/base.py (vLLM 0.22.0 l. 556-563) passes no window for a full layer, so each takes
    cache_config.sliding_window, set because layer_types hold one kind (arg_utils.py l. 1738-1743):
    kv.model_window_fallback."""
    spec = build_spec(small("smollm3", num_hidden_layers=2, use_sliding_window=True, sliding_window=64,
                            no_rope_layer_interval=4))
    assert spec.unsupported_reason is None
    assert [(l.kind, l.window) for l in spec.layers_kv] == [(AttentionKind.SLIDING, 64)] * 2


@pytest.mark.parametrize("cfg, needle", [
    (small("helium", hidden_size=48), "o_proj is hidden x hidden"),
    (small("ministral", head_dim=None), "head_dim null"),
])
def test_refusals_name_the_reason(cfg, needle):
    reason = build_spec(cfg).unsupported_reason
    assert reason is not None and needle in reason


def test_registry_lists_the_backend_models_as_supported():
    for model_type in ARCH:
        assert model_type in ADAPTERS and model_type not in UNSUPPORTED
    # GlmForCausalLM has a native vLLM model (glm.py @466716c2, families/glm.py), not the backend
    assert "glm" in ADAPTERS and "glm" not in ARCH and "glm" not in UNSUPPORTED


@pytest.mark.parametrize("arch", sorted(ARCH.values()))
def test_vllm_reaches_the_backend_for_these_classes(arch):
    """registry.py @055e47c2 ``_try_resolve_transformers``: an architecture vLLM does not list natively is
    served by the backend when transformers has the class and it ``is_backend_compatible()``."""
    assert getattr(transformers, arch).is_backend_compatible()


def test_olmo1_layer_norms_hold_no_parameters():
    """OLMo-1 (OlmoForCausalLM, registry.py @055e47c2 _TRANSFORMERS_SUPPORTED_MODELS): OlmoLayerNorm is
    ``F.layer_norm(x, shape, None, None)`` -- no weight, no bias; everything else is the Llama layout."""
    spec = build_spec(small("olmo", attention_bias=True))
    assert not [t for t in spec.tensors if "norm" in t.name]
    assert {t.name for t in spec.tensors if t.name.endswith(".bias")} == {
        f"model.layers.{i}.self_attn.{p}_proj.bias" for i in range(4) for p in "qkvo"}


ZAMBA_COMPATIBLE = Version(metadata.version("transformers")) >= Version("5.25.0")


@pytest.mark.parametrize("model_type,arch,compatible", [("zamba", "ZambaForCausalLM", ZAMBA_COMPATIBLE),
                                                        ("rwkv", "RwkvForCausalLM", False),
                                                        ("recurrent_gemma", "RecurrentGemmaForCausalLM", True)])
def test_unserved_recurrent_families_refused_with_vllms_reason(model_type, arch, compatible):
    """No native vLLM model (registry.py @055e47c2); the refusal states whether vLLM's auto resolution can reach
    the Transformers backend (``is_backend_compatible()``), and the fact it states holds for the installed
    transformers: Zamba's class became backend-compatible in 5.25 (``_supports_attention_backend = True``), so its
    refusal names both sides and the recurrent-state reason that holds from 5.25 on."""
    assert getattr(transformers, arch).is_backend_compatible() is compatible
    reason = UNSUPPORTED[model_type]
    assert reason.startswith(model_type + ":") and "registry.py @055e47c2" in reason
    if model_type == "zamba":
        assert "before transformers 5.25" in reason and "recurrent-state support" in reason
    else:
        assert ("is_backend_compatible() false" in reason) is not compatible
    assert build_spec({"model_type": model_type}).unsupported_reason == reason
