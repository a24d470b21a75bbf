"""OLMo-2 / OLMo-3 decoders (olmo2, olmo3: vLLM ``olmo2.py`` Olmo2ForCausalLM) and OLMoE (olmoe, vLLM ``olmoe.py``).

One layer = q/k/v/o without biases + q_norm / k_norm over the WHOLE projection
(``num_heads * head_dim`` and ``num_kv_heads * head_dim``, not per head) + SwiGLU
MLP + two post-norms (``post_attention_layernorm``, ``post_feedforward_layernorm``;
no input norm).  Read from transformers 5.24 ``modeling_olmo3.py`` / ``modeling_olmo2.py``
and vLLM ``vllm/model_executor/models/olmo2.py``:

* vLLM builds ``q_norm = RMSNorm(hidden_size)`` and ``k_norm = RMSNorm(total_num_kv_heads * head_dim)``
  at full width on every rank and all-gathers q / k before normalising (``_apply_qk_norm``): the
  norms are REPLICATED, not TP-sharded.
* vLLM takes ``head_dim = hidden_size // num_attention_heads`` and ``bias=False`` everywhere; a
  config with another ``head_dim`` or ``attention_bias`` (which transformers would honour) is
  refused as unsupported rather than priced two ways.
* olmo3: a layer is sliding (``sliding_window``) when ``layer_types[i] == "sliding_attention"``
  (vLLM's per-layer window), full otherwise; rope scaling applies to full layers only (sliding
  layers get the default rope: a second rotary cache when the config scales) -- transformers 5
  nests the rope parameters per layer type the same way, so rope.py's per-layer-type rule holds.

OLMoE (transformers ``modeling_olmoe.py``, vLLM ``olmoe.py``): pre-norm (``input_layernorm``,
``post_attention_layernorm``), the same whole-projection q/k norms (vLLM: replicated, all-gather),
router ``gate`` (E x H, replicated) and ``num_experts`` routed experts of ``intermediate_size``
(FusedMoE), no shared expert.  vLLM's OlmoeForCausalLM always builds its own ``lm_head`` (it never
ties), so a tied config is refused, as are ``attention_bias`` and a foreign ``head_dim``.
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families.common import geometry, set_moe, set_scalars
from reportgen.arch.fields import Fields
from reportgen.arch.kv import attention_layers, model_window_fallback
from reportgen.arch.spec import Component as C, ModelSpec


def check(f: Fields):
    """The shared geometry, with the refusals every vLLM OLMo attention needs (head_dim, biases)."""
    family = f.model_type
    g = geometry(f)
    if g.head_dim * g.n_heads != g.hidden:
        raise Unsupported(f"{family} with head_dim {g.head_dim} != hidden_size / num_attention_heads: "
                          "vLLM ignores head_dim, transformers uses it")
    if f.flag("attention_bias"):
        raise Unsupported(f"{family} with attention_bias=true: vLLM's {family} attention has no biases")
    return g


def attention(ts: list, i: int, g) -> None:
    """q/k/v/o without biases and the whole-projection q/k norms (replicated) of layer ``i``."""
    p = f"model.layers.{i}.self_attn"
    B.attention(ts, i, p, g.hidden, g.n_heads, g.n_kv, g.head_dim)
    B.norm(ts, f"{p}.q_norm", g.n_heads * g.head_dim, i, comp=C.ATTENTION)
    B.norm(ts, f"{p}.k_norm", g.n_kv * g.head_dim, i, comp=C.ATTENTION)


def build_olmoe(f: Fields, spec: ModelSpec) -> None:
    g = check(f)
    if g.tie:
        raise Unsupported("olmoe with tie_word_embeddings=true: vLLM's OlmoeForCausalLM always allocates its own lm_head")
    n_exp = f.int("num_experts")
    inter = f.int("intermediate_size")
    set_moe(spec, f, n_exp)
    ts = spec.tensors
    B.embedding(ts, g.vocab, g.hidden)
    for i in range(g.n_layers):
        p = f"model.layers.{i}"
        B.norm(ts, f"{p}.input_layernorm", g.hidden, i)
        attention(ts, i, g)
        B.norm(ts, f"{p}.post_attention_layernorm", g.hidden, i)
        B.router(ts, i, f"{p}.mlp.gate", g.hidden, n_exp)
        B.experts(ts, i, f"{p}.mlp.experts", g.hidden, inter, n_exp)
    B.norm(ts, "model.norm", g.hidden, None)
    B.lm_head(ts, g.vocab, g.hidden, tied=False)
    set_scalars(spec, f, g)
    spec.layers_kv = attention_layers(f, g.n_layers, g.n_kv, g.head_dim)


def build(f: Fields, spec: ModelSpec) -> None:
    g = check(f)
    inter = f.int("intermediate_size")
    ts = spec.tensors
    B.embedding(ts, g.vocab, g.hidden)
    for i in range(g.n_layers):
        p = f"model.layers.{i}"
        attention(ts, i, g)
        B.norm(ts, f"{p}.post_attention_layernorm", g.hidden, i)
        B.gated_mlp(ts, i, f"{p}.mlp", g.hidden, inter, C.DENSE_MLP)
        B.norm(ts, f"{p}.post_feedforward_layernorm", g.hidden, i)
    B.norm(ts, "model.norm", g.hidden, None)
    B.lm_head(ts, g.vocab, g.hidden, tied=g.tie)
    set_scalars(spec, f, g)
    # olmo3 states the window per layer (layer_types, always derived by its config class); an olmo2
    # config carrying a sliding_window would get it on every layer (vLLM's cache_config fallback)
    spec.layers_kv = attention_layers(f, g.n_layers, g.n_kv, g.head_dim)
    if f.model_type == "olmo3":
        spec.layers_kv = model_window_fallback(f, spec.layers_kv)
