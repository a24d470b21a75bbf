"""Qwen vision towers: Qwen2-VL, Qwen2.5-VL and Qwen3-VL (also the tower of the Qwen3.5 composites).

Shapes are transformers 5.24's (``modeling_qwen2_vl.py``, ``modeling_qwen2_5_vl.py``,
``modeling_qwen3_vl.py``), checked against the meta-device oracle.  Sharding follows
vLLM's tower code (tensor-parallel by default, ``mm_encoder_tp_mode="weights"``):

* ``vllm/model_executor/models/qwen2_5_vl.py`` @ 002d181a55a03803d7d69547846630069d2378b8:
  ``qkv`` is a QKVParallelLinear with ``total_num_kv_heads = num_heads`` (multi-head: Q, K
  and V all split by heads -> COLUMN), ``proj`` RowParallelLinear; the MLP gate/up merged
  column-parallel, down row-parallel (all with biases); the patch embedding a ReplicatedLinear;
  the merger's ``mlp.0`` ColumnParallelLinear and ``mlp.2`` RowParallelLinear; norms replicated.
* ``vllm/model_executor/models/qwen3_vl.py`` @ 002d7b939754b844a3832dd7fbf9e5fd0c0e9f1b:
  the same attention (``Qwen2_5_VisionAttention``), ``linear_fc1`` column / ``linear_fc2`` row
  MLP, ``pos_embed`` an ``nn.Embedding`` (replicated), ``merger`` and every
  ``deepstack_merger_list`` entry ``linear_fc1`` column / ``linear_fc2`` row.
* ``vllm/model_executor/models/qwen2_vl.py`` (search excerpts of several versions, commit not pinned):
  ``Qwen2VisionMLP`` ``fc1`` ColumnParallelLinear / ``fc2`` RowParallelLinear; attention and merger
  as Qwen2.5-VL's; LayerNorms.

Every tensor is Component.VISION with ``layer=None``.  The patch merger (and the deepstack
mergers) are the projector into the language model; ``arch/vision_parts.py`` tells them
apart from the tower by name for the report.

``qwen3_vl_tower(ts, f, prefix="visual") -> int`` is the reusable entry point of the Qwen3.5
hybrid composites: ``f`` is a ``Fields`` over the parsed ``vision_config`` (transformers'
class defaults apply), the return value is ``out_hidden_size`` (the language model's width).
"""

from __future__ import annotations

from reportgen.arch import blocks as B
from reportgen.arch.errors import Unsupported
from reportgen.arch.fields import Fields
from reportgen.arch.spec import Component as C, Shard as S, Tensor

V = C.VISION


def _rep(ts: list[Tensor], name: str, shape: tuple[int, ...]) -> None:
    ts.append(Tensor(name, shape, S.REPLICATED, V, None))


def _heads(f: Fields, hidden: int) -> int:
    n = f.int("num_heads")
    if hidden % n:
        raise f.err("num_heads", f"{n} does not divide the tower width {hidden}")
    return n


def patch_volume(f: Fields) -> int:
    """Input features of the 3-D patch embedding: channels x temporal x patch x patch."""
    return f.int("in_channels") * f.int("temporal_patch_size") * f.int("patch_size") ** 2


def _fused_qkv(ts: list[Tensor], p: str, h: int) -> None:
    """``attn.qkv`` (h -> 3h, bias) split into its Q/K/V thirds, each split by heads; ``attn.proj`` row."""
    for part in ("q", "k", "v"):
        B.linear(ts, f"{p}.attn.qkv[{part}]", h, h, S.COLUMN, V, None, bias=True)
    B.linear(ts, f"{p}.attn.proj", h, h, S.ROW, V, None, bias=True)


def _merger(ts: list[Tensor], p: str, norm_dim: int, width: int, out: int, *, norm_bias: bool,
            names: tuple[str, str, str]) -> None:
    """Patch merger: a norm, then ``width -> width`` (column) and ``width -> out`` (row), with biases."""
    norm, fc1, fc2 = names
    B.norm(ts, f"{p}.{norm}", norm_dim, None, comp=V, bias=norm_bias)
    B.linear(ts, f"{p}.{fc1}", width, width, S.COLUMN, V, None, bias=True)
    B.linear(ts, f"{p}.{fc2}", width, out, S.ROW, V, None, bias=True)


