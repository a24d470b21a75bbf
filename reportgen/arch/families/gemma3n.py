"""Gemma 3n: the language model (gemma3n_text: AltUp, LAuReL, per-layer embeddings, KV-shared layers) and
the composite (gemma3n: + timm vision tower, audio conformer, embedders; at the end of this module).

Follows vLLM ``vllm/model_executor/models/gemma3n.py`` (read at commit
7bbfbc7f867c5ea3e67544d302b6f6c73667b11b, and the later YOCO version with ``Gemma3nSelfDecoder`` /
``Gemma3nCrossDecoder``, whose tensors are the same), checked parameter-for-parameter against
transformers 5.24 ``modeling_gemma3n.py`` (Gemma3nForCausalLM).  The attention, PLE and rotary blocks
are Gemma 4's (families/gemma4.py), which inherited them.

Per decoder layer ``i`` (``layer_types[i]``: sliding or full; one head size and KV head count):

* AltUp (``Gemma3nAltUp``): ``correction_coefs`` (n x n), ``prediction_coefs`` (n^2 x n),
  ``modality_router`` (n x H) -- all ``ReplicatedLinear`` --, ``router_norm`` (H) and
  ``correct_output_scale`` (H; vLLM keeps it float32, 2 extra bytes per element not priced);
  n = ``altup_num_inputs``.  vLLM asserts ``altup_correct_scale``.
* attention: Gemma 4's block -- q (COLUMN) / k, v (KV) / o (ROW), q_norm, k_norm; on a KV-shared layer
  vLLM still builds ``qkv_proj`` and ``k_norm`` (``allocated_only``: transformers has no k/v there).
* MLP: gate/up (``MergedColumnParallelLinear``) + down of ``intermediate_size[i]`` (a per-layer list;
  ``activation_sparsity_pattern`` changes the activation, not the weights); vLLM requires
  ``hidden_activation == gelu_pytorch_tanh``.
* LAuReL: ``linear_left`` (H -> laurel_rank, COLUMN), ``linear_right`` (ROW), ``post_laurel_norm``.
* PLE gate / projection (``ReplicatedLinear``) and ``post_per_layer_input_norm``; four more RMSNorms.

Model level: ``embed_tokens`` (VOCAB), the PLE table / projection / norm (Gemma 4's), ``altup_projections``
and ``altup_unembed_projections`` (n - 1 each, H x H, ``ColumnParallelLinear`` with gather), final norm.
vLLM has no ``lm_head``: ``compute_logits`` uses ``embed_tokens`` -- a config with
``tie_word_embeddings: false`` is refused (transformers would count a separate head vLLM never loads).

KV sharing: layers ``>= first = num_hidden_layers - num_kv_shared_layers`` read the cache of layer
``first - 2`` (sliding) or ``first - 1`` (full) -- vLLM's fixed offsets, not transformers' "last earlier
layer of the type" -- and hold none (``AttentionKind.NONE``); when that index is negative vLLM sets no
target and the layer keeps a cache of its own.

Pipeline parallelism: ``Gemma3nForCausalLM`` does not implement ``SupportsPP``, so vLLM refuses pp > 1
("Pipeline parallelism is not supported for this model"): ``ModelSpec.pp_invalid`` -> those layouts are
``invalid_layout``.

Rotary caches: ``get_rope(head_dim, rotary_dim=head_dim, ...)`` per layer type -- sliding layers the
default rope at ``rope_local_base_freq``, full layers ``rope_theta`` with the config's scaling.

The composite follows vLLM ``vllm/model_executor/models/gemma3n_mm.py`` (read at commit
01e4fce07423dafcc832600ba05159fb28dc1126), checked against transformers 5.24 Gemma3nForConditionalGeneration:

* ``vision_tower``: ``AutoModel.from_config(vision_config)`` -> TimmWrapperModel ->
  ``timm.create_model(architecture, pretrained=False, num_classes=0, **model_args)`` in both.  Its tensors
  come from reportgen/arch/timm_towers.json, written with timm by scripts/timm_towers.py (timm is a test-only
  dependency); a name not in the table, or any ``model_args``, is refused with that reason.
* ``audio_tower``: ``AutoModel.from_config(audio_config)`` -> transformers' Gemma3nAudioEncoder, built here
  from the config fields.
* both towers are plain torch modules inside vLLM (no TP layers, no quant_config): REPLICATED on every rank
  and never quantized.  vLLM marks them as tower models (``_mark_tower_model`` "image" / "audio"), so
  ``--limit-mm-per-prompt`` 0 for a modality drops that tower and its embedder.
* ``embed_vision`` / ``embed_audio``: vLLM's own Gemma3nMultimodalEmbedder -- ``embedding``
  VocabParallelEmbedding (VOCAB), hard / soft RMSNorms, ``embedding_projection`` RowParallelLinear built without
  quant_config (ROW, unquantized), a weightless post-projection norm.
* ``language_model``: vLLM's Gemma3nForCausalLM (above; no lm_head, pp > 1 refused); transformers' composite
  ``lm_head`` is tied to ``embed_tokens`` (a top-level ``tie_word_embeddings: false`` is refused).
* encoder budget: ``get_max_tokens_per_item`` is hard-coded {"image": 256, "audio": 188} ->
  ``mm_item_tokens`` 256.  The ``per_layer_embeddings`` buffer vLLM allocates at init, max_num_batched_tokens
  x layers x hidden_size_per_layer_input in the model dtype (E4B at 8,192 batched tokens: 146.8 MB), is
  ``init_buffer_per_token`` (priced per batched token like Qwen3-VL's deepstack buffers).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from reportgen.arch import blocks as B
from reportgen.arch.errors import ConfigError, Unsupported
from reportgen.arch.fields import Fields, check_int
from reportgen.arch.kv import SLIDING_TYPES, required_layer_types
from reportgen.arch.spec import AttentionKind, Component as C, LayerKV, ModelSpec, Shard as S, Tensor

from reportgen.arch.parse import config_class

from .gemma4 import _rope_caches, attention, ple_layer, ple_model

# vLLM gemma3n_mm.py: "This should be based on model config but we hardcode them for now."
TOKENS_PER_IMAGE, TOKENS_PER_AUDIO = 256, 188

# feature fields (features.py) this family models itself
FEATURES = ("num_kv_shared_layers", "hidden_size_per_layer_input", "laurel_rank", "altup_num_inputs",
            "intermediate_size")


def _per_layer_widths(f: Fields, n_layers: int) -> list[int]:
    """``intermediate_size`` after transformers' ``__post_init__``: one width per layer."""
    raw = f.get("intermediate_size")
    vals = list(raw) if isinstance(raw, (list, tuple)) else [raw] * n_layers
    if len(vals) != n_layers:
        raise f.err("intermediate_size", f"must hold {n_layers} widths, got {len(vals)}")
    return [Fields(None, {"intermediate_size": v}, f.prefix).int("intermediate_size") for v in vals]


