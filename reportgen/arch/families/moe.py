"""Mixture-of-experts decoders with GQA attention: mixtral, qwen2_moe, qwen3_moe.

* mixtral: every layer sparse; experts of width ``intermediate_size``; router
  ``E x H``; attention without biases.
* qwen2_moe: q/k/v bias = ``qkv_bias`` (default true); experts of width
  ``moe_intermediate_size``; plus one shared expert (``shared_expert_intermediate_size``)
  scaled by a sigmoid ``shared_expert_gate`` (``1 x H``, counted as router);
  layers in ``mlp_only_layers`` or off the ``decoder_sparse_step`` grid are
  dense with ``intermediate_size``.
* qwen3_moe: like qwen2_moe without the shared expert; attention bias =
  ``attention_bias`` on q/k/v/o and per-head q/k RMSNorms.

Which layer is sparse follows the model code exactly:
``i not in mlp_only_layers and E > 0 and (i + 1) % decoder_sparse_step == 0``.
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.families.common import decoder_stack, geometry, gqa_attention, set_moe, set_scalars
from reportgen.arch.fields import Fields
from reportgen.arch.kv import attention_layers
from reportgen.arch.spec import Component as C, ModelSpec, Tensor


def build(f: Fields, spec: ModelSpec) -> None:
    family = f.model_type
    g = geometry(f)
    if family == "mixtral":
        n_exp = f.int("num_local_experts")
        expert_inter = f.int("intermediate_size")
        qkv_bias = o_bias = qk_norm = False
        shared_inter = 0
        sparse = [True] * g.n_layers
    else:
        n_exp = f.int("num_experts")
        expert_inter = f.int("moe_intermediate_size")
        if family == "qwen2_moe":
            qkv_bias, o_bias, qk_norm = f.flag("qkv_bias", True), False, False
            shared_inter = f.int("shared_expert_intermediate_size", lo=0)
        else:
            qkv_bias = o_bias = f.flag("attention_bias")
            qk_norm = True
            shared_inter = 0
        step = f.int("decoder_sparse_step", 1)
        mlp_only = set(f.int_list("mlp_only_layers"))
        sparse = [i not in mlp_only and (i + 1) % step == 0 for i in range(g.n_layers)]
    has_dense = not all(sparse)
    dense_inter = f.int("intermediate_size") if has_dense else 0
    set_moe(spec, f, n_exp, shared=1 if family == "qwen2_moe" else 0)
    # vLLM's router: softmax top-k (FusedTopKRouter), ``renormalize=True`` (mixtral.py) or
    # ``renormalize=config.norm_topk_prob`` (qwen2_moe.py / qwen3_moe.py; transformers' default False) -- vllm 0.24.0
    # sdist mixtral.py:138, qwen2_moe.py:176, qwen3_moe.py:218 (0.34.0 :124 / :177 / :210) -- so
    # ``get_routing_method_type`` gives RenormalizeNaive, or Default without renormalisation
    renorm = family == "mixtral" or f.flag("norm_topk_prob", False)
    spec.moe_routing = "RenormalizeNaive" if renorm else "Default"

    def mlp(ts: list[Tensor], i: int, p: str) -> None:
        if sparse[i]:
            B.router(ts, i, f"{p}.mlp.gate", g.hidden, n_exp)
            B.experts(ts, i, f"{p}.mlp.experts", g.hidden, expert_inter, n_exp)
            if family == "qwen2_moe":
                B.gated_mlp(ts, i, f"{p}.mlp.shared_expert", g.hidden, shared_inter, C.SHARED_EXPERTS)
                B.router(ts, i, f"{p}.mlp.shared_expert_gate", g.hidden, 1)
        else:
            B.gated_mlp(ts, i, f"{p}.mlp", g.hidden, dense_inter, C.DENSE_MLP)

    attention = gqa_attention(g, qkv_bias=qkv_bias, o_bias=o_bias, qk_norm="head" if qk_norm else None)
    decoder_stack(spec, f, g, attention=attention, mlp=mlp)


def build_granitemoe(f: Fields, spec: ModelSpec) -> None:
    """granitemoe (Granite-3.x MoE), from transformers ``modeling_granitemoe.py`` and vLLM ``granitemoe.py``.

    Llama-shaped pre-norm layer whose MLP is ``block_sparse_moe``: router ``E x H`` (vLLM ``gate``,
    replicated) and ``num_local_experts`` experts of ``intermediate_size`` (checkpoint ``input_linear``
    ``(E, 2I, H)`` / ``output_linear`` ``(E, H, I)`` -> FusedMoE); no shared expert, no biases.
    vLLM takes ``head_dim = hidden / heads``, builds q/k/v/o without bias and (in the versions read) a
    rope without the config's scaling -- configs with another head_dim, ``attention_bias`` or a
    scaled rope are refused.  The multipliers add no parameters.
    """
    from reportgen.arch.errors import Unsupported
    from reportgen.arch.rope import rope_parameters

    g = geometry(f)
    if g.head_dim * g.n_heads != g.hidden:
        raise Unsupported(f"granitemoe with head_dim {g.head_dim} != hidden_size / num_attention_heads: "
                          "vLLM ignores head_dim, transformers uses it")
    if f.flag("attention_bias"):
        raise Unsupported("granitemoe with attention_bias=true: vLLM's GraniteMoe attention has no biases")
    params = rope_parameters(f) or {}
    if any(rp.get("rope_type") != "default" for rp in params.values()):
        raise Unsupported("granitemoe with rope scaling: not verified against vLLM's granitemoe rope")
    _block_sparse_stack(f, spec, g, biases=False)


def build_phimoe(f: Fields, spec: ModelSpec) -> None:
    """phimoe (Phi-3.5-MoE), from transformers ``modeling_phimoe.py`` and vLLM ``phimoe.py``.

    LayerNorms with weight and bias (input, post-attention, final); router ``gate`` ``E x H``
    without bias; ``num_local_experts`` experts of ``intermediate_size`` (``w1``/``w3``/``w2`` ->
    FusedMoE).  vLLM hard-codes q/k/v/o biases and an untied ``lm_head`` WITH bias, while
    transformers follows ``attention_bias`` / ``lm_head_bias`` / ``tie_word_embeddings`` (class
    defaults false / false / false): configs that disagree with vLLM (the class defaults included)
    are refused.  Phi-3.5-MoE's own config sets both biases.
    """
    from reportgen.arch.errors import Unsupported

    g = geometry(f)
    for name in ("attention_bias", "lm_head_bias"):
        if not f.flag(name):
            raise Unsupported(f"phimoe with {name}=false: vLLM's PhiMoE always loads that bias")
    if g.tie:
        raise Unsupported("phimoe with tie_word_embeddings=true: vLLM's PhiMoE always allocates its own lm_head")
    _block_sparse_stack(f, spec, g, biases=True)


def _block_sparse_stack(f: Fields, spec: ModelSpec, g, biases: bool) -> None:
    """The Mixtral-shaped stack granitemoe and phimoe share: norm, attention, norm, router
    ``block_sparse_moe.gate`` and ``num_local_experts`` experts of ``intermediate_size``.
    ``biases``: phimoe's LayerNorm biases, q/k/v/o biases and untied lm_head with bias (vLLM
    hard-codes them; the callers have refused configs that disagree)."""
    n_exp = f.int("num_local_experts")
    inter = f.int("intermediate_size")
    set_moe(spec, f, n_exp)
    ts = spec.tensors
    B.embedding(ts, g.vocab, g.hidden)
    for i in range(g.n_layers):
        p = f"model.layers.{i}"
        B.norm(ts, f"{p}.input_layernorm", g.hidden, i, bias=biases)
        B.attention(ts, i, f"{p}.self_attn", g.hidden, g.n_heads, g.n_kv, g.head_dim,
                    qkv_bias=biases, o_bias=biases)
        B.norm(ts, f"{p}.post_attention_layernorm", g.hidden, i, bias=biases)
        B.router(ts, i, f"{p}.block_sparse_moe.gate", g.hidden, n_exp)
        B.experts(ts, i, f"{p}.block_sparse_moe.experts", g.hidden, inter, n_exp)
    B.norm(ts, "model.norm", g.hidden, None, bias=biases)
    B.lm_head(ts, g.vocab, g.hidden, tied=g.tie, bias=biases)
    set_scalars(spec, f, g)
    spec.layers_kv = attention_layers(f, g.n_layers, g.n_kv, g.head_dim)
