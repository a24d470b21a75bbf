"""K-EXAONE (exaone_moe): pre-norm GQA layers with per-head q/k norms, DeepSeek-style MoE.

Follows vLLM ``vllm/model_executor/models/exaone_moe.py`` read at commit
055e47c28003156421365af985d676fc921cb075 (registry.py at that commit: ``ExaoneMoeForCausalLM`` ->
``exaone_moe``), checked parameter-for-parameter against transformers 5.24 ``modeling_exaone_moe.py``:

* ``input_layernorm`` and ``post_attention_layernorm`` RMSNorms (pre-norm, unlike EXAONE-4.0's post-norms);
* q/k/v/o without bias in transformers; vLLM adds q/k/v/o biases for ``attention_bias`` or ``bias`` and
  dense-MLP biases for ``mlp_bias`` -- such configs are refused (two different models);
* per-head ``q_norm`` / ``k_norm`` RMSNorms of ``head_dim`` (replicated);
* MLP per ``mlp_layer_types``: ``sparse`` -> router ``E x H`` (vLLM ``ReplicatedLinear``, unquantized;
  transformers keeps it in float32 -- a parameter either way), ``num_experts`` experts of
  ``moe_intermediate_size`` and a shared SwiGLU of ``moe_intermediate_size * num_shared_experts``
  (vLLM builds it only for ``num_shared_experts > 0``; transformers' zero-width one has no parameters);
  anything else -> SwiGLU of ``intermediate_size``.  ``e_score_correction_bias`` is a transformers
  buffer (vLLM: a float32 parameter of E values per MoE layer): not counted, as for glm4_moe / DeepSeek-V3;
* lm_head tied by ``tie_word_embeddings`` (vLLM ties the ParallelLMHead to the embedding);
* MTP weights (``mtp.*``) are skipped by vLLM's loader and not built by transformers: not counted
  (vLLM serves them only as the separate ``ExaoneMoeMTP`` draft model);
* vLLM raises for ``tp > num_experts`` (``spec.max_tp``: such layouts are ``invalid_layout``).

KV cache: vLLM's attention reads ``config.sliding_windows`` (a per-layer list the K-EXAONE config.json
states; transformers 5.24's ExaoneMoeConfig does not define it and uses the scalar ``sliding_window``
for its masks) -- a layer whose ``layer_types`` entry is ``full_attention`` is full, any other gets the
window ``sliding_windows[i]`` (``per_layer_sliding_window``, which ``Attention`` turns into a
``SlidingWindowSpec``: vllm 0.34.0 sdist model_executor/layers/attention/attention.py:282-284, 650-702).
Without ``sliding_windows`` (absent or null) such a layer takes the scalar ``sliding_window`` -- vLLM 0.32's
fallback "Configs published before K-EXAONE 2.0 only have the scalar `sliding_window`" (vllm 0.32.0 and
0.34.0 sdists, exaone_moe.py:231-246) -- and the spec carries ``served_from = (0.32, NO_WINDOW_LIST)``:
0.27 - 0.31 evaluate ``config.sliding_windows`` for every layer (0.27.0 exaone_moe.py:236, 0.31.0 :230) and
raise AttributeError on transformers' ExaoneMoeConfig, so ``estimate/served.spec_for_version`` refuses those
releases with that reason (an absent list fails there even when every layer is full).  Releases before 0.27
built exaone_moe from exaone4's attention (scalar window) and K-EXAONE's pre-release fields (``is_moe_layer``,
registry key ``ExaoneMoEForCausalLM``), not from transformers 5's config: refused the same way.  Refused on
every release: a non-positive window on a non-full layer (list entry or scalar).  Every layer full while
``sliding_window`` is set: every layer in that window (vLLM's model-level fallback, ``kv.model_window_fallback``).
Rotary: every layer builds the same ``get_rope`` (full layers of interleaved models skip it at run
time, NoPE) -> one cache.
"""

from __future__ import annotations