def build_text(f: Fields, spec: ModelSpec, prefix: str = "model") -> None:
    hidden = f.int("hidden_size")
    n_layers = f.int("num_hidden_layers")
    n_heads = f.int("num_attention_heads")
    n_kv = f.int("num_key_value_heads", n_heads)
    hd = f.int("head_dim")
    vocab = f.int("vocab_size")
    bias = f.flag("attention_bias")
    if n_heads % n_kv:
        raise f.err("num_key_value_heads", f"{n_kv} does not divide num_attention_heads {n_heads}")
    act = f.get("hidden_activation") or f.get("hidden_act")
    if act != "gelu_pytorch_tanh":
        raise Unsupported(f"gemma3n with hidden_activation {act!r}: vLLM's Gemma3nMLP accepts gelu_pytorch_tanh only")
    if not f.flag("altup_correct_scale", True):
        raise Unsupported("gemma3n with altup_correct_scale false: vLLM's Gemma3nDecoderLayer asserts it")
    if not f.flag("tie_word_embeddings", True):
        raise Unsupported("gemma3n with tie_word_embeddings false: vLLM's Gemma3nForCausalLM has no lm_head "
                          "(its logits use embed_tokens)")
    lt = required_layer_types(f, n_layers, "gemma3n")
    widths = _per_layer_widths(f, n_layers)
    n_alt = f.int("altup_num_inputs")
    rank = f.int("laurel_rank")
    ple = f.int("hidden_size_per_layer_input")
    n_shared = f.int("num_kv_shared_layers", 0, lo=0)
    if n_shared >= n_layers:
        raise f.err("num_kv_shared_layers", f"{n_shared} leaves no layer of the {n_layers} to share the cache of")
    try:
        modes = list(f.obj.kv_sharing_modes)     # transformers' own check (every layer type unshared once)
    except (ValueError, AttributeError, TypeError) as e:
        raise ConfigError(f.prefix + "num_kv_shared_layers", f"transformers rejected the config: {e}") from None
    first = n_layers - n_shared
    window = f.get("sliding_window")
    window = window if isinstance(window, int) and not isinstance(window, bool) and window > 0 else None

    ts = spec.tensors
    B.embedding(ts, vocab, hidden, f"{prefix}.embed_tokens")
    ple_model(ts, prefix, f.int("vocab_size_per_layer_input", vocab), n_layers, ple, hidden)
    for name in ("altup_projections", "altup_unembed_projections"):
        for j in range(n_alt - 1):
            B.linear(ts, f"{prefix}.{name}.{j}", hidden, hidden, S.COLUMN, C.OTHER, None)

    layers_kv: list[LayerKV] = []
    sharing: list[tuple[int, int]] = []
    for i in range(n_layers):
        p = f"{prefix}.layers.{i}"
        sliding = lt[i] in SLIDING_TYPES
        target = first - (2 if sliding else 1) if i >= first else -1
        attention(ts, f"{p}.self_attn", i, hidden, n_heads, n_kv, hd, bias=bias, shared=modes[i] == "reuse")
        B.gated_mlp(ts, i, f"{p}.mlp", hidden, widths[i], C.DENSE_MLP)
        al = f"{p}.altup"
        B.linear(ts, f"{al}.correction_coefs", n_alt, n_alt, S.REPLICATED, C.OTHER, i)
        B.linear(ts, f"{al}.prediction_coefs", n_alt, n_alt * n_alt, S.REPLICATED, C.OTHER, i)
        B.linear(ts, f"{al}.modality_router", hidden, n_alt, S.REPLICATED, C.OTHER, i)
        B.norm(ts, f"{al}.router_norm", hidden, i)
        ts.append(Tensor(f"{al}.correct_output_scale", (hidden,), S.REPLICATED, C.OTHER, i))
        B.linear(ts, f"{p}.laurel.linear_left", hidden, rank, S.COLUMN, C.OTHER, i)
        B.linear(ts, f"{p}.laurel.linear_right", rank, hidden, S.ROW, C.OTHER, i)
        B.norm(ts, f"{p}.laurel.post_laurel_norm", hidden, i)
        ple_layer(ts, p, i, hidden, ple)
        for name in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                     "post_feedforward_layernorm"):
            B.norm(ts, f"{p}.{name}", hidden, i)
        if target >= 0:
            sharing.append((i, target))
            layers_kv.append(LayerKV(AttentionKind.NONE))
        elif sliding and window is not None:
            layers_kv.append(LayerKV(AttentionKind.SLIDING, n_kv, hd, hd, window))
        else:
            layers_kv.append(LayerKV(AttentionKind.FULL, n_kv, hd, hd))
    B.norm(ts, f"{prefix}.norm", hidden, None)

    spec.hidden_size, spec.vocab_size, spec.num_layers = hidden, vocab, n_layers
    spec.num_attention_heads, spec.num_kv_heads, spec.head_dim = n_heads, n_kv, hd
    spec.tie_word_embeddings = True
    spec.max_position_embeddings = f.opt_int("max_position_embeddings")
    spec.rotary_dim = hd
    spec.layers_kv = layers_kv
    spec.kv_sharing = tuple(sharing)
    spec.rope_caches = _rope_caches(f, lt, [hd] * n_layers, spec.max_position_embeddings, whole_head=True)
    spec.pp_invalid = ("vLLM's Gemma3nForCausalLM does not implement SupportsPP: pipeline parallelism is "
                       "not supported for this model")


