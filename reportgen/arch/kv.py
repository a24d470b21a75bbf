"""Per-layer KV-cache geometry, mirroring vLLM's kv_cache_interface.py spec types.

vLLM gives every attention layer one spec: FullAttentionSpec,
SlidingWindowSpec (window), ChunkedLocalAttentionSpec (chunk) or
MLAAttentionSpec (one latent of ``kv_lora_rank + qk_rope_head_dim`` per token,
not split by TP).  transformers 5 states the per-layer kind in
``layer_types``; configs without it get a single kind for every layer: a
sliding window when ``sliding_window`` is a positive int (vLLM applies the
config's window to every layer then -- Mistral-7B-v0.1, Phi-3), full otherwise.

Layer kinds we do not model (linear attention, Mamba, indexed/DSA, ...) raise
``Unsupported``: a cache that is not attention-shaped must not be priced as one.
"""

from __future__ import annotations

import dataclasses

from reportgen.arch.errors import Unsupported
from reportgen.arch.fields import Fields
from reportgen.arch.spec import AttentionKind, LayerKV

FULL_TYPES = {"full_attention", "attention", "global_attention", "full", "global"}
SLIDING_TYPES = {"sliding_attention", "local_attention", "sliding", "local"}
CHUNKED_TYPES = {"chunked_attention"}


def layer_types(f: Fields, n_layers: int) -> list[str] | None:
    """``layer_types`` if the config has one; validated against the layer count."""
    lt = f.str_list("layer_types")
    if lt is None:
        return None
    if len(lt) != n_layers:
        raise f.err("layer_types", f"has {len(lt)} entries for {n_layers} layers")
    for t in lt:
        if t not in FULL_TYPES | SLIDING_TYPES | CHUNKED_TYPES:
            raise Unsupported(f"layer type {t!r} (in layer_types) is not modelled: only full, sliding-window "
                              "and chunked attention layers are")
    return lt


def required_layer_types(f: Fields, n_layers: int, family: str) -> list[str]:
    """``layer_types`` that must be there, one full or sliding-window entry per layer (Gemma-3n, Gemma-4)."""
    lt = f.str_list("layer_types")
    if lt is None or len(lt) != n_layers:
        raise f.err("layer_types", f"must list {n_layers} layer types")
    for t in lt:
        if t not in FULL_TYPES | SLIDING_TYPES:
            raise Unsupported(f"{family} layer type {t!r} is not modelled")
    return lt


def attention_layers(f: Fields, n_layers: int, n_kv: int, head_dim: int, *, v_head_dim: int | None = None,
                     global_sliding: bool = True) -> list[LayerKV]:
    """One LayerKV per decoder layer of a grouped-query-attention model.

    ``global_sliding``: without ``layer_types``, a positive ``sliding_window``
    makes every layer sliding (vLLM's cache_config.sliding_window).
    """
    v_dim = head_dim if v_head_dim is None else v_head_dim
    window = f.get("sliding_window")
    window = window if isinstance(window, int) and not isinstance(window, bool) and window > 0 else None
    chunk = f.opt_int("attention_chunk_size") if f.has("attention_chunk_size") else None
    lt = layer_types(f, n_layers)
    out: list[LayerKV] = []
    for i in range(n_layers):
        kind = lt[i] if lt is not None else ("sliding_attention" if (global_sliding and window) else "full_attention")
        # a sliding / chunked layer without a window or chunk size attends to everything: vLLM
        # builds it as full attention (per-layer window None)
        if kind in SLIDING_TYPES and window is not None:
            out.append(LayerKV(AttentionKind.SLIDING, n_kv, head_dim, v_dim, window))
        elif kind in CHUNKED_TYPES and chunk is not None:
            out.append(LayerKV(AttentionKind.CHUNKED, n_kv, head_dim, v_dim, chunk))
        else:
            out.append(LayerKV(AttentionKind.FULL, n_kv, head_dim, v_dim))
    return out


def model_window_fallback(f: Fields, layers: list[LayerKV]) -> list[LayerKV]:
    """Per-layer-window families (olmo3, exaone4, exaone_moe, cohere2, the Transformers backend): every layer
    full while ``sliding_window`` is set -> every layer SLIDING at that window, as vLLM builds it.

    vLLM (0.13.0 - 0.34.0 sdists, the same code): such a model passes ``per_layer_sliding_window=None`` for a
    full layer (exaone4.py l. 175-195 and transformers/base.py l. 556-563 at 0.22.0), so ``Attention.__init__``
    takes ``cache_config.sliding_window`` (attention.py l. 213-221), which ``EngineArgs.create_engine_config``
    sets to the config's ``sliding_window`` whenever ``is_interleaved`` is false (arg_utils.py l. 1738-1743;
    ``transformers_utils/config.py`` l. 560-567: ``layer_types`` of more than one kind) -- true when every layer
    is full.  A mixed ``layer_types`` leaves the layers as they are (cache window None)."""
    window = f.get("sliding_window")
    if not (isinstance(window, int) and not isinstance(window, bool) and window > 0) or not layers \
            or any(l.kind is not AttentionKind.FULL for l in layers):
        return layers
    lt = f.str_list("layer_types")
    if lt is not None and len(set(lt)) > 1:
        return layers
    return [dataclasses.replace(l, kind=AttentionKind.SLIDING, window=window) for l in layers]


def model_level_window_layers(f: Fields, n_layers: int, n_kv: int, head_dim: int) -> list[LayerKV]:
    """A model whose vLLM attention passes no per-layer window (dots1.py, commandr.py's v1 layers): every layer takes
    the model-level ``cache_config.sliding_window`` (``model_window_fallback``): all in the config's window when
    ``layer_types`` (validated) hold one kind or are absent, all full when they mix or there is no window."""
    layer_types(f, n_layers)
    return model_window_fallback(f, [LayerKV(AttentionKind.FULL, n_kv, head_dim, head_dim) for _ in range(n_layers)])


def mla_layers(n_layers: int, kv_lora_rank: int, rope_dim: int) -> list[LayerKV]:
    """MLA: one shared latent per token, ``kv_lora_rank + qk_rope_head_dim`` wide, not split by TP."""
    return [LayerKV(AttentionKind.MLA, 1, kv_lora_rank + rope_dim, 0) for _ in range(n_layers)]
