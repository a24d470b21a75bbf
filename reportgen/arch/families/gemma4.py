"""Gemma 4 language model (gemma4_text; the text stack of gemma4): per-layer head sizes, KV sharing, PLE.

Follows vLLM ``vllm/model_executor/models/gemma4.py`` (read at commit
001cabc1be16a59a70d720ed61a13b678c060a18) and its proportional rope
``vllm/model_executor/layers/rotary_embedding/gemma4_rope.py`` (commit 41c5903d049b80b83a6e570f52f0f55e31316e49),
checked parameter-for-parameter against transformers 5.24 ``modeling_gemma4.py`` (Gemma4TextModel).

Per decoder layer ``i`` (``layer_types[i]``: sliding or full):

* head size and KV heads per layer: transformers 5.24 folds ``global_head_dim`` (default 512) and, on
  ``attention_k_eq_v`` configs, ``num_global_key_value_heads`` into ``per_layer_config`` for the full
  layers; vLLM reads the same two fields (``Gemma4DecoderLayer``, re-read at commit
  eee7972fe3225f0b08bb8d61afd88eb846330a55: ``num_kv_heads = getattr(config, "num_global_key_value_heads",
  config.num_key_value_heads)`` on a k_eq_v full layer) and builds each layer's ``QKVParallelLinear`` and
  ``Attention`` with its own count.  We read the parsed ``per_layer_config`` -- the shapes the checkpoint
  holds.  Where the counts differ (Gemma 4 31B: 16 sliding / 4 global; 26B-A4B: 8 / 2) the K/V weights of
  each layer shard by its own count (``ModelSpec.kv_heads_by_layer``, a second KV class in
  estimate/weights.py), its cache holds ``max(1, n // tp)`` heads, and every count must satisfy vLLM's
  ``n % tp == 0 or tp % n == 0`` assertion (estimate/tables.py ``model_rule``).
* attention: q (COLUMN) / k, v (KV) / o (ROW), biases = ``attention_bias``; per-head ``q_norm`` and
  ``k_norm`` (head size); ``v_norm`` has no weight.
* KV sharing: the last ``num_kv_shared_layers`` layers reuse the cache of the last earlier layer of the
  same type (vLLM ``kv_sharing_target_layer_name``): they hold NO cache of their own
  (``AttentionKind.NONE``) and transformers gives them no k/v projections or k_norm -- but vLLM's
  ``Gemma4Attention`` builds the full ``QKVParallelLinear`` and ``k_norm`` on every layer.  Those K/V
  weights and k_norm are ``allocated_only`` tensors: bytes on the GPU, not parameters.
* ``attention_k_eq_v`` (full layers): transformers has no ``v_proj`` (K is reused as V); vLLM loads the K
  weights into both the K and V slots of ``qkv_proj`` -> V is an ``allocated_only`` copy, and the cache
  still holds K and V (v_norm is applied to V, k_norm and rope to K).
* MLP: gate/up (vLLM ``MergedColumnParallelLinear``) + down, ``intermediate_size`` doubled on KV-shared
  layers when ``use_double_wide_mlp``; vLLM requires ``hidden_activation == gelu_pytorch_tanh``.
* four RMSNorms; per-layer-embedding (PLE) layers: ``per_layer_input_gate`` (H -> P) and
  ``per_layer_projection`` (P -> H), both ``ReplicatedLinear``, and ``post_per_layer_input_norm``.
* ``enable_moe_block``: router (``proj`` E x H, ``scale`` H -- replicated) and ``per_expert_scale`` (E),
  ``num_experts`` FusedMoE experts of ``moe_intermediate_size`` beside the dense MLP, three more norms.
* ``layer_scalar`` is a buffer in both.

Model level: embedding (VOCAB); PLE table ``embed_tokens_per_layer`` (``vocab_size_per_layer_input`` x
``layers * P``, VOCAB) and ``per_layer_model_projection`` (H -> layers*P, COLUMN with gather) and
``per_layer_projection_norm`` (P); final norm; lm_head tied per ``tie_word_embeddings`` (default true).

Pipeline parallelism (vLLM gemma4.py / gemma4_mm.py @eee7972f / @01bae219): ``Gemma4Model`` builds the
embedding, the PLE table, ``per_layer_model_projection`` and its norm and the final norm on EVERY pipeline
rank (no ``PPMissingLayer``; ``make_layers`` splits only the decoder layers), ``Gemma4ForCausalLM`` its
``lm_head`` (tied: the embedding itself), and ``Gemma4ForConditionalGeneration`` the vision / audio towers
and embedders: ``ModelSpec.pp_every_stage`` puts every tensor outside the decoder layers on every stage.
A KV-shared layer reads the cache of its target layer through the forward context of its own rank: when
the target sits on an earlier stage, vLLM's ``validate_kv_sharing_target`` raises ("is not a valid
Attention layer in the model") -> that layout is ``invalid_layout`` (``ModelSpec.kv_sharing``).  E4B
(42 layers, 18 shared, targets 22 and 23) starts at pp = 2 (stage 1 = layers 21-41 holds both targets),
not at pp = 3 or more.

``use_bidirectional_attention == "all"`` (transformers: an encoder, ``is_causal = False``): vLLM reads the field
only to compare it with "vision" (gemma4_mm.py l. 1193 / gemma4_unified.py l. 332 of the 0.34.0 sdist, l. 1011 of
0.22.0; gemma4.py never reads it), so it serves such a model as a causal decoder -- priced as served, with a note.
Refused: every layer KV-shared (vLLM finds no target layer), another ``hidden_activation`` (vLLM raises).

Rotary caches: one per layer type, ``max_position_embeddings`` rows; sliding layers ``default`` rope
of their head size (partial factor from its parameters), full layers ``proportional`` -> vLLM's
``Gemma4RotaryEmbedding`` passes ``rotary_dim = head_size`` to its base class: the cache is the FULL
head size wide, whatever ``partial_rotary_factor``.
"""

