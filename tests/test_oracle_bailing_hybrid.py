"""Ling-3 / Ring-3 (``bailing_hybrid``) against a meta-device reference built from vLLM's module structure.

vLLM serves these checkpoints as ``BailingMoeV3ForCausalLM`` (vLLM bailing_moe_v3.py @055e47c2), which builds a
different model from the same config than transformers' ``BailingHybridForCausalLM`` (the meta-device truth
the other families are checked against).  So the reference here is a small ``nn.Module`` tree transcribed from
vLLM's file, every linear a plain ``nn.Linear`` at its full, unsharded shape (``qkvb_proj`` = q + k + v + b rows,
``fused_qkv_a_proj`` = q_a + kv_a rows, FusedMoE ``w13`` / ``w2`` banks):

* ``BailingMoeV3ForCausalLM`` / ``BailingMoeV3Model``: ``word_embeddings``, layers, ``norm``, own ``lm_head``;
* ``BailingMoeV3DecoderLayer``: KDA by ``_is_kda_layer`` (not the last layer of a group, not past the last whole
  group), else MLA; ``BailingMoeV3MoE`` where ``num_experts`` and ``i >= first_k_dense_replace``;
* ``BailingMoeV3KimiDeltaAttention``, ``BailingMoeV3MLAAttention`` (``g_proj`` by
  ``gated_attention_proj_granularity_type``, ``dense``), ``BailingMoeV3Gate`` (``expert_bias`` is an
  ``nn.Parameter`` in vLLM; a buffer here, as reportgen counts every correction bias -- priced as bytes only),
  ``BailingMoeV3MLP`` (biases by ``use_bias``; shared width ``moe_shared_expert_intermediate_size *
  num_shared_experts``);
* ``config.*`` as vLLM sees it with ``--trust-remote-code``: the dict over the checkpoint class's defaults
  (vLLM's copy ``BailingMoeV3TextConfig``, transformers_utils/configs/bailing_moe_v3_vl.py @e80cc1bf), KDA
  ``head_dim`` as given (transformers' ``BailingHybridConfig`` would rewrite it to ``qk_rope_head_dim``: see
  families/bailing_hybrid.py).

Checked: the Ling-3.0-tiny config (tests/data/configs_hybrid/, SOURCES.md there), vLLM's class defaults,
transformers' class defaults, and random valid configs (``BAILING_ORACLE_EXAMPLES``, else ``ORACLE_EXAMPLES``,
else 200).  Independently of the transcription: transformers' native BailingHybridForCausalLM on the meta device
wherever the two readings build the same model (and the exact difference where they do not).
No Ling config is in the shipped reference data (configs_2026 / param_counts_2026.json have none).
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from hypothesis import given, strategies as st

from oracle_support import DATA, class_defaults, count_on_meta, examples, model_on_meta, oracle_settings
from reportgen.arch import build_spec

torch = pytest.importorskip("torch")
nn = torch.nn

EXAMPLES = examples("BAILING_ORACLE_EXAMPLES")
TINY = json.loads((DATA / "configs_hybrid" / "inclusionAI--Ling-3.0-tiny.json").read_text())
# BailingMoeV3TextConfig.__init__ defaults (vLLM transformers_utils/configs/bailing_moe_v3_vl.py @e80cc1bf), the
# fields the model reads
VLLM_DEFAULTS = {"vocab_size": 157184, "hidden_size": 2048, "intermediate_size": 5120, "num_hidden_layers": 20,
                 "num_attention_heads": 16, "use_bias": False, "tie_word_embeddings": False, "num_experts": 256,
                 "num_shared_experts": 1, "num_experts_per_tok": 8, "moe_intermediate_size": 512,
                 "moe_shared_expert_intermediate_size": 512, "first_k_dense_replace": 1, "head_dim": 128,
                 "layer_group_size": 5, "kv_lora_rank": 512, "q_lora_rank": None, "qk_rope_head_dim": 64,
                 "v_head_dim": 128, "qk_nope_head_dim": 128, "gated_attention_proj_granularity_type": None,
                 "no_kda_lora": False, "short_conv_kernel_size": 4, "max_position_embeddings": 32768}


def vllm_config(raw: dict) -> SimpleNamespace:
    c = {**VLLM_DEFAULTS, **{k: v for k, v in raw.items() if v is not None or k == "q_lora_rank"}}
    c["head_dim"] = c["head_dim"] or c["hidden_size"] // c["num_attention_heads"]
    return SimpleNamespace(**c)


# ---- the reference: vLLM's module tree, unsharded -------------------------------------------------------------

class RMSNorm(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim))


class MLP(nn.Module):                                      # BailingMoeV3MLP
    def __init__(self, c, inter: int) -> None:
        super().__init__()
        self.gate_up_proj = nn.Linear(c.hidden_size, 2 * inter, bias=c.use_bias)
        self.down_proj = nn.Linear(inter, c.hidden_size, bias=c.use_bias)


class KDA(nn.Module):                                      # BailingMoeV3KimiDeltaAttention
    def __init__(self, c) -> None:
        super().__init__()
        h, n, d = c.hidden_size, c.num_attention_heads, c.head_dim
        p = n * d
        self.qkvb_proj = nn.Linear(h, 3 * p + n, bias=False)
        self.f_proj = nn.Linear(h, p, bias=False)
        self.dt_bias = nn.Parameter(torch.empty(p, dtype=torch.float32))
        self.q_conv1d = nn.Parameter(torch.empty(p, 1, c.short_conv_kernel_size, dtype=torch.float32))
        self.k_conv1d = nn.Parameter(torch.empty(p, 1, c.short_conv_kernel_size, dtype=torch.float32))
        self.v_conv1d = nn.Parameter(torch.empty(p, 1, c.short_conv_kernel_size, dtype=torch.float32))
        self.A_log = nn.Parameter(torch.empty(1, 1, n, 1, dtype=torch.float32))
        self.g_proj = nn.Linear(h, p, bias=False)
        self.o_norm = RMSNorm(d)                            # FusedRMSNormGated(head_dim)
        self.o_proj = nn.Linear(p, h, bias=False)


class MLA(nn.Module):                                      # BailingMoeV3MLAAttention
    def __init__(self, c) -> None:
        super().__init__()
        h, n = c.hidden_size, c.num_attention_heads
        qk = c.qk_nope_head_dim + c.qk_rope_head_dim
        if c.q_lora_rank is None:
            self.q_proj = nn.Linear(h, n * qk, bias=False)
            self.kv_a_proj_with_mqa = nn.Linear(h, c.kv_lora_rank + c.qk_rope_head_dim, bias=False)
        else:
            self.fused_qkv_a_proj = nn.Linear(h, c.q_lora_rank + c.kv_lora_rank + c.qk_rope_head_dim, bias=False)
            self.q_a_layernorm = RMSNorm(c.q_lora_rank)
            self.q_b_proj = nn.Linear(c.q_lora_rank, n * qk, bias=False)
        self.kv_a_layernorm = RMSNorm(c.kv_lora_rank)
        self.kv_b_proj = nn.Linear(c.kv_lora_rank, n * (c.qk_nope_head_dim + c.v_head_dim), bias=False)
        kind = c.gated_attention_proj_granularity_type
        g_out = n if kind == "head_wise" else n * c.v_head_dim if kind == "element_wise" else 0
        if g_out > 0:
            self.g_proj = nn.Linear(h, g_out, bias=False)
        self.dense = nn.Linear(n * c.v_head_dim, h, bias=False)


class MoE(nn.Module):                                      # BailingMoeV3MoE + BailingMoeV3Gate + FusedMoE
    def __init__(self, c) -> None:
        super().__init__()
        e, h, i = c.num_experts, c.hidden_size, c.moe_intermediate_size
        self.gate = nn.Module()
        self.gate.weight = nn.Parameter(torch.empty(e, h, dtype=torch.float32))
        self.gate.register_buffer("expert_bias", torch.empty(e, dtype=torch.float32))   # see the module doc
        self.shared_experts = MLP(c, c.moe_shared_expert_intermediate_size * c.num_shared_experts)
        self.w13_weight = nn.Parameter(torch.empty(e, 2 * i, h))
        self.w2_weight = nn.Parameter(torch.empty(e, h, i))


def is_kda(i: int, c) -> bool:                             # _is_kda_layer
    g = c.layer_group_size
    return not ((i + 1) % g == 0 or i >= c.num_hidden_layers // g * g)


class DecoderLayer(nn.Module):                             # BailingMoeV3DecoderLayer
    def __init__(self, c, i: int) -> None:
        super().__init__()
        self.self_attn = KDA(c) if is_kda(i, c) else MLA(c)
        moe = c.num_experts is not None and i >= c.first_k_dense_replace
        self.mlp = MoE(c) if moe else MLP(c, c.intermediate_size)
        self.input_layernorm, self.post_attention_layernorm = RMSNorm(c.hidden_size), RMSNorm(c.hidden_size)


class BailingMoeV3ForCausalLM(nn.Module):
    def __init__(self, c) -> None:
        super().__init__()
        self.model = nn.Module()
        self.model.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size)
        self.model.layers = nn.ModuleList(DecoderLayer(c, i) for i in range(c.num_hidden_layers))
        self.model.norm = RMSNorm(c.hidden_size)
        self.lm_head = nn.Linear(c.hidden_size, c.vocab_size, bias=False)     # ParallelLMHead, never tied


def reference(raw: dict) -> int:
    """Parameters of the transcribed vLLM model on the meta device."""
    model = model_on_meta(lambda: BailingMoeV3ForCausalLM(vllm_config(raw)))
    return sum(p.numel() for p in model.parameters())


def transformers_count(raw: dict) -> int:
    """transformers' native BailingHybridForCausalLM on the meta device."""
    import transformers

    cfg = transformers.AutoConfig.for_model("bailing_hybrid", **{k: v for k, v in raw.items() if k != "model_type"})
    return count_on_meta(lambda: transformers.AutoModelForCausalLM.from_config(cfg))