# ---------------------------------------------------------------- the composite (gemma3n): towers and embedders

_TIMM_TABLE = Path(__file__).resolve().parents[1] / "timm_towers.json"


@lru_cache(maxsize=1)
def timm_table() -> dict:
    """reportgen/arch/timm_towers.json (written by scripts/timm_towers.py with timm; read without it)."""
    return json.loads(_TIMM_TABLE.read_text())


def _tower(ts: list[Tensor], name: str, shape: tuple[int, ...], *, shard: S = S.REPLICATED,
           allocated_only: bool = False) -> None:
    """A tower / embedder tensor: vLLM gemma3n_mm.py builds both towers with transformers' AutoModel (plain
    torch modules: whole on every rank, never quantized) -- only the embedders use vLLM layers."""
    ts.append(Tensor(name, shape, shard, C.VISION, None, 1, False, allocated_only))


def vision_tower(ts: list[Tensor], f: Fields, prefix: str = "model.vision_tower.timm_model") -> int:
    """The timm tower of ``vision_config.architecture`` from the table; returns its output channels.

    TimmWrapperModel calls ``timm.create_model(architecture, pretrained=False, num_classes=0, **model_args)``:
    the tensors are fixed by the name alone when ``model_args`` is empty.  Persistent buffers (none in
    MobileNetV5) are loaded by vLLM too: ``allocated_only`` (GPU bytes, not parameters)."""
    arch = f.get("architecture")
    if not isinstance(arch, str) or not arch:
        raise f.err("architecture", f"must be a timm model name, got {arch!r}")
    if f.get("model_args"):
        raise Unsupported(f"gemma3n with vision_config.model_args {f.get('model_args')!r}: extra timm.create_model "
                          "arguments change the tower and are not modelled")
    table = timm_table()
    entry = table["architectures"].get(arch)
    if entry is None:
        raise Unsupported(f"gemma3n with the timm vision tower {arch!r}: not in reportgen's timm tower table "
                          f"(reportgen/arch/timm_towers.json, timm {table['timm_version']}: "
                          f"{', '.join(table['architectures'])}); timm is not a runtime dependency, so other "
                          "timm architectures are not modelled")
    for name, shape in entry["parameters"]:
        _tower(ts, f"{prefix}.{name}", tuple(shape))
    for name, shape, _dtype in entry["buffers"]:
        _tower(ts, f"{prefix}.{name}", tuple(shape), allocated_only=True)
    return entry["num_features"]


