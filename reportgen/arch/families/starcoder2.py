"""StarCoder2 decoders: starcoder2 (StarCoder2-3B / 7B / 15B).

From transformers 5.24 ``modeling_starcoder2.py`` and vLLM ``vllm/model_executor/models/starcoder2.py``:

* q/k/v/o biases and the two-matrix GELU MLP (``c_fc`` COLUMN, ``c_proj`` ROW) biases all follow
  ``use_bias`` (class default true) in both codes;
* LayerNorms with weight AND bias: ``input_layernorm``, ``post_attention_layernorm``, final ``norm``;
* vLLM takes ``head_dim = hidden_size // num_attention_heads``; a config with another ``head_dim``
  (transformers honours it) is priced as transformers builds it, from 0.25 only (``served_from``);
* KV: vLLM passes no per-layer window, so the config's ``sliding_window`` (4096 on the published
  checkpoints) applies to every layer through cache_config -- every layer SLIDING; full without it.

Per vLLM release: ``starcoder2.py`` in 0.10 - 0.24; the Transformers backend from 0.25 (vllm 0.25.0 sdist
registry.py:645 ``Starcoder2ForCausalLM -> TransformersForCausalLM``; Starcoder2Config's plan: q/k/v/c_fc
colwise, o_proj/c_proj rowwise).  From that release vLLM instantiates the transformers class itself (vllm
sdist ``model_executor/models/transformers/``): the same per-rank shards (fused QKV with a rowwise output
projection, GLU-fused or ``base_model_tp_plan`` MLPs, replicated norms) and KV geometry, but no ``get_rope``
cos_sin_cache -- ``estimate/served.py`` ``spec_for_version`` replaces ``rope_caches`` by the rotary module's
fp32 ``inv_freq`` buffers for those releases (``estimate/tf_backend.py``).
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.families.common import geometry, set_scalars
from reportgen.arch.fields import Fields
from reportgen.arch.kv import attention_layers
from reportgen.arch.spec import Component as C, ModelSpec


def build(f: Fields, spec: ModelSpec) -> None:
    g = geometry(f)
    # vLLM's native starcoder2.py (0.10 - 0.24) ignores head_dim; its Transformers backend (0.25 on, vllm 0.25.0
    # sdist registry.py:645) builds transformers' class, which uses it: priced from 0.25 only
    native_only = (f"starcoder2 with head_dim {g.head_dim} != hidden_size / num_attention_heads: vLLM's native "
                   "starcoder2.py ignores head_dim, transformers uses it") if g.head_dim * g.n_heads != g.hidden else ""
    inter = f.int("intermediate_size")
    bias = f.flag("use_bias", True)
    ts = spec.tensors
    B.embedding(ts, g.vocab, g.hidden)
    for i in range(g.n_layers):
        p = f"model.layers.{i}"
        B.norm(ts, f"{p}.input_layernorm", g.hidden, i, bias=True)
        B.attention(ts, i, f"{p}.self_attn", g.hidden, g.n_heads, g.n_kv, g.head_dim, qkv_bias=bias, o_bias=bias)
        B.norm(ts, f"{p}.post_attention_layernorm", g.hidden, i, bias=True)
        B.plain_mlp(ts, i, f"{p}.mlp", g.hidden, inter, C.DENSE_MLP, bias=bias, names=("c_fc", "c_proj"))
    B.norm(ts, "model.norm", g.hidden, None, bias=True)
    B.lm_head(ts, g.vocab, g.hidden, tied=g.tie)
    set_scalars(spec, f, g)
    spec.layers_kv = attention_layers(f, g.n_layers, g.n_kv, g.head_dim)
    if native_only:
        spec.served_from = ((0, 25), native_only)