def assert_matches(raw: dict):
    spec = build_spec(raw)
    assert spec.unsupported_reason is None, spec.unsupported_reason
    assert spec.params_total == reference(raw)
    return spec


def same_model_both_ways(raw: dict) -> bool:
    """The configs transformers' class builds as vLLM does: a per-head gate, shared width = routed width, no MLP
    biases, no layers past the last whole group, the KDA width stated, no MTP difference in the main stack."""
    c = vllm_config(raw)
    return (c.gated_attention_proj_granularity_type == "head_wise" and not c.use_bias
            and c.moe_shared_expert_intermediate_size == c.moe_intermediate_size
            and c.num_hidden_layers % c.layer_group_size == 0 and raw.get("head_dim") is not None
            and all(raw.get(k) is not None for k in VLLM_DEFAULTS if k not in ("q_lora_rank", "use_bias",
                                                                                "gated_attention_proj_granularity_type")))


# ---- the checks -------------------------------------------------------------------------------------------------

def test_ling_3_tiny_matches_vllm_reference_and_transformers():
    spec = assert_matches(TINY)
    assert spec.params_total == 7_893_389_856
    assert same_model_both_ways(TINY) and transformers_count(TINY) == spec.params_total
    # vLLM allocates the 23 MoE layers' float32 expert_bias (128 each) beside the counted parameters
    assert sum(t.numel for t in spec.tensors if t.allocated_only) == 23 * 128


