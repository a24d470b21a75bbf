"""lfm2 / lfm2_moe (Liquid LFM2, LFM2-MoE): gated short-convolution and GQA attention layers.

Follows vLLM ``vllm/model_executor/models/lfm2.py`` (read at commit
055e47c28003156421365af985d676fc921cb075), ``lfm2_moe.py`` (commit
030ea52effcb05071543c8c42b8f0145e94cee43) and transformers 5.24 ``modeling_lfm2.py`` /
``modeling_lfm2_moe.py``.

Layer ``i`` is attention when ``layer_types[i] == "full_attention"`` (else ``conv``; transformers
derives ``layer_types`` from ``full_attn_idxs``): ``operator_norm``, then ``self_attn`` (q/k/v and
``out_proj`` without biases, per-head ``q_layernorm`` / ``k_layernorm``, RoPE) or ``conv`` (vLLM
``ShortConv``, ``arch/mixers.py``: a ``short_conv`` state of ``(conv_dim, conv_L_cache)``), then
``ffn_norm`` and ``feed_forward`` ``w1`` / ``w3`` (COLUMN) / ``w2`` (ROW).  Final norm
``embedding_norm``.

Refused where vLLM and transformers build different models: vLLM reads ``block_dim`` / ``conv_dim``
(transformers uses ``hidden_size``: a config without them or with another value is refused -- vLLM
cannot build the first); vLLM rounds the auto-adjusted feed-forward width to ``block_multiple_of``
even without ``block_ffn_dim_multiplier`` (transformers only with it; its strict class rejects a null
multiplier today, the widths are compared anyway); vLLM always ties ``lm_head`` to the embedding (``tie_word_embeddings=false`` refused);
vLLM takes ``head_dim = hidden // heads``.

lfm2_moe: the same layers with the conv over ``hidden_size`` and no feed-forward width adjustment;
layers below ``num_dense_layers`` have a SwiGLU of ``intermediate_size``, the rest a MoE block
(router ``gate`` ``E x H``, ``num_experts`` experts of ``moe_intermediate_size``; the
``expert_bias`` is a transformers buffer, vLLM's float32 ``e_score_correction_bias``: not counted,
as for DeepSeek-V3).  vLLM always ties the lm_head, needs at least one MoE layer and refuses
``tp > num_experts`` (said in ``spec.notes``).
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families.common import decoder_stack, geometry, set_moe
from reportgen.arch.fields import Fields
from reportgen.arch.mixers import short_conv_mixer, state_layer
from reportgen.arch.spec import AttentionKind, Component as C, LayerKV, ModelSpec, Tensor


def ffn_widths(f: Fields) -> tuple[int, int]:
    """(transformers, vLLM) feed-forward width from ``intermediate_size`` and the block_* fields."""
    inter = f.int("intermediate_size")
    if not f.flag("block_auto_adjust_ff_dim", True):
        return inter, inter
    mult, of = f.get("block_ffn_dim_multiplier"), f.int("block_multiple_of")
    adjusted = int(2 * inter / 3)
    if mult is not None:
        if isinstance(mult, bool) or not isinstance(mult, (int, float)) or mult <= 0:
            raise f.err("block_ffn_dim_multiplier", f"must be a positive number, got {mult!r}")
        adjusted = int(mult * adjusted)
    rounded = of * ((adjusted + of - 1) // of)
    hf = rounded if mult is not None else adjusted
    return hf, rounded


def build(f: Fields, spec: ModelSpec) -> None:
    g = geometry(f)
    if not g.tie:
        raise Unsupported("lfm2 with tie_word_embeddings=false: vLLM's lfm2.py always ties lm_head to the embedding")
    for name in ("block_dim", "conv_dim"):
        value = f.raw.get(name)
        if value != g.hidden:
            raise Unsupported(f"lfm2 with {name}={value!r}: vLLM's lfm2.py reads it, transformers uses "
                              f"hidden_size {g.hidden}")
    hd = g.hidden // g.n_heads
    if f.raw.get("head_dim") not in (None, hd):
        raise Unsupported("lfm2 with head_dim != hidden_size / num_attention_heads: vLLM ignores head_dim")
    hf_inter, vllm_inter = ffn_widths(f)
    if hf_inter != vllm_inter:
        raise Unsupported(f"lfm2 feed-forward width: transformers {hf_inter}, vLLM {vllm_inter} (vLLM rounds to "
                          "block_multiple_of without block_ffn_dim_multiplier)")
    if hf_inter < 1:
        raise f.err("intermediate_size", f"leaves a feed-forward width of {hf_inter}")
    if f.raw.get("layer_types") is None:
        _check_full_attn_idxs(f, g.n_layers)
    kinds = _layer_kinds(f, g.n_layers)
    kernel = f.int("conv_L_cache")
    conv_bias = f.flag("conv_bias")
    def mlp(ts: list[Tensor], i: int, p: str) -> None:
        B.gated_mlp(ts, i, f"{p}.feed_forward", g.hidden, hf_inter, C.DENSE_MLP)

    _stack(spec, f, g, kinds, hd, kernel, conv_bias, mlp)


def build_moe(f: Fields, spec: ModelSpec) -> None:
    g = geometry(f)
    if not g.tie:
        raise Unsupported("lfm2_moe with tie_word_embeddings=false: vLLM's lfm2_moe.py always ties lm_head")
    hd = g.hidden // g.n_heads
    if f.raw.get("head_dim") not in (None, hd):
        raise Unsupported("lfm2_moe with head_dim != hidden_size / num_attention_heads: vLLM ignores head_dim")
    kinds = _layer_kinds(f, g.n_layers)
    n_dense = f.int("num_dense_layers", lo=0)
    if n_dense >= g.n_layers:
        raise Unsupported(f"lfm2_moe with num_dense_layers {n_dense} >= num_hidden_layers {g.n_layers}: vLLM's "
                          "lfm2_moe.py needs at least one MoE layer")
    n_exp = f.int("num_experts")
    set_moe(spec, f, n_exp)
    inter, moe_inter = f.int("intermediate_size"), f.int("moe_intermediate_size")
    kernel, conv_bias = f.int("conv_L_cache"), f.flag("conv_bias")
    def mlp(ts: list[Tensor], i: int, p: str) -> None:
        if i < n_dense:
            B.gated_mlp(ts, i, f"{p}.feed_forward", g.hidden, inter, C.DENSE_MLP)
        else:
            B.router(ts, i, f"{p}.feed_forward.gate", g.hidden, n_exp)
            B.experts(ts, i, f"{p}.feed_forward.experts", g.hidden, moe_inter, n_exp)

    _stack(spec, f, g, kinds, hd, kernel, conv_bias, mlp)
    spec.notes.append(f"lfm2_moe: vLLM refuses tensor-parallel sizes above num_experts ({n_exp})")


def _check_full_attn_idxs(f: Fields, n_layers: int) -> None:
    """lfm2 without ``layer_types``: transformers derives it from ``full_attn_idxs`` (``i in full_attn_idxs``
    for ``i < num_hidden_layers``), so an index outside the stack would be dropped silently and the model priced
    with one attention layer fewer than the config names: ``malformed_config`` naming the entry instead."""
    idxs = f.raw.get("full_attn_idxs")
    if idxs is None:
        return
    if not isinstance(idxs, (list, tuple)):
        raise f.err("full_attn_idxs", f"must be a list of layer indices, got {type(idxs).__name__}")
    for i, v in enumerate(idxs):
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < n_layers:
            raise f.err(f"full_attn_idxs[{i}]", f"layer index {v!r} is outside 0..{n_layers - 1} "
                                                f"(num_hidden_layers {n_layers})")


def _layer_kinds(f: Fields, n_layers: int) -> list[str]:
    kinds = f.str_list("layer_types")
    if kinds is None:  # lfm2 derives it from full_attn_idxs; lfm2_moe's class has no default
        raise f.err("layer_types", "is missing")
    if len(kinds) != n_layers:
        raise f.err("layer_types", f"has {len(kinds)} entries for num_hidden_layers {n_layers}")
    for i, k in enumerate(kinds):
        if k not in ("full_attention", "conv"):
            raise f.err("layer_types", f"unknown layer kind {k!r} at layer {i} (full_attention or conv)")
    return kinds


def _stack(spec: ModelSpec, f: Fields, g, kinds: list[str], hd: int, kernel: int, conv_bias: bool,
           mlp) -> None:
    """The LFM2 decoder both families share: ``operator_norm``, attention or ShortConv, ``ffn_norm``,
    the family's feed-forward; ``embedding_norm`` as the final norm; lm_head always tied."""
    def mixer(ts: list[Tensor], i: int, p: str) -> LayerKV:
        return _mixer(ts, i, p, kinds[i], g, hd, kernel, conv_bias)

    decoder_stack(spec, f, g, attention=mixer, mlp=mlp, norms=("operator_norm", "ffn_norm"),
                  final_norm="model.embedding_norm", tied=True)
    spec.head_dim = hd


def _mixer(ts, i: int, p: str, kind: str, g, hd: int, kernel: int, conv_bias: bool) -> LayerKV:
    """Attention (q/k layernorms, ``out_proj``) or the ShortConv mixer of layer ``i``."""
    if kind == "full_attention":
        B.attention(ts, i, f"{p}.self_attn", g.hidden, g.n_heads, g.n_kv, hd, o_name="out_proj")
        B.norm(ts, f"{p}.self_attn.q_layernorm", hd, i, comp=C.ATTENTION)
        B.norm(ts, f"{p}.self_attn.k_layernorm", hd, i, comp=C.ATTENTION)
        return LayerKV(AttentionKind.FULL, g.n_kv, hd, hd)
    return state_layer(short_conv_mixer(ts, i, f"{p}.conv", g.hidden, kernel=kernel, bias=conv_bias))
