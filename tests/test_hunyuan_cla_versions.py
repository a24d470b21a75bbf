"""HunYuan v1 (hunyuan_v1_dense / hunyuan_v1_moe) configs reportgen used to refuse for its own reasons (issue 12,
branch hunyuancla): cross-layer attention, a non-silu ``hidden_act``, a MoE of one expert.  Each verdict below is
what the vLLM release sdists (/work/vllm_src/vllm-X.Y.Z) do, checked against their text where they are unpacked:

* ``use_cla`` with ``cla_share_factor`` f > 1 -- refused on every release, with vLLM's reason per range.  The native
  file (0.10.0 - 0.28.0) builds layer i with ``i % f != 0`` as ``HunYuanCrossAttention``: a ``q_proj`` of
  hidden x hidden, no k/v projections, an ``Attention`` of ``attn_type=AttentionType.ENCODER_DECODER`` fed the K/V
  of the layer before (0.28.0 hunyuan_v1.py:101-104 ``_get_cla_factor``, 298-329, 489-524, 651-667).  V1 then:
  0.10.0 - 0.10.1.1 ``gpu_model_runner.get_kv_cache_spec`` ``raise NotImplementedError`` for ENCODER_DECODER
  (0.10.0 gpu_model_runner.py:2826-2827); 0.10.2 - 0.11.0 give the layer a ``CrossAttentionSpec`` (0.10.2
  :3684-3690), whose blocks ``CrossAttentionManager`` allocates per *encoder* token (none for text) and whose
  ``find_longest_cache_hit`` raises NotImplementedError("CrossAttentionManager does not support caching")
  (single_type_kv_cache_manager.py:647-648), called for every request by ``HybridKVCacheCoordinator`` when prefix
  caching is on (kv_cache_coordinator.py:385; on by default, arg_utils.py); 0.11.1 - 0.28.0
  ``Attention.get_kv_cache_spec`` ``assert self.attn_type == AttentionType.DECODER`` (0.11.1 attention/layer.py:463,
  0.28.0 model_executor/layers/attention/attention.py:608).  0.29 on: no hunyuan_v1.py, the Transformers backend, and
  no vLLM file reads ``use_cla`` but hy_v3_mtp.py; transformers' class has no CLA (the meta device below builds the
  same model with and without it).  f = 1 (vLLM's default when ``cla_share_factor`` is absent) or one layer: no
  cross layer -> priced as without CLA, every release.
* ``hidden_act`` other than silu -- vLLM's ``HunYuanMLP`` raises ``ValueError("Unsupported activation: ...")`` in
  every native release (0.10.0 hunyuan_v1.py:112, 0.28.0 :136) -> priced from 0.29, as transformers builds it (an
  activation has no parameters); the backend's FusedMoE runs silu whatever it says (0.29.0 transformers/moe.py:
  211-215), a note.  An activation transformers' ACT2FN lacks: refused (KeyError there too).
* no ``head_dim`` -- vLLM's ``HunYuanAttention`` takes ``attention_head_dim`` when the config has it, else hidden //
  heads (0.10.0 hunyuan_v1.py:157-162, 0.28.0 :178-183); transformers' attention reads ``config.head_dim`` (class
  default None) and raises TypeError at ``self.head_dim**-0.5`` (transformers 5.25 modeling_hunyuan_v1_*.py:161-163)
  -> priced for 0.10 - 0.28 as the native file builds it, refused from 0.29 (``from_release``); refused outright when
  the native file also builds something else than transformers (``use_qk_norm`` false ...).
* hunyuan_v1_moe with ``num_experts == 1`` -- ``_is_moe`` wants ``> 1``: 0.11.0 - 0.28.0 ``RuntimeError("No HunYuanMoE
  layer found in model.layers.")`` (0.11.0 hunyuan_v1.py:949, 0.28.0 :1001); 0.10.x builds dense MLPs and its
  ``load_weights`` has no ``mlp.gate`` for the router ``mlp.gate.wg.weight`` (0.10.0 :833-836) -> priced from 0.29,
  transformers' MoE block with one expert (hand-derived below and on the meta device).

Configs: Hunyuan-A13B's fields (tests/test_arch_flagships_gqa.py HUNYUAN_MOE, written from memory there) and
Hunyuan-Large's architecture fields -- not in the repo's data (tests/data, sources/bundled, the shared reference
configs hold no hunyuan config); transcribed from a public test copy of its config (MindIE atb_llm
``test_flash_causal_hunyuan.py``: hidden 6400, 80 heads, 8 KV heads, 18304 intermediate, 16 experts, top-1, one
shared expert, ``use_cla`` with ``cla_share_factor`` 2, vocab 129024, tied) with 64 layers, and re-typed as
``hunyuan_v1_moe`` (its own checkpoint is ``model_type: hunyuan`` / ``HunYuanForCausalLM``, which no vLLM release
registers).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reportgen.arch import build_spec
from reportgen.arch.errors import ConfigError
from reportgen.estimate.kvcache import kv_bytes_per_token
from reportgen.estimate.served import spec_for_version
from test_arch_flagships_gqa import HUNYUAN_MOE

SRC = Path("/work/vllm_src")
needs_sdists = pytest.mark.skipif(not SRC.is_dir(), reason="vLLM release sdists not unpacked")


def _releases() -> list[str]:
    key = lambda v: tuple(int(p) for p in v.split("."))
    return sorted((p.name.removeprefix("vllm-") for p in SRC.glob("vllm-0.*")), key=key) if SRC.is_dir() else []


def _v(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("."))


NATIVE = [v for v in _releases() if _v(v) < (0, 29)]
BACKEND = [v for v in _releases() if _v(v) >= (0, 29)]


def _read(v: str, rel: str) -> str:
    return (SRC / f"vllm-{v}" / "vllm" / rel).read_text()


def _attention_layer(v: str) -> str:
    for rel in ("model_executor/layers/attention/attention.py", "attention/layer.py"):
        if (SRC / f"vllm-{v}" / "vllm" / rel).is_file():
            return _read(v, rel)
    raise FileNotFoundError(v)


# Hunyuan-Large's architecture (module docstring), as hunyuan_v1_moe
LARGE = {"model_type": "hunyuan_v1_moe", "architectures": ["HunYuanMoEV1ForCausalLM"], "hidden_size": 6400,
         "intermediate_size": 18304, "num_hidden_layers": 64, "num_attention_heads": 80, "num_key_value_heads": 8,
         "num_experts": 16, "moe_topk": 1, "num_shared_expert": 1, "use_mixed_mlp_moe": True, "use_qk_norm": True,
         "use_cla": True, "cla_share_factor": 2, "vocab_size": 129024, "tie_word_embeddings": True,
         "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu",
         "attention_bias": False}


# Hunyuan-A13B's attention / dense width as hunyuan_v1_dense (the MoE fields dropped)
DENSE = dict({k: v for k, v in HUNYUAN_MOE.items()
              if k not in ("moe_intermediate_size", "num_experts", "moe_topk", "num_shared_expert", "use_mixed_mlp_moe")},
             model_type="hunyuan_v1_dense", architectures=["HunYuanDenseV1ForCausalLM"])


# ---------------------------------------------------------------- the vLLM sdists

@needs_sdists
def test_native_file_builds_sharing_layers_as_encoder_decoder_attention():
    assert NATIVE[0] == "0.10.0" and NATIVE[-1] == "0.28.0"
    for v in NATIVE:
        src = _read(v, "model_executor/models/hunyuan_v1.py")
        # _get_cla_factor: cla_share_factor (default 1) only with use_cla
        assert re.search(r'if not getattr\(config, "use_cla", False\):\s+return 1\s+'
                         r'return getattr\(config, "cla_share_factor", 1\)', src), v
        # layer_id % cla_factor != 0 -> ENCODER_DECODER -> HunYuanCrossAttention
        assert re.search(r"AttentionType\.ENCODER_DECODER\s+if layer_id >= 0 and layer_id % cla_factor != 0\s+"
                         r"else\s+AttentionType\.DECODER", src), v
        cross = src[src.index("class HunYuanCrossAttention"):src.index("class HunYuanSparseMoeBlock")]
        assert "self.q_proj = ColumnParallelLinear(" in cross and "qkv_proj" not in cross, v
        assert re.search(r"self\.attn = Attention\([^)]*attn_type=AttentionType\.ENCODER_DECODER", cross), v


@needs_sdists
def test_v1_cache_spec_per_release_for_encoder_decoder_attention():
    for v in NATIVE:
        runner = _read(v, "v1/worker/gpu_model_runner.py")
        if _v(v) < (0, 10, 2):
            assert re.search(r"attn_type == AttentionType\.ENCODER_DECODER:\s+raise NotImplementedError\n", runner), v
        elif _v(v) < (0, 11, 1):
            assert re.search(r"attn_type == AttentionType\.ENCODER_DECODER:\s+kv_cache_spec\[layer_name\] = "
                             r"CrossAttentionSpec\(", runner), v
            mgr = _read(v, "v1/core/single_type_kv_cache_manager.py")
            assert '"CrossAttentionManager does not support caching"' in mgr, v
            coord = _read(v, "v1/core/kv_cache_coordinator.py")
            assert "self.other_attention_cls.find_longest_cache_hit(" in coord, v
            # a decoder-only model's encoder length is 0: the cross-attention spec needs no memory
            reg = _read(v, "multimodal/registry.py")
            assert re.search(r"def get_encdec_max_encoder_len.*?if not model_config\.is_encoder_decoder:\s+return 0",
                             reg, re.S), v
        else:
            assert "AttentionType.ENCODER_DECODER" not in runner, v
            layer = _attention_layer(v)
            body = layer[layer.index("def get_kv_cache_spec"):]
            body = body[:body.index("\n    def ", 10) if "\n    def " in body[10:] else len(body)]
            assert "assert self.attn_type == AttentionType.DECODER" in body and "ENCODER_DECODER" not in body, v


@needs_sdists
def test_backend_releases_read_no_cla():
    assert BACKEND and BACKEND[0] == "0.29.0"
    for v in BACKEND:
        root = SRC / f"vllm-{v}" / "vllm"
        assert not (root / "model_executor/models/hunyuan_v1.py").exists(), v
        reg = _read(v, "model_executor/models/registry.py")
        assert '"HunYuanMoEV1ForCausalLM": ("transformers", "TransformersMoEForCausalLM")' in reg, v
        readers = {p.name for p in root.rglob("*.py") if re.search(r"\buse_cla\b", p.read_text(errors="ignore"))}
        assert readers <= {"hy_v3_mtp.py"}, (v, readers)


@needs_sdists
def test_activation_and_single_expert_errors_per_release():
    for v in NATIVE:
        src = _read(v, "model_executor/models/hunyuan_v1.py")
        assert re.search(r'Unsupported activation: \{hidden_act\}\. "?\s*"?Only silu is supported for now\.', src), v
        assert re.search(r"if isinstance\(num_experts, int\):\s+return num_experts > 1", src), v
        has_check = 'raise RuntimeError("No HunYuanMoE layer found in model.layers.")' in src
        assert has_check == (_v(v) >= (0, 11)), v
        if not has_check:
            assert "class HunYuanMoEV1ForCausalLM(HunYuanV1Base):" in src and 'if "mlp.gate.wg." in name:' in src
    moe = _read("0.29.0", "model_executor/models/transformers/moe.py")
    assert re.search(r'activation = "silu"\s+wrapped_arch = .*\s+if "gptoss" in wrapped_arch:\s+'
                     r'activation = "swigluoai"', moe)


# ---------------------------------------------------------------- reportgen's verdicts

def test_cla_refused_with_vllms_reason_per_release():
    for cfg in (dict(HUNYUAN_MOE, use_cla=True, cla_share_factor=2), LARGE,
                dict(DENSE, use_cla=True, cla_share_factor=3)):
        reason = build_spec(cfg).unsupported_reason
        assert reason and "cla_share_factor" in reason
        for words in ("0.10.0 - 0.10.1 raise NotImplementedError", "CrossAttentionManager does not support caching",
                      "assert attn_type == AttentionType.DECODER", "from 0.29 vLLM has no cross-layer attention"):
            assert words in reason, words


@pytest.mark.parametrize("change", [{"use_cla": True}, {"use_cla": True, "cla_share_factor": 1},
                                    {"use_cla": False, "cla_share_factor": 2}])
def test_cla_without_a_sharing_layer_is_priced_on_every_release(change):
    """f = 1 (vLLM's default) or use_cla false: every layer a HunYuanAttention with its own qkv_proj and cache."""
    spec = build_spec(dict(HUNYUAN_MOE, **change))
    base = build_spec(HUNYUAN_MOE)
    assert spec.unsupported_reason is None and spec.served_from is None
    assert spec.params_total == base.params_total == 80_393_183_232
    assert kv_bytes_per_token(spec, "auto", 2, 1) == 32 * 2 * 8 * 128 * 2 == 131072
    for v in ("0.10", "0.11", "0.28", "0.29", "0.34"):
        assert spec_for_version(spec, v).unsupported_reason is None


def test_cla_one_layer_has_no_sharing_layer():
    cfg = dict(HUNYUAN_MOE, num_hidden_layers=1, moe_topk=8, moe_intermediate_size=3072, num_shared_expert=1,
               use_cla=True, cla_share_factor=2)
    assert build_spec(cfg).unsupported_reason is None


@pytest.mark.parametrize("factor", [0, -2, 1.5, True])
def test_cla_factor_must_be_a_positive_integer(factor):
    with pytest.raises(ConfigError, match="cla_share_factor"):
        build_spec(dict(HUNYUAN_MOE, use_cla=True, cla_share_factor=factor))


def test_hunyuan_large_without_cla_hand_derived():
    """The same architecture with use_cla off and head_dim 80 (hidden / heads, what vLLM derives): priced on every
    release.  Tied embedding 129024 x 6400; per layer q / o 6400 x 6400 (80 heads x 80), k / v 640 x 6400, q/k norms
    80 each, two layer norms, router 16 x 6400, 16 experts + 1 shared MLP of 3 x 6400 x 18304; final norm."""
    cfg = dict(LARGE, use_cla=False, head_dim=80)
    spec = build_spec(cfg)
    assert spec.unsupported_reason is None and spec.served_from is None
    layer = (2 * 6400 * 6400 + 2 * 640 * 6400 + 2 * 80 + 2 * 6400 + 16 * 6400 + 17 * 3 * 6400 * 18304)
    assert spec.params_total == 129024 * 6400 + 64 * layer + 6400 == 388_963_549_440
    assert kv_bytes_per_token(spec, "auto", 2, 1) == 64 * 2 * 8 * 80 * 2 == 163840
    # tp 8: one KV head per rank
    assert kv_bytes_per_token(spec, "auto", 2, 8) == 64 * 2 * 1 * 80 * 2


def test_non_silu_priced_from_the_backend_release():
    for family, base in (("hunyuan_v1_moe", HUNYUAN_MOE), ("hunyuan_v1_dense", DENSE)):
        cfg = dict(base, hidden_act="gelu")
        spec = build_spec(cfg)
        assert spec.unsupported_reason is None and spec.served_from[0] == (0, 29)
        # an activation holds no parameters: the silu build's count
        assert spec.params_total == build_spec(dict(cfg, hidden_act="silu")).params_total
        for v in ("0.10", "0.28"):
            reason = spec_for_version(spec, v).unsupported_reason
            assert reason and 'Unsupported activation: gelu. Only silu is supported for now.' in reason
        assert spec_for_version(spec, "0.29").unsupported_reason is None
        assert any("computing silu" in n for n in spec.notes) == (family == "hunyuan_v1_moe")


def test_activation_transformers_lacks_is_refused():
    reason = build_spec(dict(HUNYUAN_MOE, hidden_act="swishy")).unsupported_reason
    assert reason and "Unsupported activation: swishy" in reason and "ACT2FN" in reason


def test_single_expert_priced_from_the_backend_release():
    """num_experts 1: transformers' MoE block, one expert.  Tied embedding 128167 x 4096; per layer q / o 4096^2,
    k / v 1024 x 4096, q/k norms 128 each, two layer norms, router 1 x 4096, one expert + the shared MLP of
    3 x 4096 x 3072; final norm."""
    spec = build_spec(dict(HUNYUAN_MOE, num_experts=1, moe_topk=1))
    assert spec.unsupported_reason is None and spec.served_from[0] == (0, 29)
    layer = 2 * 4096 * 4096 + 2 * 1024 * 4096 + 2 * 128 + 2 * 4096 + 4096 + 2 * 3 * 4096 * 3072
    assert spec.params_total == 128167 * 4096 + 32 * layer + 4096 == 4_283_473_920
    assert (spec.num_experts, spec.experts_per_token) == (1, 1)
    assert kv_bytes_per_token(spec, "auto", 2, 1) == 131072
    for v, words in (("0.10", "no mlp.gate parameter"), ("0.11", "No HunYuanMoE layer found in model.layers."),
                     ("0.28", "No HunYuanMoE layer found in model.layers.")):
        reason = spec_for_version(spec, v).unsupported_reason
        assert reason and words in reason
    assert spec_for_version(spec, "0.29").unsupported_reason is None


# ---------------------------------------------------------------- meta device (transformers, the 0.29+ build)

def test_meta_device_matches_and_transformers_ignores_cla():
    pytest.importorskip("torch")
    from oracle_support import meta_count

    small = dict(HUNYUAN_MOE, hidden_size=64, intermediate_size=48, moe_intermediate_size=None, num_hidden_layers=4,
                 num_attention_heads=4, num_key_value_heads=2, head_dim=16, vocab_size=100, num_experts=4,
                 moe_topk=2, num_shared_expert=1, pad_token_id=None, bos_token_id=None, eos_token_id=None)
    # transformers has no CLA: use_cla / cla_share_factor change nothing it builds (what 0.29+ serves)
    assert meta_count(dict(small, use_cla=True, cla_share_factor=2)) == meta_count(small)
    for change in ({"hidden_act": "gelu"}, {"num_experts": 1, "moe_topk": 1},
                   {"model_type": "hunyuan_v1_dense", "architectures": ["HunYuanDenseV1ForCausalLM"],
                    "hidden_act": "gelu_pytorch_tanh"}):
        cfg = dict(small, **change)
        assert build_spec(cfg).params_total == meta_count(cfg), change


def test_hunyuan_large_on_the_meta_device():
    """transformers builds Hunyuan-Large's CLA config (head_dim 80 stated) as the hand-derived model without CLA:
    every layer its own k / v projections -- what the Transformers backend (0.29+) would hold."""
    pytest.importorskip("torch")
    from oracle_support import meta_count

    assert meta_count(dict(LARGE, head_dim=80)) == 388_963_549_440


# ---------------------------------------------------------------- no head_dim: native only

@needs_sdists
def test_native_head_size_fallbacks():
    for v in NATIVE:
        src = _read(v, "model_executor/models/hunyuan_v1.py")
        attn = src[src.index("class HunYuanAttention"):src.index("class HunYuanCrossAttention")]
        assert re.search(r'if hasattr\(config, "head_dim"\) and config\.head_dim:\s+self\.head_dim = config\.head_dim\s+'
                         r'elif hasattr\(config, "attention_head_dim"\):\s+self\.head_dim = config\.attention_head_dim\s+'
                         r'else:\s+self\.head_dim = self\.hidden_size // self\.total_num_heads', attn), v


def test_transformers_cannot_build_without_head_dim():
    pytest.importorskip("torch")
    from oracle_support import meta_count

    cfg = dict(DENSE, hidden_size=64, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2, vocab_size=50,
               intermediate_size=32, pad_token_id=None, bos_token_id=None, eos_token_id=None)
    del cfg["head_dim"], cfg["attention_head_dim"]
    with pytest.raises(TypeError, match="NoneType"):
        meta_count(cfg)


@pytest.mark.parametrize("attention_head_dim", [None, 64])
def test_no_head_dim_priced_natively_refused_from_the_backend(attention_head_dim):
    """Hunyuan-A13B's geometry without head_dim: vLLM 0.10 - 0.28 take attention_head_dim (64 here) or 4096 / 32 = 128.
    Tied embedding 128167 x 4096; per layer q / o 32 x d x 4096, k / v 8 x d x 4096, q/k norms d each, two layer
    norms, router 64 x 4096, 64 experts + the shared MLP of 3 x 4096 x 3072; final norm."""
    cfg = {k: v for k, v in HUNYUAN_MOE.items() if k not in ("head_dim", "attention_head_dim")}
    if attention_head_dim:
        cfg["attention_head_dim"] = attention_head_dim
    d = attention_head_dim or 128
    spec = build_spec(cfg)
    assert spec.unsupported_reason is None and spec.served_from is None and spec.head_dim == d
    layer = 2 * 32 * d * 4096 + 2 * 8 * d * 4096 + 2 * d + 2 * 4096 + 64 * 4096 + 65 * 3 * 4096 * 3072
    assert spec.params_total == 128167 * 4096 + 32 * layer + 4096
    assert kv_bytes_per_token(spec, "auto", 2, 1) == 32 * 2 * 8 * d * 2
    for v in ("0.10", "0.28"):
        assert spec_for_version(spec, v).unsupported_reason is None
    for v in ("0.29", "0.34"):
        reason = spec_for_version(spec, v).unsupported_reason
        assert reason and "without head_dim" in reason and "TypeError" in reason
    pytest.importorskip("torch")
    from oracle_support import meta_count

    # the native model is transformers' with that head_dim stated (small widths: the same structure)
    small = dict(cfg, hidden_size=64, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=2,
                 intermediate_size=16, moe_intermediate_size=None, num_experts=4, moe_topk=2, num_shared_expert=1,
                 vocab_size=50, pad_token_id=None, bos_token_id=None, eos_token_id=None)
    if attention_head_dim:
        small["attention_head_dim"] = 8
    assert build_spec(small).params_total == meta_count(dict(small, head_dim=8 if attention_head_dim else 16))


def test_no_head_dim_and_a_native_difference_refused_outright():
    reason = build_spec(dict(HUNYUAN_MOE, head_dim=None, use_qk_norm=False)).unsupported_reason
    assert reason and "without head_dim" in reason and "use_qk_norm" in reason
    with pytest.raises(ConfigError, match="attention_head_dim"):
        build_spec(dict(HUNYUAN_MOE, head_dim=None, attention_head_dim=None))
