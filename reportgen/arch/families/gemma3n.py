"""Gemma 3n language model (gemma3n_text): AltUp, LAuReL, per-layer embeddings, KV-shared layers.

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
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.errors import ConfigError, Unsupported
from reportgen.arch.fields import Fields
from reportgen.arch.kv import SLIDING_TYPES, required_layer_types
from reportgen.arch.spec import AttentionKind, Component as C, LayerKV, ModelSpec, Shard as S, Tensor

from .gemma4 import _rope_caches, attention, ple_layer, ple_model

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
