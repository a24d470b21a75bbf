"""Shared rules of the DeepSeek-shaped MLA + MoE stacks served by vLLM's DeepseekV2DecoderLayer logic.

Why a module of its own: GLM-4.7-Flash (``glm4_moe_lite``), DeepSeek-V3.2 (``deepseek_v32``) and
GLM-5 (``glm_moe_dsa``) are DeepSeek-V3 layers (``families/deepseek.py``) whose transformers
classes pick the dense layers from ``mlp_layer_types`` while vLLM picks them from
``first_k_dense_replace`` / ``moe_layer_freq`` (``is_moe_layer = layer_idx >= first_k_dense_replace
and layer_idx % moe_layer_freq == 0`` in vllm deepseek_v2.py @002d6073 and glm4_moe_lite.py
@055e47c2).  When the two disagree the meta-device count and what vLLM loads differ, so the model
is refused rather than priced with one of them.

vLLM's MLA projections (``fused_qkv_a_proj``, ``kv_b_proj``, ``o_proj``) are built with
``bias=False`` whatever ``attention_bias`` says, while transformers gives them biases: such a
config is refused too.

The shared blocks: ``mla_dims`` reads the MLA geometry, ``mla_attention`` / ``mla_part`` lay out one MLA
block, ``deepseek_moe_part`` the DeepSeekMoE MLP, and ``mla_moe_stack`` the whole model on
``common.decoder_stack`` plus the MTP size and the MLA facts (DeepSeek-V2/V3, GLM-4.7-Flash, DSA; LongCat-Flash
uses ``mla_attention`` in its two-sublayer decoder).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families.common import Geometry, LayerPart, decoder_stack
from reportgen.arch.fields import Fields
from reportgen.arch.kv import mla_layers
from reportgen.arch.spec import Component as C, LayerKV, ModelSpec, Shard as S, Tensor


def dense_layers(f: Fields, n_layers: int) -> list[bool]:
    """Per layer: True = dense MLP.  vLLM's rule, checked against transformers' ``mlp_layer_types``."""
    freq = f.int("moe_layer_freq", 1)
    k_dense = f.raw.get("first_k_dense_replace")
    hf_types = f.str_list("mlp_layer_types")
    if k_dense is None and hf_types is None:
        raise f.err("first_k_dense_replace", "is missing (vLLM reads it to place the dense layers)")
    if k_dense is None:
        # a config written from the transformers class (no first_k_dense_replace): vLLM's attribute
        # lookup would fail; take the class's own mlp_layer_types, which is what the checkpoint has
        return [t != "sparse" for t in hf_types]
    k_dense = f.int("first_k_dense_replace", lo=0)
    vllm = [not (i >= k_dense and i % freq == 0) for i in range(n_layers)]
    if hf_types is not None:
        if len(hf_types) != n_layers:
            raise f.err("mlp_layer_types", f"has {len(hf_types)} entries for {n_layers} layers")
        hf = [t != "sparse" for t in hf_types]
        if hf != vllm:
            raise Unsupported(f"{f.model_type}: mlp_layer_types and vLLM's first_k_dense_replace / moe_layer_freq "
                              "place the dense layers differently")
    return vllm


def refuse_attention_bias(f: Fields) -> None:
    if f.flag("attention_bias"):
        raise Unsupported(f"{f.model_type} with attention_bias: vLLM's MLA projections have no biases "
                          "(transformers' have); not modelled")


@dataclass(frozen=True, slots=True)
class MlaDims:
    """The shared geometry of a DeepSeek-shaped MLA model (names as in DeepSeek-V2/V3 configs)."""
    hidden: int
    n_layers: int
    n_heads: int
    vocab: int
    tie: bool
    q_lora: int | None
    kv_lora: int
    rope: int
    nope: int
    v_dim: int

    def geometry(self) -> Geometry:
        """For ``decoder_stack``: no KV heads, head_dim = nope + rope."""
        return Geometry(self.hidden, self.n_layers, self.n_heads, 0, self.nope + self.rope, self.vocab, self.tie)


def mla_dims(f: Fields, *, q_lora_required: str | None = None) -> MlaDims:
    """Read the MLA geometry, in the order every MLA family validates it.  ``q_lora_required``: the reason a
    null ``q_lora_rank`` is refused (DSA's indexer reads the query latent); None = it may be null (V2-Lite)."""
    hidden = f.int("hidden_size")
    n_layers = f.int("num_hidden_layers")
    n_heads = f.int("num_attention_heads")
    vocab = f.int("vocab_size")
    tie = f.flag("tie_word_embeddings")
    q_lora = f.opt_int("q_lora_rank")
    if q_lora is None and q_lora_required is not None:
        raise f.err("q_lora_rank", q_lora_required)
    kv_lora = f.int("kv_lora_rank")
    rope = f.int("qk_rope_head_dim")
    nope = f.int("qk_nope_head_dim", lo=0)
    v_dim = f.int("v_head_dim")
    return MlaDims(hidden, n_layers, n_heads, vocab, tie, q_lora, kv_lora, rope, nope, v_dim)


def mla_attention(ts: list[Tensor], a: str, i: int, hidden: int, n_heads: int, q_lora: int | None, kv_lora: int,
                  rope: int, nope: int, v_dim: int, att_bias: bool, o_name: str = "o_proj") -> None:
    """One MLA block under prefix ``a`` (DeepSeek-V2/V3 tensors, as listed in ``families/deepseek.py``);
    ``o_name``: the output projection's name (Bailing-V3's ``dense``)."""
    qk_head = nope + rope
    if q_lora is None:
        B.linear(ts, f"{a}.q_proj", hidden, n_heads * qk_head, S.COLUMN, C.ATTENTION, i)
    else:
        B.linear(ts, f"{a}.q_a_proj", hidden, q_lora, S.REPLICATED, C.ATTENTION, i, bias=att_bias)
        B.norm(ts, f"{a}.q_a_layernorm", q_lora, i, comp=C.ATTENTION)
        B.linear(ts, f"{a}.q_b_proj", q_lora, n_heads * qk_head, S.COLUMN, C.ATTENTION, i)
    B.linear(ts, f"{a}.kv_a_proj_with_mqa", hidden, kv_lora + rope, S.REPLICATED, C.ATTENTION, i, bias=att_bias)
    B.norm(ts, f"{a}.kv_a_layernorm", kv_lora, i, comp=C.ATTENTION)
    B.linear(ts, f"{a}.kv_b_proj", kv_lora, n_heads * (nope + v_dim), S.COLUMN, C.ATTENTION, i)
    B.linear(ts, f"{a}.{o_name}", n_heads * v_dim, hidden, S.ROW, C.ATTENTION, i, bias=att_bias)


def mla_part(d: MlaDims, *, bias: bool = False, extra: LayerPart | None = None) -> LayerPart:
    """``self_attn`` of an MLA layer for ``decoder_stack``; ``extra`` adds what a family puts beside it
    (DSA's indexer)."""
    def add(ts: list[Tensor], i: int, p: str) -> None:
        mla_attention(ts, f"{p}.self_attn", i, d.hidden, d.n_heads, d.q_lora, d.kv_lora, d.rope, d.nope, d.v_dim,
                      bias)
        if extra is not None:
            extra(ts, i, p)
    return add


def deepseek_moe_part(hidden: int, dense: list[bool], *, inter: int, n_exp: int, moe_inter: int, n_shared: int,
                      bias: bool = False) -> LayerPart:
    """``mlp`` of a DeepSeekMoE layer: dense (``intermediate_size``) where ``dense[i]``, else router ``E x H``,
    routed experts and the shared experts fused into one MLP of ``moe_intermediate_size * n_shared_experts``.
    ``dense`` has one entry per layer plus one for the MTP layer (index ``num_hidden_layers``)."""
    def add(ts: list[Tensor], i: int, p: str) -> None:
        if dense[i]:
            B.gated_mlp(ts, i, f"{p}.mlp", hidden, inter, C.DENSE_MLP, bias=bias)
            return
        B.router(ts, i, f"{p}.mlp.gate", hidden, n_exp)
        B.experts(ts, i, f"{p}.mlp.experts", hidden, moe_inter, n_exp)
        if n_shared or bias:
            # transformers builds the shared MLP even for 0 shared experts: zero-width matrices, but
            # with mlp_bias its down_proj still has a (hidden,) bias
            B.gated_mlp(ts, i, f"{p}.mlp.shared_experts", hidden, moe_inter * n_shared, C.SHARED_EXPERTS, bias=bias)
    return add


def mla_moe_stack(spec: ModelSpec, f: Fields, d: MlaDims, *, attention: LayerPart, mlp: LayerPart, k: int,
                  layers_kv: list[LayerKV] | None = None) -> None:
    """The DeepSeek-shaped model: ``decoder_stack`` of MLA + MoE layers, the MTP layers' size
    (``num_nextn_predict_layers``, not loaded for serving: ``mtp_params`` only) and the MLA facts.
    ``layers_kv`` None = one MLA latent of ``kv_lora + rope`` per layer."""
    if layers_kv is None:
        layers_kv = mla_layers(d.n_layers, d.kv_lora, d.rope)
    decoder_stack(spec, f, d.geometry(), attention=attention, mlp=mlp, layers_kv=layers_kv)
    n_mtp = f.raw.get("num_nextn_predict_layers") or 0
    if n_mtp:
        mtp: list[Tensor] = []
        i, p = d.n_layers, f"model.layers.{d.n_layers}"
        B.norm(mtp, f"{p}.input_layernorm", d.hidden, i)
        attention(mtp, i, p)
        B.norm(mtp, f"{p}.post_attention_layernorm", d.hidden, i)
        mlp(mtp, i, p)
        spec.mtp_params = n_mtp * (sum(t.numel for t in mtp) + mtp_extras(d.hidden, d.vocab))
        set_mtp_draft(spec, mtp, p, i, d.hidden, n_mtp, layers_kv)
    set_mla_facts(spec, f, d.hidden, d.vocab, d.n_layers, d.n_heads, d.nope, d.rope, d.tie, k)


def set_mla_facts(spec: ModelSpec, f: Fields, hidden: int, vocab: int, n_layers: int, n_heads: int, nope: int,
                  rope: int, tie: bool, k: int) -> None:
    """The spec facts every MLA family (DeepSeek-V2/V3, GLM-4.7-Flash, DSA, LongCat) sets alike: no KV heads,
    head_dim = nope + rope, RoPE on the rope part only."""
    spec.hidden_size, spec.vocab_size, spec.num_layers = hidden, vocab, n_layers
    spec.num_attention_heads, spec.num_kv_heads, spec.head_dim = n_heads, 0, nope + rope
    spec.tie_word_embeddings, spec.is_mla = tie, True
    spec.max_position_embeddings = f.opt_int("max_position_embeddings")
    spec.rotary_dim = rope
    spec.experts_per_token = k


def set_mtp_draft(spec: ModelSpec, layer_tensors: list[Tensor], p: str, i: int, hidden: int, n_mtp: int,
                  layers_kv: list[LayerKV]) -> None:
    """``spec.mtp_tensors`` / ``mtp_layers_kv``: what vLLM loads with ``--speculative-config`` method mtp
    (deepseek_mtp.py @03356f8c, glm4_moe_mtp.py @028aedf6: the same layer shape) -- the decoder layer
    (``layer_tensors``), ``enorm`` / ``hnorm`` / ``shared_head.norm`` (RMSNorm) and ``eh_proj`` (plain
    ``nn.Linear``: replicated, unquantized), once per MTP layer; the embedding and ``shared_head.head`` are
    the target's (llm_base_proposer.py @00c4f22d shares them).  Its attention: the widest layer geometry of
    the stack (a DSA MTP layer always builds its indexer)."""
    mtp = list(layer_tensors)
    for name in ("enorm", "hnorm", "shared_head.norm"):
        B.norm(mtp, f"{p}.{name}", hidden, i)
    mtp.append(Tensor(f"{p}.eh_proj.weight", (hidden, 2 * hidden), S.REPLICATED, C.OTHER, i))
    spec.mtp_tensors = [replace(t, count=t.count * n_mtp) for t in mtp]
    spec.mtp_layers_kv = [max(layers_kv, key=lambda l: l.bytes_per_token(2))] * n_mtp


def mtp_extras(hidden: int, vocab: int) -> int:
    """What one DeepSeek-style MTP module stores besides its decoder layer.

    Its own embedding and head (vocab x hidden each), ``enorm`` / ``hnorm`` /
    ``shared_head.norm`` (hidden each) and ``eh_proj`` (2*hidden -> hidden).
    """
    return 2 * vocab * hidden + 3 * hidden + 2 * hidden * hidden