from __future__ import annotations

import dataclasses

from reportgen.arch import blocks as B
from reportgen.arch.errors import ConfigError, Unsupported
from reportgen.arch.fields import Fields
from reportgen.arch.kv import FULL_TYPES, SLIDING_TYPES, required_layer_types
from reportgen.arch.rope import cache_rows, rope_parameters
from reportgen.arch.spec import AttentionKind, Component as C, LayerKV, ModelSpec, Shard as S, Tensor

# feature fields (features.py) this family models itself
FEATURES = ("num_kv_shared_layers", "hidden_size_per_layer_input")


def _layer_geometry(f: Fields, n_layers: int) -> tuple[list[str], list[int], list[int], list[str | None]]:
    """(layer types, head size per layer, KV heads per layer, KV sharing mode per layer) from the parsed config."""
    obj = f.obj
    lt = required_layer_types(f, n_layers, "gemma4")
    try:
        modes = list(obj.kv_sharing_modes)
        plc = obj.per_layer_config
        hds = [int(plc[i].head_dim) for i in range(n_layers)]
        kvs = [int(plc[i].num_key_value_heads or f.int("num_attention_heads")) for i in range(n_layers)]
    except (ValueError, AttributeError, TypeError, KeyError, IndexError) as e:
        raise ConfigError(f.prefix + "num_kv_shared_layers", f"transformers rejected the per-layer config: {e}") from None
    for name, vals in (("head_dim", hds), ("num_key_value_heads", kvs)):
        for v in vals:
            if not 1 <= v <= 1 << 18:
                raise f.err(name, f"per-layer value {v} out of range")
    return lt, hds, kvs, modes


