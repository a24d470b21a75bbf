"""Geometry every decoder family shares, read and validated once.

Why: hidden size, layer count, query / KV heads, head_dim, vocabulary and the
tie flag mean the same thing in every family, and the same invariants hold
(``heads % kv_heads == 0``, a head_dim of at least 1).  Families differ in what
each layer holds, not in this.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reportgen.arch import blocks as B
from reportgen.arch.fields import Fields
from reportgen.arch.kv import attention_layers
from reportgen.arch.spec import Component as C, LayerKV, ModelSpec, Shard as S, Tensor

# appends one layer's part (attention or MLP) under the layer prefix ``model.layers.{i}``; a hybrid's
# mixer part returns the layer's cache entry (attention or state), a plain attention part None
LayerPart = Callable[[list[Tensor], int, str], "LayerKV | None"]


@dataclass(frozen=True, slots=True)
class Geometry:
    hidden: int
    n_layers: int
    n_heads: int
    n_kv: int
    head_dim: int
    vocab: int
    tie: bool


def geometry(f: Fields, *, kv_heads: bool = True) -> Geometry:
    """Read the shared fields.  ``head_dim`` absent or null -> ``hidden // heads`` (what the model code does)."""
    hidden = f.int("hidden_size")
    n_layers = f.int("num_hidden_layers")
    n_heads = f.int("num_attention_heads")
    n_kv = f.int("num_key_value_heads", n_heads) if kv_heads else n_heads
    if n_heads % n_kv:
        raise f.err("num_key_value_heads", f"{n_kv} does not divide num_attention_heads {n_heads}")
    head_dim = f.opt_int("head_dim")
    if head_dim is None:
        head_dim = hidden // n_heads
        if head_dim < 1:
            raise f.err("num_attention_heads", f"{n_heads} heads leave no head_dim in hidden_size {hidden}")
    vocab = f.int("vocab_size")
    tie = f.flag("tie_word_embeddings", False)
    return Geometry(hidden, n_layers, n_heads, n_kv, head_dim, vocab, tie)


def set_scalars(spec: ModelSpec, f: Fields, g: Geometry) -> None:
    """The ModelSpec scalar fields that follow from the shared geometry."""
    spec.hidden_size = g.hidden
    spec.vocab_size = g.vocab
    spec.num_layers = g.n_layers
    spec.num_attention_heads = g.n_heads
    spec.num_kv_heads = g.n_kv
    spec.head_dim = g.head_dim
    spec.tie_word_embeddings = g.tie
    spec.max_position_embeddings = f.opt_int("max_position_embeddings")
    spec.rotary_dim = rotary_dim(f, g.head_dim)


def rotary_dim(f: Fields, head_dim: int) -> int:
    """Rotated dims per head: ``head_dim * partial_rotary_factor`` (phi, GLM-4.5, Phi-4-mini), else head_dim.

    transformers 5 keeps the factor in ``rope_parameters``; older configs at the top level.
    """
    factor = None
    rope = f.get("rope_parameters")
    if isinstance(rope, dict):
        factor = rope.get("partial_rotary_factor")
    if factor is None:
        factor = f.get("partial_rotary_factor")
    if isinstance(factor, (int, float)) and not isinstance(factor, bool) and 0 < factor <= 1:
        return int(head_dim * factor)
    return head_dim


def set_moe(spec: ModelSpec, f: Fields, n_experts: int, shared: int = 0) -> int:
    """Record routed experts / top-k / shared experts; returns top-k (validated against the expert count)."""
    k = f.int("num_experts_per_tok")
    if k > n_experts:
        raise f.err("num_experts_per_tok", f"{k} exceeds the {n_experts} routed experts")
    spec.num_experts = n_experts
    spec.experts_per_token = k
    spec.num_shared_experts = shared
    return k


def gqa_attention(g: Geometry, *, qkv_bias: bool = False, o_bias: bool = False, qk_norm: str | None = None,
                  qk_names: tuple[str, str] = ("q_norm", "k_norm"), in_dim: int | None = None) -> LayerPart:
    """``self_attn`` of a grouped-query layer: q/k/v/o plus the family's q/k norms (``in_dim``: the width
    q/k/v read when it is not the hidden size, ``blocks.attention``).

    ``qk_norm``: ``"head"`` -- one RMSNorm of ``head_dim`` shared by all heads (qwen3, hunyuan,
    dots1: replicated); ``"whole"`` -- a norm over the whole q / k projection that vLLM shards by TP
    (MiniMax ``MiniMaxText01RMSNormTP``: ``(heads * head_dim,)`` COLUMN; ``(kv * head_dim,)`` split as the KV
    heads, ``Shard.KV``: 1/tp of it up to tp = kv, one head's ``head_dim`` a rank above -- vLLM 0.21 on shards it
    by ``num_key_value_heads`` then, vllm 0.21.0 sdist minimax_m2.py:224-238; older releases fail there,
    ``ModelSpec.tp_invalid``).
    """
    def add(ts: list[Tensor], i: int, p: str) -> None:
        a = f"{p}.self_attn"
        B.attention(ts, i, a, g.hidden, g.n_heads, g.n_kv, g.head_dim, qkv_bias=qkv_bias, o_bias=o_bias,
                    in_dim=in_dim)
        if qk_norm == "head":
            B.norm(ts, f"{a}.{qk_names[0]}", g.head_dim, i, comp=C.ATTENTION)
            B.norm(ts, f"{a}.{qk_names[1]}", g.head_dim, i, comp=C.ATTENTION)
        elif qk_norm == "whole":
            ts.append(Tensor(f"{a}.{qk_names[0]}.weight", (g.n_heads * g.head_dim,), S.COLUMN, C.ATTENTION, i))
            ts.append(Tensor(f"{a}.{qk_names[1]}.weight", (g.n_kv * g.head_dim,), S.KV, C.ATTENTION, i))
        elif qk_norm is not None:
            raise ValueError(f"unknown qk_norm kind {qk_norm!r}")
    return add


