"""Gemma 3n text model (gemma3n_text, vLLM gemma3n.py @7bbfbc7f): exact parameters against the meta device
(transformers 5.24 Gemma3nForCausalLM) on the class defaults -- they are google/gemma-3n-E4B's text model;
no shipped gemma3n config is in tests/data -- and >= 200 random valid configs; KV geometry, KV sharing
targets, sharding and pipeline validity from vLLM's model file (the composite: tests/test_gemma3n_mm.py).

KV bytes per token: vLLM ``AttentionSpec.real_page_size_bytes`` / block = 2 x num_kv_heads x head_size x
dtype bytes per layer holding a cache; a layer built with ``kv_sharing_target_layer_name`` holds none.
"""

from __future__ import annotations

import importlib.util

import pytest
from hypothesis import assume, given, strategies as st

from reportgen.arch import build_spec
from reportgen.arch.spec import AttentionKind, Shard
from reportgen.estimate.kvcache import kv_bytes_per_token
from oracle_support import check, class_defaults, examples, oracle_settings

SETTINGS = oracle_settings(examples("FLAGSHIP_ORACLE_EXAMPLES"))
FULL, SLIDING, NONE = AttentionKind.FULL, AttentionKind.SLIDING, AttentionKind.NONE
# the meta-device count (tests/oracle_support.py imports torch only when counting): only these tests need it
HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="the meta-device oracle needs torch")


def defaults() -> dict:
    return class_defaults("gemma3n_text")


def tensor(spec, name):
    (t,) = [t for t in spec.tensors if t.name == name]
    return t


# ---------------------------------------------------------------- the E4B text model (class defaults)

def test_e4b_text_exact_and_component_sums():
    """35 layers, hidden 2048, 8 / 2 heads of 256, MLP 16384, PLE 256 x 35 over a 262144 vocab, AltUp 4,
    LAuReL 64, the last 15 layers KV-shared.  Hand count of the parameters (transformers has no k/v/k_norm
    on the 15 shared layers; the lm_head is the tied embedding)."""
    spec = build_spec(defaults())
    assert spec.unsupported_reason is None and spec.family == "gemma3n_text"
    h, n, ple, alt, rank, hd = 2048, 35, 256, 4, 64, 256
    q, kv, o = h * 8 * hd, h * 2 * hd, 8 * hd * h
    per_layer = (q + o + hd                              # q, o, q_norm
                 + 3 * h * 16384                         # gate, up, down
                 + alt * alt + alt * alt * alt + h * alt + 2 * h    # AltUp (+ router_norm, correct_output_scale)
                 + 2 * h * rank + h                      # LAuReL
                 + 2 * h * ple + h                       # PLE gate / projection / norm
                 + 4 * h)                                # four layer norms
    own_kv = 2 * kv + hd                                 # k, v, k_norm on the 20 cache-holding layers
    model = 262_400 * h + 262_144 * n * ple + h * n * ple + ple + 2 * (alt - 1) * h * h + h
    assert spec.params_total == n * per_layer + 20 * own_kv + model == 6_835_235_568
    assert spec.tie_word_embeddings and not any(t.name.startswith("lm_head") for t in spec.tensors)


@needs_torch
def test_e4b_text_class_defaults_match_meta_device():
    check(defaults())


def test_e4b_kv_sharing_follows_vllm_offsets():
    """vLLM Gemma3nAttention: a layer >= first = 35 - 15 = 20 reads layer first - 2 = 18 (sliding) or
    first - 1 = 19 (full) and holds no cache; layer types 4 sliding : 1 full (class default)."""
    spec = build_spec(defaults())
    kinds = [(l.kind, l.num_kv_heads, l.head_size_k, l.window) for l in spec.layers_kv]
    for i in range(20):
        assert kinds[i] == ((FULL, 2, 256, None) if (i + 1) % 5 == 0 else (SLIDING, 2, 256, 512)), i
    assert all(k[0] is NONE for k in kinds[20:]) and len(kinds) == 35
    assert spec.kv_sharing == tuple((i, 19 if (i + 1) % 5 == 0 else 18) for i in range(20, 35))
    bf16 = 16 * 2 * 2 * 256 * 2 + 4 * 2 * 2 * 256 * 2          # 16 sliding + 4 full layers hold a cache
    assert kv_bytes_per_token(spec, "auto", 2, 1) == bf16 == 40_960
    assert kv_bytes_per_token(spec, "fp8", 2, 1) == bf16 // 2
    assert kv_bytes_per_token(spec, "auto", 2, 4) == bf16 // 2    # 2 KV heads replicated over 4 ranks