def build_text(f: Fields, spec: ModelSpec, prefix: str = "model") -> None:
    hidden = f.int("hidden_size")
    n_layers = f.int("num_hidden_layers")
    n_heads = f.int("num_attention_heads")
    vocab = f.int("vocab_size")
    inter = f.int("intermediate_size")
    tie = f.flag("tie_word_embeddings", True)
    bias = f.flag("attention_bias")
    if f.get("use_bidirectional_attention") == "all":
        spec.notes.append("gemma4 use_bidirectional_attention='all': vLLM ignores it (only 'vision' is read) and "
                          "serves the model as a causal decoder; priced as served")
    act = f.get("hidden_activation") or f.get("hidden_act")
    if act != "gelu_pytorch_tanh":
        raise Unsupported(f"gemma4 with hidden_activation {act!r}: vLLM's Gemma4MLP accepts gelu_pytorch_tanh only")
    n_shared = f.int("num_kv_shared_layers", 0, lo=0)
    if n_shared >= n_layers:
        raise Unsupported("gemma4 with every layer KV-shared: vLLM finds no layer to share the cache of")
    lt, hds, kvs, modes = _layer_geometry(f, n_layers)
    for i, k in enumerate(kvs):
        if n_heads % k:
            raise f.err("num_key_value_heads", f"{k} does not divide num_attention_heads {n_heads} (layer {i})")
    k_eq_v = f.flag("attention_k_eq_v")
    double_wide = f.flag("use_double_wide_mlp")
    ple = f.int("hidden_size_per_layer_input", 0, lo=0)
    moe = f.flag("enable_moe_block")
    window = f.get("sliding_window")
    window = window if isinstance(window, int) and not isinstance(window, bool) and window > 0 else None

    ts = spec.tensors
    B.embedding(ts, vocab, hidden, f"{prefix}.embed_tokens")
    if ple:
        ple_model(ts, prefix, f.int("vocab_size_per_layer_input", vocab), n_layers, ple, hidden)
    if moe:
        n_exp = f.int("num_experts")
        k = f.int("top_k_experts")
        if k > n_exp:
            raise f.err("top_k_experts", f"{k} exceeds the {n_exp} experts")
        moe_inter = f.int("moe_intermediate_size")
        spec.num_experts, spec.experts_per_token = n_exp, k

    layers_kv: list[LayerKV] = []
    for i in range(n_layers):
        p = f"{prefix}.layers.{i}"
        a = f"{p}.self_attn"
        hd, full, shared = hds[i], lt[i] in FULL_TYPES, modes[i] == "reuse"
        v_copy = k_eq_v and full
        attention(ts, a, i, hidden, n_heads, kvs[i], hd, bias=bias, shared=shared, v_copy=v_copy)
        width = inter * (2 if double_wide and shared else 1)
        B.gated_mlp(ts, i, f"{p}.mlp", hidden, width, C.DENSE_MLP)
        for name in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                     "post_feedforward_layernorm"):
            B.norm(ts, f"{p}.{name}", hidden, i)
        if ple:
            ple_layer(ts, p, i, hidden, ple)
        if moe:
            B.router(ts, i, f"{p}.router.proj", hidden, n_exp)
            ts.append(Tensor(f"{p}.router.scale", (hidden,), S.REPLICATED, C.ROUTER, i))
            ts.append(Tensor(f"{p}.moe.per_expert_scale", (n_exp,), S.REPLICATED, C.ROUTER, i))
            B.experts(ts, i, f"{p}.moe.experts", hidden, moe_inter, n_exp)
            for name in ("post_feedforward_layernorm_1", "post_feedforward_layernorm_2", "pre_feedforward_layernorm_2"):
                B.norm(ts, f"{p}.{name}", hidden, i)
        if shared:
            layers_kv.append(LayerKV(AttentionKind.NONE))
        elif lt[i] in SLIDING_TYPES and window is not None:
            layers_kv.append(LayerKV(AttentionKind.SLIDING, kvs[i], hd, hd, window))
        else:
            layers_kv.append(LayerKV(AttentionKind.FULL, kvs[i], hd, hd))
    B.norm(ts, f"{prefix}.norm", hidden, None)
    B.lm_head(ts, vocab, hidden, tied=tie)

    spec.hidden_size, spec.vocab_size, spec.num_layers = hidden, vocab, n_layers
    # num_key_value_heads (the sliding layers'); full layers of an attention_k_eq_v config may hold
    # num_global_key_value_heads: their K/V weights shard by their own count (kv_heads_by_layer)
    n_kv = next((k for k, t in zip(kvs, lt) if t not in FULL_TYPES), kvs[0])
    spec.num_attention_heads, spec.num_kv_heads = n_heads, n_kv
    if len(set(kvs)) > 1:
        spec.kv_heads_by_layer = tuple(kvs)
    spec.head_dim = hds[0]                     # per layer in layers_kv; the global field is ambiguous
    spec.tie_word_embeddings = tie
    spec.max_position_embeddings = f.opt_int("max_position_embeddings")
    spec.rotary_dim = spec.head_dim
    spec.layers_kv = layers_kv
    spec.rope_caches = _rope_caches(f, lt, hds, spec.max_position_embeddings)
    spec.pp_every_stage = True
    spec.kv_sharing = _kv_sharing_targets(lt, modes)