def _pair(f: Fields, name: str, i: int) -> tuple[int, int]:
    """``sscp_conv_{kernel,stride}_size[i]``: two positive integers."""
    rows = f.get(name)
    if not isinstance(rows, (list, tuple)) or len(rows) != 2:
        raise f.err(name, f"must hold two (time, frequency) pairs, got {rows!r}")
    row = rows[i]
    if not isinstance(row, (list, tuple)) or len(row) != 2:
        raise f.err(f"{name}[{i}]", f"must be a (time, frequency) pair, got {row!r}")
    return tuple(check_int(f"{f.prefix}{name}[{i}][{j}]", v, 1, 1 << 16, False) for j, v in enumerate(row))


def audio_tower(ts: list[Tensor], f: Fields, prefix: str = "model.audio_tower") -> int:
    """transformers ``Gemma3nAudioEncoder`` (USM conformer); returns its width (``hidden_size``).

    Sub-sample conv projection: two bias-free Conv2d (1 -> c0 -> c1 channels) each with a cumulative group
    norm weight, then ``input_proj_linear`` (c1 x frequency bins left after both convs -> hidden; the
    frequency axis is padded by 1 on each side).  Per conformer block: two macaron feed-forwards (4x), the
    attention (q/k/v, relative-position ``pos_proj``, ``per_dim_scale``, ``post``), the light conv
    (``linear_start`` 2x, depthwise Conv1d, ``linear_end``) and eight RMSNorm weights."""
    h = f.int("hidden_size")
    heads = f.int("conf_num_attention_heads")
    if h % heads:
        raise f.err("conf_num_attention_heads", f"{heads} does not divide hidden_size {h}")
    n_layers = f.int("conf_num_hidden_layers", lo=0)
    k = f.int("conf_conv_kernel_size")
    chans = f.int_list("sscp_conv_channel_size", lo=1, hi=1 << 16)
    if len(chans) != 2:
        raise f.err("sscp_conv_channel_size", f"must hold two channel counts, got {f.get('sscp_conv_channel_size')!r}")
    freq = f.int("input_feat_size")
    s = f"{prefix}.subsample_conv_projection"
    c_in = 1
    for i, c in enumerate(chans):
        (kh, kw), (_, sw) = _pair(f, "sscp_conv_kernel_size", i), _pair(f, "sscp_conv_stride_size", i)
        freq = (freq + 2 - kw) // sw + 1
        if freq < 1:
            raise f.err("sscp_conv_kernel_size", f"leaves no frequency bin after conv {i} (input_feat_size too small)")
        _tower(ts, f"{s}.conv_{i}.conv.weight", (c, c_in, kh, kw))
        _tower(ts, f"{s}.conv_{i}.norm.weight", (c,))
        c_in = c
    _tower(ts, f"{s}.input_proj_linear.weight", (h, c_in * freq))
    for i in range(n_layers):
        p = f"{prefix}.conformer.{i}"
        for ff in ("ffw_layer_start", "ffw_layer_end"):
            _tower(ts, f"{p}.{ff}.pre_layer_norm.weight", (h,))
            _tower(ts, f"{p}.{ff}.ffw_layer_1.weight", (4 * h, h))
            _tower(ts, f"{p}.{ff}.ffw_layer_2.weight", (h, 4 * h))
            _tower(ts, f"{p}.{ff}.post_layer_norm.weight", (h,))
        a = f"{p}.attention"
        _tower(ts, f"{a}.pre_attn_norm.weight", (h,))
        _tower(ts, f"{a}.attn.per_dim_scale", (h // heads,))
        for name in ("relative_position_embedding.pos_proj", "q_proj", "k_proj", "v_proj"):
            _tower(ts, f"{a}.attn.{name}.weight", (h, h))
        _tower(ts, f"{a}.post.weight", (h, h))
        _tower(ts, f"{a}.post_norm.weight", (h,))
        c = f"{p}.lconv1d"
        _tower(ts, f"{c}.pre_layer_norm.weight", (h,))
        _tower(ts, f"{c}.linear_start.weight", (2 * h, h))
        _tower(ts, f"{c}.depthwise_conv1d.weight", (h, 1, k))
        _tower(ts, f"{c}.conv_norm.weight", (h,))
        _tower(ts, f"{c}.linear_end.weight", (h, h))
        _tower(ts, f"{p}.norm.weight", (h,))
    return h


def embedder(ts: list[Tensor], f: Fields, name: str, text_hidden: int) -> None:
    """``Gemma3nMultimodalEmbedder`` as vLLM builds it: ``embedding`` (the tower's ``vocab_size`` hard tokens,
    VocabParallelEmbedding), hard / soft RMSNorms, ``embedding_projection`` (RowParallelLinear, no
    quant_config); the post-projection norm has no weight."""
    h = f.int("hidden_size")
    p = f"model.{name}"
    _tower(ts, f"{p}.embedding.weight", (f.int("vocab_size"), h), shard=S.VOCAB)
    _tower(ts, f"{p}.hard_embedding_norm.weight", (h,))
    _tower(ts, f"{p}.soft_embedding_norm.weight", (h,))
    _tower(ts, f"{p}.embedding_projection.weight", (text_hidden, h), shard=S.ROW)


def _sub(f: Fields, key: str, default_type: str, spec: ModelSpec) -> Fields:
    """A sub-config: parsed already (``f.obj``), else built from its dict with its class, else the class
    default (noted, as transformers' composite class does for a trimmed checkpoint)."""
    raw = f.raw.get(key)
    obj = getattr(f.obj, key, None)
    if raw is None:
        spec.notes.append(f"config has no {key}: the tower is transformers' class default")
    elif not isinstance(raw, Mapping):
        raise ConfigError(key, f"must be an object, got {type(raw).__name__}")
    if obj is None or isinstance(obj, Mapping):
        sub = dict(raw or {})
        mt = sub.pop("model_type", None) or default_type
        if mt != default_type:
            raise Unsupported(f"gemma3n with a {mt!r} {key} is not supported")
        try:
            obj = config_class(mt)(**sub)
        except Exception as e:  # noqa: BLE001 - transformers raises many types on bad input
            raise ConfigError(key, f"transformers rejected the config: {type(e).__name__}: {e}") from None
    return Fields(obj, raw or {}, f"{key}.")


def prepare(config: dict) -> dict:
    """multimodal.prepare (text_config present, fields in range) plus the sub-config types we model."""
    from reportgen.arch.families import multimodal

    text = multimodal.prepare(config)
    for key, kind in (("text_config", "gemma3n_text"), ("vision_config", "gemma3n_vision"),
                      ("audio_config", "gemma3n_audio")):
        sub = config.get(key)
        if sub is not None and not isinstance(sub, Mapping):
            raise ConfigError(key, f"must be an object, got {type(sub).__name__}")
        mt = (sub or {}).get("model_type")
        if mt is not None and mt != kind:
            raise Unsupported(f"gemma3n with a {mt!r} {key} is not supported")
    return text


def parse(config: dict, model_type: str):
    """Text and vision sub-configs part by part (``parse_composite``); audio in ``build``."""
    from reportgen.arch.parse import parse_composite, parse_config

    if config.get("vision_config") is None:
        return parse_config(config, model_type)
    return parse_composite(config, model_type)


def build(f: Fields, spec: ModelSpec) -> None:
    """gemma3n (Gemma3nForConditionalGeneration, vLLM ``gemma3n_mm.py`` read at commit
    01e4fce07423dafcc832600ba05159fb28dc1126): the language model above under ``model.language_model``
    (vLLM's Gemma3nForCausalLM: no lm_head of its own, the logits use the tied embedding), the timm vision
    tower and the audio conformer (both transformers AutoModel: replicated, unquantized), one embedder per
    tower (vocab-parallel hard-token table, row-parallel projection)."""
    if not f.flag("tie_word_embeddings", True):
        raise Unsupported("gemma3n with tie_word_embeddings false: vLLM's Gemma3nForCausalLM has no lm_head "
                          "(its logits use embed_tokens)")
    text = Fields(f.obj.text_config, f.raw["text_config"], "text_config.")
    build_text(text, spec, prefix="model.language_model")
    vis = _sub(f, "vision_config", "gemma3n_vision", spec)
    audio = _sub(f, "audio_config", "gemma3n_audio", spec)
    ts = spec.tensors
    channels = vision_tower(ts, vis)
    if channels != vis.int("hidden_size"):
        spec.notes.append(f"vision_config.hidden_size {vis.int('hidden_size')} differs from the timm tower's "
                          f"{channels} output channels: transformers builds it, but vLLM's image path reshapes "
                          "the tower output by hidden_size and would fail on the first image")
    embedder(ts, vis, "embed_vision", spec.hidden_size)
    audio_tower(ts, audio)
    embedder(ts, audio, "embed_audio", spec.hidden_size)
    spec.multimodal = True
    # vLLM Gemma3nProcessingInfo.get_max_tokens_per_item: {"image": 256, "audio": 188}, hard-coded
    spec.mm_item_tokens_by_modality = {"image": TOKENS_PER_IMAGE, "audio": TOKENS_PER_AUDIO}
    spec.mm_item_tokens = max(TOKENS_PER_IMAGE, TOKENS_PER_AUDIO)
    # vLLM Gemma3nForConditionalGeneration.__init__: per_layer_embeddings = zeros(max_num_batched_tokens,
    # layers, hidden_size_per_layer_input) in the embedding's dtype (allocated with the language model: kept
    # when every modality is limited to 0)
    spec.init_buffer_per_token = spec.num_layers * text.int("hidden_size_per_layer_input")