def qwen2_vl_tower(ts: list[Tensor], f: Fields, prefix: str = "visual") -> int:
    """Qwen2-VL: ``embed_dim`` wide, LayerNorms, fc1/fc2 MLP of ``embed_dim * mlp_ratio``; returns ``hidden_size``."""
    h = f.int("embed_dim")
    _heads(f, h)
    inter = h * f.int("mlp_ratio")
    out = f.int("hidden_size")
    merge = f.int("spatial_merge_size")
    _rep(ts, f"{prefix}.patch_embed.proj.weight", (h, patch_volume(f)))
    for i in range(f.int("depth")):
        p = f"{prefix}.blocks.{i}"
        B.norm(ts, f"{p}.norm1", h, None, comp=V, bias=True)
        B.norm(ts, f"{p}.norm2", h, None, comp=V, bias=True)
        _fused_qkv(ts, p, h)
        B.plain_mlp(ts, None, f"{p}.mlp", h, inter, V, bias=True)
    _merger(ts, f"{prefix}.merger", h, h * merge * merge, out, norm_bias=True, names=("ln_q", "mlp.0", "mlp.2"))
    return out


def qwen2_5_vl_tower(ts: list[Tensor], f: Fields, prefix: str = "visual") -> int:
    """Qwen2.5-VL: RMSNorms, SwiGLU MLP with biases, no patch bias; returns ``out_hidden_size``."""
    h = f.int("hidden_size")
    _heads(f, h)
    inter = f.int("intermediate_size")
    out = f.int("out_hidden_size")
    merge = f.int("spatial_merge_size")
    _rep(ts, f"{prefix}.patch_embed.proj.weight", (h, patch_volume(f)))
    for i in range(f.int("depth")):
        p = f"{prefix}.blocks.{i}"
        B.norm(ts, f"{p}.norm1", h, None, comp=V)
        B.norm(ts, f"{p}.norm2", h, None, comp=V)
        _fused_qkv(ts, p, h)
        B.gated_mlp(ts, None, f"{p}.mlp", h, inter, V, bias=True)
    _merger(ts, f"{prefix}.merger", h, h * merge * merge, out, norm_bias=False, names=("ln_q", "mlp.0", "mlp.2"))
    return out


def qwen3_vl_tower(ts: list[Tensor], f: Fields, prefix: str = "visual") -> int:
    """Qwen3-VL: patch bias, learned position grid, LayerNorms, fc1/fc2 MLP, a merger plus one
    deepstack merger per ``deepstack_visual_indexes`` entry; returns ``out_hidden_size``."""
    h = f.int("hidden_size")
    _heads(f, h)
    inter = f.int("intermediate_size")
    out = f.int("out_hidden_size")
    merge = f.int("spatial_merge_size")
    n_deep = len(f.int_list("deepstack_visual_indexes", lo=0, hi=f.int("depth") - 1))
    _rep(ts, f"{prefix}.patch_embed.proj.weight", (h, patch_volume(f)))
    _rep(ts, f"{prefix}.patch_embed.proj.bias", (h,))
    _rep(ts, f"{prefix}.pos_embed.weight", (f.int("num_position_embeddings"), h))
    for i in range(f.int("depth")):
        p = f"{prefix}.blocks.{i}"
        B.norm(ts, f"{p}.norm1", h, None, comp=V, bias=True)
        B.norm(ts, f"{p}.norm2", h, None, comp=V, bias=True)
        _fused_qkv(ts, p, h)
        B.plain_mlp(ts, None, f"{p}.mlp", h, inter, V, bias=True, names=("linear_fc1", "linear_fc2"))
    wide = h * merge * merge
    names = ("norm", "linear_fc1", "linear_fc2")
    _merger(ts, f"{prefix}.merger", h, wide, out, norm_bias=True, names=names)
    for k in range(n_deep):
        _merger(ts, f"{prefix}.deepstack_merger_list.{k}", wide, wide, out, norm_bias=True, names=names)
    return out


def qwen3_5_tower(ts: list[Tensor], f: Fields, prefix: str = "visual") -> int:
    """The Qwen3.5 / Qwen3.5-MoE composites' tower: the Qwen3-VL tower without deepstack mergers.

    vLLM ``qwen3_5.py`` builds ``Qwen3_VisionTransformer`` (qwen3_vl.py) on ``config.vision_config``,
    which makes one deepstack merger per ``deepstack_visual_indexes`` entry; transformers 5.24's
    ``Qwen3_5VisionModel`` has no deepstack at all, and every shipped checkpoint sets the list empty.
    A non-empty list would make vLLM expect merger weights no checkpoint has (and widen the tower's
    output past the language model's): vLLM cannot serve it, so it is refused.
    """
    if f.int_list("deepstack_visual_indexes", lo=0, hi=1 << 12):
        raise Unsupported("qwen3_5 composite with a non-empty vision_config.deepstack_visual_indexes: "
                          "transformers' Qwen3_5VisionModel has no deepstack mergers, vLLM's "
                          "Qwen3_VisionTransformer builds one per entry (weights no checkpoint has)")
    return qwen3_vl_tower(ts, f, prefix)


def deepstack_levels(f: Fields) -> int:
    """How many deepstack feature levels the Qwen3-VL tower feeds into the language model."""
    return len(f.int_list("deepstack_visual_indexes", lo=0, hi=1 << 12))
