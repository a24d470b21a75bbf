"""zamba2 (Zyphra Zamba2): Mamba-2 layers, and hybrid layers that also run a SHARED attention block.

Follows vLLM ``vllm/model_executor/models/zamba2.py`` (read at commit
0527cbc72b5fd504640c649ceefbb2da8e1827da) and transformers 5.24 ``modeling_zamba2.py``.

Every layer is a Mamba decoder (``input_layernorm`` + Mamba-2 mixer, ``arch/mixers.py``: ``n_mamba_heads``
heads of ``mamba_expand * hidden / n_mamba_heads``, ``mamba_ngroups``, ``mamba_d_state``, ``mamba_d_conv``,
``add_bias_linear`` on in/out proj).  A ``hybrid`` layer (``layers_block_type``) adds, before it, one of
``num_mem_blocks`` shared transformer blocks (cycled in hybrid-layer order; their weights exist once)
and its own ``linear`` (hidden x hidden, vLLM ReplicatedLinear).  A shared block: ``input_layernorm``
over ``2 * hidden``, q/k/v (``2 * hidden`` -> heads x ``attention_head_dim`` = ``2 * hidden / heads``)
and ``o_proj``, ``pre_ff_layernorm``, a GELU-gated ``gate_up_proj`` / ``down_proj`` of
``intermediate_size`` (bias ``add_bias_linear``), and LoRA adapters for each hybrid layer the block
serves (``A`` hidden-ish -> ``adapter_rank``, ``B`` -> the projection; vLLM: both column-parallel):
always on ``gate_up_proj``, on q/k/v with ``use_shared_attention_adapter``.  Shared-block tensors are
placed at the first hybrid layer that uses them.

KV and state: a hybrid layer holds an attention KV (heads x head_dim, full) AND its Mamba state --
``LayerKV`` FULL with ``state`` set, as falcon_h1; plain layers are STATE.  The lm_head is tied (vLLM
always ties).  vLLM's Zamba2 does not support pipeline parallelism (said in ``spec.notes``).

Refused where the two codes differ: untied head; ``num_key_value_heads != num_attention_heads`` (vLLM
builds multi-head K/V); ``use_conv_bias`` false (transformers' conv always has a bias); fewer hybrid
layers than ``num_mem_blocks`` (vLLM allocates every block); rope scaling with ``use_mem_rope`` (vLLM
passes none).
"""

from __future__ import annotations

from collections.abc import Mapping

from reportgen.arch import blocks as B
from reportgen.arch.errors import ConfigError, Unsupported
from reportgen.arch.families.common import geometry, set_scalars
from reportgen.arch.fields import Fields
from reportgen.arch.mixers import mamba2_mixer, state_layer
from reportgen.arch.rope import rope_parameters
from reportgen.arch.spec import AttentionKind, Component as C, LayerKV, ModelSpec, Shard as S, Tensor

HANDLES = ("mamba_d_state", "mamba_expand", "layers_block_type")


RAW_KINDS = ("hybrid", "mamba", "linear_attention")   # "mamba": the legacy name transformers remaps


def precheck(raw: Mapping) -> None:
    """``layers_block_type`` names and length, before transformers rejects them without naming the field."""
    kinds, n = raw.get("layers_block_type"), raw.get("num_hidden_layers")
    if kinds is None:
        return
    if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        raise ConfigError("layers_block_type", "must be a list of layer-type names")
    for i, k in enumerate(kinds):
        if k not in RAW_KINDS:
            raise ConfigError("layers_block_type", f"unknown layer kind {k!r} at layer {i} (mamba or hybrid)")
    if isinstance(n, int) and len(kinds) != n:
        raise ConfigError("layers_block_type", f"has {len(kinds)} entries for num_hidden_layers {n}")


