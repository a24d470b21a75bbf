"""Command-R (cohere): parallel attention + MLP blocks, LayerNorm without bias, always-tied head.

Follows vLLM ``vllm/model_executor/models/commandr.py`` as read at commit
1f7c5555a25a3a5840162e89d2a35ef41096f19f (the newest version of that file the source index returned;
its Command-R (v1) maths is the one the brief names: tied head, per-head q/k norms split by TP, rotary
cache of ``model_max_length`` rows), checked parameter-for-parameter against transformers 5.24
``modeling_cohere.py``:

* one ``input_layernorm`` per layer feeding attention and MLP in parallel; ``LayerNorm`` with a weight only;
* q/k/v/o without bias (vLLM hard-codes ``bias=False``; a config with ``attention_bias`` -- which
  transformers honours -- is refused); ``head_dim = hidden_size // num_attention_heads`` in vLLM, so a
  config stating another ``head_dim`` is refused;
* ``use_qk_norm``: per-head LayerNorm weights of shape ``(heads, head_dim)``; vLLM builds them with the
  rank's heads (``(num_heads / tp, head_dim)`` -> COLUMN, ``(max(1, kv / tp), head_dim)`` -> KV);
* vLLM computes logits with ``embed_tokens`` and skips ``lm_head.weight``: the head is ALWAYS tied, so a
  ``tie_word_embeddings=false`` config (transformers would build a separate head) is refused;
* rotary cache: ``get_rope(head_dim, rotary_dim=head_dim, max_position=model_max_length or
  max_position_embeddings)`` -- the rows follow ``model_max_length`` when the config has it;
* KV: every layer full attention (no per-layer window; a model-level ``sliding_window`` applies to all).
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families.common import geometry, set_scalars
from reportgen.arch.fields import Fields
from reportgen.arch.kv import attention_layers
from reportgen.arch.rope import cache_rows, rope_parameters
from reportgen.arch.spec import Component as C, ModelSpec, Shard as S, Tensor


def build(f: Fields, spec: ModelSpec) -> None:
    g = geometry(f)
    if g.head_dim * g.n_heads != g.hidden:
        raise Unsupported(f"cohere with head_dim {g.head_dim} != hidden_size / num_attention_heads: vLLM's "
                          "commandr.py ignores head_dim, transformers uses it")
    if f.flag("attention_bias"):
        raise Unsupported("cohere with attention_bias=true: vLLM's commandr.py builds q/k/v/o without bias")
    if not g.tie:
        raise Unsupported("cohere with tie_word_embeddings=false: vLLM's commandr.py always computes the logits "
                          "with the input embedding (lm_head.weight is skipped)")
    qk_norm = f.flag("use_qk_norm")
    inter = f.int("intermediate_size")
    ts = spec.tensors
    B.embedding(ts, g.vocab, g.hidden)
    for i in range(g.n_layers):
        p = f"model.layers.{i}"
        B.norm(ts, f"{p}.input_layernorm", g.hidden, i)
        B.attention(ts, i, f"{p}.self_attn", g.hidden, g.n_heads, g.n_kv, g.head_dim)
        if qk_norm:
            ts.append(Tensor(f"{p}.self_attn.q_norm.weight", (g.n_heads, g.head_dim), S.COLUMN, C.ATTENTION, i))
            ts.append(Tensor(f"{p}.self_attn.k_norm.weight", (g.n_kv, g.head_dim), S.KV, C.ATTENTION, i))
        B.gated_mlp(ts, i, f"{p}.mlp", g.hidden, inter, C.DENSE_MLP)
    B.norm(ts, "model.norm", g.hidden, None)
    B.lm_head(ts, g.vocab, g.hidden, tied=True)
    set_scalars(spec, f, g)
    spec.rotary_dim = g.head_dim
    spec.layers_kv = attention_layers(f, g.n_layers, g.n_kv, g.head_dim)
    rows = f.opt_int("model_max_length") or spec.max_position_embeddings or 8192
    rp = (rope_parameters(f) or {}).get("") or {"rope_type": "default"}
    spec.rope_caches = ((cache_rows(rp, rows), g.head_dim, 0),)