def test_vllm_class_defaults_match_vllm_reference():
    # BailingMoeV3TextConfig() as the checkpoint class states it: no_kda_lora False -> vLLM raises
    bare = {"model_type": "bailing_hybrid", "architectures": ["BailingMoeV3ForCausalLM"], "hidden_size": 2048,
            "num_hidden_layers": 20, "num_attention_heads": 16, "vocab_size": 157184, "max_position_embeddings": 32768}
    assert "no_kda_lora" in build_spec(bare).unsupported_reason
    spec = assert_matches(dict(bare, no_kda_lora=True))
    # 20 layers, groups of 5: layers 4, 9, 14, 19 MLA; 1 dense + 19 MoE layers of 256 experts
    assert [l.kind.name for l in spec.layers_kv].count("MLA") == 4 and spec.num_experts == 256


def test_transformers_class_defaults_and_how_the_two_readings_differ():
    cfg = class_defaults("bailing_hybrid")
    assert "no_kda_lora" in build_spec(cfg).unsupported_reason      # transformers' class has no such field
    cfg = dict(cfg, no_kda_lora=True, architectures=["BailingMoeV3ForCausalLM"])
    assert "max_position_embeddings" in build_spec(cfg).unsupported_reason     # the dict says model_max_length
    cfg["max_position_embeddings"] = cfg["model_max_length"]
    # the dict transformers writes says head_dim 64 (its __post_init__ rewrote it) and linear_head_dim 128: vLLM
    # sizes KDA by head_dim, transformers by linear_head_dim -- the 128-wide weights would not load into vLLM
    assert "linear_head_dim 128 != head_dim 64" in build_spec(cfg).unsupported_reason
    import transformers
    t = transformers.AutoConfig.for_model("bailing_hybrid", **{k: v for k, v in cfg.items() if k != "model_type"})
    assert (t.head_dim, t.linear_head_dim) == (64, 128)
    # the class's declared head_dim (128), as a checkpoint states it
    cfg = dict({k: v for k, v in cfg.items() if k != "linear_head_dim"}, head_dim=128)
    spec = assert_matches(cfg)
    # both readings: KDA 32 x 128; they differ by (1) the shared experts: transformers moe_intermediate_size 768 x 1, vLLM
    # moe_shared_expert_intermediate_size (absent: the checkpoint class's 512) x 1, on the 40 MoE layers, and
    # (2) the MLA gate: transformers always builds a per-head g_proj, vLLM none without
    # gated_attention_proj_granularity_type, on the 7 MLA layers of 42 (groups of 6)
    hidden, heads = 2560, 32
    diff = 40 * 3 * hidden * (768 - 512) + 7 * heads * hidden
    assert transformers_count(cfg) - spec.params_total == diff


