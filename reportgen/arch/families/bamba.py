"""IBM's Mamba-2 / attention hybrids: bamba and granitemoehybrid (granite-4.0-h).

Follows vLLM ``vllm/model_executor/models/granitemoehybrid.py`` (read at commit
0195c9ec6ea9cda412d1c69034fc5926a2c29528) and ``bamba.py`` (the one stored version, commit
017597e938a33a2b5f363a7adc278be9a4154969), with transformers 5.24 ``modeling_bamba.py`` /
``modeling_granitemoehybrid.py``.

Each layer: ``input_layernorm``, a mixer, a second norm and a feed-forward.
The mixer is a Mamba-2 ``mamba`` (``arch/mixers.py``: ``mamba_n_heads`` heads of ``mamba_d_head``,
``mamba_n_groups``, ``mamba_d_state``, ``mamba_d_conv``, intermediate ``mamba_expand * hidden``,
``mamba_conv_bias`` / ``mamba_proj_bias``) or GQA ``self_attn``.

* bamba: attention layers at ``attn_layer_indices`` (the rest Mamba); feed-forward a SwiGLU
  ``feed_forward`` (gate/up COLUMN, down ROW) of ``intermediate_size``; second norm
  ``pre_ff_layernorm``; final ``final_layernorm``; RoPE on half the head (``partial_rotary_factor``
  0.5, transformers hard-codes it).
* granitemoehybrid: ``layer_types`` (``mamba`` / ``attention``, transformers-5 names too);
  attention biases = ``attention_bias``; feed-forward = ``num_local_experts`` experts of
  ``intermediate_size`` with router ``block_sparse_moe.gate`` (none when 0 experts) plus the
  ``shared_mlp`` (``input_linear`` ``(2S, H)`` -> vLLM MergedColumn, split here into its two COLUMN
  halves; ``output_linear`` ROW) of ``shared_intermediate_size`` (none when 0); RoPE only when
  ``position_embedding_type == "rope"`` (granite-4.0-h: none); the lm_head ties when
  ``tie_word_embeddings`` (both codes).

vLLM takes the attention ``head_dim`` as ``hidden // heads`` (transformers reads a ``head_dim`` field
when the config has one); bamba's vLLM layers have no attention or MLP biases and an untied
lm_head; granitemoehybrid's o_proj is ``hidden x hidden``.  Configs on which the two codes would build
different models are refused.  Multipliers (embedding, residual, attention, logits) add no
parameters.  The SSM state dtype follows vLLM's auto (model dtype) -- neither model overrides it.
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.families.common import Geometry, decoder_stack, geometry, set_moe
from reportgen.arch.fields import Fields
from reportgen.arch.mixers import mamba2_mixer, state_layer
from reportgen.arch.spec import AttentionKind, Component as C, LayerKV, ModelSpec, Shard as S, Tensor
from reportgen.arch.state import StateGeometry

MAMBA_NAMES = {"mamba", "linear_attention"}
ATTENTION_NAMES = {"attention", "full_attention"}
HANDLES = ("mamba_d_state", "mamba_expand", "attn_layer_indices", "layers_block_type")


def _head_dim(f: Fields, g: Geometry) -> int:
    """vLLM's ``hidden // heads``; a config ``head_dim`` that differs builds another model in transformers."""
    vllm_hd = g.hidden // g.n_heads
    if f.raw.get("head_dim") is not None and f.raw.get("head_dim") != vllm_hd:
        raise Unsupported(f"{f.model_type} with head_dim {f.raw['head_dim']} != hidden_size / num_attention_heads: "
                          "vLLM ignores head_dim, transformers uses it")
    return vllm_hd


def _mamba(ts: list[Tensor], f: Fields, i: int, prefix: str, hidden: int) -> StateGeometry:
    heads, hd, groups = f.int("mamba_n_heads"), f.int("mamba_d_head"), f.int("mamba_n_groups")
    inter = f.int("mamba_expand") * hidden
    if heads * hd != inter:  # transformers validates it too
        raise f.err("mamba_d_head", f"{hd} x mamba_n_heads {heads} != mamba_expand * hidden_size {inter}")
    if heads % groups:
        raise f.err("mamba_n_groups", f"{groups} does not divide mamba_n_heads {heads}")
    return mamba2_mixer(ts, i, prefix, hidden, heads=heads, head_dim=hd, groups=groups,
                        state=f.int("mamba_d_state"), conv_kernel=f.int("mamba_d_conv"),
                        conv_bias=f.flag("mamba_conv_bias", True), proj_bias=f.flag("mamba_proj_bias"))


