"""Pure state-space models (mamba, falcon_mamba, mamba2) against the meta device: a real config, the
transformers class defaults and random valid configs.

Same method as tests/test_oracle_hybrid_mamba.py (``meta_count`` of tests/oracle_support.py: the native
transformers class -- MambaForCausalLM, FalconMambaForCausalLM, Mamba2ForCausalLM -- on torch's meta
device).  The family follows vLLM ``models/mamba.py`` @58c92a9b and ``models/mamba2.py`` @055e47c2
(reportgen/arch/families/mamba.py).  ``HYBRID_ORACLE_EXAMPLES`` overrides the count (default 200 per family).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, strategies as st  # noqa: E402

from reportgen.arch import build_spec  # noqa: E402
from reportgen.arch.spec import AttentionKind, Component  # noqa: E402
from oracle_support import check, class_defaults_test, examples, meta_count, oracle_settings  # noqa: E402

EXAMPLES = examples("HYBRID_ORACLE_EXAMPLES")
CONFIGS = Path(__file__).resolve().parent / "data" / "configs_ssm"


def test_mamba_130m_real_config():
    cfg = json.loads((CONFIGS / "state-spaces--mamba-130m-hf.json").read_text())
    spec = check(cfg)
    assert spec.params_total == 129_135_360 == meta_count(cfg)
    # by hand: embedding 50280 x 768 (tied head); per layer in_proj 768 x 3072, conv 1536 x 4 + 1536,
    # x_proj 1536 x (48 + 32), dt_proj 48 x 1536 + 1536, A 1536 x 16, D 1536, out_proj 1536 x 768, norm 768
    layer = 768 * 3072 + 1536 * 5 + 1536 * 80 + 48 * 1536 + 1536 + 1536 * 16 + 1536 + 1536 * 768 + 768
    assert spec.params_total == 50280 * 768 + 24 * layer + 768
    comp = spec.params_by_component()
    assert comp[Component.LM_HEAD.value] == 0 and comp[Component.ATTENTION.value] == 0
    assert all(l.kind is AttentionKind.STATE and l.state.kind == "mamba1" for l in spec.layers_kv)
    assert spec.layers_kv[0].state.dims == (1536, 16, 4)
    assert spec.kv_bytes_per_token(2) == 0
    assert spec.max_model_len_limit is None          # no length key: vLLM takes any --max-model-len


def test_mamba2_780m_real_config():
    cfg = json.loads((CONFIGS / "state-spaces--mamba2-780m.json").read_text())   # bare Infinity: Python json
    spec = check(cfg)
    # by hand: tied embedding 50288 x 1536; per layer norm 1536, in_proj 1536 x (2 x 3072 + 2 x 128 + 48),
    # conv1d (3072 + 256) x 4 + bias, A / D / dt_bias 3 x 48, gated norm 3072, out_proj 3072 x 1536; norm_f
    layer = 1536 + 1536 * 6448 + 3328 * 5 + 3 * 48 + 3072 + 3072 * 1536
    assert spec.params_total == 50288 * 1536 + 48 * layer + 1536 == 780_161_280
    geo = spec.layers_kv[0].state
    assert geo.kind == "mamba2" and geo.dims == (3072, 1, 48, 64, 128, 4)
    # n_groups 1 at TP 2: vLLM pads the groups to 2, every rank keeps B and C whole
    assert geo.bytes_per_seq(2, 2) == (3 * (3072 + 2 * 2 * 128) // 2 + 24 * 64 * 128) * 2
    bc = [t for t in spec.tensors if t.name == "backbone.layers.0.mixer.in_proj[BC].weight"]
    assert bc and bc[0].shard.value == "replicated"


test_transformers_default_config_matches_meta_device = class_defaults_test(["mamba", "falcon_mamba", "mamba2"])


@st.composite
def mamba_configs(draw, model_type: str):
    hidden = draw(st.integers(1, 64))
    cfg = {
        "model_type": model_type, "architectures": [{"mamba": "MambaForCausalLM",
                                                     "falcon_mamba": "FalconMambaForCausalLM"}[model_type]],
        "hidden_size": hidden, "num_hidden_layers": draw(st.integers(1, 5)), "vocab_size": draw(st.integers(8, 96)),
        "state_size": draw(st.integers(1, 16)), "expand": draw(st.integers(1, 3)),
        "conv_kernel": draw(st.integers(2, 5)), "use_bias": draw(st.booleans()),
        "use_conv_bias": draw(st.booleans()), "tie_word_embeddings": draw(st.booleans()),
    }
    if draw(st.booleans()):
        cfg["time_step_rank"] = draw(st.integers(1, 12))
    return cfg


@st.composite
def mamba2_configs(draw):
    groups = draw(st.integers(1, 3))
    heads = groups * draw(st.integers(1, 4))
    head_dim = draw(st.integers(1, 8))
    expand = draw(st.sampled_from([e for e in (1, 2, 4) if (heads * head_dim) % e == 0]))
    cfg = {
        "model_type": "mamba2", "architectures": ["Mamba2ForCausalLM"],
        "hidden_size": heads * head_dim // expand, "expand": expand, "num_heads": heads, "head_dim": head_dim,
        "n_groups": groups, "num_hidden_layers": draw(st.integers(1, 5)), "vocab_size": draw(st.integers(8, 96)),
        "state_size": draw(st.integers(1, 16)), "conv_kernel": draw(st.integers(2, 5)),
        "use_bias": draw(st.booleans()), "use_conv_bias": draw(st.booleans()),
        "tie_word_embeddings": draw(st.booleans()),
    }
    if draw(st.booleans()):
        cfg["intermediate_size"] = heads * head_dim      # Codestral Mamba states it; equal is fine
    return cfg


STRATEGIES = {"mamba": mamba_configs("mamba"), "falcon_mamba": mamba_configs("falcon_mamba"),
              "mamba2": mamba2_configs()}


@pytest.mark.parametrize("family", sorted(STRATEGIES))
@oracle_settings(EXAMPLES)
@given(data=st.data())
def test_random_configs_match_meta_device(family, data):
    cfg = data.draw(STRATEGIES[family])
    spec = check(cfg)
    assert len(spec.layers_kv) == cfg["num_hidden_layers"]
    assert all(l.kind is AttentionKind.STATE for l in spec.layers_kv)
    if family != "mamba2":
        rank = cfg.get("time_step_rank", math.ceil(cfg["hidden_size"] / 16))
        assert spec.layers_kv[0].state.dims == (cfg["expand"] * cfg["hidden_size"], cfg["state_size"],
                                                cfg["conv_kernel"])
        assert any(t.shape == (cfg["expand"] * cfg["hidden_size"], rank) for t in spec.tensors)  # dt_proj


def test_falcon_mamba_has_no_norm_weights_in_the_mixer():
    """vLLM builds Falcon-Mamba's dt / B / C RMSNorms without weights; transformers keeps them as buffers."""
    spec = build_spec({"model_type": "falcon_mamba", "hidden_size": 32, "num_hidden_layers": 2, "vocab_size": 64})
    assert not [t for t in spec.tensors if "layernorm" in t.name]
    plain = build_spec({"model_type": "mamba", "hidden_size": 32, "num_hidden_layers": 2, "vocab_size": 64})
    assert spec.params_total == plain.params_total
