"""Llama-3.2-Vision (``mllama``): a Llama decoder with gated cross-attention layers over a tiled vision encoder.

Shapes: transformers 5.24 ``modeling_mllama.py`` (checked against the meta device: the shipped
Llama-3.2-11B-Vision-Instruct config, the class defaults and random valid configs, tests/test_oracle_mllama.py):

* text (``MllamaTextModel``): ``embed_tokens`` of ``vocab_size + 8`` rows (the 8 extra image / special
  tokens; the lm_head keeps ``vocab_size``); the layers listed in ``cross_attention_layers`` are
  ``MllamaCrossAttentionDecoderLayer`` -- ``cross_attn`` q/k/v/o (GQA, no biases) with per-head RMSNorms
  ``q_norm`` / ``k_norm`` (head_dim), two scalar tanh gates ``cross_attn_attn_gate`` / ``cross_attn_mlp_gate``,
  the usual two RMSNorms and SwiGLU MLP; the others are plain Llama layers.  head_dim is always
  ``hidden_size // num_attention_heads`` (the classes read no ``head_dim``).  The lm_head is never tied
  (``_tied_weights_keys`` is commented out in transformers; vLLM builds its own ``ParallelLMHead``).
* vision (``MllamaVisionModel``): bias-free Conv2d patch embedding, ``class_embedding``, a gated position
  embedding (``(image // patch)**2 + 1`` positions, gate, and a tile embedding of ``max_aspect_ratio_id + 1``
  rows x ``max_num_tiles * positions * hidden``), gated pre- / post-tile aspect-ratio embeddings
  (``max_aspect_ratio_id + 1`` rows x ``max_num_tiles * hidden``), ``layernorm_pre`` / ``layernorm_post``,
  ``num_hidden_layers`` local encoder layers and ``num_global_layers`` global ones (these with two scalar
  gates ``gate_attn`` / ``gate_ffn``); encoder layers: LayerNorms with bias, bias-free q/k/v/o, biased
  fc1/fc2.  ``max_aspect_ratio_id = len(supported_aspect_ratios)``.
* ``multi_modal_projector``: Linear ``vision_output_dim -> text hidden`` with bias.

Sharding (vLLM ``vllm/model_executor/models/mllama.py`` @6f0b37b8, the V0-only version of the file
(``SupportsV0Only``) before its removal in PR #24907; read through the search tool, the earlier @005ad950 agrees
on every shape): vision q/k/v a multi-head QKVParallelLinear (COLUMN), o_proj row, CLIPMLP fc1 column / fc2 row;
the patch embedding a ColumnParallelLinear over the unfolded patch (``patch_embedding._linear``, COLUMN);
position / tile embeddings, gates and LayerNorms replicated; ``multi_modal_projector`` a ColumnParallelLinear
(``gather_output=True``, COLUMN); text as Llama (``VocabParallelEmbedding(vocab_size + 8)``,
``ParallelLMHead(vocab_size)``), cross-attention q/k/v a ``QKVCrossParallelLinear`` (same per-rank split as
QKVParallelLinear), o_proj row, q_norm / k_norm replicated.  Component mapping follows the meta-device oracle:
q/k norms under attention, the text gates under ``other``.

KV cache: not modelled (``KV_REASON``).  The spec keeps its tensors (exact parameter counts, reported with the
refusal) but sets ``unsupported_reason``: the cross-attention layers cache the encoder's image tokens per
sequence (vLLM V0's encoder-decoder cache), not the text tokens, and vLLM >= 0.11 does not serve the model at all
(estimate/served.py, ``MllamaForConditionalGeneration`` last served by 0.10.2).
"""

from __future__ import annotations

import dataclasses

from reportgen.arch import blocks as B
from reportgen.arch.families import multimodal, vision
from reportgen.arch.families.common import decoder_stack, geometry, gqa_attention
from reportgen.arch.fields import Fields
from reportgen.arch.kv import attention_layers
from reportgen.arch.spec import Component as C, ModelSpec, Shard as S, Tensor

V = C.VISION
KV_REASON = ("mllama: parameters exact, KV cache not modelled -- Llama-3.2-Vision's cross-attention layers cache "
             "the encoder's image tokens per sequence (tiles x ((image_size // 14)**2 + 1) per image, vLLM mllama.py "
             "calc_token_per_chunk; V0's encoder-decoder cache), not text tokens; and vLLM V1 does not serve it (its encoder-decoder "
             "Mllama was removed with the V0 engine after v0.10.2, vLLM PR #24907)")
EXTRA_TOKENS = 8          # MllamaTextModel.embed_tokens: vocab_size + 8 rows


def prepare(config):
    """Sub-configs are objects where present (absent = class default); returns the text fields."""
    multimodal.check_subconfigs(config)
    return config.get("text_config") or {}


def _rep(ts: list[Tensor], name: str, shape: tuple[int, ...]) -> None:
    ts.append(Tensor(name, shape, S.REPLICATED, V, None))