def test_transformers_reading_of_trailing_layers_differs():
    # 26 layers in groups of 4: vLLM makes layers 24 and 25 MLA (past the last whole group), transformers KDA
    cfg = dict(TINY, num_hidden_layers=26)
    spec = assert_matches(cfg)
    assert "".join("M" if l.kind.name == "MLA" else "K" for l in spec.layers_kv)[-4:] == "KMMM"
    import transformers
    t = transformers.AutoConfig.for_model("bailing_hybrid", **{k: v for k, v in cfg.items() if k != "model_type"})
    assert t.layer_types[-2:] == ["linear_attention", "linear_attention"]
    assert transformers_count(cfg) != spec.params_total


@st.composite
def bailing_configs(draw) -> dict:
    heads = draw(st.integers(1, 4))
    layers = draw(st.integers(1, 9))
    n_exp = draw(st.integers(1, 8))
    rope = 2 * draw(st.integers(1, 4))
    cfg = {"model_type": "bailing_hybrid", "architectures": ["BailingMoeV3ForCausalLM"],
           "vocab_size": draw(st.integers(8, 64)), "hidden_size": heads * draw(st.integers(1, 8)),
           "intermediate_size": draw(st.integers(1, 24)), "moe_intermediate_size": draw(st.integers(1, 16)),
           "moe_shared_expert_intermediate_size": draw(st.integers(0, 16)),
           "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": heads,
           "head_dim": draw(st.sampled_from([rope, draw(st.integers(1, 16))])),
           "short_conv_kernel_size": draw(st.integers(2, 5)), "layer_group_size": draw(st.integers(1, 5)),
           "no_kda_lora": True, "num_experts": n_exp, "num_experts_per_tok": draw(st.integers(1, n_exp)),
           "num_shared_experts": draw(st.integers(0, 2)), "first_k_dense_replace": draw(st.integers(0, layers + 1)),
           "n_group": 1, "topk_group": 1, "kv_lora_rank": draw(st.integers(1, 16)),
           "q_lora_rank": draw(st.one_of(st.none(), st.integers(1, 16))), "qk_rope_head_dim": rope,
           "qk_nope_head_dim": draw(st.integers(0, 8)), "v_head_dim": draw(st.integers(1, 8)),
           "use_bias": draw(st.booleans()), "max_position_embeddings": draw(st.integers(16, 4096)),
           "gated_attention_proj_granularity_type": draw(st.sampled_from([None, "head_wise", "element_wise",
                                                                          "none"])),
           "tie_word_embeddings": False, "pad_token_id": 0}
    if draw(st.integers(0, 5)) == 0:
        cfg.pop(draw(st.sampled_from(["use_bias", "moe_shared_expert_intermediate_size", "head_dim",
                                      "gated_attention_proj_granularity_type"])))   # the checkpoint class default
    return cfg


@oracle_settings(EXAMPLES)
@given(bailing_configs())
def test_random_bailing_configs_match_vllm_reference(cfg):
    spec = assert_matches(cfg)
    if same_model_both_ways(cfg):
        assert transformers_count(cfg) == spec.params_total


@st.composite
def agreeing_configs(draw) -> dict:
    """Random configs transformers' class builds as vLLM does (``same_model_both_ways``): whole groups only,
    a per-head gate, no MLP biases, the shared experts as wide as the routed ones."""
    cfg = draw(bailing_configs())
    cfg.update(gated_attention_proj_granularity_type="head_wise", use_bias=False,
               head_dim=cfg.get("head_dim") or cfg["qk_rope_head_dim"],
               moe_shared_expert_intermediate_size=cfg["moe_intermediate_size"])
    cfg["num_hidden_layers"] = cfg["layer_group_size"] * draw(st.integers(1, 3))
    cfg["first_k_dense_replace"] = min(cfg["first_k_dense_replace"], cfg["num_hidden_layers"])
    return cfg


@oracle_settings(EXAMPLES)
@given(agreeing_configs())
def test_random_configs_both_readings_agree_on_match_transformers(cfg):
    assert same_model_both_ways(cfg)
    spec = assert_matches(cfg)
    assert transformers_count(cfg) == spec.params_total
