"""GLM-4-0414 dense decoders: glm4 (GLM-4-9B-0414, GLM-4-32B-0414, GLM-Z1).

From transformers 5.24 ``modeling_glm4.py`` and vLLM ``vllm/model_executor/models/glm4.py``:

* q/k/v bias = ``attention_bias`` (class default true), o_proj without bias (both codes);
* ``head_dim`` class default 128, read by both codes (``getattr(config, "head_dim")``);
* checkpoints fuse ``gate_up_proj`` (``(2I, H)``); vLLM loads it into a MergedColumnParallelLinear:
  split here into its two COLUMN halves (phi3 convention); ``down_proj`` ROW; no MLP biases;
* four RMSNorms per layer: ``input_layernorm``, ``post_self_attn_layernorm``,
  ``post_attention_layernorm``, ``post_mlp_layernorm`` (replicated);
* partial rotary: vLLM defaults ``partial_rotary_factor`` to 0.5 when the rope parameters lack it,
  transformers' config class sets the same default into ``rope_parameters`` -- rope.py reads it
  there, so the rotary cache is ``head_dim / 2`` wide;
* every layer full attention (vLLM passes no per-layer window).
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.families.common import geometry, set_scalars
from reportgen.arch.fields import Fields
from reportgen.arch.kv import attention_layers
from reportgen.arch.spec import Component as C, ModelSpec

_NORMS = ("input_layernorm", "post_self_attn_layernorm", "post_attention_layernorm", "post_mlp_layernorm")


def build(f: Fields, spec: ModelSpec) -> None:
    g = geometry(f)
    inter = f.int("intermediate_size")
    qkv_bias = f.flag("attention_bias", True)
    ts = spec.tensors
    B.embedding(ts, g.vocab, g.hidden)
    for i in range(g.n_layers):
        p = f"model.layers.{i}"
        B.attention(ts, i, f"{p}.self_attn", g.hidden, g.n_heads, g.n_kv, g.head_dim, qkv_bias=qkv_bias)
        for name in _NORMS:
            B.norm(ts, f"{p}.{name}", g.hidden, i)
        B.gated_mlp(ts, i, f"{p}.mlp", g.hidden, inter, C.DENSE_MLP, fused=True)
    B.norm(ts, "model.norm", g.hidden, None)
    B.lm_head(ts, g.vocab, g.hidden, tied=g.tie)
    set_scalars(spec, f, g)
    spec.layers_kv = attention_layers(f, g.n_layers, g.n_kv, g.head_dim)