def build_text(f: Fields, spec: ModelSpec) -> None:
    """The language model: Llama layers, with gated cross-attention layers at ``cross_attention_layers``."""
    g = geometry(f, kv_heads=True)
    g = dataclasses.replace(g, head_dim=g.hidden // g.n_heads)   # the model code reads no head_dim field
    if g.head_dim < 1:
        raise f.err("num_attention_heads", f"{g.n_heads} heads leave no head_dim in hidden_size {g.hidden}")
    cross = set(f.int_list("cross_attention_layers"))
    self_attn = gqa_attention(g)
    inter = f.int("intermediate_size")

    def attention(ts: list[Tensor], i: int, p: str) -> None:
        if i not in cross:
            return self_attn(ts, i, p)
        a = f"{p}.cross_attn"
        B.attention(ts, i, a, g.hidden, g.n_heads, g.n_kv, g.head_dim)
        B.norm(ts, f"{a}.q_norm", g.hidden // g.n_heads, i, comp=C.ATTENTION)
        B.norm(ts, f"{a}.k_norm", g.hidden // g.n_heads, i, comp=C.ATTENTION)
        for gate in ("cross_attn_attn_gate", "cross_attn_mlp_gate"):
            ts.append(Tensor(f"{p}.{gate}", (1,), S.REPLICATED, C.OTHER, i))

    def mlp(ts: list[Tensor], i: int, p: str) -> None:
        B.gated_mlp(ts, i, f"{p}.mlp", g.hidden, inter, C.DENSE_MLP)

    tie = g.tie
    # the cache geometry of the self-attention layers only (the spec is refused on KV: KV_REASON)
    kv = [e for i, e in enumerate(attention_layers(f, g.n_layers, g.n_kv, g.head_dim)) if i not in cross]
    decoder_stack(spec, f, dataclasses.replace(g, tie=False), attention=attention, mlp=mlp, layers_kv=kv)
    # embed_tokens holds vocab_size + 8 rows (decoder_stack builds it first, vocab_size rows)
    assert spec.tensors[0].name == "model.embed_tokens.weight"
    spec.tensors[0] = dataclasses.replace(spec.tensors[0], shape=(g.vocab + EXTRA_TOKENS, g.hidden))
    if tie:
        spec.notes.append("text_config.tie_word_embeddings=true is ignored: MllamaForConditionalGeneration never "
                          "ties its lm_head (transformers and vLLM both build it separately)")


def vision_tower(ts: list[Tensor], f: Fields, prefix: str = "vision_model") -> None:
    h, inter, n_layers, ch, patch, image = vision.tower_dims(f)
    n_global = f.int("num_global_layers", lo=0)
    tiles = f.int("max_num_tiles")
    ratios = f.get("supported_aspect_ratios")
    if not isinstance(ratios, (list, tuple)) or not ratios:
        raise f.err("supported_aspect_ratios", f"must be a non-empty list of [w, h] pairs, got {ratios!r}")
    n_ratio = len(ratios) + 1                # max_aspect_ratio_id + 1 embedding rows
    positions = (image // patch) ** 2 + 1    # patches + the class token
    B.linear(ts, f"{prefix}.patch_embedding", ch * patch * patch, h, S.COLUMN, V, None)
    _rep(ts, f"{prefix}.class_embedding", (h,))
    _rep(ts, f"{prefix}.gated_positional_embedding.gate", (1,))
    _rep(ts, f"{prefix}.gated_positional_embedding.embedding", (positions, h))
    _rep(ts, f"{prefix}.gated_positional_embedding.tile_embedding.weight", (n_ratio, tiles * positions * h))
    for name in ("pre_tile_positional_embedding", "post_tile_positional_embedding"):
        _rep(ts, f"{prefix}.{name}.gate", (1,))
        _rep(ts, f"{prefix}.{name}.embedding.weight", (n_ratio, tiles * h))
    B.norm(ts, f"{prefix}.layernorm_pre", h, None, comp=V, bias=True)
    B.norm(ts, f"{prefix}.layernorm_post", h, None, comp=V, bias=True)
    norms = ("input_layernorm", "post_attention_layernorm")
    for stack, n, gated in (("transformer", n_layers, False), ("global_transformer", n_global, True)):
        for i in range(n):
            p = f"{prefix}.{stack}.layers.{i}"
            vision.encoder_layer(ts, p, h, inter, norms=norms, out="o_proj", attn_bias=False)
            if gated:
                _rep(ts, f"{p}.gate_attn", (1,))
                _rep(ts, f"{p}.gate_ffn", (1,))


def build(f: Fields, spec: ModelSpec) -> None:
    text, vis = multimodal.sub_fields(f, spec, "text_config", "vision_config")
    build_text(text, spec)
    multimodal.note_tie(f, spec)
    ts = spec.tensors
    vision_tower(ts, vis)
    B.linear(ts, "multi_modal_projector", vis.int("vision_output_dim"), spec.hidden_size, S.COLUMN, V, None,
             bias=True)
    spec.multimodal = True
    spec.unsupported_reason = KV_REASON