def _kv_sharing_targets(lt: list[str], modes: list[str | None]) -> tuple[tuple[int, int], ...]:
    """(KV-shared layer, the layer whose cache it reads): vLLM's Gemma4Attention takes the last layer of
    the same type before the first shared one (``kv_sharing_target_layer_name``)."""
    first = next((i for i, m in enumerate(modes) if m == "reuse"), len(modes))
    last_of = {t: i for i, t in enumerate(lt[:first])}
    return tuple((i, last_of[lt[i]]) for i in range(first, len(lt)))


# ---------------------------------------------------------------- blocks shared with gemma3n (vLLM gemma3n.py)

def attention(ts: list[Tensor], a: str, i: int, hidden: int, n_heads: int, n_kv: int, hd: int, *,
              bias: bool = False, shared: bool = False, v_copy: bool = False) -> None:
    """q (COLUMN) / k, v (KV) / o (ROW), per-head q_norm and k_norm (v_norm has no weight).  vLLM builds the
    whole ``QKVParallelLinear`` and ``k_norm`` on every layer: on a KV-shared layer (``shared``) transformers
    has no k/v/k_norm -> ``allocated_only``; ``v_copy`` (attention_k_eq_v) -> only V is a copy of K."""
    B.linear(ts, f"{a}.q_proj", hidden, n_heads * hd, S.COLUMN, C.ATTENTION, i, bias=bias)
    ts_kv: list[Tensor] = []
    B.linear(ts_kv, f"{a}.k_proj", hidden, n_kv * hd, S.KV, C.ATTENTION, i, bias=bias)
    B.linear(ts_kv, f"{a}.v_proj", hidden, n_kv * hd, S.KV, C.ATTENTION, i, bias=bias)
    B.norm(ts_kv, f"{a}.k_norm", hd, i, comp=C.ATTENTION)
    for t in ts_kv:
        copy = shared or (v_copy and ".v_proj." in t.name)
        ts.append(Tensor(t.name, t.shape, t.shard, t.component, t.layer, t.count, t.quantizable, copy))
    B.linear(ts, f"{a}.o_proj", n_heads * hd, hidden, S.ROW, C.ATTENTION, i, bias=bias)
    B.norm(ts, f"{a}.q_norm", hd, i, comp=C.ATTENTION)


def ple_model(ts: list[Tensor], prefix: str, ple_vocab: int, n_layers: int, ple: int, hidden: int) -> None:
    """The per-layer-embedding table (VocabParallelEmbedding), ``per_layer_model_projection`` (COLUMN,
    gathered) and ``per_layer_projection_norm`` (a norm: NORM, as the oracle files it)."""
    ts.append(Tensor(f"{prefix}.embed_tokens_per_layer.weight", (ple_vocab, n_layers * ple), S.VOCAB, C.OTHER))
    B.linear(ts, f"{prefix}.per_layer_model_projection", hidden, n_layers * ple, S.COLUMN, C.OTHER, None)
    B.norm(ts, f"{prefix}.per_layer_projection_norm", ple, None)


def ple_layer(ts: list[Tensor], p: str, i: int, hidden: int, ple: int) -> None:
    """A decoder layer's PLE gate (H -> P) and projection (P -> H), both ``ReplicatedLinear``, and its norm."""
    B.linear(ts, f"{p}.per_layer_input_gate", hidden, ple, S.REPLICATED, C.OTHER, i)
    B.linear(ts, f"{p}.per_layer_projection", ple, hidden, S.REPLICATED, C.OTHER, i)
    B.norm(ts, f"{p}.post_per_layer_input_norm", hidden, i)


