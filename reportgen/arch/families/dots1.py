"""dots.llm1 (dots1): GQA attention with per-head q/k norms + DeepSeek-style MoE with shared experts.

Follows vLLM ``vllm/model_executor/models/dots1.py`` (read at commit
00bd1493b3e82d6c13c68ee8a0e1c5a96707e190), checked parameter-for-parameter against transformers 5.24
``modeling_dots1.py``:

* attention: q/k/v with bias = ``attention_bias`` and o WITHOUT bias in vLLM (transformers gives o a bias
  too) -> ``attention_bias`` configs are refused; per-head ``q_norm`` / ``k_norm`` (head_dim, replicated);
  ``head_dim`` from the config, else hidden / heads (both);
* layers ``< first_k_dense_replace`` dense (``intermediate_size``), the rest MoE in transformers; vLLM also
  needs ``i % moe_layer_freq == 0`` (a field transformers does not know): configs with another
  ``moe_layer_freq`` than 1 are refused;
* MoE: router ``gate`` ``E x H`` (replicated), ``n_routed_experts`` FusedMoE experts of
  ``moe_intermediate_size``, one shared MLP of ``moe_intermediate_size * n_shared_experts`` (column/row
  split); ``e_score_correction_bias`` is a transformers buffer (vLLM: a parameter for ``noaux_tc``): not
  counted, as for DeepSeek-V3;
* sliding window as vLLM applies it (0.13.0 - 0.22.0 sdists, the same code: ``Dots1Attention`` passes no
  ``per_layer_sliding_window``, so ``Attention.__init__`` takes ``cache_config.sliding_window``; and
  ``EngineArgs.create_engine_config`` sets that to ``get_sliding_window()`` -- the config's ``sliding_window``,
  0 -> None -- only when ``is_interleaved`` is false, i.e. transformers' ``layer_types`` (Dots1Config derives them:
  sliding from ``max_window_layers`` on) hold one kind).  So a positive window puts EVERY layer in a
  window of that size when the layer types are all one kind (the class defaults: 62 of 62 full), and none when
  they mix (vLLM then ignores the window: all full attention) -- not transformers' per-layer split;
* lm_head: vLLM always allocates its own ``ParallelLMHead`` -> a tied config is refused; vLLM's MLPs
  accept ``hidden_act == silu`` only.
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families.common import decoder_stack, geometry, gqa_attention, set_moe
from reportgen.arch.fields import Fields
from reportgen.arch.kv import model_level_window_layers
from reportgen.arch.spec import Component as C, ModelSpec, Tensor


def build(f: Fields, spec: ModelSpec) -> None:
    g = geometry(f)
    if g.tie:
        raise Unsupported("dots1 with tie_word_embeddings=true: vLLM's Dots1ForCausalLM always allocates its own lm_head")
    if f.flag("attention_bias"):
        raise Unsupported("dots1 with attention_bias=true: vLLM's o_proj has no bias, transformers' has")
    if f.get("hidden_act") != "silu":
        raise Unsupported(f"dots1 with hidden_act {f.get('hidden_act')!r}: vLLM's dots1.py accepts silu only")
    freq = f.raw.get("moe_layer_freq", 1)
    if freq != 1:
        raise Unsupported(f"dots1 with moe_layer_freq {freq!r}: vLLM skips MoE layers transformers builds")
    n_exp = f.int("n_routed_experts")
    n_shared = f.int("n_shared_experts", lo=0)
    k_dense = f.int("first_k_dense_replace", 0, lo=0)
    moe_inter = f.int("moe_intermediate_size")
    inter = f.int("intermediate_size") if k_dense else 0
    set_moe(spec, f, n_exp, shared=n_shared)
    def mlp(ts: list[Tensor], i: int, p: str) -> None:
        if i < k_dense:
            B.gated_mlp(ts, i, f"{p}.mlp", g.hidden, inter, C.DENSE_MLP)
        else:
            B.router(ts, i, f"{p}.mlp.gate", g.hidden, n_exp)
            B.experts(ts, i, f"{p}.mlp.experts", g.hidden, moe_inter, n_exp)
            B.gated_mlp(ts, i, f"{p}.mlp.shared_experts", g.hidden, moe_inter * n_shared, C.SHARED_EXPERTS)

    decoder_stack(spec, f, g, attention=gqa_attention(g, qk_norm="head"), mlp=mlp, tied=False,
                  layers_kv=model_level_window_layers(f, g.n_layers, g.n_kv, g.head_dim))

