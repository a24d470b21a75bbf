"""Llama-4 text model (llama4_text): interleaved MoE / dense layers, chunked local attention.

From the transformers 5.24 model code and config:

* ``moe_layers`` (derived from ``interleave_moe_layer_step`` when absent) are
  MoE: router ``E x H`` (no bias), routed experts of ``intermediate_size``
  (stored fused, ``gate_up_proj (E, H, 2I)``), and one shared expert of
  ``intermediate_size``; the other layers are dense with ``intermediate_size_mlp``.
* attention q/k/v/o bias = ``attention_bias``; the q/k norm is a parameter-free L2 norm.
* ``layer_types``: RoPE layers use chunked local attention of
  ``attention_chunk_size`` tokens, the NoPE layers (every 4th) full attention.
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.families.common import geometry, set_moe, set_scalars
from reportgen.arch.fields import Fields
from reportgen.arch.kv import attention_layers
from reportgen.arch.spec import Component as C, ModelSpec


def build_text(f: Fields, spec: ModelSpec, prefix: str = "model") -> None:
    g = geometry(f)
    bias = f.flag("attention_bias")
    n_exp = f.int("num_local_experts")
    moe_layers = set(f.int_list("moe_layers"))
    if any(i >= g.n_layers for i in moe_layers):
        raise f.err("moe_layers", f"names a layer beyond num_hidden_layers {g.n_layers}")
    inter = f.int("intermediate_size")
    dense_inter = f.int("intermediate_size_mlp") if len(moe_layers) < g.n_layers else 0
    if moe_layers:
        set_moe(spec, f, n_exp, shared=1)
    ts = spec.tensors
    B.embedding(ts, g.vocab, g.hidden, f"{prefix}.embed_tokens")
    for i in range(g.n_layers):
        p = f"{prefix}.layers.{i}"
        B.norm(ts, f"{p}.input_layernorm", g.hidden, i)
        B.attention(ts, i, f"{p}.self_attn", g.hidden, g.n_heads, g.n_kv, g.head_dim, qkv_bias=bias, o_bias=bias)
        B.norm(ts, f"{p}.post_attention_layernorm", g.hidden, i)
        if i in moe_layers:
            B.router(ts, i, f"{p}.feed_forward.router", g.hidden, n_exp)
            B.experts(ts, i, f"{p}.feed_forward.experts", g.hidden, inter, n_exp)
            B.gated_mlp(ts, i, f"{p}.feed_forward.shared_expert", g.hidden, inter, C.SHARED_EXPERTS)
        else:
            B.gated_mlp(ts, i, f"{p}.feed_forward", g.hidden, dense_inter, C.DENSE_MLP)
    B.norm(ts, f"{prefix}.norm", g.hidden, None)
    B.lm_head(ts, g.vocab, g.hidden, tied=g.tie)
    set_scalars(spec, f, g)
    spec.layers_kv = attention_layers(f, g.n_layers, g.n_kv, g.head_dim, global_sliding=False)
