"""Phi decoders: phi (phi-1/1.5/2) and phi3 (Phi-3, Phi-3.5-mini, Phi-4).

* phi: parallel attention + MLP behind ONE LayerNorm (weight + bias); q/k/v
  and the output ``dense`` all have biases; GELU MLP ``fc1``/``fc2`` with
  biases; final LayerNorm; the lm_head has a bias too.  Optional
  ``qk_layernorm`` adds LayerNorms of ``hidden // heads``.
* phi3: llama-like but checkpoints fuse ``qkv_proj`` and ``gate_up_proj``.  The
  fused tensors are split here into the parts vLLM shards differently (Q
  column-parallel, K/V per KV head; gate and up column-parallel).

Per vLLM release (phi only; phi3 stays native): ``phi.py`` in 0.10 - 0.31; the Transformers backend from 0.32
(vllm 0.32.0 sdist registry.py:725; PhiConfig's plan: q/k/v/fc1 colwise, dense/fc2 rowwise; the lm_head bias
is loaded by ``causal.py``'s ``auto_load_lm_head_bias``).  From that release vLLM instantiates the
transformers class itself (vllm sdist ``model_executor/models/transformers/``): the same per-rank shards
(fused QKV with a rowwise output projection, GLU-fused or ``base_model_tp_plan`` MLPs, replicated norms) and
KV geometry, but no ``get_rope`` cos_sin_cache -- ``estimate/served.py`` ``spec_for_version`` replaces
``rope_caches`` by the rotary module's fp32 ``inv_freq`` buffers for those releases
(``estimate/tf_backend.py``).
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.families.common import geometry, set_scalars
from reportgen.arch.fields import Fields
from reportgen.arch.kv import attention_layers
from reportgen.arch.spec import Component as C, ModelSpec


def build(f: Fields, spec: ModelSpec) -> None:
    (_build_phi if f.model_type == "phi" else _build_phi3)(f, spec)


def _build_phi(f: Fields, spec: ModelSpec) -> None:
    g = geometry(f)
    inter = f.int("intermediate_size")
    qk_ln = f.flag("qk_layernorm")
    ts = spec.tensors
    B.embedding(ts, g.vocab, g.hidden)
    for i in range(g.n_layers):
        p = f"model.layers.{i}"
        B.norm(ts, f"{p}.input_layernorm", g.hidden, i, bias=True)
        B.attention(ts, i, f"{p}.self_attn", g.hidden, g.n_heads, g.n_kv, g.head_dim,
                    qkv_bias=True, o_bias=True, o_name="dense")
        if qk_ln:
            d = g.hidden // g.n_heads  # the model code sizes these by hidden/heads, not head_dim
            B.norm(ts, f"{p}.self_attn.q_layernorm", d, i, comp=C.ATTENTION, bias=True)
            B.norm(ts, f"{p}.self_attn.k_layernorm", d, i, comp=C.ATTENTION, bias=True)
        B.plain_mlp(ts, i, f"{p}.mlp", g.hidden, inter, C.DENSE_MLP, bias=True)
    B.norm(ts, "model.final_layernorm", g.hidden, None, bias=True)
    B.lm_head(ts, g.vocab, g.hidden, tied=g.tie, bias=True)
    set_scalars(spec, f, g)
    spec.layers_kv = attention_layers(f, g.n_layers, g.n_kv, g.head_dim)


def _build_phi3(f: Fields, spec: ModelSpec) -> None:
    g = geometry(f)
    inter = f.int("intermediate_size")
    ts = spec.tensors
    B.embedding(ts, g.vocab, g.hidden)
    for i in range(g.n_layers):
        p = f"model.layers.{i}"
        B.norm(ts, f"{p}.input_layernorm", g.hidden, i)
        B.attention(ts, i, f"{p}.self_attn", g.hidden, g.n_heads, g.n_kv, g.head_dim, fused_qkv=True)
        B.norm(ts, f"{p}.post_attention_layernorm", g.hidden, i)
        B.gated_mlp(ts, i, f"{p}.mlp", g.hidden, inter, C.DENSE_MLP, fused=True)
    B.norm(ts, "model.norm", g.hidden, None)
    B.lm_head(ts, g.vocab, g.hidden, tied=g.tie)
    set_scalars(spec, f, g)
    spec.layers_kv = attention_layers(f, g.n_layers, g.n_kv, g.head_dim)