def decoder_stack(spec: ModelSpec, f: Fields, g: Geometry, *, attention: LayerPart, mlp: LayerPart,
                  norms: tuple[str, str] = ("input_layernorm", "post_attention_layernorm"),
                  final_norm: str = "model.norm", tied: bool | None = None,
                  layers_kv: list[LayerKV] | None = None, norm_bias: bool = False) -> None:
    """The pre-norm decoder most families are: embedding; per layer a norm, ``attention``, a norm and
    ``mlp``; final norm and lm_head (``tied`` None = the config's tie flag); then the shared scalars
    and the per-layer cache entries: ``layers_kv`` when given, else what a hybrid's mixer parts
    returned (one per layer), else one grouped-query entry per layer.  ``norm_bias``: the three norms are
    LayerNorms with a bias (stablelm, nemotron), not RMSNorms.

    Why one skeleton: the families differ in the mixer and the MLP, not in this order, and the
    per-rank arithmetic depends on every tensor being listed exactly once.
    """
    ts = spec.tensors
    mixed: list[LayerKV] = []
    B.embedding(ts, g.vocab, g.hidden)
    for i in range(g.n_layers):
        entry = decoder_layer(ts, i, g.hidden, attention=attention, mlp=mlp, norms=norms,
                              norm_bias=norm_bias)
        if entry is not None:
            mixed.append(entry)
    if mixed and len(mixed) != g.n_layers:
        raise ValueError("a mixer part returned a cache entry for some layers only")
    B.norm(ts, final_norm, g.hidden, None, bias=norm_bias)
    B.lm_head(ts, g.vocab, g.hidden, tied=g.tie if tied is None else tied)
    set_scalars(spec, f, g)
    if layers_kv is None:
        layers_kv = mixed or attention_layers(f, g.n_layers, g.n_kv, g.head_dim)
    spec.layers_kv = layers_kv


def swiglu_mlp(hidden: int, inter: int, *, bias: bool = False) -> LayerPart:
    """``mlp`` of a dense layer: one gate/up/down SwiGLU of width ``inter`` (``blocks.gated_mlp``)."""
    def add(ts: list[Tensor], i: int, p: str) -> None:
        B.gated_mlp(ts, i, f"{p}.mlp", hidden, inter, C.DENSE_MLP, bias=bias)
    return add


def decoder_layer(ts: list[Tensor], i: int, hidden: int, *, attention: LayerPart, mlp: LayerPart,
                  norms: tuple[str, str] = ("input_layernorm", "post_attention_layernorm"),
                  input_norm: bool = True, prefix: str = "model.layers",
                  norm_bias: bool = False) -> "LayerKV | None":
    """One pre-norm decoder layer ``{prefix}.{i}``: a norm, ``attention``, a norm, ``mlp``; returns what the
    attention part returned (a hybrid's cache entry, else None).  ``input_norm`` False: no first norm (an
    EAGLE head's layer 0, whose ``input_layernorm`` vLLM makes an Identity); ``norm_bias``: LayerNorms with a
    bias (StableLM, Nemotron).  Shared by ``decoder_stack`` and the speculative-decoding heads
    (estimate/specdecode.py), so a head's layer is its family's layer."""
    p = f"{prefix}.{i}"
    if input_norm:
        B.norm(ts, f"{p}.{norms[0]}", hidden, i, bias=norm_bias)
    entry = attention(ts, i, p)
    B.norm(ts, f"{p}.{norms[1]}", hidden, i, bias=norm_bias)
    mlp(ts, i, p)
    return entry


def mlp_layer_types(f: Fields, n_layers: int) -> list[str]:
    """transformers 5's per-layer MLP kinds (``dense`` / ``sparse``), one per layer."""
    kinds = f.str_list("mlp_layer_types") or []
    if len(kinds) != n_layers:
        raise f.err("mlp_layer_types", f"has {len(kinds)} entries for {n_layers} layers")
    return kinds


def dense_or_moe_mlp(hidden: int, moe: list[bool], *, dense_inter: int, moe_inter: int, n_exp: int,
                     shared_inter: int) -> LayerPart:
    """``mlp`` of a model whose layers are dense or MoE by a per-layer flag (from ``mlp_layer_types``): a dense
    SwiGLU of ``dense_inter``, or ``blocks.moe`` (router, experts of ``moe_inter``, fused shared experts of
    ``shared_inter``)."""
    def add(ts: list[Tensor], i: int, p: str) -> None:
        if moe[i]:
            B.moe(ts, i, f"{p}.mlp", hidden, moe_inter, n_exp, shared_inter)
        else:
            B.gated_mlp(ts, i, f"{p}.mlp", hidden, dense_inter, C.DENSE_MLP)
    return add
