"""DeepSeek-V2 / V3 (and Kimi-K2, parsed as V3): multi-head latent attention + DeepSeekMoE.

Attention (MLA), per the transformers 5.24 model code:

* ``q_lora_rank`` null (V2-Lite): ``q_proj`` H -> heads*(nope+rope), column-parallel;
  else ``q_a_proj`` H -> q_lora (bias = attention_bias, replicated), ``q_a_layernorm``,
  ``q_b_proj`` q_lora -> heads*(nope+rope) (column).
* ``kv_a_proj_with_mqa`` H -> kv_lora + rope (bias = attention_bias, replicated),
  ``kv_a_layernorm`` (kv_lora), ``kv_b_proj`` kv_lora -> heads*(nope+v) (column),
  ``o_proj`` heads*v -> H (bias = attention_bias, row).
* KV cache: one latent of kv_lora + rope per token per layer (MLA spec).

MLP: the first ``first_k_dense_replace`` layers dense (``intermediate_size``),
the rest MoE: router ``E x H`` (V3's ``e_score_correction_bias`` is a buffer,
not a parameter), routed experts of ``moe_intermediate_size``, and shared
experts fused into one MLP of ``moe_intermediate_size * n_shared_experts``.
V2 MLPs carry ``mlp_bias``; V3's never do.

Multi-token-prediction layers (``num_nextn_predict_layers``) are not built by
transformers nor loaded by vLLM for plain serving: counted in ``mtp_params`` only.
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families.common import set_moe
from reportgen.arch.fields import Fields
from reportgen.arch.kv import mla_layers
from reportgen.arch.spec import Component as C, ModelSpec, Shard as S, Tensor


def build(f: Fields, spec: ModelSpec) -> None:
    v2 = f.model_type == "deepseek_v2"
    hidden = f.int("hidden_size")
    n_layers = f.int("num_hidden_layers")
    n_heads = f.int("num_attention_heads")
    vocab = f.int("vocab_size")
    tie = f.flag("tie_word_embeddings")
    q_lora = f.opt_int("q_lora_rank")
    kv_lora = f.int("kv_lora_rank")
    rope = f.int("qk_rope_head_dim")
    nope = f.int("qk_nope_head_dim", lo=0)
    v_dim = f.int("v_head_dim")
    att_bias = f.flag("attention_bias")
    mlp_bias = f.flag("mlp_bias") if v2 else False
    if v2 and f.raw.get("moe_layer_freq", 1) != 1:
        raise Unsupported("deepseek_v2 with moe_layer_freq != 1: transformers ignores it, vLLM does not")
    n_exp = f.int("n_routed_experts")
    k_dense = f.int("first_k_dense_replace", 0, lo=0)
    n_shared = f.int("n_shared_experts", lo=0)
    moe_inter = f.int("moe_intermediate_size")
    inter = f.int("intermediate_size") if k_dense else 0
    k = set_moe(spec, f, n_exp, shared=n_shared)

    ts = spec.tensors
    B.embedding(ts, vocab, hidden)
    for i in range(n_layers):
        _layer(ts, i, hidden, n_heads, q_lora, kv_lora, rope, nope, v_dim, att_bias, mlp_bias,
               dense=i < k_dense, inter=inter, n_exp=n_exp, moe_inter=moe_inter, n_shared=n_shared)
    B.norm(ts, "model.norm", hidden, None)
    B.lm_head(ts, vocab, hidden, tied=tie)

    n_mtp = f.raw.get("num_nextn_predict_layers") or 0
    if n_mtp:
        mtp: list[Tensor] = []
        _layer(mtp, n_layers, hidden, n_heads, q_lora, kv_lora, rope, nope, v_dim, att_bias, mlp_bias,
               dense=n_layers < k_dense, inter=inter, n_exp=n_exp, moe_inter=moe_inter, n_shared=n_shared)
        spec.mtp_params = n_mtp * (sum(t.numel for t in mtp) + mtp_extras(hidden, vocab))

    set_mla_facts(spec, f, hidden, vocab, n_layers, n_heads, nope, rope, tie, k)
    spec.layers_kv = mla_layers(n_layers, kv_lora, rope)


def set_mla_facts(spec: ModelSpec, f: Fields, hidden: int, vocab: int, n_layers: int, n_heads: int, nope: int,
                  rope: int, tie: bool, k: int) -> None:
    """The spec facts every MLA family (DeepSeek-V2/V3, GLM-4.7-Flash, DSA) sets alike: no KV heads,
    head_dim = nope + rope, RoPE on the rope part only."""
    spec.hidden_size, spec.vocab_size, spec.num_layers = hidden, vocab, n_layers
    spec.num_attention_heads, spec.num_kv_heads, spec.head_dim = n_heads, 0, nope + rope
    spec.tie_word_embeddings, spec.is_mla = tie, True
    spec.max_position_embeddings = f.opt_int("max_position_embeddings")
    spec.rotary_dim = rope
    spec.experts_per_token = k


def mtp_extras(hidden: int, vocab: int) -> int:
    """What one DeepSeek-style MTP module stores besides its decoder layer.

    Its own embedding and head (vocab x hidden each), ``enorm`` / ``hnorm`` /
    ``shared_head.norm`` (hidden each) and ``eh_proj`` (2*hidden -> hidden).
    """
    return 2 * vocab * hidden + 3 * hidden + 2 * hidden * hidden


def _layer(ts: list[Tensor], i: int, hidden: int, n_heads: int, q_lora: int | None, kv_lora: int, rope: int,
           nope: int, v_dim: int, att_bias: bool, mlp_bias: bool, *, dense: bool, inter: int, n_exp: int,
           moe_inter: int, n_shared: int) -> None:
    p = f"model.layers.{i}"
    B.norm(ts, f"{p}.input_layernorm", hidden, i)
    mla_attention(ts, f"{p}.self_attn", i, hidden, n_heads, q_lora, kv_lora, rope, nope, v_dim, att_bias)
    B.norm(ts, f"{p}.post_attention_layernorm", hidden, i)
    if dense:
        B.gated_mlp(ts, i, f"{p}.mlp", hidden, inter, C.DENSE_MLP, bias=mlp_bias)
    else:
        B.router(ts, i, f"{p}.mlp.gate", hidden, n_exp)
        B.experts(ts, i, f"{p}.mlp.experts", hidden, moe_inter, n_exp)
        if n_shared or mlp_bias:
            # transformers builds the shared MLP even for 0 shared experts: zero-width matrices, but
            # with mlp_bias its down_proj still has a (hidden,) bias
            B.gated_mlp(ts, i, f"{p}.mlp.shared_experts", hidden, moe_inter * n_shared, C.SHARED_EXPERTS,
                        bias=mlp_bias)


def mla_attention(ts: list[Tensor], a: str, i: int, hidden: int, n_heads: int, q_lora: int | None, kv_lora: int,
                  rope: int, nope: int, v_dim: int, att_bias: bool) -> None:
    """One MLA block under prefix ``a`` (the tensors and shards listed in the module docstring)."""
    qk_head = nope + rope
    if q_lora is None:
        B.linear(ts, f"{a}.q_proj", hidden, n_heads * qk_head, S.COLUMN, C.ATTENTION, i)
    else:
        B.linear(ts, f"{a}.q_a_proj", hidden, q_lora, S.REPLICATED, C.ATTENTION, i, bias=att_bias)
        B.norm(ts, f"{a}.q_a_layernorm", q_lora, i, comp=C.ATTENTION)
        B.linear(ts, f"{a}.q_b_proj", q_lora, n_heads * qk_head, S.COLUMN, C.ATTENTION, i)
    B.linear(ts, f"{a}.kv_a_proj_with_mqa", hidden, kv_lora + rope, S.REPLICATED, C.ATTENTION, i, bias=att_bias)
    B.norm(ts, f"{a}.kv_a_layernorm", kv_lora, i, comp=C.ATTENTION)
    B.linear(ts, f"{a}.kv_b_proj", kv_lora, n_heads * (nope + v_dim), S.COLUMN, C.ATTENTION, i)
    B.linear(ts, f"{a}.o_proj", n_heads * v_dim, hidden, S.ROW, C.ATTENTION, i, bias=att_bias)
