"""Gemma decoders: gemma, gemma2, gemma3_text.

Quirks (transformers 5.24 modeling code):

* every Gemma ties embeddings unless the config says otherwise (class default);
* gemma has two RMSNorms per layer, gemma2 / gemma3 four (pre/post attention,
  pre/post feed-forward);
* gemma3 adds per-head ``q_norm`` / ``k_norm`` (head_dim);
* gemma2 / gemma3 alternate sliding-window and full layers (``layer_types``);
  soft-capping and the scaled embedding add no parameters.

Per vLLM release (gemma only; gemma2 / gemma3 stay native): ``gemma.py`` in 0.10 - 0.33; the Transformers
backend from 0.34 (vllm 0.34.0 sdist registry.py:787; GemmaRMSNorm -> ``TPAwareGemmaRMSNorm``, replicated).
From that release vLLM instantiates the transformers class itself (vllm sdist
``model_executor/models/transformers/``): the same per-rank shards (fused QKV with a rowwise output
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

_NORMS = {
    "gemma": ("input_layernorm", "post_attention_layernorm"),
    "gemma2": ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"),
    "gemma3_text": ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                    "post_feedforward_layernorm"),
}


def build(f: Fields, spec: ModelSpec, prefix: str = "model") -> None:
    family = f.model_type
    g = geometry(f)
    inter = f.int("intermediate_size")
    bias = f.flag("attention_bias")
    ts = spec.tensors
    B.embedding(ts, g.vocab, g.hidden, f"{prefix}.embed_tokens")
    for i in range(g.n_layers):
        p = f"{prefix}.layers.{i}"
        B.attention(ts, i, f"{p}.self_attn", g.hidden, g.n_heads, g.n_kv, g.head_dim, qkv_bias=bias, o_bias=bias)
        if family == "gemma3_text":
            B.norm(ts, f"{p}.self_attn.q_norm", g.head_dim, i, comp=C.ATTENTION)
            B.norm(ts, f"{p}.self_attn.k_norm", g.head_dim, i, comp=C.ATTENTION)
        for name in _NORMS[family]:
            B.norm(ts, f"{p}.{name}", g.hidden, i)
        B.gated_mlp(ts, i, f"{p}.mlp", g.hidden, inter, C.DENSE_MLP)
    B.norm(ts, f"{prefix}.norm", g.hidden, None)
    B.lm_head(ts, g.vocab, g.hidden, tied=g.tie)
    set_scalars(spec, f, g)
    # gemma (v1) has no sliding window; gemma2/3 state theirs per layer in layer_types
    spec.layers_kv = attention_layers(f, g.n_layers, g.n_kv, g.head_dim, global_sliding=family != "gemma")