def _rope_caches(f: Fields, lt: list[str], hds: list[int], max_pos: int | None, *, whole_head: bool = False) -> tuple:
    """One ``get_rope`` cache per (layer type, head size): rows x width, model dtype (module docstring).
    ``whole_head``: the model passes ``rotary_dim = head_size`` whatever the rope parameters (gemma3n)."""
    if not max_pos:
        return ()
    params = rope_parameters(f) or {}
    seen: dict[tuple, tuple[int, int, int]] = {}
    for kind, hd in zip(lt, hds):
        rp = params.get(kind) or params.get("") or {"rope_type": "default"}
        if whole_head or rp.get("rope_type") == "proportional":
            width = hd
        else:
            factor = rp.get("partial_rotary_factor", 1.0)
            width = int(hd * factor) if isinstance(factor, (int, float)) and 0 < factor <= 1 else hd
        # get_rope memoises on head size, rotary dim, positions and parameters
        key = (hd, width, repr(sorted(rp.items(), key=lambda kv: str(kv[0]))))
        seen.setdefault(key, (cache_rows(rp, max_pos), width, 0))
    return tuple(seen.values())


# ---------------------------------------------------------------- the composite (gemma4): towers and embedders

def _rep(ts: list[Tensor], name: str, shape: tuple[int, ...], quantizable: bool = False) -> None:
    """A tower tensor: vLLM's gemma4_mm.py builds the towers with transformers' AutoModel and swaps their
    Linears for ``ReplicatedLinear`` (``recursive_replace_linear``): whole on every rank."""
    ts.append(Tensor(name, shape, S.REPLICATED, C.VISION, None, 1, quantizable))


def vision_tower(ts: list[Tensor], f: Fields, prefix: str = "model.vision_tower") -> int:
    """transformers ``Gemma4VisionModel``: patch embedder (input_proj + 2-D position table), encoder layers
    (q/k/v/o, per-head q/k norms, gated MLP, four RMSNorms); the pooler has no weights.  Returns its width."""
    h = f.int("hidden_size")
    inter = f.int("intermediate_size")
    n_layers = f.int("num_hidden_layers")
    heads = f.int("num_attention_heads")
    kv = f.int("num_key_value_heads", heads)
    hd = f.int("head_dim", h // heads)
    patch = f.int("patch_size")
    pos = f.int("position_embedding_size")
    _rep(ts, f"{prefix}.patch_embedder.input_proj.weight", (h, 3 * patch * patch), True)
    _rep(ts, f"{prefix}.patch_embedder.position_embedding_table", (2, pos, h))
    for i in range(n_layers):
        p = f"{prefix}.encoder.layers.{i}"
        for name, out_f, in_f in (("q_proj", heads * hd, h), ("k_proj", kv * hd, h), ("v_proj", kv * hd, h),
                                  ("o_proj", h, heads * hd)):
            _rep(ts, f"{p}.self_attn.{name}.linear.weight", (out_f, in_f), True)
        _rep(ts, f"{p}.self_attn.q_norm.weight", (hd,))
        _rep(ts, f"{p}.self_attn.k_norm.weight", (hd,))
        for name, out_f, in_f in (("gate_proj", inter, h), ("up_proj", inter, h), ("down_proj", h, inter)):
            _rep(ts, f"{p}.mlp.{name}.linear.weight", (out_f, in_f), True)
        for name in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                     "post_feedforward_layernorm"):
            _rep(ts, f"{p}.{name}.weight", (h,))
    return h


