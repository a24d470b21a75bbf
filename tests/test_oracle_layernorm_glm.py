"""stablelm, nemotron and glm (issue 12: refusals that were reportgen's limits, now priced): exact parameters
against the meta-device oracle (published configs written from the model cards, the transformers 5.24
class defaults, ``LAYERNORM_ORACLE_EXAMPLES`` -- default ``ORACLE_EXAMPLES``, else 200 -- random valid
configs per family), the KV geometry and rotary cache as vLLM allocates them, and the refusals of the
configs vLLM's model files cannot load.

vLLM sources: ``vllm/model_executor/models/stablelm.py`` @4819ff71, ``nemotron.py`` @ccf9c9bc,
``glm.py`` @466716c2 over ``llama.py`` @e06c9ba2, ``rotary_embedding/__init__.py`` @926c71f6 (``get_rope``),
``registry.py`` @bf8e7624.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, strategies as st  # noqa: E402

from reportgen.arch import build_spec  # noqa: E402
from reportgen.arch.spec import AttentionKind  # noqa: E402
from reportgen.estimate.kvcache import kv_bytes_per_token  # noqa: E402
from oracle_support import check, class_defaults, examples, meta_count, oracle_settings  # noqa: E402

SETTINGS = oracle_settings(examples("LAYERNORM_ORACLE_EXAMPLES"), derandomize=True, database=None)

# stabilityai/stablelm-2-1_6b (transformers-5 field names)
STABLELM_2_1_6B = dict(
    model_type="stablelm", architectures=["StableLmForCausalLM"], vocab_size=100352, hidden_size=2048,
    intermediate_size=5632, num_hidden_layers=24, num_attention_heads=32, num_key_value_heads=32,
    use_qkv_bias=True, partial_rotary_factor=0.25, max_position_embeddings=4096, rope_theta=10000,
    layer_norm_eps=1e-5, tie_word_embeddings=False, qk_layernorm=False, use_parallel_residual=False,
    hidden_act="silu")
# stabilityai/stablelm-3b-4e1t
STABLELM_3B = dict(STABLELM_2_1_6B, vocab_size=50304, hidden_size=2560, intermediate_size=6912,
                   num_hidden_layers=32, use_qkv_bias=False)
# nvidia/Minitron-4B-Base
MINITRON_4B = dict(
    model_type="nemotron", architectures=["NemotronForCausalLM"], vocab_size=256000, hidden_size=3072,
    intermediate_size=9216, num_hidden_layers=32, num_attention_heads=24, num_key_value_heads=8, head_dim=128,
    hidden_act="relu2", max_position_embeddings=4096, norm_eps=1e-5, partial_rotary_factor=0.5,
    rope_theta=10000, tie_word_embeddings=False, attention_bias=False, mlp_bias=False)


# ---------------------------------------------------------------- stablelm

def test_stablelm_2_1_6b_matches_meta_device_and_vllm_geometry():
    spec = check(STABLELM_2_1_6B)
    assert spec.params_total == meta_count(STABLELM_2_1_6B)
    # q/k/v biases (use_qkv_bias), o_proj none (vLLM stablelm.py RowParallelLinear(..., bias=False))
    names = {t.name for t in spec.tensors if ".layers.0." in t.name}
    assert "model.layers.0.self_attn.k_proj.bias" in names and "model.layers.0.self_attn.o_proj.bias" not in names
    assert "model.layers.0.input_layernorm.bias" in names               # nn.LayerNorm in vLLM
    # head_dim = hidden // heads = 64; KV: 24 layers x 2 x 32 heads x 64 x 2 B, split by TP
    assert spec.head_dim == 64 and {l.kind for l in spec.layers_kv} == {AttentionKind.FULL}
    assert kv_bytes_per_token(spec, "auto", 2, 1) == 24 * 2 * 32 * 64 * 2
    assert kv_bytes_per_token(spec, "auto", 2, 4) == 24 * 2 * 8 * 64 * 2
    # get_rope: rotary_dim = int(64 * 0.25) = 16, max_position_embeddings rows
    assert spec.rotary_dim == 16 and spec.rope_caches == ((4096, 16, 0),)


def test_stablelm_3b_and_class_defaults_match_meta_device():
    spec = check(STABLELM_3B)
    assert spec.rotary_dim == 20 and spec.rope_caches == ((4096, 20, 0),)      # 80 x 0.25
    check(class_defaults("stablelm"))


@pytest.mark.parametrize("field,word", [("qk_layernorm", "q/k LayerNorm"),
                                        ("use_parallel_residual", "parallel-residual")])
def test_stablelm_features_vllm_lacks_are_refused(field, word):
    """Native stablelm.py (vLLM 0.33 and older) lacks them; 0.34's Transformers backend builds transformers'
    class (tests/test_transformers_backend_versions.py), so they are refused before 0.34 only."""
    from reportgen.estimate.served import spec_for_version

    spec = build_spec(dict(STABLELM_2_1_6B, **{field: True}))
    reason = spec_for_version(spec, "0.33").unsupported_reason
    assert reason and word in reason and "vLLM" in reason
    assert spec.params_total == meta_count(dict(STABLELM_2_1_6B, **{field: True}))


def test_stablelm_rope_pct_and_head_dim_disagreements_are_refused():
    assert "rope_pct" in build_spec(dict(STABLELM_3B, rope_pct=0.5)).unsupported_reason
    assert build_spec(dict(STABLELM_3B, rope_pct=0.25)).unsupported_reason is None   # agrees: 20 dims
    assert "head_dim" in build_spec(dict(STABLELM_3B, head_dim=128)).unsupported_reason


@st.composite
def stablelm_configs(draw):
    heads = draw(st.sampled_from([1, 2, 4, 8]))
    kv = draw(st.sampled_from([d for d in (1, 2, 4, 8) if heads % d == 0]))
    return dict(model_type="stablelm", architectures=["StableLmForCausalLM"], num_attention_heads=heads,
                num_key_value_heads=kv, hidden_size=heads * draw(st.sampled_from([4, 8, 12, 16])),
                num_hidden_layers=draw(st.integers(1, 5)), vocab_size=draw(st.integers(8, 300)),
                intermediate_size=draw(st.integers(1, 48)), use_qkv_bias=draw(st.booleans()),
                tie_word_embeddings=draw(st.booleans()),
                partial_rotary_factor=draw(st.sampled_from([0.25, 0.5, 1.0])), pad_token_id=None,
                bos_token_id=None, eos_token_id=None)


@SETTINGS
@given(stablelm_configs())
def test_random_stablelm_configs_match_meta_device(cfg):
    spec = check(cfg)
    hd = cfg["hidden_size"] // cfg["num_attention_heads"]
    assert spec.rotary_dim == int(hd * cfg["partial_rotary_factor"])


# ---------------------------------------------------------------- nemotron

def test_minitron_4b_matches_meta_device_and_vllm_geometry():
    spec = check(MINITRON_4B)
    # head_dim 128 from the config (24 x 128 = 3072); 8 KV heads; KV 32 x 2 x 8 x 128 x 2 B
    assert spec.head_dim == 128
    assert kv_bytes_per_token(spec, "auto", 2, 1) == 32 * 2 * 8 * 128 * 2
    assert kv_bytes_per_token(spec, "auto", 2, 8) == 32 * 2 * 1 * 128 * 2
    # vLLM get_rope(head_dim, ..., partial_rotary_factor=0.5): 64 dims, 4096 rows
    assert spec.rotary_dim == 64 and spec.rope_caches == ((4096, 64, 0),)
    names = {t.name for t in spec.tensors if ".layers.0." in t.name}
    assert "model.layers.0.mlp.up_proj.weight" in names and not any("gate" in n for n in names)
    assert "model.layers.0.post_attention_layernorm.bias" in names       # NemotronLayerNorm1P


def test_nemotron_class_defaults_match_meta_device():
    """transformers' class leaves num_key_value_heads None (its model then fails); vLLM's NemotronConfig and
    our geometry take num_attention_heads -- given that, the defaults are exact (Nemotron-4-15B shape)."""
    cfg = class_defaults("nemotron")
    cfg["num_key_value_heads"] = cfg["num_attention_heads"]
    spec = check(cfg)
    assert spec.rotary_dim == 64        # 6144 / 48 = 128 x 0.5
    assert build_spec(class_defaults("nemotron")).params_total == spec.params_total


def test_nemotron_disagreements_are_refused():
    assert "bias" in build_spec(dict(MINITRON_4B, bias=True)).unsupported_reason
    assert build_spec(dict(MINITRON_4B, bias=True, attention_bias=True)).unsupported_reason is None
    assert "rope_percent" in build_spec(dict(MINITRON_4B, rope_percent=0.25)).unsupported_reason
    cfg = dict(MINITRON_4B, kv_channels=64)
    del cfg["head_dim"]
    assert "kv_channels" in build_spec(cfg).unsupported_reason


@st.composite
def nemotron_configs(draw):
    heads = draw(st.sampled_from([1, 2, 4, 8]))
    kv = draw(st.sampled_from([d for d in (1, 2, 4, 8) if heads % d == 0]))
    cfg = dict(model_type="nemotron", architectures=["NemotronForCausalLM"], num_attention_heads=heads,
               num_key_value_heads=kv, hidden_size=draw(st.sampled_from([8, 16, 24, 32])),
               num_hidden_layers=draw(st.integers(1, 5)), vocab_size=draw(st.integers(8, 300)),
               intermediate_size=draw(st.integers(1, 48)), attention_bias=draw(st.booleans()),
               mlp_bias=draw(st.booleans()), tie_word_embeddings=draw(st.booleans()),
               partial_rotary_factor=draw(st.sampled_from([0.25, 0.5, 1.0])), pad_token_id=None,
               bos_token_id=None, eos_token_id=None)
    if draw(st.booleans()):
        cfg["head_dim"] = draw(st.sampled_from([4, 8, 16]))
    return cfg


@SETTINGS
@given(nemotron_configs())
def test_random_nemotron_configs_match_meta_device(cfg):
    spec = check(cfg)
    hd = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    assert spec.head_dim == hd and spec.rotary_dim == int(hd * cfg["partial_rotary_factor"])


# ---------------------------------------------------------------- glm

# THUDM/glm-4-9b-chat-hf
GLM4_9B_CHAT_HF = dict(
    model_type="glm", architectures=["GlmForCausalLM"], vocab_size=151552, hidden_size=4096,
    intermediate_size=13696, num_hidden_layers=40, num_attention_heads=32, num_key_value_heads=2, head_dim=128,
    attention_bias=True, hidden_act="silu", max_position_embeddings=131072, rms_norm_eps=1.5625e-07,
    partial_rotary_factor=0.5, rope_theta=10000.0, tie_word_embeddings=False, pad_token_id=151329,
    eos_token_id=[151329, 151336, 151338])


def test_glm4_9b_chat_hf_matches_meta_device_and_vllm_geometry():
    spec = check(GLM4_9B_CHAT_HF)
    names = {t.name for t in spec.tensors if ".layers.0." in t.name}
    # q/k/v biases (attention_bias); vLLM glm.py sets o_proj.bias = None: no o bias on either side
    assert "model.layers.0.self_attn.q_proj.bias" in names and "model.layers.0.self_attn.o_proj.bias" not in names
    assert "model.layers.0.mlp.gate_up_proj[gate].weight" in names               # fused in the checkpoint
    # KV: 40 x 2 x 2 KV heads x 128 x 2 B; replicated past TP 2 (max(1, 2 // tp))
    assert kv_bytes_per_token(spec, "auto", 2, 1) == 40 * 2 * 2 * 128 * 2
    assert kv_bytes_per_token(spec, "auto", 2, 4) == 40 * 2 * 1 * 128 * 2
    # half rotary (vLLM glm.py partial_rotary_factor = 0.5): 64 dims x 131072 rows
    assert spec.rotary_dim == 64 and spec.rope_caches == ((131072, 64, 0),)


def test_glm_class_defaults_match_meta_device():
    check(class_defaults("glm"))


@pytest.mark.parametrize("changes,word", [
    ({"attention_bias": False, "bias": True}, "bias=true"),
    ({"qkv_bias": False}, "qkv_bias"),
    ({"mlp_bias": True}, "mlp_bias"),
    ({"hidden_act": "gelu"}, "silu"),
    ({"partial_rotary_factor": 1.0}, "0.5"),
])
def test_glm_fields_only_vllms_llama_code_reads_are_refused(changes, word):
    """Refused while vLLM's native glm.py serves GlmForCausalLM (<= 0.31); 0.32 builds transformers' class
    (Transformers backend, vllm 0.32.0 sdist registry.py:714): priced there, exactly the meta count."""
    from reportgen.estimate.served import spec_for_version

    cfg = dict(GLM4_9B_CHAT_HF, **changes)
    spec = build_spec(cfg)
    reason = spec_for_version(spec, "0.31").unsupported_reason
    assert reason and word in reason
    assert spec_for_version(spec, "0.32").unsupported_reason is None
    assert spec.params_total == meta_count(cfg)


@st.composite
def glm_configs(draw):
    heads = draw(st.sampled_from([1, 2, 4, 8]))
    kv = draw(st.sampled_from([d for d in (1, 2, 4, 8) if heads % d == 0]))
    return dict(model_type="glm", architectures=["GlmForCausalLM"], num_attention_heads=heads,
                num_key_value_heads=kv, hidden_size=draw(st.sampled_from([8, 16, 24, 32])),
                head_dim=draw(st.sampled_from([4, 8, 16])), num_hidden_layers=draw(st.integers(1, 5)),
                vocab_size=draw(st.integers(8, 300)), intermediate_size=draw(st.integers(1, 48)),
                attention_bias=draw(st.booleans()), tie_word_embeddings=draw(st.booleans()),
                max_position_embeddings=draw(st.sampled_from([64, 512])), pad_token_id=None,
                bos_token_id=None, eos_token_id=None)


@SETTINGS
@given(glm_configs())
def test_random_glm_configs_match_meta_device(cfg):
    spec = check(cfg)
    assert spec.rotary_dim == cfg["head_dim"] // 2
    assert spec.rope_caches == ((cfg["max_position_embeddings"], cfg["head_dim"] // 2, 0),)


def test_stablelm_epoch_architecture_follows_vllms_removal():
    """vLLM registry.py @055e47c2 keeps StableLmForCausalLM but lists StableLMEpochForCausalLM (the
    stablelm-3b-4e1t spelling) in _PREVIOUSLY_SUPPORTED_MODELS until 0.28: estimate/served.py refuses it after."""
    from reportgen.estimate.served import spec_for_version

    spec = build_spec(dict(STABLELM_3B, architectures=["StableLMEpochForCausalLM"]))
    assert spec.unsupported_reason is None
    assert spec_for_version(spec, "0.28.1").unsupported_reason is None
    assert "until v0.28.0" in spec_for_version(spec, "0.29.0").unsupported_reason
    assert spec_for_version(build_spec(STABLELM_3B), "0.29.0").unsupported_reason is None
