"""GLM-4.5 / 4.6 (glm4_moe): GQA attention + DeepSeek-style MoE.

From the transformers 5.24 model code:

* q/k/v bias = ``attention_bias`` (GLM-4.5 sets it), o_proj never has one;
  ``use_qk_norm`` adds per-head q/k RMSNorms; partial rotary adds nothing.
* ``head_dim`` from the config, else ``hidden // heads`` (real configs set 128:
  4096 / 96 would give 42).
* MLP as DeepSeek-V3: ``first_k_dense_replace`` dense layers, then router
  (``e_score_correction_bias`` is a buffer), routed experts and
  ``n_shared_experts`` shared experts fused into one MLP.
* MTP layers (``num_nextn_predict_layers``) -> ``mtp_params``; with ``--speculative-config`` method mtp
  vLLM's ``glm4_moe_mtp.py`` @028aedf6 loads them (``mtp_tensors``, estimate/specdecode.py).
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.families.common import geometry, set_moe, set_scalars
from reportgen.arch.families.mla_moe import mtp_extras, set_mtp_draft
from reportgen.arch.fields import Fields
from reportgen.arch.kv import attention_layers
from reportgen.arch.spec import Component as C, ModelSpec, Tensor


def build(f: Fields, spec: ModelSpec) -> None:
    g = geometry(f)
    bias = f.flag("attention_bias")
    qk_norm = f.flag("use_qk_norm")
    n_exp = f.int("n_routed_experts")
    k_dense = f.int("first_k_dense_replace", 0, lo=0)
    n_shared = f.int("n_shared_experts", lo=0)
    moe_inter = f.int("moe_intermediate_size")
    inter = f.int("intermediate_size") if k_dense else 0
    set_moe(spec, f, n_exp, shared=n_shared)

    def layer(ts: list[Tensor], i: int) -> None:
        p = f"model.layers.{i}"
        B.norm(ts, f"{p}.input_layernorm", g.hidden, i)
        B.attention(ts, i, f"{p}.self_attn", g.hidden, g.n_heads, g.n_kv, g.head_dim, qkv_bias=bias, o_bias=False)
        if qk_norm:
            B.norm(ts, f"{p}.self_attn.q_norm", g.head_dim, i, comp=C.ATTENTION)
            B.norm(ts, f"{p}.self_attn.k_norm", g.head_dim, i, comp=C.ATTENTION)
        B.norm(ts, f"{p}.post_attention_layernorm", g.hidden, i)
        if i < k_dense:
            B.gated_mlp(ts, i, f"{p}.mlp", g.hidden, inter, C.DENSE_MLP)
        else:
            B.router(ts, i, f"{p}.mlp.gate", g.hidden, n_exp)
            B.experts(ts, i, f"{p}.mlp.experts", g.hidden, moe_inter, n_exp)
            if n_shared:
                B.gated_mlp(ts, i, f"{p}.mlp.shared_experts", g.hidden, moe_inter * n_shared, C.SHARED_EXPERTS)

    ts = spec.tensors
    B.embedding(ts, g.vocab, g.hidden)
    for i in range(g.n_layers):
        layer(ts, i)
    B.norm(ts, "model.norm", g.hidden, None)
    B.lm_head(ts, g.vocab, g.hidden, tied=g.tie)

    n_mtp = f.raw.get("num_nextn_predict_layers") or 0
    mtp: list[Tensor] = []
    if n_mtp:
        layer(mtp, g.n_layers)
        spec.mtp_params = n_mtp * (sum(t.numel for t in mtp) + mtp_extras(g.hidden, g.vocab))

    set_scalars(spec, f, g)
    spec.layers_kv = attention_layers(f, g.n_layers, g.n_kv, g.head_dim)
    if n_mtp:      # loaded only with --speculative-config method mtp (vLLM glm4_moe_mtp.py @028aedf6)
        set_mtp_draft(spec, mtp, f"model.layers.{g.n_layers}", g.n_layers, g.hidden, n_mtp, spec.layers_kv)
