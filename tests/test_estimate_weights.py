"""Per-rank weights: every sharding and placement rule pinned with hand-computed bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reportgen.estimate import quant
from reportgen.estimate.layout import Layout, experts_on_rank, pp_partition, rank_label
from reportgen.estimate.weights import build_weight_table, stage_weights
from test_estimate_specs import dense_spec, moe_spec

GIB = 2**30
BF16 = quant.whatif_scheme("bf16")
BUNDLED = Path(__file__).resolve().parents[1] / "reportgen" / "sources" / "bundled"

# Llama-3.1-8B by hand: one decoder layer = q 4096*4096 + k,v 1024*4096 each + o 4096*4096
# + gate/up 2*14336*4096 + down 4096*14336 + 2 norms * 4096 = 218,112,000 params
LAYER_B = 218_112_000 * 2
EMBED_B = 128_256 * 4096 * 2              # 128256 is already a multiple of 64
ROPE_B = 131_072 * 128 * 2                # vLLM's cos_sin_cache, one per stage


def stages(spec, lay, scheme=BF16, act_b=2):
    return stage_weights(build_weight_table(spec, scheme, act_b), lay)


def test_pp_partition_follows_get_pp_indices():
    assert pp_partition(32, 4) == [(0, 8), (8, 16), (16, 24), (24, 32)]
    # leftovers one each on the stages just before the last: 10 = [2, 3, 3, 2]
    assert pp_partition(10, 4) == [(0, 2), (2, 5), (5, 8), (8, 10)]
    assert pp_partition(5, 3) == [(0, 2), (2, 4), (4, 5)]
    assert pp_partition(7, 1) == [(0, 7)]


def test_experts_remainder_goes_to_first_ranks():
    assert [experts_on_rank(10, 4, r) for r in range(4)] == [3, 3, 2, 2]
    assert [experts_on_rank(8, 4, r) for r in range(4)] == [2, 2, 2, 2]
    assert rank_label(3) == "pp3" and rank_label(0, 1) == "pp0/ep1"


def test_llama_8b_tp1_is_14_99_gib():
    (st,) = stages(dense_spec(), Layout())
    assert st.bytes == 32 * LAYER_B + 2 * EMBED_B + 4096 * 2 + ROPE_B == 16_094_076_928
    assert round(st.bytes / GIB, 2) == 14.99          # vLLM: "Model loading took 14.99 GiB"


def test_llama_8b_pp4_first_and_last_4_26_middle_3_28():
    st = stages(dense_spec(), Layout(pp=4))
    assert [s.layers for s in st] == [(0, 8), (8, 16), (16, 24), (24, 32)]
    assert st[0].bytes == 8 * LAYER_B + EMBED_B + ROPE_B
    assert st[1].bytes == st[2].bytes == 8 * LAYER_B + ROPE_B
    assert st[3].bytes == 8 * LAYER_B + EMBED_B + 4096 * 2 + ROPE_B      # lm_head + final norm
    assert [round(s.bytes / GIB, 2) for s in st] == [4.26, 3.28, 3.28, 4.26]   # vllm_logs.md §4


def test_llama_8b_tp2_halves_everything_but_norms_and_rope():
    (st,) = stages(dense_spec(), Layout(tp=2))
    norms = (32 * 2 + 1) * 4096 * 2
    assert st.bytes == (16_094_076_928 - norms - ROPE_B) / 2 + norms + ROPE_B
    assert round(st.bytes / GIB, 2) == 7.51            # vLLM TP2 log: 7.51


def test_kv_heads_replicated_when_tp_exceeds_n_kv():
    s = dense_spec(layers=1, vocab=64, max_pos=0)
    (st,) = stages(s, Layout(tp=16))
    q_o = 2 * 4096 * 4096 * 2 / 16
    k_v = 2 * 1024 * 4096 * 2 / 8                      # one of the 8 KV heads on every rank
    mlp = 3 * 14336 * 4096 * 2 / 16
    norms = 3 * 4096 * 2
    vocab = 2 * 64 * 4096 * 2 / 16
    assert st.bytes == pytest.approx(q_o + k_v + mlp + norms + vocab)


def test_vocab_padded_to_64_then_split():
    s = dense_spec(layers=1, vocab=32001, max_pos=0, tied=True, inter=8, hidden=64, heads=1, kv_heads=1,
                   head_dim=64)
    table = build_weight_table(s, BF16, 2)
    assert table.first.vocab == 32064 * 64 * 2         # 32001 rows padded to 32064
    (st,) = stage_weights(table, Layout(tp=2))
    split = (2 * 64 * 64 + 2 * 8 * 64 + 64 * 8) * 2   # q, o, gate_up, down: / tp
    kv = 2 * 64 * 64 * 2                              # k, v: 1 KV head, replicated at tp 2
    norms = 3 * 64 * 2
    assert st.bytes == 32064 * 64 * 2 / 2 + split / 2 + kv + norms == 2_078_592


def test_tied_embedding_copied_to_last_stage_only_when_pp_gt_1():
    s = dense_spec(layers=4, tied=True, max_pos=0)
    (one,) = stages(s, Layout())
    two = stages(s, Layout(pp=2))
    assert one.bytes == 4 * LAYER_B + EMBED_B + 4096 * 2
    assert two[0].bytes == 2 * LAYER_B + EMBED_B
    assert two[1].bytes == 2 * LAYER_B + EMBED_B + 4096 * 2


def test_experts_split_tp_dp_without_ep_whole_with_ep():
    s = moe_spec(layers=1)                             # 10 experts, intermediate 512, hidden 1024
    expert_b = 10 * 3 * 512 * 1024 * 2                 # gate+up+down of 10 experts, bf16
    table = build_weight_table(s, BF16, 2)
    assert table.per_layer[0].expert == expert_b
    base_tp4 = stages(s, Layout(tp=4))[0].bytes - expert_b / 4     # everything but the experts, at tp 4
    base_tp2 = stages(s, Layout(tp=2))[0].bytes - expert_b / 2
    assert stages(s, Layout(tp=2, dp=2))[0].bytes == pytest.approx(base_tp2 + expert_b / 4)  # / (tp*dp)
    ep = stages(s, Layout(tp=4, ep=True))[0]
    assert ep.ep_rank == 0
    assert ep.bytes == pytest.approx(base_tp4 + expert_b * 3 / 10)   # ranks hold 3,3,2,2 experts


def test_fp8_whatif_counts_per_channel_scales():
    s = dense_spec(layers=1, vocab=64, max_pos=0)
    fp8 = quant.whatif_scheme("fp8")
    (st,) = stages(s, Layout(), fp8)
    linear = 2 * 4096 * 4096 + 2 * 1024 * 4096 + 3 * 14336 * 4096
    rows = 4096 + 1024 + 1024 + 4096 + 2 * 14336 + 4096   # one fp32 scale per output channel
    other = (2 * 64 * 4096 + 3 * 4096) * 2                 # embedding, lm_head, norms stay bf16
    assert st.bytes == linear + 4 * rows + other


def test_deepseek_v2_lite_mla_down_projections_replicated():
    from reportgen.arch import build_spec
    spec = build_spec(json.loads((BUNDLED / "deepseek-ai--DeepSeek-V2-Lite.json").read_text()),
                      "deepseek-ai/DeepSeek-V2-Lite")
    rep = [t for t in spec.tensors if t.layer == 0 and ("kv_a_proj" in t.name)]
    assert rep and all(t.shard.value == "replicated" for t in rep)
    w1 = stages(spec, Layout())[0].bytes
    w2 = stages(spec, Layout(tp=2))[0].bytes
    assert w1 / 2 < w2 < w1 * 0.55                      # mostly halved, replicated pieces stay whole


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(layers=st.integers(1, 40), pp=st.integers(1, 8), tied=st.booleans(), vocab=st.integers(100, 5000),
       kv=st.sampled_from([1, 2, 4, 8]), tp=st.sampled_from([1, 2, 4, 8, 16]))
def test_stages_conserve_bytes_and_tp_never_loses_any(layers, pp, tied, vocab, kv, tp):
    s = dense_spec(layers=layers, hidden=64, heads=16, kv_heads=kv, head_dim=4, inter=96, vocab=vocab,
                   tied=tied, max_pos=0)
    total = sum(BF16.tensor_bytes(t) for t in s.tensors)
    pad = (-(-vocab // 64) * 64 - vocab) * 64 * 2            # padding rows of one vocab matrix
    if pp <= layers:
        st_ = stages(s, Layout(pp=pp))
        copies = 1 if tied else 2                              # embedding (+ lm_head) matrices
        extra = (vocab * 64 * 2 + pad) if (tied and pp > 1) else 0   # the tied copy on the last stage
        assert sum(x.bytes for x in st_) == pytest.approx(total + copies * pad + extra)
        sizes = [b - a for a, b in (x.layers for x in st_)]
        assert max(sizes) - min(sizes) <= 1 and sizes[-1] == layers // pp   # leftovers before the last
    (one,) = stages(s, Layout(tp=tp))
    assert one.bytes * tp >= total + (1 if tied else 2) * pad - 1e-6   # replication only adds


def test_rope_caches_from_the_spec_when_given():
    s = dense_spec(layers=1, vocab=64, max_pos=131072, head_dim=256, heads=16, kv_heads=8)
    base = stages(s, Layout())[0].bytes
    assert base - stages(dense_spec(layers=1, vocab=64, max_pos=0, head_dim=256, heads=16, kv_heads=8),
                         Layout())[0].bytes == 131072 * 256 * 2
    class WithRope:                     # a spec whose adapter reports vLLM's rotary caches
        rope_caches = ((131072, 256), (131072 * 8, 256))   # gemma-3: local + linear-scaled (x8) global

        def __getattr__(self, name):
            return getattr(s, name)

    assert stages(WithRope(), Layout())[0].bytes - base == 131072 * 8 * 256 * 2   # + 512 MiB


def _hf_layers_spec(layers=3, tied=False):
    """Decoder layers named as HF checkpoints name them (``model.layers.N...``), so schemes can single one out."""
    from reportgen.arch.spec import Component as Co, ModelSpec, Shard as Sh, Tensor as Te
    t = [Te("model.embed_tokens.weight", (1000, 256), Sh.VOCAB, Co.EMBEDDING)]
    for i in range(layers):
        p = f"model.layers.{i}."
        t += [Te(p + "self_attn.q_proj.weight", (256, 256), Sh.COLUMN, Co.ATTENTION, i, quantizable=True),
              Te(p + "self_attn.k_proj.weight", (64, 256), Sh.KV, Co.ATTENTION, i, quantizable=True),
              Te(p + "mlp.down_proj.weight", (256, 512), Sh.ROW, Co.DENSE_MLP, i, quantizable=True),
              Te(p + "input_layernorm.weight", (256,), Sh.REPLICATED, Co.NORM, i)]
    t.append(Te("model.norm.weight", (256,), Sh.REPLICATED, Co.NORM))
    if not tied:
        t.append(Te("lm_head.weight", (1000, 256), Sh.VOCAB, Co.LM_HEAD))
    return ModelSpec(model_type="llama", dtype="bfloat16", hidden_size=256, vocab_size=1000, num_layers=layers,
                     num_attention_heads=4, num_kv_heads=1, head_dim=64, tie_word_embeddings=tied, tensors=t)


def _per_tensor_layers(spec, scheme):
    out = [0.0] * spec.num_layers
    for t in spec.tensors:
        if t.layer is not None:
            out[t.layer] += scheme.tensor_bytes(t)
    return out


@pytest.mark.parametrize("qc", [
    # ModelOpt MIXED_PRECISION: per-layer algorithms (layer 0 FP8, layer 1 NVFP4, layer 2 unquantized)
    {"quant_method": "modelopt", "quantization": {"quant_algo": "MIXED_PRECISION", "quantized_layers": {
        "model.layers.0.self_attn.q_proj": {"quant_algo": "FP8"},
        "model.layers.1.self_attn.q_proj": {"quant_algo": "NVFP4", "group_size": 16}}}},
    # GPTQ "dynamic" override of layer 1 only (8 bits instead of 4)
    {"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": False, "sym": True,
     "dynamic": {r"+:.*layers\.1\..*": {"bits": 8}}},
    # FP8 with an ignore list naming one layer's module
    {"quant_method": "fp8", "ignored_layers": ["model.layers.2.mlp.down_proj"]},
])
def test_layer_specific_schemes_are_summed_per_tensor(qc):
    """A scheme whose rules or ignore list single out a layer must not reuse one layer's bytes for another
    (the grouped sums of alike layers apply only to layer-agnostic schemes)."""
    from reportgen.estimate.quant.checkpoint import checkpoint_scheme
    from reportgen.estimate.weights import _layer_agnostic
    spec = _hf_layers_spec()
    spec.quantization_config = qc
    scheme = checkpoint_scheme(spec)
    want = _per_tensor_layers(spec, scheme)
    assert len(set(want)) > 1                     # the layers do differ
    assert not _layer_agnostic(scheme)
    table = build_weight_table(spec, scheme, 2)
    assert [sum((c.tp_split, c.kv, c.replicated, c.vocab, c.expert, c.kv_alt)) for c in table.per_layer] == want


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("name", ["bf16", "fp8", "int4"])
def test_grouped_layer_sums_equal_the_per_tensor_loop(name, tied):
    """TensorPlan's grouped sums (alike layers summed once) are the per-tensor loop's, to the bit."""
    from reportgen.estimate.weights import TensorPlan, _tensor_sums
    spec = _hf_layers_spec(layers=5, tied=tied)
    scheme = quant.whatif_scheme(name) if name != "bf16" else BF16
    plan = TensorPlan(spec)
    assert len(plan.groups) == 1                  # five alike decoder layers, one group
    table = build_weight_table(spec, scheme, 2, plan)
    acc = _tensor_sums(spec, scheme, spec.num_layers, 0)
    n = spec.num_layers
    assert [tuple(getattr(c, f) for f in ("tp_split", "kv", "replicated", "vocab", "expert", "kv_alt"))
            for c in (*table.per_layer, table.first, table.last, table.tied_copy)] == [tuple(a) for a in acc]
    assert n == 5
