"""EXAONE 4.0 decoders: exaone4 (EXAONE-4.0-1.2B / 32B).

From transformers 5.24 ``modeling_exaone4.py`` and vLLM ``vllm/model_executor/models/exaone4.py``:

* q/k/v/o and the SwiGLU MLP without biases in transformers; vLLM adds q/k/v/o biases when
  ``attention_bias`` or ``bias`` is set and MLP biases for ``mlp_bias`` -- such configs would be
  priced two ways, so they are refused;
* per-head ``q_norm`` / ``k_norm`` RMSNorms of ``head_dim`` (vLLM ``RMSNorm(head_dim)``, replicated);
* post-norm layout: ``post_attention_layernorm`` + ``post_feedforward_layernorm``, no input norm;
* KV: ``layer_types[i] == "sliding_attention"`` -> ``sliding_window`` on that layer (vLLM's
  per-layer window), else full.  transformers derives ``layer_types`` from ``sliding_window_pattern``;
* RoPE: every layer builds the same ``get_rope`` module (full layers skip it at run time in
  transformers, NoPE) -> one rotary cache; nothing per layer type.
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families.common import geometry, set_scalars
from reportgen.arch.fields import Fields
from reportgen.arch.kv import attention_layers, model_window_fallback
from reportgen.arch.spec import Component as C, ModelSpec


def build(f: Fields, spec: ModelSpec) -> None:
    for name in ("attention_bias", "bias", "mlp_bias"):
        if f.raw.get(name):
            raise Unsupported(f"exaone4 with {name}=true: transformers has no biases, vLLM would load them")
    g = geometry(f)
    inter = f.int("intermediate_size")
    ts = spec.tensors
    B.embedding(ts, g.vocab, g.hidden)
    for i in range(g.n_layers):
        p = f"model.layers.{i}"
        B.attention(ts, i, f"{p}.self_attn", g.hidden, g.n_heads, g.n_kv, g.head_dim)
        B.norm(ts, f"{p}.self_attn.q_norm", g.head_dim, i, comp=C.ATTENTION)
        B.norm(ts, f"{p}.self_attn.k_norm", g.head_dim, i, comp=C.ATTENTION)
        B.norm(ts, f"{p}.post_attention_layernorm", g.hidden, i)
        B.gated_mlp(ts, i, f"{p}.mlp", g.hidden, inter, C.DENSE_MLP)
        B.norm(ts, f"{p}.post_feedforward_layernorm", g.hidden, i)
    B.norm(ts, "model.norm", g.hidden, None)
    B.lm_head(ts, g.vocab, g.hidden, tied=g.tie)
    set_scalars(spec, f, g)
    spec.layers_kv = attention_layers(f, g.n_layers, g.n_kv, g.head_dim)
    spec.layers_kv = model_window_fallback(f, spec.layers_kv)