def audio_tower(ts: list[Tensor], f: Fields, prefix: str = "model.audio_tower") -> int:
    """transformers ``Gemma4AudioModel`` (a USM conformer): two conv subsampling layers (bias-free conv +
    LayerNorm weight), input projection, conformer layers (two macaron feed-forwards, chunked local
    attention with ``relative_k_proj`` and ``per_dim_scale``, a light depthwise-conv block, norms), and
    ``output_proj`` with bias.  Returns its output width."""
    h = f.int("hidden_size")
    n_layers = f.int("num_hidden_layers")
    heads = f.int("num_attention_heads")
    if h % heads:
        raise f.err("num_attention_heads", f"{heads} does not divide hidden_size {h}")
    hd = h // heads
    chans = f.int_list("subsampling_conv_channels", lo=1, hi=1 << 16)
    if len(chans) != 2:
        raise f.err("subsampling_conv_channels", "must hold two channel counts")
    c0, c1 = chans
    k = f.int("conv_kernel_size")
    out = f.int("output_proj_dims")
    s = f"{prefix}.subsample_conv_projection"
    _rep(ts, f"{s}.layer0.conv.weight", (c0, 1, 3, 3))
    _rep(ts, f"{s}.layer0.norm.weight", (c0,))
    _rep(ts, f"{s}.layer1.conv.weight", (c1, c0, 3, 3))
    _rep(ts, f"{s}.layer1.norm.weight", (c1,))
    _rep(ts, f"{s}.input_proj_linear.weight", (h, (c0 // 4) * c1), True)
    for i in range(n_layers):
        p = f"{prefix}.layers.{i}"
        for ff in ("feed_forward1", "feed_forward2"):
            _rep(ts, f"{p}.{ff}.ffw_layer_1.linear.weight", (4 * h, h), True)
            _rep(ts, f"{p}.{ff}.ffw_layer_2.linear.weight", (h, 4 * h), True)
            _rep(ts, f"{p}.{ff}.pre_layer_norm.weight", (h,))
            _rep(ts, f"{p}.{ff}.post_layer_norm.weight", (h,))
        for name in ("q_proj", "k_proj", "v_proj"):
            _rep(ts, f"{p}.self_attn.{name}.linear.weight", (heads * hd, h), True)
        _rep(ts, f"{p}.self_attn.post.linear.weight", (h, h), True)
        _rep(ts, f"{p}.self_attn.relative_k_proj.weight", (heads * hd, h), True)
        _rep(ts, f"{p}.self_attn.per_dim_scale", (hd,))
        _rep(ts, f"{p}.lconv1d.linear_start.linear.weight", (2 * h, h), True)
        _rep(ts, f"{p}.lconv1d.linear_end.linear.weight", (h, h), True)
        _rep(ts, f"{p}.lconv1d.depthwise_conv1d.weight", (h, 1, k))
        _rep(ts, f"{p}.lconv1d.pre_layer_norm.weight", (h,))
        _rep(ts, f"{p}.lconv1d.conv_norm.weight", (h,))
        for name in ("norm_pre_attn", "norm_post_attn", "norm_out"):
            _rep(ts, f"{p}.{name}.weight", (h,))
    _rep(ts, f"{prefix}.output_proj.weight", (out, h), True)
    _rep(ts, f"{prefix}.output_proj.bias", (out,))
    return out


def prepare(config: dict) -> dict:
    """The composite check (multimodal.prepare), and a ``vision_config`` required: vLLM's gemma4_mm.py
    always builds the vision tower from it, and Gemma4Config's class default has none (None), so
    there is no default tower to fall back on as for gemma3 / mistral3 / llama4."""
    from collections.abc import Mapping

    from reportgen.arch.families import multimodal

    text = multimodal.prepare(config)
    if not isinstance(config.get("vision_config"), Mapping):
        raise ConfigError("vision_config", "is missing (vLLM builds Gemma 4's vision tower from it; the class "
                                           "default has none)")
    return text


# vLLM gemma4_mm.py @01bae219 (Gemma4ProcessingInfo.get_mm_max_tokens_per_item): a video is at most
# _VIDEO_MAX_FRAMES = 32 frames of _VIDEO_MAX_SOFT_TOKENS = 70 soft tokens + boi + eoi + ~6 timestamp tokens
VIDEO_ITEM_TOKENS = 32 * (70 + 2 + 6)
# transformers 5.24 Gemma4Processor defaults: image_seq_length 280 (the image soft tokens when the vision config
# has no ``default_output_length``, which Gemma4VisionConfig 5.24 does not define), audio_seq_length 750
IMAGE_ITEM_TOKENS, AUDIO_ITEM_TOKENS = 280, 750


def item_tokens(f: Fields, audio: bool) -> dict[str, int]:
    """vLLM ``get_mm_max_tokens_per_item``: image = ``vision_config.default_output_length`` (280 when absent: the
    processor's ``image_seq_length``), audio = the processor's ``audio_seq_length`` (750; only with an audio tower),
    video = 32 x 78 = 2,496.  ``mm_processor_kwargs`` ``max_soft_tokens`` and a video ``num_frames`` limit option
    are not read (preprocessor / processor configs are not read either)."""
    raw = (f.raw.get("vision_config") or {}).get("default_output_length")
    image = raw if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0 else IMAGE_ITEM_TOKENS
    out = {"image": image, "video": VIDEO_ITEM_TOKENS}
    if audio:
        out["audio"] = AUDIO_ITEM_TOKENS
    return out


def build(f: Fields, spec: ModelSpec) -> None:
    """gemma4 (Gemma4ForConditionalGeneration, vLLM ``gemma4_mm.py`` read at commit
    01bae2190e1c298115941f50bd6ed508216f24e7): the language model above under ``model.language_model``,
    the vision tower, the audio tower when ``audio_config`` is set, and one embedder per tower
    (``embedding_projection`` tower width -> text hidden, a ``ReplicatedLinear``; its pre-projection norm
    has no weight).

    Towers and embedders are built with ``tower_quant``: the checkpoint's / ``--quantization`` scheme only when
    the *vision* tower's ``hidden_size`` and ``intermediate_size`` are multiples of 64 (bitsandbytes / torchao
    excepted); otherwise every Linear of both towers and both embedders stays in the model dtype.
    ``--limit-mm-per-prompt``: the vision tower + ``embed_vision`` are marked ``{"image", "video"}``, the audio
    tower + ``embed_audio`` ``"audio"`` (``encoder.MODALITY_TENSORS``); the largest item is per modality
    (``item_tokens``)."""
    from reportgen.arch.parse import config_class

    text = Fields(f.obj.text_config, f.raw["text_config"], "text_config.")
    vis = Fields(f.obj.vision_config, f.raw["vision_config"], "vision_config.")
    build_text(text, spec, prefix="model.language_model")
    ts = spec.tensors
    h_t = spec.hidden_size
    h_v = vision_tower(ts, vis)
    _rep(ts, "model.embed_vision.embedding_projection.weight", (h_t, h_v), True)
    raw_audio = f.raw.get("audio_config")
    if raw_audio is not None:
        if not isinstance(raw_audio, dict):
            raise ConfigError("audio_config", f"must be an object, got {type(raw_audio).__name__}")
        cls = config_class(raw_audio.get("model_type") or "gemma4_audio")
        try:
            audio_obj = cls(**{k: v for k, v in raw_audio.items() if k != "model_type"})
        except Exception as e:  # noqa: BLE001 - transformers raises many types on bad input
            raise ConfigError("audio_config", f"transformers rejected the config: {type(e).__name__}: {e}") from None
        h_a = audio_tower(ts, Fields(audio_obj, raw_audio, "audio_config."))
        _rep(ts, "model.embed_audio.embedding_projection.weight", (h_t, h_a), True)
    if not (h_v % 64 == 0 and vis.int("intermediate_size") % 64 == 0):
        ts[:] = [dataclasses.replace(t, quantizable=False) if t.component is C.VISION else t for t in ts]
        spec.notes.append(f"vision tower {h_v} / {vis.int('intermediate_size')} wide (not multiples of 64): vLLM "
                          "builds both towers and embedders without the quantization scheme")
    spec.multimodal = True
    # vLLM gemma4_mm.py @01bae219: per_layer_embeddings = zeros(max_num_batched_tokens, num_hidden_layers,
    # hidden_size_per_layer_input) in the model dtype when the PLE width is > 0, allocated with the language model
    # (kept when every modality is limited to 0); priced per batched token like gemma3n's
    spec.init_buffer_per_token = spec.num_layers * text.int("hidden_size_per_layer_input", 0, lo=0)
    spec.mm_item_tokens_by_modality = item_tokens(f, raw_audio is not None)
    spec.mm_item_tokens = max(spec.mm_item_tokens_by_modality.values())