def test_e4b_sharding_and_allocated_kv():
    """vLLM builds qkv_proj / k_norm on every layer (shared ones: allocated_only), LAuReL left COLUMN /
    right ROW, AltUp coefficient and router linears replicated, altup (un)embed projections COLUMN."""
    spec = build_spec(defaults())
    k = tensor(spec, "model.layers.25.self_attn.k_proj.weight")
    assert k.allocated_only and k.shard is Shard.KV and k.shape == (512, 2048)
    assert not tensor(spec, "model.layers.5.self_attn.k_proj.weight").allocated_only
    assert tensor(spec, "model.layers.0.laurel.linear_left.weight").shard is Shard.COLUMN
    assert tensor(spec, "model.layers.0.laurel.linear_right.weight").shard is Shard.ROW
    for name in ("correction_coefs", "prediction_coefs", "modality_router"):
        assert tensor(spec, f"model.layers.0.altup.{name}.weight").shard is Shard.REPLICATED
    assert tensor(spec, "model.altup_projections.2.weight").shard is Shard.COLUMN
    assert tensor(spec, "model.embed_tokens_per_layer.weight").shape == (262_144, 35 * 256)
    # sliding default rope at 10k, full at 1M: two get_rope caches, rotary_dim = head_dim
    assert spec.rope_caches == ((32_768, 256, 0), (32_768, 256, 0))


def test_pp_is_invalid_tp_is_not():
    """Gemma3nForCausalLM lacks SupportsPP: vLLM raises for pp > 1 -> invalid_layout; tp is modelled."""
    from reportgen.estimate.layout import Layout
    from reportgen.estimate.tables import ModelTables

    tables = ModelTables(build_spec(defaults()))
    head, _, _ = tables.row(Layout(tp=1, pp=2), "checkpoint", "auto")
    assert head[6] == "invalid_layout" and "SupportsPP" in head[7]
    head, _, n = tables.row(Layout(tp=2, pp=1), "checkpoint", "auto")
    assert head[6] is None and n >= 1


@pytest.mark.parametrize(("change", "words"), [
    ({"hidden_activation": "gelu"}, "gelu_pytorch_tanh"),
    ({"altup_correct_scale": False}, "altup_correct_scale"),
    ({"tie_word_embeddings": False}, "no lm_head"),
])
def test_refusals(change, words):
    reason = build_spec(dict(defaults(), **change)).unsupported_reason
    assert reason and words in reason


def test_composite_is_priced_by_its_own_module():
    """The composite (timm vision tower, audio conformer, embedders) is tests/test_gemma3n_mm.py's; the text
    model inside it is this module's build, under model.language_model."""
    spec = build_spec(class_defaults("gemma3n"))
    assert spec.unsupported_reason is None and spec.params_text == build_spec(defaults()).params_total


# ---------------------------------------------------------------- random configs against the meta device

@st.composite
def gemma3n_text_configs(draw):
    heads = draw(st.sampled_from([1, 2, 4, 8]))
    kv = draw(st.sampled_from([d for d in (1, 2, 4, 8) if heads % d == 0]))
    n = draw(st.integers(1, 6))
    pattern = draw(st.integers(1, 5))
    layer_types = ["full_attention" if (i + 1) % pattern == 0 else "sliding_attention" for i in range(n)]
    n_shared = draw(st.integers(0, n - 1))
    assume(set(layer_types[: n - n_shared]) == set(layer_types))      # transformers' kv_sharing_modes check
    widths = draw(st.one_of(st.integers(1, 48), st.lists(st.integers(1, 48), min_size=n, max_size=n)))
    return dict(model_type="gemma3n_text", architectures=["Gemma3nForCausalLM"], num_hidden_layers=n,
                num_attention_heads=heads, num_key_value_heads=kv, head_dim=draw(st.sampled_from([4, 8, 16])),
                hidden_size=heads * draw(st.sampled_from([2, 4, 8])), vocab_size=draw(st.integers(8, 300)),
                vocab_size_per_layer_input=draw(st.integers(8, 300)), layer_types=layer_types,
                hidden_size_per_layer_input=draw(st.integers(1, 8)), num_kv_shared_layers=n_shared,
                intermediate_size=widths, altup_num_inputs=draw(st.integers(1, 4)),
                laurel_rank=draw(st.integers(1, 8)), attention_bias=draw(st.booleans()),
                sliding_window=draw(st.sampled_from([4, 512])), max_position_embeddings=draw(st.integers(16, 4096)),
                pad_token_id=None, bos_token_id=None, eos_token_id=None)


@needs_torch
@SETTINGS
@given(gemma3n_text_configs())
def test_random_gemma3n_text_configs_match_meta_device(cfg):
    spec = check(cfg)
    first = cfg["num_hidden_layers"] - cfg["num_kv_shared_layers"]
    holding = [i for i, l in enumerate(spec.layers_kv) if l.kind is not NONE]
    # vLLM: a shared layer whose offset target (first - 2 sliding, first - 1 full) is negative keeps a cache
    assert holding == [i for i, t in enumerate(cfg["layer_types"])
                       if i < first or first - (2 if t == "sliding_attention" else 1) < 0]