from reportgen.arch.errors import Unsupported
from reportgen.arch.families.common import (decoder_stack, dense_or_moe_mlp, geometry, gqa_attention, mlp_layer_types,
                                            set_moe)
from reportgen.arch.fields import Fields
from reportgen.arch.kv import layer_types, model_window_fallback
from reportgen.arch.spec import AttentionKind, LayerKV, ModelSpec


def build(f: Fields, spec: ModelSpec) -> None:
    for name in ("attention_bias", "bias", "mlp_bias"):
        if f.raw.get(name):
            raise Unsupported(f"exaone_moe with {name}=true: transformers has no biases, vLLM would load them")
    g = geometry(f)
    inter = f.int("intermediate_size")
    moe_inter = f.int("moe_intermediate_size")
    n_exp = f.int("num_experts")
    n_shared = f.int("num_shared_experts", 0, lo=0)
    kinds = mlp_layer_types(f, g.n_layers)
    set_moe(spec, f, n_exp, shared=1 if n_shared else 0)

    mlp = dense_or_moe_mlp(g.hidden, [k == "sparse" for k in kinds], dense_inter=inter, moe_inter=moe_inter,
                           n_exp=n_exp, shared_inter=moe_inter * n_shared)
    decoder_stack(spec, f, g, attention=gqa_attention(g, qk_norm="head"), mlp=mlp,
                  layers_kv=_layers(f, g.n_layers, g.n_kv, g.head_dim, spec))
    spec.max_tp = n_exp                         # vLLM: ValueError for tp > num_experts


# what vLLM releases before 0.32 do with a config that has no ``sliding_windows`` (ModelSpec.served_from)
NO_WINDOW_LIST = ("exaone_moe.py of vLLM 0.27 - 0.31 reads config.sliding_windows for every layer ('if "
                  "config.sliding_windows is not None:', vllm 0.31.0 sdist exaone_moe.py:230) and fails on a config "
                  "without it: AttributeError: 'ExaoneMoeConfig' object has no attribute 'sliding_windows' (a null "
                  "list leaves a sliding layer's sliding_window_size unset, AttributeError too); releases before "
                  "0.27 read K-EXAONE's pre-release fields instead (is_moe_layer, vllm 0.26.0 exaone_moe.py:194); "
                  "0.32 falls back to the scalar sliding_window (vllm 0.32.0 sdist exaone_moe.py:243-246)")


def _layers(f: Fields, n_layers: int, n_kv: int, head_dim: int, spec: ModelSpec) -> list[LayerKV]:
    lt = layer_types(f, n_layers) or ["full_attention"] * n_layers
    windows = f.get("sliding_windows")
    out: list[LayerKV] = []
    for i, t in enumerate(lt):
        if t == "full_attention":
            out.append(LayerKV(AttentionKind.FULL, n_kv, head_dim, head_dim))
            continue
        if windows is not None and (not isinstance(windows, (list, tuple)) or len(windows) != n_layers):
            raise f.err("sliding_windows", f"must be a list of {n_layers} per-layer windows")
        w, name = (windows[i], f"sliding_windows[{i}]") if windows is not None else \
            (f.get("sliding_window"), "sliding_window (no sliding_windows: vLLM 0.32+'s fallback)")
        if isinstance(w, bool) or not isinstance(w, int) or w < 1:
            raise Unsupported(f"exaone_moe layer {i} is {t!r} with {name} = {w!r}: vLLM's window for it is not a "
                              "positive size; not modelled")
        out.append(LayerKV(AttentionKind.SLIDING, n_kv, head_dim, head_dim, w))
    sliding = any(t != "full_attention" for t in lt)
    if windows is None and (sliding or not f.has("sliding_windows")):
        spec.served_from = ((0, 32), NO_WINDOW_LIST)
        if sliding:
            spec.notes.append(f"no sliding_windows: sliding layers take the scalar sliding_window "
                              f"{f.get('sliding_window')} (vLLM 0.32+; older releases cannot build the config)")
    return model_window_fallback(f, out)