def build_bamba(f: Fields, spec: ModelSpec) -> None:
    g = geometry(f)
    for name in ("attention_bias", "mlp_bias"):
        if f.flag(name):
            raise Unsupported(f"bamba with {name}=true: vLLM's bamba.py builds no such bias")
    if g.tie:
        raise Unsupported("bamba with tie_word_embeddings=true: vLLM's bamba.py always allocates its own lm_head")
    hd = _head_dim(f, g)
    attn_idx = f.int_list("attn_layer_indices", lo=0, hi=g.n_layers - 1)
    inter = f.int("intermediate_size")
    def mixer(ts: list[Tensor], i: int, p: str) -> LayerKV:
        if i in attn_idx:
            B.attention(ts, i, f"{p}.self_attn", g.hidden, g.n_heads, g.n_kv, hd)
            return LayerKV(AttentionKind.FULL, g.n_kv, hd, hd)
        return state_layer(_mamba(ts, f, i, f"{p}.mamba", g.hidden))

    def mlp(ts: list[Tensor], i: int, p: str) -> None:
        B.gated_mlp(ts, i, f"{p}.feed_forward", g.hidden, inter, C.DENSE_MLP)

    decoder_stack(spec, f, g, attention=mixer, mlp=mlp, norms=("input_layernorm", "pre_ff_layernorm"),
                  final_norm="model.final_layernorm", tied=False)
    spec.head_dim = hd


def build_granitemoehybrid(f: Fields, spec: ModelSpec) -> None:
    g = geometry(f)
    if g.hidden % g.n_heads:
        raise Unsupported("granitemoehybrid with hidden_size not a multiple of num_attention_heads: vLLM's o_proj "
                          "is hidden x hidden, transformers' heads * head_dim x hidden")
    hd = _head_dim(f, g)
    names = f.str_list("layer_types") or []
    if len(names) != g.n_layers:
        raise f.err("layer_types", f"has {len(names)} entries for num_hidden_layers {g.n_layers}")
    for i, name in enumerate(names):
        if name not in MAMBA_NAMES | ATTENTION_NAMES:
            raise f.err("layer_types", f"unknown layer kind {name!r} at layer {i} (mamba or attention)")
    n_exp = f.int("num_local_experts", 0, lo=0)
    inter = f.int("intermediate_size")
    shared = f.int("shared_intermediate_size", 0, lo=0)
    if n_exp:
        set_moe(spec, f, n_exp, shared=1 if shared else 0)
    bias = f.flag("attention_bias")
    def mixer(ts: list[Tensor], i: int, p: str) -> LayerKV:
        if names[i] in ATTENTION_NAMES:
            B.attention(ts, i, f"{p}.self_attn", g.hidden, g.n_heads, g.n_kv, hd, qkv_bias=bias, o_bias=bias)
            return LayerKV(AttentionKind.FULL, g.n_kv, hd, hd)
        return state_layer(_mamba(ts, f, i, f"{p}.mamba", g.hidden))

    def mlp(ts: list[Tensor], i: int, p: str) -> None:
        if n_exp:
            B.router(ts, i, f"{p}.block_sparse_moe.gate", g.hidden, n_exp)
            B.experts(ts, i, f"{p}.block_sparse_moe.experts", g.hidden, inter, n_exp)
        if shared:
            comp = C.SHARED_EXPERTS if n_exp else C.DENSE_MLP
            for half in ("gate", "up"):
                B.linear(ts, f"{p}.shared_mlp.input_linear[{half}]", g.hidden, shared, S.COLUMN, comp, i)
            B.linear(ts, f"{p}.shared_mlp.output_linear", shared, g.hidden, S.ROW, comp, i)

    decoder_stack(spec, f, g, attention=mixer, mlp=mlp)
    spec.head_dim = hd
    if f.get("position_embedding_type") != "rope":
        spec.rope_caches = ()
        spec.rotary_dim = 0