def build(f: Fields, spec: ModelSpec) -> None:
    g = geometry(f)
    if not g.tie:
        raise Unsupported("zamba2 with tie_word_embeddings=false: vLLM's zamba2.py always ties lm_head")
    if g.n_kv != g.n_heads:
        raise Unsupported("zamba2 with num_key_value_heads != num_attention_heads: vLLM builds multi-head K/V")
    if not f.flag("use_conv_bias", True):
        raise Unsupported("zamba2 with use_conv_bias=false: transformers' Mamba conv always has a bias")
    kinds = f.str_list("layers_block_type") or []
    if len(kinds) != g.n_layers:
        raise f.err("layers_block_type", f"has {len(kinds)} entries for num_hidden_layers {g.n_layers}")
    for i, k in enumerate(kinds):
        if k not in ("hybrid", "linear_attention"):
            raise f.err("layers_block_type", f"unknown layer kind {k!r} at layer {i} (mamba or hybrid)")
    hybrid = [i for i, k in enumerate(kinds) if k == "hybrid"]
    n_blocks = f.int("num_mem_blocks")
    if len(hybrid) < n_blocks:
        raise Unsupported(f"zamba2 with {len(hybrid)} hybrid layers < num_mem_blocks {n_blocks}: vLLM allocates "
                          "every shared block, transformers only the used ones")
    attn_hidden = 2 * g.hidden
    if attn_hidden % g.n_heads:
        raise Unsupported("zamba2 with 2 * hidden_size not a multiple of num_attention_heads: vLLM refuses it")
    hd = attn_hidden // g.n_heads
    if f.flag("use_mem_rope"):
        params = rope_parameters(f) or {}
        if any(rp.get("rope_type", "default") != "default" for rp in params.values()):
            raise Unsupported("zamba2 with rope scaling: vLLM's shared attention builds its rope without it")
    m_heads, expand = f.int("n_mamba_heads"), f.int("mamba_expand")
    m_inter = expand * g.hidden
    if m_inter % m_heads:
        raise f.err("n_mamba_heads", f"{m_heads} does not divide mamba_expand * hidden_size {m_inter}")
    groups = f.int("mamba_ngroups")
    if m_heads % groups:
        raise f.err("mamba_ngroups", f"{groups} does not divide n_mamba_heads {m_heads}")
    inter, rank, bias = f.int("intermediate_size"), f.int("adapter_rank"), f.flag("add_bias_linear")
    qkv_adapters = f.flag("use_shared_attention_adapter")

    ts = spec.tensors
    layers: list[LayerKV] = []
    B.embedding(ts, g.vocab, g.hidden)
    for i, kind in enumerate(kinds):
        p = f"model.layers.{i}"
        if kind == "hybrid":
            h = hybrid.index(i)
            if h < n_blocks:
                _shared_block(ts, i, f"{p}.shared_transformer", g, hd, inter, rank, bias, qkv_adapters,
                              slots=sum(1 for j in range(len(hybrid)) if j % n_blocks == h))
            B.linear(ts, f"{p}.linear", g.hidden, g.hidden, S.REPLICATED, C.OTHER, i)
            p = f"{p}.mamba_decoder"
        B.norm(ts, f"{p}.input_layernorm", g.hidden, i)
        geo = mamba2_mixer(ts, i, f"{p}.mamba", g.hidden, heads=m_heads, head_dim=m_inter // m_heads, groups=groups,
                           state=f.int("mamba_d_state"), conv_kernel=f.int("mamba_d_conv"), conv_bias=True,
                           proj_bias=bias)
        layers.append(LayerKV(AttentionKind.FULL, g.n_heads, hd, hd, state=geo) if kind == "hybrid"
                      else state_layer(geo))
    B.norm(ts, "model.final_layernorm", g.hidden, None)
    B.lm_head(ts, g.vocab, g.hidden, tied=True)
    set_scalars(spec, f, g)
    spec.head_dim = hd
    spec.rotary_dim = hd if f.flag("use_mem_rope") else 0
    if not f.flag("use_mem_rope"):
        spec.rope_caches = ()
    spec.layers_kv = layers
    spec.notes.append("zamba2: vLLM's Zamba2ForCausalLM does not support pipeline parallelism; hybrid layers hold "
                      "an attention KV cache and a Mamba-2 state")


def _shared_block(ts: list[Tensor], i: int, p: str, g, hd: int, inter: int, rank: int, bias: bool,
                  qkv_adapters: bool, *, slots: int) -> None:
    """One shared transformer block with its ``slots`` per-hybrid-layer LoRA adapters."""
    two_h = 2 * g.hidden
    B.norm(ts, f"{p}.input_layernorm", two_h, i)
    a = f"{p}.self_attn"
    B.linear(ts, f"{a}.q_proj", two_h, g.n_heads * hd, S.COLUMN, C.ATTENTION, i)
    B.linear(ts, f"{a}.k_proj", two_h, g.n_kv * hd, S.KV, C.ATTENTION, i)
    B.linear(ts, f"{a}.v_proj", two_h, g.n_kv * hd, S.KV, C.ATTENTION, i)
    B.linear(ts, f"{a}.o_proj", g.n_heads * hd, g.hidden, S.ROW, C.ATTENTION, i)
    if qkv_adapters:
        for name in ("linear_q_adapter", "linear_k_adapter", "linear_v_adapter"):
            B.linear(ts, f"{a}.{name}_list.A", two_h, rank, S.COLUMN, C.ATTENTION, i, count=slots)
            B.linear(ts, f"{a}.{name}_list.B", rank, two_h, S.COLUMN, C.ATTENTION, i, count=slots)
    B.norm(ts, f"{p}.pre_ff_layernorm", g.hidden, i)
    m = f"{p}.feed_forward"
    B.gated_mlp(ts, i, m, g.hidden, inter, C.DENSE_MLP, bias=bias, fused=True)
    B.linear(ts, f"{m}.gate_up_proj_adapter_list.A", g.hidden, rank, S.COLUMN, C.DENSE_MLP, i, count=slots)
    B.linear(ts, f"{m}.gate_up_proj_adapter_list.B", rank, 2 * inter, S.COLUMN, C.DENSE_MLP, i, count=slots)
